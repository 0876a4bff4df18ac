"""DeepExpr's transfer step: from the human network to a network shared by humans and stylized characters.

As in the paper: the convolutional layers (trained on human faces) are frozen; the next-to-last layer (fc1,
the retrieval embedding) is re-initialised and trained at a higher learning rate; the last layer (fc2) is
fine-tuned from the human network at a lower one. Because the frozen layers do not change, their pooled
output is computed once per crop (with mirrored copies as augmentation) and only the head is trained.

Our addition (``human_mix``): mix labelled human crops into each batch, so the new embedding stays meaningful
for the human faces that query it. The evaluation compares it with the paper's character-only fine-tuning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.models import ExpressionNet, normalize_crops


@dataclass
class TransferConfig:
    epochs: int = 40  # passes over the character features
    batch_size: int = 128
    lr_new: float = 3e-3  # Adam rate for the re-initialised next-to-last layer (fc1)
    lr_finetune: float = 3e-4  # Adam rate for the fine-tuned last layer (fc2)
    weight_decay: float = 1e-4
    human_mix: float = 1.0  # human crops per character crop in each batch (0: characters only, as the paper)
    seed: int = 0


@torch.inference_mode()
def pooled_features(net: ExpressionNet, crops: np.ndarray, flip: bool = False, batch: int = 512) -> torch.Tensor:
    """Output of the frozen convolutional layers, pooled: (N, C)."""
    net.eval()
    out = []
    for i in range(0, len(crops), batch):
        x = normalize_crops(crops[i : i + batch])
        if flip:
            x = torch.flip(x, dims=[3])
        out.append(net.pool(net.features(x)).flatten(1))
    return torch.cat(out)


def mirrored_features(net: ExpressionNet, crops: np.ndarray) -> torch.Tensor:
    """Pooled features of the crops and of their mirror images (the transfer's augmentation), stacked."""
    return torch.cat([pooled_features(net, crops), pooled_features(net, crops, flip=True)])


def transfer(
    human: ExpressionNet,
    char_x: np.ndarray,
    char_y: np.ndarray,
    cfg: TransferConfig,
    human_x: np.ndarray | None = None,
    human_y: np.ndarray | None = None,
    char_feats: torch.Tensor | None = None,
    human_feats: torch.Tensor | None = None,
) -> ExpressionNet:
    """The transferred network. ``char_feats`` / ``human_feats`` (from ``mirrored_features``) may be given to
    skip recomputing the frozen layers' output when many transfers share the same crops."""
    torch.manual_seed(cfg.seed)
    net = copy.deepcopy(human).eval()
    for p in net.features.parameters():
        p.requires_grad_(False)
    lin1 = net.fc1[2]
    nn.init.kaiming_uniform_(lin1.weight, nonlinearity="relu")  # the new next-to-last layer
    nn.init.zeros_(lin1.bias)
    fc = char_feats if char_feats is not None else mirrored_features(net, char_x)
    fy = torch.from_numpy(np.concatenate([char_y, char_y]))
    hx = hy = None
    if cfg.human_mix > 0 and (human_x is not None or human_feats is not None):
        hx = human_feats if human_feats is not None else mirrored_features(net, human_x)
        hy = torch.from_numpy(np.concatenate([human_y, human_y]))
    opt = torch.optim.Adam(
        [{"params": net.fc1.parameters(), "lr": cfg.lr_new}, {"params": net.fc2.parameters(), "lr": cfg.lr_finetune}],
        weight_decay=cfg.weight_decay,
    )
    g = torch.Generator().manual_seed(cfg.seed)
    head = nn.Sequential(net.fc1, net.fc2)
    for _ in range(cfg.epochs):
        head.train()
        perm = torch.randperm(len(fc), generator=g)
        for i in range(0, len(perm), cfg.batch_size):
            b = perm[i : i + cfg.batch_size]
            loss = F.cross_entropy(head(fc[b]), fy[b])
            if hx is not None:
                k = max(1, int(len(b) * cfg.human_mix))
                hb = torch.randint(0, len(hx), (k,), generator=g)
                loss = loss + F.cross_entropy(head(hx[hb]), hy[hb]) * cfg.human_mix
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(True)
    return net


@torch.inference_mode()
def embed_and_classify(net: ExpressionNet, crops: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, probabilities) for uint8 crops."""
    net.eval()
    embs, probs = [], []
    for i in range(0, len(crops), batch):
        x = normalize_crops(crops[i : i + batch])
        e = net.embed(x)
        embs.append(e.numpy())
        probs.append(F.softmax(net.fc2(e), 1).numpy())
    return np.concatenate(embs), np.concatenate(probs)
