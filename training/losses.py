"""Training losses (StyleGAN3 keeps ``loss.py`` beside ``training_loop.py``; so do we).

Expression network: label-smoothed cross-entropy. Expression GAN (Qiao et al. 2018): WGAN-GP critic loss, and
the generator's l1 * L_contr + l2 * L_adv + l3 * (L_recon image + L_recon landmarks). The building blocks
(``contrastive_loss``, ``gradient_penalty``) live with the networks in ``backend.gan``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from backend.gan import contrastive_loss, gradient_penalty


def classification_loss(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Label-smoothed cross-entropy, optionally with per-class weights (class-balanced loss)."""
    return F.cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing)


def critic_loss(
    critic: nn.Module, fake: torch.Tensor, real: torch.Tensor, cond: torch.Tensor, lambda_gp: float
) -> torch.Tensor:
    """WGAN-GP: D(fake) - D(real) + lambda_gp * gradient penalty, conditioned on the source image."""
    return (
        critic(fake, cond).mean() - critic(real, cond).mean() + lambda_gp * gradient_penalty(critic, real, fake, cond)
    )


@dataclass
class GeneratorLoss:
    total: torch.Tensor
    fake: torch.Tensor  # the generated batch
    contrastive: torch.Tensor
    adversarial: torch.Tensor
    image: torch.Tensor  # L1 to the real target frame
    landmarks: torch.Tensor  # MSE of the landmark autoencoder's reconstruction


def generator_loss(
    model: nn.Module,
    critic: nn.Module,
    src: torch.Tensor,
    target: torch.Tensor,
    target_lm: torch.Tensor,
    ref_lm: torch.Tensor,
    different: torch.Tensor,
    lambdas: tuple[float, ...],
    margin: float,
) -> GeneratorLoss:
    """The generator's loss for one batch: ``model`` is the ExpressionGAN (landmark net L and generator G),
    ``critic`` the (possibly DDP-wrapped) critic; ``ref_lm`` are random references whose expression differs
    where ``different`` is 1 (the contrastive term)."""
    l1, l2, l3 = lambdas
    lnet = model.landmarks
    zv, zr = lnet.encode(target_lm), lnet.encode(ref_lm)
    fake = model.generator(src, zv)
    l_contr = contrastive_loss(zv, zr, different, margin)
    l_adv = -critic(fake, src).mean()
    l_img, l_lm = F.l1_loss(fake, target), F.mse_loss(lnet.decode(zv), target_lm)
    total = l1 * l_contr + l2 * l_adv + l3 * (l_img + l_lm)
    return GeneratorLoss(total, fake, l_contr, l_adv, l_img, l_lm)
