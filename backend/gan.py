"""The landmark-guided expression GAN (Qiao et al. 2018), as the paper specifies it.

- ``LandmarkNet`` (L): 5 fully connected layers with BN + ReLU; the encoder L_enc maps 68 (x, y) landmarks
  (normalized to [-1, 1]) to z_g, the decoder L_dec reconstructs them. Trained with a contrastive loss on
  pairs of landmark vectors (alpha = 0 for the same expression, 1 otherwise, margin m = 5).
- ``Generator`` (G): U-Net-like with BN + ReLU. G_enc(image) = z_i, concatenated with z_g (tiled over the
  bottleneck), decoded by G_dec; one extra skip from the first conv's output to the penultimate deconv's
  output (``full_unet=True`` adds the usual mirror skips as well: our variant).
- ``Critic`` (D): layer normalization + LeakyReLU, a 2x2 output map; trained as WGAN-GP (lambda_gp = 10).

Images are 64x64 grayscale in [-1, 1]; landmarks are in the same 64x64 frame, normalized to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class GanConfig:
    size: int = 64  # image side
    z_landmarks: int = 64  # dimension of z_g
    width: int = 48  # channels of the first conv; doubles per level
    full_unet: bool = False  # add the mirror skips of a full U-Net (our variant); False: the paper's single skip


class LandmarkNet(nn.Module):
    def __init__(self, cfg: GanConfig | None = None):
        super().__init__()
        cfg = cfg or GanConfig()
        z = cfg.z_landmarks

        def fc(i, o):
            return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU(True)]

        self.enc = nn.Sequential(*fc(136, 256), *fc(256, 128), nn.Linear(128, z))  # 3 layers
        self.dec = nn.Sequential(*fc(z, 256), nn.Linear(256, 136), nn.Tanh())  # 2 layers: 5 in all

    def encode(self, lm: torch.Tensor) -> torch.Tensor:
        return self.enc(lm.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z).view(-1, 68, 2)


def _down(i, o, bn=True):
    layers = [nn.Conv2d(i, o, 4, 2, 1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(o))
    return nn.Sequential(*layers, nn.ReLU(True))


def _up(i, o):
    return nn.Sequential(nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))


class Generator(nn.Module):
    def __init__(self, cfg: GanConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or GanConfig()
        w, z = cfg.width, cfg.z_landmarks
        self.e1, self.e2, self.e3, self.e4 = (
            _down(1, w, bn=False),
            _down(w, 2 * w),
            _down(2 * w, 4 * w),
            _down(4 * w, 8 * w),
        )
        k = 2 if cfg.full_unet else 1
        self.d4 = _up(8 * w + z, 4 * w)  # 4 -> 8
        self.d3 = _up(4 * w * k, 2 * w)  # 8 -> 16
        self.d2 = _up(2 * w * k, w)  # 16 -> 32: the penultimate deconv
        self.d1 = nn.Sequential(nn.ConvTranspose2d(2 * w, 1, 4, 2, 1), nn.Tanh())  # 32 -> 64, input has the e1 skip

    def forward(self, img: torch.Tensor, z_g: torch.Tensor) -> torch.Tensor:
        h1 = self.e1(img)
        h2 = self.e2(h1)
        h3 = self.e3(h2)
        z_i = self.e4(h3)
        zg = z_g[:, :, None, None].expand(-1, -1, z_i.shape[2], z_i.shape[3])
        u = self.d4(torch.cat([z_i, zg], 1))
        u = self.d3(torch.cat([u, h3], 1) if self.cfg.full_unet else u)
        u = self.d2(torch.cat([u, h2], 1) if self.cfg.full_unet else u)
        return self.d1(torch.cat([u, h1], 1))  # the extra skip: first conv -> penultimate deconv's output


class Critic(nn.Module):
    """WGAN-GP critic: conv + LayerNorm + LeakyReLU, 64 -> 2x2 score map."""

    def __init__(self, cfg: GanConfig | None = None):
        super().__init__()
        cfg = cfg or GanConfig()
        w = cfg.width
        layers, c, s = [], 2, cfg.size  # input: the image and the (source) image it was made from
        for o in (w, 2 * w, 4 * w, 8 * w):
            s //= 2
            layers += [nn.Conv2d(c, o, 4, 2, 1), nn.LayerNorm([o, s, s]), nn.LeakyReLU(0.2, True)]
            c = o
        layers += [nn.Conv2d(c, 1, 3, 2, 1)]  # 4x4 -> 2x2
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([img, cond], 1))


def contrastive_loss(z_a: torch.Tensor, z_b: torch.Tensor, different: torch.Tensor, margin: float = 5.0):
    """(1 - alpha) d^2 / 2 + alpha max(0, m - d)^2 / 2, alpha = 1 for pairs of different expressions."""
    d = (z_a - z_b).norm(dim=1)
    return ((1 - different) * d.pow(2) / 2 + different * (margin - d).clamp(min=0).pow(2) / 2).mean()


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = critic(x, cond)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


class ExpressionGAN(nn.Module):
    """L and G together, as shipped (the critic is only needed for training)."""

    def __init__(self, cfg: GanConfig | None = None):
        super().__init__()
        self.cfg = cfg or GanConfig()
        self.landmarks = LandmarkNet(self.cfg)
        self.generator = Generator(self.cfg)

    def forward(self, img: torch.Tensor, lm: torch.Tensor) -> torch.Tensor:
        return self.generator(img, self.landmarks.encode(lm))
