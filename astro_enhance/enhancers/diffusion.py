"""`DiffusionEnhancer`: samples of an SR3-style conditional diffusion model (``sr3``).

The network is an `astro_enhance.models.SR3Denoiser`: a frozen U-Net gives ``unet(input)``
and the denoiser draws the residual ``truth - unet(input)`` by DDPM ancestral sampling over
``steps`` noise levels of a respaced schedule (see `astro_enhance.models.diffusion`). Each call
of ``enhance`` is one sample of the noiseless sky given the input, seeded by ``rng``;
``enhance_fits(..., method="sr3", samples=N, rng=seed)`` averages N samples and writes their
per-pixel standard deviation as the ``STD`` extension, the uncertainty of the recovered sky.

Everything else (noise estimate, asinh stretch, tiling, blending, NaN handling) is
`~astro_enhance.enhancers.TorchEnhancer`'s.

Options (``get_enhancer("sr3", steps=..., ...)``, or ``evaluate`` specifications such as
``'sr3(steps=25)'``):

* ``steps``: any positive number of denoising steps (default from the weights' sidecar);
* ``post_filter``: a bilateral filter on each sample in the stretched space (off by default);
* ``look_noise``: add a DECaLS-like noise realisation to the returned image, for the look of a
  real DECaLS image. The realisation is the same for every call with the same ``look_seed``,
  so it does not enter the ``STD`` of several samples (the mean carries it once).
"""

import numpy as np

from ..exceptions import EnhancerError
from .torch_enhancer import TorchEnhancer

__all__ = ["DiffusionEnhancer", "DEFAULT_STEPS", "POST_FILTER_DEFAULTS"]

#: Sampling steps when neither the caller nor the weights' sidecar give a number.
DEFAULT_STEPS = 25

#: Bilateral post-filter of ``post_filter=True``, applied to each sample in the stretched
#: space: ``sigma_color`` in stretched units (the residual the diffusion adds is of order
#: 0.05 there), ``sigma_space`` and ``diameter`` in pixels.
POST_FILTER_DEFAULTS = {"sigma_color": 0.1, "sigma_space": 1.0, "diameter": 5}


class DiffusionEnhancer(TorchEnhancer):
    """Stochastic enhancer: one diffusion sample per call.

    Parameters
    ----------
    model : `astro_enhance.models.SR3Denoiser`
        The denoiser (with its conditioning U-Net).
    info : `~astro_enhance.enhancers.EnhancerInfo`
        Metadata; ``info.extra["default_steps"]`` and ``info.extra["decals_noise_ratio"]``
        come from the weights' sidecar.
    steps : int, optional
        Number of denoising steps, any positive integer (default
        ``info.extra["default_steps"]``, else `DEFAULT_STEPS`). Time grows linearly with it.
    post_filter : bool or dict, optional
        Bilateral filter (OpenCV, float32) on each sample in the stretched space: True for
        `POST_FILTER_DEFAULTS`, or a dict overriding them. Default False.
    look_noise : bool, optional
        Add Gaussian noise of ``decals_noise_ratio`` times the input's noise sigma to the
        returned image (a DECaLS-like noise realisation; default False).
    look_seed : int, optional
        Seed of that realisation (the same for every call, hence absent from the ``STD``).
    decals_noise_ratio : float, optional
        DECaLS-like noise sigma over the input's (resampled SDSS) noise sigma (default from
        the sidecar, 0.58 in the simulated training data).
    calibrate_std : bool, optional
        Scale the spread of several samples by the sidecar's ``std_calibration`` factor
        (default True; False gives the raw spread). See `std_calibration`.
    **kwargs
        `~astro_enhance.enhancers.TorchEnhancer` options (``device``, ``tile_size``...).

    Raises
    ------
    EnhancerError
        If an option is invalid (e.g. ``steps=0``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astro_enhance.enhancers import EnhancerInfo
    >>> from astro_enhance.models import SR3Denoiser
    >>> _ = torch.manual_seed(0)
    >>> net = SR3Denoiser(width=8, depth=2, unet={"width": 8, "depth": 2}).eval()
    >>> info = EnhancerInfo("sr3-demo", "diffusion", size_multiple=4, tile_size=64)
    >>> enh = DiffusionEnhancer(net, info, steps=5, device="cpu")
    >>> img = np.random.default_rng(0).normal(0, 1, (40, 40)).astype(np.float32)
    >>> a = enh.enhance(img, noise=1.0, rng=np.random.default_rng(1))
    >>> b = enh.enhance(img, noise=1.0, rng=np.random.default_rng(1))
    >>> a.shape, bool(np.array_equal(a, b))
    ((40, 40), True)
    >>> DiffusionEnhancer(net, info, steps=0, device="cpu")
    Traceback (most recent call last):
        ...
    astro_enhance.exceptions.EnhancerError: sr3-demo: steps must be a positive integer (any number of sampling steps works, e.g. 50), got 0
    """

    def __init__(self, model, info, *, steps=None, post_filter=False, look_noise=False,
                 look_seed=0, decals_noise_ratio=None, calibrate_std=True, **kwargs):
        from ..models.diffusion import check_steps

        if not hasattr(model, "sample"):
            raise EnhancerError(f"{info.name}: DiffusionEnhancer needs a diffusion network "
                                f"with a sample() method (an SR3Denoiser), got "
                                f"{type(model).__name__}")
        extra = dict(info.extra or {})
        if steps is None:
            steps = extra.get("default_steps", DEFAULT_STEPS)
        try:
            self.steps = check_steps(steps)
        except ValueError as exc:
            raise EnhancerError(f"{info.name}: {exc}") from None
        if post_filter is True:
            post_filter = dict(POST_FILTER_DEFAULTS)
        elif isinstance(post_filter, dict):
            unknown = set(post_filter) - set(POST_FILTER_DEFAULTS)
            if unknown:
                raise EnhancerError(f"{info.name}: unknown post_filter option(s) "
                                    f"{sorted(unknown)}; use {sorted(POST_FILTER_DEFAULTS)}")
            post_filter = {**POST_FILTER_DEFAULTS, **post_filter}
        elif post_filter not in (False, None):
            raise EnhancerError(f"{info.name}: post_filter must be True, False or a dict of "
                                f"{sorted(POST_FILTER_DEFAULTS)}, got {post_filter!r}")
        self.post_filter = post_filter or None
        self.look_noise = bool(look_noise)
        self.look_seed = int(look_seed)
        ratio = decals_noise_ratio if decals_noise_ratio is not None else \
            extra.get("decals_noise_ratio", 0.58)
        self.decals_noise_ratio = float(ratio)
        #: Factor applied to the spread of several samples (``STD``): fitted on validation
        #: scenes so that |mean - truth| < 2 STD on 95% of the pixels with light (sidecar
        #: ``std_calibration``); 1 with ``calibrate_std=False`` (the raw spread).
        self.std_calibration = float(extra.get("std_calibration", 1.0)) if calibrate_std \
            else 1.0
        if not self.decals_noise_ratio > 0:
            raise EnhancerError(f"{info.name}: decals_noise_ratio must be positive, got {ratio}")
        super().__init__(model, info, **kwargs)

    # ---------------------------------------------------------------------------------------
    def enhance_samples(self, data, n, *, noise=None, rng=None):
        """Draw ``n`` samples in one pass over the image.

        Each tile goes through the frozen U-Net once; the ``n`` residual draws of the tile
        then run as one batch through the denoiser. Sample ``i`` is not the same draw as
        the ``i``-th call of `enhance` with the same generator (the random numbers are
        consumed in another order), but has the same distribution.

        Parameters
        ----------
        data : array-like, shape (ny, nx) or (1, ny, nx)
            Image on the target grid (one band). Not modified.
        n : int
            Number of samples, at least 1.
        noise : float, optional
            Noise sigma of the input (estimated when None).
        rng : `numpy.random.Generator` or int, optional
            Random source.

        Returns
        -------
        ndarray, float32, shape (n, ny, nx)
            The samples, NaN where the input was not finite (before any ``look_noise``:
            that fixed realisation is added by the caller to the mean, once).

        Raises
        ------
        EnhancerError
            If ``n`` is not a positive integer or the input has several bands.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from astro_enhance.enhancers import EnhancerInfo
        >>> from astro_enhance.models import SR3Denoiser
        >>> _ = torch.manual_seed(0)
        >>> net = SR3Denoiser(width=8, depth=2, unet={"width": 8, "depth": 2}).eval()
        >>> enh = DiffusionEnhancer(net, EnhancerInfo("sr3-demo", "diffusion",
        ...                         size_multiple=4, tile_size=64), steps=3, device="cpu")
        >>> img = np.random.default_rng(0).normal(0, 1, (40, 40)).astype(np.float32)
        >>> enh.enhance_samples(img, 4, noise=1.0, rng=0).shape
        (4, 40, 40)
        """
        self._check_sample_count(n)
        arr = np.asarray(data)
        if arr.ndim == 3 and arr.shape[0] != 1 or arr.ndim not in (2, 3):
            raise EnhancerError(f"{self.info.name}: enhance_samples takes one band, got shape "
                                f"{arr.shape}")
        look, self.look_noise = self.look_noise, False
        self._n_draw = int(n)
        try:
            res = self.enhance(arr if arr.ndim == 2 else arr[0], noise=noise, rng=rng)
        finally:
            self._n_draw, self.look_noise = 1, look
        return res.reshape((int(n),) + res.shape[-2:])

    _n_draw = 1

    def _forward(self, x, *, rng=None):
        import torch

        gen = torch.Generator().manual_seed(int(rng.integers(2 ** 63 - 1)))
        n = self._n_draw
        if n == 1:
            y = self.model.sample(x, steps=self.steps, generator=gen)
        else:
            # the frozen U-Net once per tile, then the n residual draws as one batch
            base = self.model.base(x)
            b, c, h, w = x.shape
            y = self.model.sample(x.repeat_interleave(n, 0), steps=self.steps, generator=gen,
                                  base=base.repeat_interleave(n, 0))
            y = y.reshape(b, n * c, h, w)
        if self.post_filter is not None:
            y = self._bilateral(y)
        return y

    def _bilateral(self, y):
        import cv2
        import torch

        p = self.post_filter
        arr = y.float().cpu().numpy()
        for idx in np.ndindex(arr.shape[:2]):
            arr[idx] = cv2.bilateralFilter(np.ascontiguousarray(arr[idx], dtype=np.float32),
                                           int(p["diameter"]), float(p["sigma_color"]),
                                           float(p["sigma_space"]))
        return torch.from_numpy(arr).to(y.device, y.dtype)

    def _run(self, arr, noise, rng, *, out=None, restore_nan=False):
        # one generator for every tile batch of this call (an int seed would give every
        # batch the same noise)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        res = super()._run(arr, noise, rng, out=out, restore_nan=restore_nan)
        if self.look_noise:
            self._add_look_noise(res, noise)
        return res

    def look_noise_image(self, data, *, noise=None):
        """The fixed DECaLS-like ``look_noise`` realisation for an image (what `enhance` adds
        to every sample when ``look_noise=True``).

        Parameters
        ----------
        data : array-like, shape (ny, nx)
            The input image (its noise sets the amplitude when ``noise`` is None).
        noise : float, optional
            Noise sigma of the input.

        Returns
        -------
        ndarray, float32, shape (ny, nx)
        """
        arr, _ = self._check_input(data)
        noise = self._stream_noise(arr, noise)
        res = np.zeros((1,) + arr.shape[1:], np.float32)
        self._add_look_noise(res, noise)
        return res[0]

    def _add_look_noise(self, res, noise, block_rows=256):
        """Add the fixed DECaLS-like noise realisation, row block by row block."""
        from .texture import add_texture

        sig = [float(s) for s in noise]
        s = [self.decals_noise_ratio * (sig[c] if c < len(sig) else float(np.median(sig)))
             for c in range(res.shape[0])]
        add_texture(res, sigma=s, k=[0.0] * len(s), rng=np.random.default_rng(self.look_seed),
                    block_rows=block_rows)
