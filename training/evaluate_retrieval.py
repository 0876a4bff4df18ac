"""DeepExpr's evaluation on our data: average normalized rank (ANR) of same-expression character images for
human queries, geometry only vs DeepExpr features only vs combined, beside the paper's Table 1; plus the
transfer variants (one shared model vs one per character, character-only vs human-mixed fine-tuning) and a
leave-one-character-out run.

    python -m training.evaluate_retrieval --human-model runs/export/expression_human \\
        --chars cache/chars --out docs/evaluation [--export backend/weights/expression_character]

Splits: character renders with index n < --train-per-expression train the transfer, the rest are the
retrieval database; human queries are FER2013 test (and val, only to choose beta) and CK+ (ckplus48, every
subject: the human network never saw CK+). Contempt has no canonical class and is left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time

import numpy as np
import torch

from backend.models import CLASSES, ModelCard, load_model, save_model
from backend.scoring import (
    Features,
    RetrievalWeights,
    combine,
    declared_distribution,
    distances,
    library_geometry,
    query_geometry,
    to_distribution,
)
from deepexpr_blender.core.vocabulary import DEFAULT_GAMMA

from .data import SHARED_DATA, character_crops, crop_cache, list_ckplus, list_class_folders
from .metrics import average_normalized_rank
from .transfer import TransferConfig, embed_and_classify, mirrored_features, transfer

log = logging.getLogger(__name__)

PAPER = {  # DeepExpr Table 1 (FERG-DB), per expression
    "deepexpr": {
        "anger": 0.213,
        "disgust": 0.171,
        "fear": 0.228,
        "joy": 0.106,
        "neutral": 0.314,
        "sadness": 0.149,
        "surprise": 0.125,
    },
    "geometry": {
        "anger": 0.384,
        "disgust": 0.386,
        "fear": 0.419,
        "joy": 0.276,
        "neutral": 0.429,
        "sadness": 0.271,
        "surprise": 0.322,
    },
}
BETAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
METHODS = ("geometry", "features", "combined", "combined + label")
REPLAY = "transfer, characters + human replay"  # the shared model: the one exported and reported


def method_weights(beta: float) -> dict[str, RetrievalWeights]:
    """The three rankings of the paper's Table 1, as weights of the server's score; and the served score's
    declared-label term added to the combined one (queries' class probabilities from the human network)."""
    return {
        "geometry": RetrievalWeights(alpha=0.0, beta=1.0, gamma=0.0),
        "features": RetrievalWeights(alpha=1.0, beta=0.0, gamma=0.0),
        "combined": RetrievalWeights(alpha=1.0, beta=beta, gamma=0.0),
        "combined + label": RetrievalWeights(alpha=1.0, beta=beta, gamma=DEFAULT_GAMMA),
    }


def query_distances(net, queries: dict, chars: dict, test_mask: np.ndarray, characters: list[str]) -> dict:
    """Per character: (every distance of ``backend.scoring``, relevance) between every query and that
    character's database. Computed once per network and query set; any weights then combine them."""
    q_emb, _ = embed_and_classify(net, queries["x"])
    query = Features(to_distribution(q_emb), query_geometry(queries["geo"]), queries.get("probs"))
    out = {}
    for ch in characters:
        m = test_mask & (chars["character"] == ch)
        c_emb, _ = embed_and_classify(net, chars["x"][m])
        declared = np.stack([declared_distribution(CLASSES[k]) for k in chars["y"][m]])
        database = Features(to_distribution(c_emb), library_geometry(chars["geo"][m]), declared)
        out[ch] = (distances(query, database), queries["y"][:, None] == chars["y"][m][None])
    return out


def anr_table(dists: dict, labels: np.ndarray, beta: float) -> dict:
    """ANR per expression and method (geometry only, features only, combined), averaged over characters."""
    weights = method_weights(beta)
    per_char = {
        ch: {name: average_normalized_rank(combine(d, weights[name]), rel) for name in METHODS}
        for ch, (d, rel) in dists.items()
    }
    out = {}
    for method in METHODS:
        anr = np.mean([per_char[ch][method] for ch in dists], axis=0)  # per query, mean over characters
        out[method] = {c: float(np.nanmean(anr[labels == k])) for k, c in enumerate(CLASSES) if (labels == k).any()}
        out[method]["mean"] = float(np.mean(list(out[method].values())))
    out["per_character"] = {ch: {m: float(np.nanmean(v)) for m, v in d.items()} for ch, d in per_char.items()}
    return out


def accuracy(net, data: dict, mask: np.ndarray | None = None) -> float:
    x, y = (data["x"], data["y"]) if mask is None else (data["x"][mask], data["y"][mask])
    _, p = embed_and_classify(net, x)
    return float((p.argmax(1) == y).mean())


def plot_anr(results: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exprs = [c for c in CLASSES if c in results["features"]]
    x = np.arange(len(exprs))
    fig, ax = plt.subplots(figsize=(9, 4))
    bars = [
        ("paper geometry", [PAPER["geometry"][e] for e in exprs], "#cccccc"),
        ("paper DeepExpr", [PAPER["deepexpr"][e] for e in exprs], "#999999"),
        ("ours geometry", [results["geometry"][e] for e in exprs], "#f4a261"),
        ("ours features", [results["features"][e] for e in exprs], "#2a9d8f"),
        ("ours combined", [results["combined"][e] for e in exprs], "#264653"),
    ]
    w = 0.16
    for k, (name, vals, color) in enumerate(bars):
        ax.bar(x + (k - 2) * w, vals, w, label=name, color=color)
    ax.set_xticks(x, exprs)
    ax.set_ylabel("ANR (lower is better; 0.5 = chance)")
    ax.axhline(0.5, color="red", lw=0.8, ls=":")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclasses.dataclass
class Data:
    """Everything the evaluation reads: character crops with their split, human query sets, replay crops."""

    chars: dict
    characters: list[str]
    train_mask: np.ndarray
    test_mask: np.ndarray
    fer: dict  # "val" (choosing beta) and "test" query sets
    ck: dict
    hx: np.ndarray  # FER2013 train crops mixed into the transfer
    hy: np.ndarray


def load_data(args: argparse.Namespace, size: int) -> Data:
    chars = character_crops(args.chars, size)
    train_mask = chars["n"] < args.train_per_expression
    fer = {
        s: crop_cache(list_class_folders(os.path.join(SHARED_DATA, "fer2013", s)), size, tag=f"fer2013-{s}", workers=1)
        for s in ("val", "test")
    }
    ck = crop_cache(list_ckplus(os.path.join(SHARED_DATA, "ckplus48")), size, tag="ckplus48", workers=1)
    if args.max_queries:
        rng_q = np.random.default_rng(0)

        def subset(d: dict) -> dict:
            keep = np.sort(rng_q.choice(len(d["y"]), size=min(args.max_queries, len(d["y"])), replace=False))
            return {k: v[keep] for k, v in d.items()}

        fer, ck = {k: subset(v) for k, v in fer.items()}, subset(ck)
    train_items = list_class_folders(os.path.join(SHARED_DATA, "fer2013", "train"))
    rng = np.random.default_rng(0)
    fer_train = crop_cache(train_items, size, tag="fer2013-train")
    pick = rng.choice(len(fer_train["y"]), size=min(args.human_replay, len(fer_train["y"])), replace=False)
    return Data(
        chars=chars,
        characters=sorted(set(chars["character"].tolist())),
        train_mask=train_mask,
        test_mask=~train_mask,
        fer=fer,
        ck=ck,
        hx=fer_train["x"][pick],
        hy=fer_train["y"][pick],
    )


class Transfers:
    """DeepExpr transfers of the human network on subsets of the character crops. The frozen layers' output
    is the same for every transfer: computed once."""

    def __init__(self, human, data: Data, cfg: TransferConfig):
        self.human, self.data, self.cfg = human, data, cfg
        self.char_feats = mirrored_features(human.module, data.chars["x"])
        self.human_feats = mirrored_features(human.module, data.hx)

    def __call__(self, mask: np.ndarray, cfg: TransferConfig | None = None):
        idx = torch.from_numpy(np.nonzero(mask)[0])
        n_all = len(self.data.chars["x"])
        feats = torch.cat([self.char_feats[idx], self.char_feats[idx + n_all]])
        y = self.data.chars["y"][mask]
        return transfer(
            self.human.module,
            None,
            y,
            cfg or self.cfg,
            None,
            self.data.hy,
            char_feats=feats,
            human_feats=self.human_feats,
        )


def choose_beta(shared, d: Data) -> tuple[float, dict]:
    """beta is chosen on FER2013 val with the shared model, then frozen for every test number."""
    val_d = query_distances(shared, d.fer["val"], d.chars, d.test_mask, d.characters)
    val_scores = {b: anr_table(val_d, d.fer["val"]["y"], b)["combined"]["mean"] for b in BETAS}
    return min(val_scores, key=val_scores.get), val_scores


def evaluate_variant(net, d: Data, beta: float) -> dict:
    fer_test, ck = d.fer["test"], d.ck
    return {
        "fer_test": anr_table(query_distances(net, fer_test, d.chars, d.test_mask, d.characters), fer_test["y"], beta),
        "ckplus": anr_table(query_distances(net, ck, d.chars, d.test_mask, d.characters), ck["y"], beta),
        "char_test_accuracy": accuracy(net, d.chars, d.test_mask),
        "fer_test_accuracy": accuracy(net, fer_test),
        "ckplus_accuracy": accuracy(net, ck),
    }


def per_character_models(run: Transfers, shared, d: Data, beta: float) -> dict:
    """One model per character, against the shared one, on each character's own database."""
    fer_test, out = d.fer["test"], {}
    for ch in d.characters:
        mine = d.test_mask & (d.chars["character"] == ch)
        own = run(d.train_mask & (d.chars["character"] == ch))
        t_own = anr_table(query_distances(own, fer_test, d.chars, d.test_mask, [ch]), fer_test["y"], beta)
        t_shared = anr_table(query_distances(shared, fer_test, d.chars, d.test_mask, [ch]), fer_test["y"], beta)
        out[ch] = {
            "own_model_combined": t_own["combined"]["mean"],
            "shared_model_combined": t_shared["combined"]["mean"],
            "own_model_char_acc": accuracy(own, d.chars, mine),
            "shared_model_char_acc": accuracy(shared, d.chars, mine),
        }
    return out


def leave_one_character_out(run: Transfers, d: Data, beta: float) -> dict:
    """The model never saw the character it is evaluated on."""
    fer_test, out = d.fer["test"], {}
    for ch in d.characters:
        net = run(d.train_mask & (d.chars["character"] != ch))
        t = anr_table(query_distances(net, fer_test, d.chars, d.test_mask, [ch]), fer_test["y"], beta)
        out[ch] = {k: t[k]["mean"] for k in METHODS}
        out[ch]["char_acc"] = accuracy(net, d.chars, d.test_mask & (d.chars["character"] == ch))
    return out


def export_shared(shared, human, report: dict, args: argparse.Namespace) -> None:
    s = report["variants"][REPLAY]
    characters = report["setup"]["characters"]
    card = ModelCard(
        architecture="ExpressionNet",
        config={**dataclasses.asdict(shared.cfg), "widths": list(shared.cfg.widths)},
        classes=list(CLASSES),
        input=dict(human.card.input),
        data=(
            "Convolutional layers: the human network (FER2013, non-commercial research terms). Head: the "
            f"project's procedural characters ({', '.join(characters)}, rendered by training.render_characters) "
            "with FER2013 train crops mixed in. Inherits FER2013's non-commercial restriction."
        ),
        metrics={
            "fer_test_anr_combined_mean": round(s["fer_test"]["combined"]["mean"], 4),
            "ckplus_anr_combined_mean": round(s["ckplus"]["combined"]["mean"], 4),
            "char_test_accuracy": round(s["char_test_accuracy"], 4),
            "fer_test_accuracy": round(s["fer_test_accuracy"], 4),
            "beta": report["beta"]["chosen"],
        },
        reproduce=f"python -m training.evaluate_retrieval --human-model {args.human_model} --chars {args.chars} "
        f"--export {args.export}",
        notes="Shared human/character embedding (DeepExpr transfer): features frozen, fc1 re-initialised "
        "(lr 3e-3), fc2 fine-tuned (lr 3e-4), 40 epochs on pooled features with mirrored copies.",
    )
    save_model(shared, card, args.export)


def write_reports(report: dict, out: str) -> None:
    with open(os.path.join(out, "retrieval.json"), "w") as f:
        json.dump(report, f, indent=1)
    s = report["variants"][REPLAY]
    plot_anr(s["fer_test"], os.path.join(out, "anr_fer_test.png"), "ANR per expression, FER2013 test queries")
    plot_anr(s["ckplus"], os.path.join(out, "anr_ckplus.png"), "ANR per expression, CK+ queries")
    write_markdown(report, os.path.join(out, "retrieval.md"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--human-model", required=True, help="safetensors of the human expression network")
    ap.add_argument("--chars", default=os.path.join("cache", "chars"), help="rendered character data set")
    ap.add_argument("--train-per-expression", type=int, default=120)
    ap.add_argument("--human-replay", type=int, default=6000, help="FER2013 train crops mixed into transfer")
    ap.add_argument("--out", default=os.path.join("docs", "evaluation"))
    ap.add_argument("--export", default="", help="write the shared model here (<path>.safetensors + card)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--max-queries", type=int, default=0, help="use only the first N queries per set (smoke runs)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    human = load_model(args.human_model, "expression", torch.device("cpu"))
    d = load_data(args, int(human.card.input["size"]))
    for q in (d.fer["val"], d.fer["test"], d.ck):  # the served label term: the human network's probabilities
        q["probs"] = embed_and_classify(human.module, q["x"])[1]
    cfg = TransferConfig(epochs=args.epochs)
    run = Transfers(human, d, cfg)
    variants = {
        "human network (no transfer)": human.module,
        "transfer, characters only (paper)": run(d.train_mask, dataclasses.replace(cfg, human_mix=0.0)),
        REPLAY: run(d.train_mask),
    }
    shared = variants[REPLAY]
    beta, val_scores = choose_beta(shared, d)
    log.info("beta %.3f (val ANR %s)", beta, val_scores)
    report: dict = {"variants": {}, "setup": setup_counts(d), "beta": {"chosen": beta, "val_mean_anr": val_scores}}
    for name, net in variants.items():
        report["variants"][name] = evaluate_variant(net, d, beta)
        log.info("%s: %s", name, {k: v for k, v in report["variants"][name].items() if "accuracy" in k})
    report["per_character_models"] = per_character_models(run, shared, d, beta)
    report["leave_one_character_out"] = leave_one_character_out(run, d, beta)
    report["seconds"] = round(time.time() - t0, 1)
    write_reports(report, args.out)
    if args.export:
        export_shared(shared, human, report, args)
    print(json.dumps({k: report[k] for k in ("beta", "seconds")}))


def setup_counts(d: Data) -> dict:
    return {
        "characters": d.characters,
        "character_test_images": int(d.test_mask.sum()),
        "character_train_images": int(d.train_mask.sum()),
        "fer_test_queries": int(len(d.fer["test"]["y"])),
        "ckplus_queries": int(len(d.ck["y"])),
        "human_replay": int(len(d.hy)),
    }


def _row(name: str, d: dict) -> str:
    cells = [f"{d[c]:.3f}" if c in d else "–" for c in CLASSES]
    return f"| {name} | " + " | ".join(cells) + f" | {d['mean']:.3f} |"


def write_markdown(report: dict, path: str) -> None:
    s = report["setup"]
    head = "| | " + " | ".join(CLASSES) + " | mean |\n|---|" + "---:|" * (len(CLASSES) + 1)
    paper = {k: {**v, "mean": float(np.mean(list(v.values())))} for k, v in PAPER.items()}
    lines = [
        "# DeepExpr retrieval evaluation",
        "",
        f"Character database: {s['character_test_images']} held-out renders of {', '.join(s['characters'])} "
        f"(transfer trained on {s['character_train_images']} others). Queries: {s['fer_test_queries']} FER2013 "
        f"test faces and {s['ckplus_queries']} CK+ frames (contempt left out: no canonical class). ANR is "
        "averaged over the four characters' databases; 0 is perfect, chance is (1 - N_rel/N)/2, about 0.43 here. "
        f"Combined = JS + {report['beta']['chosen']} x geo, beta chosen on FER2013 val.",
        "",
    ]
    for name, v in report["variants"].items():
        for qname, key in (("FER2013 test", "fer_test"), ("CK+", "ckplus")):
            t = v[key]
            lines += [
                f"## {name}: {qname} queries",
                "",
                head,
                _row("paper: geometry", paper["geometry"]),
                _row("paper: DeepExpr", paper["deepexpr"]),
                _row("ours: geometry only", t["geometry"]),
                _row("ours: features only", t["features"]),
                _row("ours: combined", t["combined"]),
                _row("ours: combined + declared label (served)", t["combined + label"]),
                "",
            ]
        lines += [
            f"Accuracy: characters (held-out renders) {v['char_test_accuracy']:.3f}, FER2013 test "
            f"{v['fer_test_accuracy']:.3f}, CK+ {v['ckplus_accuracy']:.3f}.",
            "",
        ]
    lines += [
        "## One model for all characters, or one per character",
        "",
        "| character | own model ANR | shared model ANR | own model accuracy | shared model accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for ch, d in report["per_character_models"].items():
        lines.append(
            f"| {ch} | {d['own_model_combined']:.3f} | {d['shared_model_combined']:.3f} | "
            f"{d['own_model_char_acc']:.3f} | {d['shared_model_char_acc']:.3f} |"
        )
    lines += [
        "",
        "## Leave one character out (FER2013 test queries)",
        "",
        "| held-out character | geometry | features | combined | accuracy on it |",
        "|---|---:|---:|---:|---:|",
    ]
    for ch, d in report["leave_one_character_out"].items():
        lines.append(
            f"| {ch} | {d['geometry']:.3f} | {d['features']:.3f} | {d['combined']:.3f} | {d['char_acc']:.3f} |"
        )
    lines += [
        "",
        "![ANR per expression, FER2013 test](anr_fer_test.png)",
        "",
        "![ANR, CK+](anr_ckplus.png)",
        "",
        f"Run time: {report['seconds']} s on the 2-core CPU.",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
