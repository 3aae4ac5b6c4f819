"""Losses for training in the stretched space.

Pixel losses (L1 / L2) are computed in the normalised ``asinh`` space the networks work in.
A network trained on a plain pixel loss loses a few per cent of the total flux (the median
in the stretched space is below the mean in linear space, and faint wings get smoothed
away), so `flux_loss` compares the *linear* flux, ``k * sigma * sinh(y)``, of prediction and
target, both patch-summed and after a low-pass (block average), relative to the target's
flux. Adversarial losses work on critic logits.
"""

import torch
import torch.nn.functional as F

__all__ = ["pixel_loss", "flux_loss", "adversarial_loss", "critic_loss", "to_linear"]

#: |y| is clipped to this before sinh, to keep the linear values finite in float32.
_Y_MAX = 30.0


def to_linear(y):
    """Stretched values back to linear flux in units of ``k * sigma`` (``sinh(y)``).

    Parameters
    ----------
    y : torch.Tensor
        Stretched values.

    Returns
    -------
    torch.Tensor
    """
    return torch.sinh(torch.clamp(y, -_Y_MAX, _Y_MAX))


def pixel_loss(pred, target, *, kind="l1", mask=None):
    """L1, L2 or smooth-L1 loss in the stretched space.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (B, C, H, W)
        Prediction and target (same stretch).
    kind : {"l1", "l2", "huber"}, optional
        Loss kind.
    mask : torch.Tensor of bool, optional
        Pixels to use (default all).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    d = pred - target
    if kind == "l1":
        e = d.abs()
    elif kind == "l2":
        e = d * d
    elif kind == "huber":
        e = F.smooth_l1_loss(pred, target, reduction="none", beta=0.1)
    else:
        raise ValueError(f"unknown pixel loss {kind!r}; use 'l1', 'l2' or 'huber'")
    if mask is not None:
        m = mask.to(e.dtype)
        return (e * m).sum() / m.sum().clamp_min(1.0)
    return e.mean()


def flux_loss(pred, target, *, pool=8, floor=0.05):
    """Relative linear-flux mismatch, over whole patches and over low-pass blocks.

    With ``L = sinh(y)`` (linear flux in units of ``k * sigma``), the loss is::

        |sum(L_pred - L_true)| / (sum|L_true| + floor * npix)                  (patch)
      + sum|pool(L_pred - L_true)| / (sum|pool(L_true)| + floor * nblocks)     (blocks)

    averaged over the batch. ``floor`` keeps empty-sky patches from dominating.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (B, C, H, W)
        Prediction and target in the stretched space.
    pool : int, optional
        Block size of the low-pass term (0 disables it).
    floor : float, optional
        Per-pixel flux floor of the denominator, in units of ``k * sigma``.

    Returns
    -------
    torch.Tensor
        Scalar loss (dimensionless, ~ the relative flux error).
    """
    lp, lt = to_linear(pred), to_linear(target)
    d = lp - lt
    npix = d.shape[-1] * d.shape[-2]
    tot = d.sum(dim=(-2, -1)).abs() / (lt.abs().sum(dim=(-2, -1)) + floor * npix)
    loss = tot.mean()
    if pool and pool > 1 and min(d.shape[-2:]) >= pool:
        dp = F.avg_pool2d(d, pool)
        tp = F.avg_pool2d(lt, pool)
        nb = dp.shape[-1] * dp.shape[-2]
        blk = dp.abs().sum(dim=(-2, -1)) / (tp.abs().sum(dim=(-2, -1)) + floor * nb)
        loss = loss + blk.mean()
    return loss


def adversarial_loss(logits, *, real, kind="bce"):
    """Generator-side adversarial loss: how far the critic is from calling fakes real.

    Parameters
    ----------
    logits : torch.Tensor
        Critic logits for generated samples.
    real : bool
        Target label (True for the generator's loss).
    kind : {"bce", "hinge"}, optional
        Non-saturating BCE or hinge (generator: ``-mean(logits)``).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    if kind == "bce":
        t = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, t)
    if kind == "hinge":
        return -logits.mean() if real else logits.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; use 'bce' or 'hinge'")


def critic_loss(real_logits, fake_logits, *, kind="bce"):
    """Critic loss: real patches labelled 1, generated ones 0.

    Parameters
    ----------
    real_logits, fake_logits : torch.Tensor
        Critic logits for real and generated samples.
    kind : {"bce", "hinge"}, optional
        Loss kind.

    Returns
    -------
    torch.Tensor
        Scalar loss (mean of the real and fake terms).
    """
    if kind == "bce":
        return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits,
                                                           torch.zeros_like(fake_logits)))
    if kind == "hinge":
        return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())
    raise ValueError(f"unknown adversarial loss {kind!r}; use 'bce' or 'hinge'")
