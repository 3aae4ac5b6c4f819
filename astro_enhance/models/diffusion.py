"""SR3-style conditional diffusion: a noise-level conditioned U-Net denoiser and its sampler.

Design (see ``docs/diffusion.rst``):

* **What is diffused.** Not the image but the residual of the shipped U-Net,
  ``x0 = (target - unet(input)) / residual_scale`` in the asinh-stretched space (as SRDiff
  does). The frozen U-Net is part of the network (`SR3Denoiser.cond_net`), so a weights file
  holds everything. A sample is ``unet(input) + residual_scale * x0_sample``: the mean of
  many samples starts at the U-Net's quality, and the spread of the samples is what the
  diffusion adds. The target is the *noiseless* truth: samples are draws of the noiseless
  sky given the input, and their standard deviation is the uncertainty of the recovered sky.
* **Noise level.** Continuous: ``z = sqrt(gamma) x0 + sqrt(1 - gamma) eps`` with ``gamma`` the
  signal fraction (SR3's ``gamma``, DDPM's cumulative ``alpha_bar``). The schedule is the DDPM
  linear-beta schedule written as a continuous function of ``s`` in [0, 1], `gamma_at`:
  ``gamma(s) = exp(-T (beta_start s + (beta_end - beta_start) s**2 / 2))``. Training draws
  ``gamma`` piecewise uniformly as SR3 does (`sample_gamma`: a step ``t`` uniform in
  ``1..T``, then ``gamma`` uniform between ``gamma((t-1)/T)`` and ``gamma(t/T)``); the network
  sees ``gamma`` through a sinusoidal embedding of its log signal-to-noise ratio
  (`noise_embedding`), never a step index, so it can sample with any number of steps.
* **Parametrisation: v-prediction.** The network predicts ``v = sqrt(gamma) eps -
  sqrt(1 - gamma) x0`` (Salimans & Ho 2022); ``x0 = sqrt(gamma) z - sqrt(1 - gamma) v``.
  Unlike epsilon-prediction, the implied ``x0`` stays bounded at the noisiest levels without
  clipping, which matters here: a residual has no natural range to clip to, and few-step
  sampling starts from those levels. The loss is the mean squared error on ``v``.
* **Sampling.** DDPM ancestral sampling on a respaced schedule (`sampling_gammas`):
  ``steps`` levels ``gamma(k / steps)``, ``k = steps .. 1``, each step drawing from the
  Gaussian posterior ``q(z_{k-1} | z_k, x0_hat)``; the last step returns ``x0_hat``. Any
  positive number of steps works (more than ``T`` too).
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

from .unet import UNet, unet_channels, unet_levels

__all__ = ["SR3Denoiser", "DiffusionSampler", "gamma_at", "sampling_gammas", "sample_gamma",
           "noise_embedding", "check_steps"]


def gamma_at(s, *, T=1000, beta_start=1e-4, beta_end=0.02):
    """Signal fraction ``gamma`` of the continuous linear-beta schedule at ``s`` in [0, 1].

    ``gamma(s) = exp(-T (beta_start s + (beta_end - beta_start) s**2 / 2))``: the product
    of ``1 - beta_t`` of DDPM's linear schedule, in the continuum limit. ``s = 0`` is the
    clean image (``gamma = 1``), ``s = 1`` almost pure noise.

    Parameters
    ----------
    s : float or torch.Tensor
        Position in the schedule.
    T, beta_start, beta_end : optional
        Schedule parameters (DDPM's: 1000 steps, betas from 1e-4 to 0.02).

    Returns
    -------
    torch.Tensor
        ``gamma`` (float64 for a float ``s``).

    Examples
    --------
    >>> float(gamma_at(0.0)), round(float(gamma_at(1.0)), 7)
    (1.0, 4.32e-05)
    """
    s = torch.as_tensor(s, dtype=torch.float64)
    return torch.exp(-float(T) * (beta_start * s + 0.5 * (beta_end - beta_start) * s * s))


def check_steps(steps):
    """Validate a number of sampling steps.

    Parameters
    ----------
    steps : int
        Number of denoising steps.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``steps`` is not a positive integer.

    Examples
    --------
    >>> check_steps(50)
    50
    >>> check_steps(0)
    Traceback (most recent call last):
        ...
    ValueError: steps must be a positive integer (any number of sampling steps works, e.g. 50), got 0
    """
    import numbers

    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be a positive integer (any number of sampling steps "
                         f"works, e.g. 50), got {steps!r}")
    return int(steps)


def sampling_gammas(steps, **schedule):
    """Noise levels of a respaced sampling schedule.

    Parameters
    ----------
    steps : int
        Number of denoising steps (any positive integer).
    **schedule
        ``T``, ``beta_start``, ``beta_end`` of `gamma_at`.

    Returns
    -------
    torch.Tensor, float64, shape (steps + 1,)
        ``gamma(k / steps)`` for ``k = 0 .. steps``; element 0 is 1 (clean), the last the
        starting (noisiest) level.

    Raises
    ------
    ValueError
        If ``steps`` is not a positive integer.

    Examples
    --------
    >>> g = sampling_gammas(4)
    >>> g.shape, float(g[0]), bool((g[1:] < g[:-1]).all())
    (torch.Size([5]), 1.0, True)
    """
    steps = check_steps(steps)
    return gamma_at(torch.arange(steps + 1, dtype=torch.float64) / steps, **schedule)


def sample_gamma(n, *, generator=None, T=1000, beta_start=1e-4, beta_end=0.02):
    """Training noise levels, piecewise uniform over the ``T``-step schedule (as SR3).

    A step ``t`` is drawn uniformly in ``1 .. T``, then ``gamma`` uniformly between
    ``gamma((t - 1) / T)`` and ``gamma(t / T)``.

    Parameters
    ----------
    n : int
        Number of levels.
    generator : torch.Generator, optional
        Random source (default torch's global one).
    T, beta_start, beta_end : optional
        Schedule (see `gamma_at`).

    Returns
    -------
    torch.Tensor, float32, shape (n,)

    Examples
    --------
    >>> g = sample_gamma(1000, generator=torch.Generator().manual_seed(0))
    >>> g.shape, bool((g > 0).all() and (g < 1).all())
    (torch.Size([1000]), True)
    """
    t = torch.randint(1, int(T) + 1, (int(n),), generator=generator).double()
    lo = gamma_at(t / T, T=T, beta_start=beta_start, beta_end=beta_end)
    hi = gamma_at((t - 1) / T, T=T, beta_start=beta_start, beta_end=beta_end)
    u = torch.rand(int(n), generator=generator, dtype=torch.float64)
    return (lo + u * (hi - lo)).float()


def noise_embedding(gamma, dim):
    """Sinusoidal embedding of the noise level (of its log signal-to-noise ratio).

    Parameters
    ----------
    gamma : torch.Tensor, shape (B,)
        Signal fractions in (0, 1].
    dim : int
        Embedding size (even).

    Returns
    -------
    torch.Tensor, float32, shape (B, dim)

    Examples
    --------
    >>> noise_embedding(torch.tensor([0.5, 0.01]), 8).shape
    torch.Size([2, 8])
    """
    g = gamma.double().clamp(1e-12, 1 - 1e-7)
    logsnr = (torch.log(g) - torch.log1p(-g)).float()   # about -10 .. +16 over the schedule
    half = int(dim) // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=gamma.device)
                      * (-math.log(1000.0) / max(half - 1, 1)))
    arg = 10.0 * logsnr[:, None] * freqs[None]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class _EmbBlock(nn.Module):
    """Two 3x3 convolutions with a FiLM (scale, shift) from the noise embedding between them."""

    def __init__(self, c_in, c_out, emb_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x, e):
        h = self.act(self.conv1(x))
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = h * (1 + scale) + shift
        h = self.conv2(h)
        return self.act(h + self.skip(x))


class SR3Denoiser(nn.Module):
    """Noise-level conditioned U-Net that denoises the residual of a frozen U-Net.

    The input of the denoiser is the noisy residual ``z`` concatenated with the conditioning
    planes: the stretched input and the frozen U-Net's output ``unet(input)``; the noise
    level enters every block through a FiLM of `noise_embedding`. It predicts ``v``
    (v-parametrisation, see the module notes).

    Parameters
    ----------
    width : int, optional
        Channels of the first level (level ``i`` has ``width * channel_mult[i]``).
    depth : int, optional
        Number of 2x down-samplings.
    channel_mult : sequence of int, optional
        Width multipliers per level (default ``min(2**i, 4)``).
    emb_dim : int, optional
        Size of the sinusoidal embedding (the MLP maps it to ``4 * width``).
    unet : dict or None, optional
        Configuration of the conditioning `~astro_enhance.models.UNet` (frozen; its weights
        are part of this network's state). None: no U-Net, the residual is taken against
        the input itself.
    residual_scale : float, optional
        The diffused variable is ``(target - unet(input)) / residual_scale`` (about unit
        variance; 0.05 for the shipped U-Net's residual on the training scenes).
    T, beta_start, beta_end : optional
        Training schedule (see `gamma_at`).

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = SR3Denoiser(width=8, depth=2, unet={"width": 8, "depth": 2})
    >>> x = torch.randn(2, 1, 16, 16)
    >>> net(torch.randn(2, 1, 16, 16), net.condition(x), torch.tensor([0.3, 0.9])).shape
    torch.Size([2, 1, 16, 16])
    >>> y = net.sample(x, steps=3, generator=torch.Generator().manual_seed(1))
    >>> y.shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(self, *, width=16, depth=3, channel_mult=None, emb_dim=64, unet=None,
                 residual_scale=0.05, T=1000, beta_start=1e-4, beta_end=0.02):
        super().__init__()
        chans = unet_channels(width, depth, channel_mult)
        if not residual_scale > 0:
            raise ValueError(f"residual_scale must be positive, got {residual_scale}")
        self.depth = int(depth)
        self.residual_scale = float(residual_scale)
        self.schedule = dict(T=int(T), beta_start=float(beta_start), beta_end=float(beta_end))
        self.emb_dim = int(emb_dim)
        self.cond_net = None
        if unet is not None:
            self.cond_net = UNet(**dict(unet))
            for p in self.cond_net.parameters():
                p.requires_grad_(False)
        edim = 4 * int(width)
        self.emb = nn.Sequential(nn.Linear(self.emb_dim, edim), nn.SiLU(),
                                 nn.Linear(edim, edim))
        self.stem = nn.Conv2d(3, chans[0], 3, padding=1)
        self.enc, self.down, self.reduce, self.dec = unet_levels(
            chans, lambda c_in, c_out: _EmbBlock(c_in, c_out, edim))
        self.head = nn.Conv2d(chans[0], 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def size_multiple(self):
        """int: input height and width must be multiples of this."""
        m = 2 ** self.depth
        if self.cond_net is not None:
            m = max(m, self.cond_net.size_multiple)
        return m

    def train(self, mode=True):
        """Set training mode; the conditioning U-Net always stays in eval mode (frozen)."""
        super().train(mode)
        if self.cond_net is not None:
            self.cond_net.eval()
        return self

    def base(self, x):
        """The frozen U-Net's output (the input itself without a U-Net), no gradient.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, H, W)
            Stretched input.

        Returns
        -------
        torch.Tensor, shape (B, 1, H, W)
        """
        if self.cond_net is None:
            return x
        with torch.no_grad():
            return self.cond_net(x)

    def condition(self, x, base=None):
        """Conditioning planes ``(input, unet(input))``, shape (B, 2, H, W).

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, H, W)
            Stretched input.
        base : torch.Tensor, optional
            Precomputed `base` of ``x``.

        Returns
        -------
        torch.Tensor, shape (B, 2, H, W)
        """
        return torch.cat([x, self.base(x) if base is None else base], dim=1)

    def forward(self, z, cond, gamma):
        """Predict ``v`` for the noisy residual ``z`` at noise level ``gamma``.

        Parameters
        ----------
        z : torch.Tensor, shape (B, 1, H, W)
            Noisy (scaled) residual.
        cond : torch.Tensor, shape (B, 2, H, W)
            `condition` planes.
        gamma : torch.Tensor, shape (B,)
            Signal fractions.

        Returns
        -------
        torch.Tensor, shape (B, 1, H, W)
        """
        m = self.size_multiple
        if z.shape[-1] % m or z.shape[-2] % m:
            raise ValueError(f"input height and width must be multiples of {m}, "
                             f"got {tuple(z.shape[-2:])}; pad the input (reflection)")
        e = self.emb(noise_embedding(gamma.to(z.device), self.emb_dim).to(z.dtype))
        h = self.stem(torch.cat([z, cond.to(z.dtype)], dim=1))
        skips = []
        for i, block in enumerate(self.enc):
            h = block(h, e)
            if i < self.depth:
                skips.append(h)
                h = self.down[i](h)
        for red, block in zip(self.reduce, self.dec):
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([red(h), skip], dim=1), e)
        return self.head(h)

    def loss(self, x, target, *, base=None, generator=None):
        """Training loss: mean squared error of the ``v`` prediction.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, H, W)
            Stretched input.
        target : torch.Tensor, shape (B, 1, H, W)
            Stretched target (the noiseless truth).
        base : torch.Tensor, optional
            Precomputed ``unet(x)`` (see `base`).
        generator : torch.Generator, optional
            Random source for ``gamma`` and the noise (default torch's global one).

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        base = self.base(x) if base is None else base
        x0 = (target - base) / self.residual_scale
        gamma = sample_gamma(x.shape[0], generator=generator, **self.schedule).to(x.device)
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x.device)
        g = gamma[:, None, None, None]
        z = g.sqrt() * x0 + (1 - g).sqrt() * eps
        v = g.sqrt() * eps - (1 - g).sqrt() * x0
        pred = self(z, self.condition(x, base), gamma)
        return F.mse_loss(pred, v)

    def sample(self, x, *, steps=50, generator=None, base=None):
        """Draw one sample of the target given the stretched input (DDPM ancestral).

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, H, W)
            Stretched input.
        steps : int, optional
            Number of denoising steps (any positive integer; see `sampling_gammas`).
        generator : torch.Generator, optional
            Random source (on the CPU); the same generator state gives the same sample.
        base : torch.Tensor, optional
            Precomputed ``unet(x)``.

        Returns
        -------
        torch.Tensor, shape (B, 1, H, W)
            ``unet(x) + residual_scale * x0``, in the stretched space.

        Raises
        ------
        ValueError
            If ``steps`` is not a positive integer.
        """
        gam = sampling_gammas(steps, **self.schedule)
        base = self.base(x) if base is None else base
        cond = self.condition(x, base)
        dt = base.dtype
        z = torch.randn(base.shape, generator=generator, dtype=torch.float32).to(base.device, dt)
        n = base.shape[0]
        x0 = z
        for k in range(len(gam) - 1, 0, -1):
            g, gp = float(gam[k]), float(gam[k - 1])
            v = self(z, cond, torch.full((n,), g, device=base.device))
            x0 = math.sqrt(g) * z - math.sqrt(1 - g) * v
            if k == 1:
                break
            alpha = g / gp
            beta = 1.0 - alpha
            c0 = math.sqrt(gp) * beta / (1 - g)
            ct = math.sqrt(alpha) * (1 - gp) / (1 - g)
            var = beta * (1 - gp) / (1 - g)
            noise = torch.randn(base.shape, generator=generator,
                                dtype=torch.float32).to(base.device, dt)
            z = c0 * x0 + ct * z + math.sqrt(var) * noise
        return base + self.residual_scale * x0


class DiffusionSampler(nn.Module):
    """A `SR3Denoiser` seen as an ordinary ``model(x) -> y`` network (one sample per call).

    Used where code expects an image-to-image network (quick validation, sample images).

    Parameters
    ----------
    model : SR3Denoiser
        The denoiser.
    steps : int, optional
        Sampling steps.
    seed : int or None, optional
        Each call restarts a generator from this seed (reproducible figures); None uses
        torch's global generator.

    Examples
    --------
    >>> net = SR3Denoiser(width=8, depth=2, unet={"width": 8, "depth": 2})
    >>> s = DiffusionSampler(net, steps=2, seed=0)
    >>> x = torch.randn(1, 1, 16, 16)
    >>> torch.equal(s(x), s(x)), s.size_multiple
    (True, 4)
    """

    def __init__(self, model, *, steps=10, seed=0):
        super().__init__()
        self.model = model
        self.steps = check_steps(steps)
        self.seed = seed

    @property
    def size_multiple(self):
        """int: the denoiser's size multiple."""
        return self.model.size_multiple

    def forward(self, x):
        """One sample for the batch ``x`` (stretched input), shape (B, 1, H, W)."""
        gen = None if self.seed is None else torch.Generator().manual_seed(int(self.seed))
        return self.model.sample(x, steps=self.steps, generator=gen)
