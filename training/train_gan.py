"""Train the landmark-guided expression GAN (Qiao et al. 2018) on CK+ same-identity pairs.

    python -m training.train_gan [--iterations 3000] [--fold 0] [--lambdas 1 1e-3 1e-4] [--dry-run]
    torchrun --nproc_per_node 2 -m training.train_gan ...     # DDP

Paper settings by default: loss = l1*L_contr + l2*L_adv + l3*L_recon with (1, 1e-3, 1e-4); Adam (0.5, 0.999),
lr 3e-4, batch 64; WGAN-GP, lambda_gp 10; 64x64; subjects in 10 folds, one held out. Writes a run folder
(config.json, log.txt, stats.jsonl, samples/, checkpoints/); ``--export-to`` writes safetensors (fp16) + card.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from backend.gan import Critic, ExpressionGAN, GanConfig, contrastive_loss, gradient_penalty
from backend.models import ModelCard, save_model

from . import dist
from .config import add_dataclass_args, field, from_args
from .data.ckplus_pairs import fold_masks, load_pairs_dataset, triplets
from .runs import StatsLog, load_checkpoint, new_run_dir, save_checkpoint, seed_everything

log = logging.getLogger(__name__)


@dataclass
class GanTrainConfig:
    iterations: int = field(3000, "generator steps")
    batch_size: int = field(64, "per process")
    lr: float = field(3e-4, "Adam learning rate (G, L and D)")
    lambdas: tuple[float, ...] = field((1.0, 1e-3, 1e-4), "weights of (contrastive, adversarial, reconstruction)")
    lambda_gp: float = field(10.0, "WGAN-GP gradient penalty")
    n_critic: int = field(1, "critic steps per generator step")
    margin: float = field(5.0, "contrastive margin m")
    fold: int = field(0, "held-out subject fold (of 10)")
    seed: int = field(0, "seed")
    device: str = field("auto", "auto | cpu | cuda")
    threads: int = field(0, "torch CPU threads (0: default)")
    runs_root: str = field("runs", "where run folders go")
    tag: str = field("gan", "run folder suffix")
    resume: str = field("", "checkpoint to resume from")
    export_to: str = field("", "write <path>.safetensors (fp16) + <path>.json at the end")
    sample_every: int = field(500, "write a sample grid every n steps")


def flip_landmarks(lm: torch.Tensor) -> torch.Tensor:
    """Mirror normalized 68-point landmarks horizontally (x -> -x, left/right points swapped)."""
    perm = (
        list(range(16, -1, -1))
        + list(range(26, 16, -1))
        + list(range(27, 31))
        + list(range(35, 30, -1))
        + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
        + list(range(54, 47, -1))
        + list(range(59, 54, -1))
        + list(range(64, 59, -1))
        + list(range(67, 64, -1))
    )
    out = lm[:, perm].clone()
    out[..., 0] = -out[..., 0]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(ap, GanConfig, "model_")
    add_dataclass_args(ap, GanTrainConfig)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    mc, tc = from_args(GanConfig, args, "model_"), from_args(GanTrainConfig, args)
    cfg = {"model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc)}
    if args.dry_run:
        print(json.dumps(cfg, indent=2))
        return
    di = dist.init_distributed(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed, di.rank)
    logging.basicConfig(level=logging.INFO if di.is_main else logging.WARNING, format="%(asctime)s %(message)s")
    data = load_pairs_dataset()
    train_mask, _ = fold_masks(data, tc.fold)
    pairs = triplets(data, train_mask)
    train_idx = torch.from_numpy(np.nonzero(train_mask)[0])  # contrastive references come from training subjects
    x = torch.from_numpy(data["x"].astype(np.float32) / 127.5 - 1)[:, None]
    lm = torch.from_numpy(data["lm"])
    lab = torch.from_numpy(data["label"])
    model = ExpressionGAN(mc).to(di.device)
    critic = Critic(mc).to(di.device)
    g_params = list(model.parameters())
    opt_g = torch.optim.Adam(g_params, lr=tc.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=tc.lr, betas=(0.5, 0.999))
    start = 0
    if tc.resume:
        ck = load_checkpoint(tc.resume)
        model.load_state_dict(ck["model"])
        critic.load_state_dict(ck["critic"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        start = ck["step"] + 1
    gm, cm = (DDP(model), DDP(critic)) if di.enabled else (model, critic)
    run_dir = ""
    if di.is_main:
        run_dir = new_run_dir(tc.runs_root, tc.tag)
        os.makedirs(os.path.join(run_dir, "checkpoints"))
        os.makedirs(os.path.join(run_dir, "samples"))
        json.dump(cfg, open(os.path.join(run_dir, "config.json"), "w"), indent=2)
        logging.getLogger().addHandler(logging.FileHandler(os.path.join(run_dir, "log.txt")))
        log.info(
            "run %s: %d training triplets from %d frames, fold %d held out",
            run_dir,
            len(pairs),
            int(train_mask.sum()),
            tc.fold,
        )
    stats = StatsLog(run_dir) if di.is_main else None
    g = torch.Generator().manual_seed(tc.seed + di.rank)
    l1, l2, l3 = tc.lambdas
    t0 = time.time()

    def batch():
        b = pairs[torch.randint(0, len(pairs), (tc.batch_size,), generator=g).numpy()]
        u, v = torch.from_numpy(b[:, 0]), torch.from_numpy(b[:, 1])
        r = train_idx[torch.randint(0, len(train_idx), (tc.batch_size,), generator=g)]  # random references
        iu, iv, gv, gr = x[u], x[v], lm[v], lm[r]
        flip = torch.rand(tc.batch_size, generator=g) < 0.5
        iu[flip], iv[flip] = torch.flip(iu[flip], dims=[3]), torch.flip(iv[flip], dims=[3])
        gv[flip] = flip_landmarks(gv[flip])
        diff = (lab[v] != lab[r]).float()
        return [t.to(di.device) for t in (iu, iv, gv, gr, diff)]

    for step in tqdm(range(start, tc.iterations), disable=not di.is_main, desc="gan"):
        model.train()
        critic.train()
        for _ in range(tc.n_critic):
            iu, iv, gv, gr, diff = batch()
            with torch.no_grad():
                fake = gm(iu, gv)
            loss_d = cm(fake, iu).mean() - cm(iv, iu).mean() + tc.lambda_gp * gradient_penalty(cm, iv, fake, iu)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        iu, iv, gv, gr, diff = batch()
        lnet = model.landmarks
        zv, zr = lnet.encode(gv), lnet.encode(gr)
        fake = model.generator(iu, zv)
        l_contr = contrastive_loss(zv, zr, diff, tc.margin)
        l_adv = -cm(fake, iu).mean()
        l_img, l_lm = F.l1_loss(fake, iv), F.mse_loss(lnet.decode(zv), gv)
        loss_g = l1 * l_contr + l2 * l_adv + l3 * (l_img + l_lm)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if di.enabled:  # G's parameters are used outside the DDP wrapper's forward: average gradients by hand
            for p in g_params:
                if p.grad is not None:
                    dist.all_reduce_sum(p.grad)
                    p.grad /= di.world_size
        opt_g.step()
        if di.is_main and (step % 50 == 0 or step == tc.iterations - 1):
            stats.write(
                step=step,
                loss_d=float(loss_d),
                loss_g=float(loss_g),
                contr=float(l_contr),
                adv=float(l_adv),
                l1=float(l_img),
                lm=float(l_lm),
                seconds=round(time.time() - t0, 1),
            )
        if di.is_main and (step % tc.sample_every == 0 or step == tc.iterations - 1):
            import cv2

            grid = torch.cat([iu[:8], fake[:8].detach(), iv[:8]], 0)
            grid = ((grid[:, 0].cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
            rows = [np.hstack(list(grid[i * 8 : (i + 1) * 8])) for i in range(3)]
            cv2.imwrite(os.path.join(run_dir, "samples", f"{step:06d}.png"), np.vstack(rows))
            save_checkpoint(
                os.path.join(run_dir, "checkpoints", "last.pt"),
                step=step,
                model=model.state_dict(),
                critic=critic.state_dict(),
                opt_g=opt_g.state_dict(),
                opt_d=opt_d.state_dict(),
                config=cfg,
                version=1,
            )
    if di.is_main:
        log.info("done in %.0f s: %s", time.time() - t0, run_dir)
        if tc.export_to:
            card = ModelCard(
                architecture="ExpressionGAN",
                config=dataclasses.asdict(mc),
                classes=[],
                input={
                    "size": mc.size,
                    "channels": 1,
                    "range": [-1, 1],
                    "landmarks": "68 iBUG points in the 64x64 crop frame, normalized to [-1, 1]",
                },
                data="CK+ (../shared/data/ckplus_pairs), subjects of 9 of 10 folds: non-commercial "
                "research terms; these weights inherit them.",
                metrics={},
                reproduce="python -m training.train_gan "
                + " ".join(
                    f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, tuple) else v}"
                    for k, v in (
                        ("iterations", tc.iterations),
                        ("lambdas", tc.lambdas),
                        ("fold", tc.fold),
                        ("seed", tc.seed),
                    )
                ),
            )
            save_model(model.half(), card, tc.export_to)
            model.float()
        print(run_dir)
    dist.cleanup()


if __name__ == "__main__":
    main()
