"""The landmark-guided expression GAN's training loop (Qiao et al. 2018) on CK+ same-identity pairs.

Each step: ``n_critic`` WGAN-GP critic steps, then one step of the landmark net L and generator G on
l1 * L_contr + l2 * L_adv + l3 * L_recon (``training.losses``). Batches are random same-subject triplets
(I_u, I_v, g_v) of the training folds, mirrored half of the time, with a random reference g_r for the
contrastive term. Stats every 50 steps; a sample grid and ``checkpoints/last.pt`` every ``sample_every``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from backend.gan import Critic, ExpressionGAN, GanConfig
from backend.models import ModelCard, save_model

from .. import dist
from ..config import RunConfig, field
from ..data import find_dataset, load_dataset
from ..data.ckplus_pairs import flip_landmarks, fold_masks, triplets
from ..losses import critic_loss, generator_loss
from ..runs import StatsLog, load_checkpoint, save_checkpoint, seed_everything, start_run

log = logging.getLogger(__name__)


@dataclass
class GanDataConfig:
    dataset: str = field("ckplus_pairs", "pairs data set by name (training.data.DATASETS)", "--dataset")
    root: str = field("", "where the data set is (empty: its usual place, ../shared/data/ckplus_pairs)")

    def resolve(self) -> GanDataConfig:
        """The data set's usual root filled in; an error for a name that is not a pairs data set."""
        return dataclasses.replace(self, root=self.root or find_dataset(self.dataset, kind="pairs").root)


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
    tag: str = field("gan", "run folder suffix")
    sample_every: int = field(500, "write a sample grid (and checkpoints/last.pt) every n steps")


class TripletBatches:
    """Random training batches (I_u, I_v, g_v, g_r, different) from one seeded generator: same-subject
    triplets of the training folds, half of them mirrored, and random references g_r from training subjects
    (``different``: 1 where g_r's expression label differs from g_v's)."""

    def __init__(self, data: dict, train_mask: np.ndarray, batch_size: int, seed: int, device: torch.device):
        self.pairs = triplets(data, train_mask)
        self.train_idx = torch.from_numpy(np.nonzero(train_mask)[0])  # contrastive references: training subjects
        self.x = torch.from_numpy(data["x"].astype(np.float32) / 127.5 - 1)[:, None]
        self.lm = torch.from_numpy(data["lm"])
        self.lab = torch.from_numpy(data["label"])
        self.batch_size, self.device = batch_size, device
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self) -> list[torch.Tensor]:
        g, n = self.g, self.batch_size
        b = self.pairs[torch.randint(0, len(self.pairs), (n,), generator=g).numpy()]
        u, v = torch.from_numpy(b[:, 0]), torch.from_numpy(b[:, 1])
        r = self.train_idx[torch.randint(0, len(self.train_idx), (n,), generator=g)]  # random references
        iu, iv, gv, gr = self.x[u], self.x[v], self.lm[v], self.lm[r]
        flip = torch.rand(n, generator=g) < 0.5
        iu[flip], iv[flip] = torch.flip(iu[flip], dims=[3]), torch.flip(iv[flip], dims=[3])
        gv[flip] = flip_landmarks(gv[flip])
        diff = (self.lab[v] != self.lab[r]).float()
        return [t.to(self.device) for t in (iu, iv, gv, gr, diff)]


def training_loop(dc: GanDataConfig, mc: GanConfig, tc: GanTrainConfig, rc: RunConfig, cfg: dict) -> str:
    """Train (resuming from ``rc.resume`` if given) and export at the end (``rc.export_to``, fp16). Returns
    the run folder ("" on ranks other than 0)."""
    di, run_dir = start_run(rc, cfg, tc.tag, subdirs=("checkpoints", "samples"))
    data = load_dataset(dc.dataset, root=dc.root)
    train_mask, _ = fold_masks(data, tc.fold)
    seed_everything(rc.seed, di.rank)  # after the data: building crops draws from torch's generator
    model = ExpressionGAN(mc).to(di.device)
    critic = Critic(mc).to(di.device)
    g_params = list(model.parameters())
    opt_g = torch.optim.Adam(g_params, lr=tc.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=tc.lr, betas=(0.5, 0.999))
    start = 0
    if rc.resume:
        ck = load_checkpoint(rc.resume)
        model.load_state_dict(ck["model"])
        critic.load_state_dict(ck["critic"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        start = ck["step"] + 1
    gm, cm = (DDP(model), DDP(critic)) if di.enabled else (model, critic)
    batches = TripletBatches(data, train_mask, tc.batch_size, rc.seed + di.rank, di.device)
    log.info(
        "%d training triplets from %d frames, fold %d held out", len(batches.pairs), int(train_mask.sum()), tc.fold
    )
    stats = StatsLog(run_dir) if di.is_main else None
    t0 = time.time()
    for step in tqdm(range(start, tc.iterations), disable=not di.is_main, desc="gan"):
        model.train()
        critic.train()
        for _ in range(tc.n_critic):
            iu, iv, gv, gr, diff = batches()
            with torch.no_grad():
                fake = gm(iu, gv)
            loss_d = critic_loss(cm, fake, iv, iu, tc.lambda_gp)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        iu, iv, gv, gr, diff = batches()
        g = generator_loss(model, cm, iu, iv, gv, gr, diff, tc.lambdas, tc.margin)
        opt_g.zero_grad(set_to_none=True)
        g.total.backward()
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
                loss_g=float(g.total),
                contr=float(g.contrastive),
                adv=float(g.adversarial),
                l1=float(g.image),
                lm=float(g.landmarks),
                seconds=round(time.time() - t0, 1),
            )
        if di.is_main and (step % tc.sample_every == 0 or step == tc.iterations - 1):
            write_samples(os.path.join(run_dir, "samples", f"{step:06d}.png"), iu, g.fake, iv)
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
        if rc.export_to:
            export(model, mc, tc, rc)
        print(run_dir)
    dist.cleanup()
    return run_dir


def write_samples(path: str, src: torch.Tensor, fake: torch.Tensor, target: torch.Tensor) -> None:
    """A grid of up to 8 sources, their generated frames and the real targets (rows), 8-bit gray."""
    import cv2

    n = min(8, len(src))
    grid = torch.cat([src[:n], fake[:n].detach(), target[:n]], 0)
    grid = ((grid[:, 0].cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    rows = [np.hstack(list(grid[i * n : (i + 1) * n])) for i in range(3)]
    cv2.imwrite(path, np.vstack(rows))


def export(model: ExpressionGAN, mc: GanConfig, tc: GanTrainConfig, rc: RunConfig) -> None:
    """The released GAN: fp16 safetensors and its model card."""
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
                ("seed", rc.seed),
            )
        ),
    )
    save_model(model.half(), card, rc.export_to)
    model.float()
