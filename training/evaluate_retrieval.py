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
from backend.retrieval import human_geometry_stats, js_distance, to_distribution

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


def zscore(g: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (g - mean) / np.maximum(std, 1e-6)


def distances(q_emb, q_geo, c_emb, c_geo) -> tuple[np.ndarray, np.ndarray]:
    """(JS (Q, N), geometric (Q, N)) between human queries and one character's images."""
    qd, cd = to_distribution(q_emb), to_distribution(c_emb)
    js = np.stack([js_distance(p, cd) for p in qd])
    hm, hs = human_geometry_stats()
    qg = zscore(q_geo, hm, hs)
    cg = zscore(c_geo, c_geo.mean(0), c_geo.std(0))
    geo = np.linalg.norm(qg[:, None] - cg[None], axis=2) / np.sqrt(qg.shape[1])
    return js, geo


def query_distances(net, queries: dict, chars: dict, test_mask: np.ndarray, characters: list[str]) -> dict:
    """Per character: (JS, geometric distance, relevance) between every query and that character's database.
    Computed once per network and query set; any beta then combines them."""
    q_emb, _ = embed_and_classify(net, queries["x"])
    out = {}
    for ch in characters:
        m = test_mask & (chars["character"] == ch)
        c_emb, _ = embed_and_classify(net, chars["x"][m])
        js, geo = distances(q_emb, queries["geo"], c_emb, chars["geo"][m])
        out[ch] = (js, geo, queries["y"][:, None] == chars["y"][m][None])
    return out


def anr_table(dists: dict, labels: np.ndarray, beta: float) -> dict:
    """ANR per expression and method (geometry only, features only, combined), averaged over characters."""
    per_char = {
        ch: {
            name: average_normalized_rank(d, rel)
            for name, d in (("geometry", geo), ("features", js), ("combined", js + beta * geo))
        }
        for ch, (js, geo, rel) in dists.items()
    }
    out = {}
    for method in ("geometry", "features", "combined"):
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--human-model", required=True, help="safetensors of the human expression network")
    ap.add_argument("--chars", default=os.path.join("cache", "chars"), help="rendered character data set")
    ap.add_argument("--train-per-expression", type=int, default=120)
    ap.add_argument("--human-replay", type=int, default=6000, help="FER2013 train crops mixed into transfer")
    ap.add_argument("--out", default=os.path.join("docs", "evaluation"))
    ap.add_argument("--export", default="", help="write the shared model here (<path>.safetensors + card)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--max-queries", type=int, default=0, help="use only the first N queries per set (smoke runs)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    human = load_model(args.human_model, "expression", torch.device("cpu"))
    size = int(human.card.input["size"])
    chars = character_crops(args.chars, size)
    characters = sorted(set(chars["character"].tolist()))
    train_mask = chars["n"] < args.train_per_expression
    test_mask = ~train_mask
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
    hx, hy = fer_train["x"][pick], fer_train["y"][pick]

    cfg = TransferConfig(epochs=args.epochs)
    # The frozen layers' output is the same for every transfer below: compute it once.
    all_char_feats = mirrored_features(human.module, chars["x"])
    n_all = len(chars["x"])
    hfeats = mirrored_features(human.module, hx)

    def run_transfer(mask: np.ndarray, c: TransferConfig = cfg):
        idx = torch.from_numpy(np.nonzero(mask)[0])
        feats = torch.cat([all_char_feats[idx], all_char_feats[idx + n_all]])
        return transfer(human.module, None, chars["y"][mask], c, None, hy, char_feats=feats, human_feats=hfeats)

    variants = {
        "human network (no transfer)": human.module,
        "transfer, characters only (paper)": run_transfer(train_mask, dataclasses.replace(cfg, human_mix=0.0)),
        "transfer, characters + human replay": run_transfer(train_mask),
    }
    report: dict = {
        "variants": {},
        "setup": {
            "characters": characters,
            "character_test_images": int(test_mask.sum()),
            "character_train_images": int(train_mask.sum()),
            "fer_test_queries": int(len(fer["test"]["y"])),
            "ckplus_queries": int(len(ck["y"])),
            "human_replay": int(len(hy)),
        },
    }
    # beta is chosen on FER2013 val with the shared model, then frozen for every test number.
    shared = variants["transfer, characters + human replay"]
    val_d = query_distances(shared, fer["val"], chars, test_mask, characters)
    val_scores = {b: anr_table(val_d, fer["val"]["y"], b)["combined"]["mean"] for b in BETAS}
    beta = min(val_scores, key=val_scores.get)
    report["beta"] = {"chosen": beta, "val_mean_anr": val_scores}
    log.info("beta %.3f (val ANR %s)", beta, val_scores)
    for name, net in variants.items():
        report["variants"][name] = {
            "fer_test": anr_table(
                query_distances(net, fer["test"], chars, test_mask, characters), fer["test"]["y"], beta
            ),
            "ckplus": anr_table(query_distances(net, ck, chars, test_mask, characters), ck["y"], beta),
            "char_test_accuracy": accuracy(net, chars, test_mask),
            "fer_test_accuracy": accuracy(net, fer["test"]),
            "ckplus_accuracy": accuracy(net, ck),
        }
        log.info("%s: %s", name, {k: v for k, v in report["variants"][name].items() if "accuracy" in k})
    # One model per character, against the shared one, on each character's own database.
    per_char = {}
    for ch in characters:
        own = run_transfer(train_mask & (chars["character"] == ch))
        t_own = anr_table(query_distances(own, fer["test"], chars, test_mask, [ch]), fer["test"]["y"], beta)
        t_shared = anr_table(query_distances(shared, fer["test"], chars, test_mask, [ch]), fer["test"]["y"], beta)
        per_char[ch] = {
            "own_model_combined": t_own["combined"]["mean"],
            "shared_model_combined": t_shared["combined"]["mean"],
            "own_model_char_acc": accuracy(own, chars, test_mask & (chars["character"] == ch)),
            "shared_model_char_acc": accuracy(shared, chars, test_mask & (chars["character"] == ch)),
        }
    report["per_character_models"] = per_char
    # Leave one character out: the model never saw the character it is evaluated on.
    loco = {}
    for ch in characters:
        net = run_transfer(train_mask & (chars["character"] != ch))
        t = anr_table(query_distances(net, fer["test"], chars, test_mask, [ch]), fer["test"]["y"], beta)
        loco[ch] = {k: t[k]["mean"] for k in ("geometry", "features", "combined")}
        loco[ch]["char_acc"] = accuracy(net, chars, test_mask & (chars["character"] == ch))
    report["leave_one_character_out"] = loco
    report["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "retrieval.json"), "w") as f:
        json.dump(report, f, indent=1)
    plot_anr(
        report["variants"]["transfer, characters + human replay"]["fer_test"],
        os.path.join(args.out, "anr_fer_test.png"),
        "ANR per expression, FER2013 test queries",
    )
    plot_anr(
        report["variants"]["transfer, characters + human replay"]["ckplus"],
        os.path.join(args.out, "anr_ckplus.png"),
        "ANR per expression, CK+ queries",
    )
    write_markdown(report, os.path.join(args.out, "retrieval.md"))
    if args.export:
        s = report["variants"]["transfer, characters + human replay"]
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
                "beta": beta,
            },
            reproduce=f"python -m training.evaluate_retrieval --human-model {args.human_model} --chars {args.chars} "
            f"--export {args.export}",
            notes="Shared human/character embedding (DeepExpr transfer): features frozen, fc1 re-initialised "
            "(lr 3e-3), fc2 fine-tuned (lr 3e-4), 40 epochs on pooled features with mirrored copies.",
        )
        save_model(shared, card, args.export)
    print(json.dumps({k: report[k] for k in ("beta", "seconds")}))


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
