"""Losses for training in the stretched space.

Pixel losses (L1 / L2) are computed in the normalised ``asinh`` space the networks work in.
A network trained on a plain pixel loss loses a few per cent of the total flux (the median
in the stretched space is below the mean in linear space, and faint wings get smoothed
away), so `flux_loss` compares the *linear* flux, ``k * sigma * sinh(y)``, of prediction and
target, both patch-summed and after a low-pass (block average), relative to the target's
flux. Adversarial losses work on critic logits.

Structure terms: `ssim_loss` (``1 - SSIM`` in the stretched space, the same SSIM that
`astro_enhance.metrics.ssim` measures, used by the ``autoencoder`` recipe with an MSE pixel
loss) and `gradient_loss` (gradient-difference loss). `feature_loss` is the feature-matching
term of the ``srgan`` recipe: the L1 distance between the conditional critic's intermediate
activations for the generated and the real image, a perceptual loss learnt on this data in
place of the ImageNet VGG features of the published SRGAN (which cannot be downloaded here).
"""

import torch
import torch.nn.functional as F

__all__ = ["pixel_loss", "flux_loss", "adversarial_loss", "critic_loss", "to_linear",
           "ssim_loss", "gradient_loss", "structure_loss", "feature_loss"]

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

    Examples
    --------
    >>> import torch
    >>> round(float(to_linear(torch.tensor(1.0))), 4)
    1.1752
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

    Examples
    --------
    >>> import torch
    >>> a, b = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    >>> float(pixel_loss(a, b)), float(pixel_loss(a, b, kind="l2"))
    (0.5, 0.25)
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

    Examples
    --------
    >>> import torch
    >>> t = torch.asinh(torch.full((1, 1, 16, 16), 2.0))   # flat source, stretched
    >>> float(flux_loss(t, t))
    0.0
    >>> bool(flux_loss(torch.asinh(torch.full_like(t, 1.9)), t) > 0.04)
    True
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

    Examples
    --------
    >>> import torch
    >>> round(float(adversarial_loss(torch.zeros(4), real=True)), 4)   # log 2
    0.6931
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

    Examples
    --------
    >>> import torch
    >>> sure = critic_loss(torch.full((4,), 10.0), torch.full((4,), -10.0))
    >>> fooled = critic_loss(torch.full((4,), -10.0), torch.full((4,), 10.0))
    >>> bool(sure < 0.001 < fooled)
    True
    """
    if kind == "bce":
        return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits,
                                                           torch.zeros_like(fake_logits)))
    if kind == "hinge":
        return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())
    raise ValueError(f"unknown adversarial loss {kind!r}; use 'bce' or 'hinge'")


def ssim_loss(pred, target, *, win_size=7, k1=0.01, k2=0.03, min_range=1.0):
    """``1 - SSIM`` of prediction and target in the stretched space.

    The SSIM is computed as `astro_enhance.metrics.ssim` computes it (which calls
    `skimage.metrics.structural_similarity` with its defaults): uniform ``win_size`` x
    ``win_size`` windows without padding, sample covariances, constants
    ``(k1 L)^2`` and ``(k2 L)^2`` with ``L`` the target's range (max - min), per image and
    channel; the mean SSIM over windows is averaged over the batch. It is differentiable.
    One difference: ``L`` is at least ``min_range``. A training patch of empty sky has a
    noiseless target that is nearly flat, and with its tiny range the SSIM constants vanish,
    the loss becomes ~1 whatever the prediction and its gradient explodes; the floor (1 in
    stretched units is about 3.5 noise sigma) keeps such patches from dominating.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (B, C, H, W)
        Prediction and target (same stretch); ``H`` and ``W`` at least ``win_size``.
    win_size : int, optional
        Odd window side.
    k1, k2 : float, optional
        SSIM constants.
    min_range : float, optional
        Floor of the data range ``L`` (stretched units); 0 gives skimage's SSIM exactly.

    Returns
    -------
    torch.Tensor
        Scalar loss, 0 for identical images, up to 2.

    Raises
    ------
    ValueError
        If the images are smaller than the window.

    Examples
    --------
    >>> import torch
    >>> t = torch.rand(2, 1, 16, 16)
    >>> float(ssim_loss(t, t))
    0.0
    """
    if min(pred.shape[-2:]) < win_size:
        raise ValueError(f"images of {tuple(pred.shape[-2:])} pixels are smaller than the "
                         f"SSIM window ({win_size}); use larger patches or a smaller window")
    dr = (target.amax(dim=(-2, -1), keepdim=True)
          - target.amin(dim=(-2, -1), keepdim=True)).detach().clamp_min(max(min_range, 1e-6))
    c1, c2 = (k1 * dr) ** 2, (k2 * dr) ** 2
    npix = win_size * win_size
    cov_norm = npix / (npix - 1.0)

    def mean(a):
        return F.avg_pool2d(a, win_size, stride=1)

    ux, uy = mean(pred), mean(target)
    vx = cov_norm * (mean(pred * pred) - ux * ux)
    vy = cov_norm * (mean(target * target) - uy * uy)
    vxy = cov_norm * (mean(pred * target) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return 1.0 - s.mean()


def gradient_loss(pred, target):
    """Gradient-difference loss: L1 of the differences of horizontal and vertical gradients.

    ``mean|dx(pred) - dx(target)| + mean|dy(pred) - dy(target)|`` with forward differences;
    it penalises blurred or displaced edges more than a pixel loss does.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (B, C, H, W)
        Prediction and target (same stretch).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> t = torch.rand(1, 1, 8, 8)
    >>> float(gradient_loss(t + 3.0, t)) < 1e-6     # a constant offset: same gradients
    True
    """
    dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def structure_loss(pred, target, *, kind="ssim"):
    """A structure term by name: ``"ssim"`` (`ssim_loss`) or ``"gradient"`` (`gradient_loss`).

    Parameters
    ----------
    pred, target : torch.Tensor, shape (B, C, H, W)
        Prediction and target (same stretch).
    kind : {"ssim", "gradient"}, optional
        Which term.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Raises
    ------
    ValueError
        If ``kind`` is unknown.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> float(structure_loss(x, x, kind="gradient"))
    0.0
    """
    if kind == "ssim":
        return ssim_loss(pred, target)
    if kind == "gradient":
        return gradient_loss(pred, target)
    raise ValueError(f"unknown structure loss {kind!r}; use 'ssim' or 'gradient'")


def feature_loss(fake_features, real_features):
    """Feature matching: mean L1 distance between critic activations, averaged over layers.

    The conditional critic (`astro_enhance.models.PatchCritic.features`) is run on
    ``(input, generated)`` and on ``(input, real)``; each layer's activations are compared
    with a mean absolute difference (so every layer has a comparable weight whatever its
    size), and the layers are averaged. This is the discriminator feature-matching loss of
    pix2pixHD (Wang et al. 2018), used here in place of the VGG perceptual loss of SRGAN.
    The real activations should be computed without gradient.

    Parameters
    ----------
    fake_features, real_features : list of torch.Tensor
        Activations of the same layers, in the same order.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Raises
    ------
    ValueError
        If the lists are empty or of different lengths.

    Examples
    --------
    >>> import torch
    >>> f = [torch.ones(1, 4, 8, 8), torch.ones(1, 8, 4, 4)]
    >>> float(feature_loss(f, [2 * a for a in f]))
    1.0
    """
    if not fake_features or len(fake_features) != len(real_features):
        raise ValueError(f"feature lists must be non-empty and of equal length, got "
                         f"{len(fake_features)} and {len(real_features)}")
    total = 0.0
    for a, b in zip(fake_features, real_features):
        total = total + (a - b.detach()).abs().mean()
    return total / len(fake_features)
