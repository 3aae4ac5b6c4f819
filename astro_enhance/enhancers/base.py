"""The `Enhancer` interface and the metadata (`EnhancerInfo`) that travels with every enhancer.

An enhancer restores resolution and depth *on a fixed pixel grid*: the image has already been
put on the target survey's grid by `astro_enhance.resample.resample`, and ``enhance`` returns
an array of the same shape, float32, in the same physical units. Non-finite input pixels are
masked, filled for the computation and come back as NaN. The input array is never modified.
"""

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..exceptions import EnhancerError, InputError

__all__ = ["Enhancer", "EnhancerInfo", "KINDS", "estimate_noise_bounded", "NOISE_MAX_PIXELS"]

#: Allowed values of `EnhancerInfo.kind`.
KINDS = ("classical", "neural", "diffusion")


@dataclass
class EnhancerInfo:
    """What an enhancer is and what it was made for.

    Parameters
    ----------
    name : str
        Registry name (e.g. ``"unet"``).
    kind : {"classical", "neural", "diffusion"}
        Family of the method.
    channels_in, channels_out : int, optional
        Number of bands the enhancer reads and writes (``colorize`` reads 1, writes 3).
    survey_pair : tuple of str, optional
        ``(input survey, target survey)`` it was trained or tuned for.
    bands : tuple of str, optional
        Bands it was trained on; empty for methods that work on any band.
    tile_size : int or None, optional
        Suggested tile side in pixels (None: whole image at once).
    overlap : int, optional
        Suggested tile overlap in pixels.
    size_multiple : int, optional
        Tile sides given to the model must be multiples of this.
    weights_sha256 : str or None, optional
        sha256 of the weights file (None for methods without weights).
    description : str, optional
        One line for humans.

    Examples
    --------
    >>> from astro_enhance.enhancers import EnhancerInfo
    >>> info = EnhancerInfo("my-method", "classical", bands=(), tile_size=None)
    >>> info.trained_for
    'sdss->decals any band'
    """

    name: str
    kind: str = "classical"
    channels_in: int = 1
    channels_out: int = 1
    survey_pair: tuple = ("sdss", "decals")
    bands: tuple = ("g", "r", "i")
    tile_size: int = 256
    overlap: int = 32
    size_multiple: int = 1
    weights_sha256: str = None
    description: str = ""
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise EnhancerError("EnhancerInfo.name must be a non-empty string")
        if self.kind not in KINDS:
            raise EnhancerError(f"EnhancerInfo.kind must be one of {KINDS}, not {self.kind!r}")
        self.survey_pair = tuple(self.survey_pair)
        self.bands = tuple(self.bands)
        for attr in ("channels_in", "channels_out", "size_multiple"):
            if int(getattr(self, attr)) < 1:
                raise EnhancerError(f"EnhancerInfo.{attr} must be >= 1")
            setattr(self, attr, int(getattr(self, attr)))
        self.overlap = int(self.overlap or 0)
        if self.tile_size is not None:
            self.tile_size = int(self.tile_size)
            if self.tile_size <= self.overlap:
                raise EnhancerError(f"EnhancerInfo.tile_size ({self.tile_size}) must be larger "
                                    f"than overlap ({self.overlap})")

    @property
    def trained_for(self):
        """Human-readable ``"sdss->decals g,r,i"`` (``"any band"`` when ``bands`` is empty)."""
        pair = "->".join(self.survey_pair) if self.survey_pair else "any"
        return f"{pair} {','.join(self.bands) if self.bands else 'any band'}"

    def to_dict(self):
        """The fields as a JSON-friendly dict (tuples become lists)."""
        d = asdict(self)
        d["survey_pair"] = list(self.survey_pair)
        d["bands"] = list(self.bands)
        if not d["extra"]:
            d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d, **overrides):
        """Build from a dict, ignoring unknown keys (kept in ``extra``).

        Parameters
        ----------
        d : dict
            Field values.
        **overrides
            Values that take precedence over ``d``.

        Returns
        -------
        `EnhancerInfo`
        """
        names = {f.name for f in fields(cls)}
        merged = {**dict(d or {}), **overrides}
        known = {k: v for k, v in merged.items() if k in names}
        unknown = {k: v for k, v in merged.items() if k not in names}
        if unknown:
            known["extra"] = {**known.get("extra", {}), **unknown}
        return cls(**known)


#: Images larger than this (pixels) have their noise estimated on a sample of blocks.
NOISE_MAX_PIXELS = 2 ** 20
#: Side of the blocks sampled for the noise estimate of large images.
NOISE_BLOCK = 256


def estimate_noise_bounded(data, *, mask=None, max_pixels=NOISE_MAX_PIXELS,
                           block=NOISE_BLOCK):
    """`astro_enhance.normalize.estimate_noise` in memory bounded by ``max_pixels``.

    Images of at most ``max_pixels`` pixels are passed on unchanged. Larger ones are sampled
    with ``block`` x ``block`` blocks on a regular grid spread over the whole image (about
    ``max_pixels`` pixels in all), stacked vertically so that pixel differences stay inside
    a block, and the estimator is run on that stack. Its statistical precision (~0.1% for
    2**20 pixels) is far below the differences that matter, and its temporary arrays no
    longer scale with the image (the estimator makes float64 copies).

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image.
    mask : ndarray of bool, optional
        True where pixels must be ignored.
    max_pixels : int, optional
        Largest image estimated in full.
    block : int, optional
        Side of the sampled blocks.

    Returns
    -------
    float
        Noise sigma in the units of ``data``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(0, 2.0, (1500, 1500)).astype(np.float32)
    >>> round(estimate_noise_bounded(img), 2)
    2.0
    """
    from ..normalize import estimate_noise

    ny, nx = data.shape
    if ny * nx <= max_pixels or ny < block or nx < block:
        return estimate_noise(data, mask=mask)
    n_blocks = max(1, max_pixels // (block * block))
    gy = max(1, min(ny // block, int(round(np.sqrt(n_blocks * ny / nx)))))
    gx = max(1, min(nx // block, n_blocks // gy))
    ys = np.linspace(0, ny - block, gy).astype(int)
    xs = np.linspace(0, nx - block, gx).astype(int)
    blocks = [data[y:y + block, x:x + block] for y in ys for x in xs]
    sample = np.concatenate(blocks, axis=0)
    msample = None
    if mask is not None:
        msample = np.concatenate([mask[y:y + block, x:x + block] for y in ys for x in xs],
                                 axis=0)
        if msample.all() or not np.isfinite(sample[~msample]).any():
            return estimate_noise(data, mask=mask)
    return estimate_noise(sample, mask=msample)


class Enhancer(ABC):
    """Base class of all enhancers.

    Subclasses set `info` and implement ``_enhance(filled, *, mask, noise, rng)``, which
    receives a float32 copy ``(C, ny, nx)`` whose non-finite pixels have been replaced by 0
    (``mask`` is True there, ``noise`` is one sigma per channel, or None when the subclass
    sets ``needs_noise = False`` and none was given) and returns a float32
    ``(C_out, ny, nx)`` array. `enhance` takes care of input checks,
    masking and restoring NaN. A subclass may override `enhance` itself if it needs to.

    Attributes
    ----------
    info : `EnhancerInfo`
        Metadata.
    device : str or `torch.device`
        The device the enhancer runs on (``"cpu"`` for classical methods).

    Examples
    --------
    A subclass sets `info` and implements ``_enhance``:

    >>> import numpy as np
    >>> from astro_enhance.enhancers import Enhancer, EnhancerInfo
    >>> class Halve(Enhancer):
    ...     info = EnhancerInfo("halve", "classical", bands=())
    ...     needs_noise = False
    ...     def _enhance(self, filled, *, mask, noise, rng):
    ...         return 0.5 * filled
    >>> data = np.array([[2.0, np.nan], [4.0, 6.0]], dtype=np.float32)
    >>> Halve().enhance(data)
    array([[ 1., nan],
           [ 2.,  3.]], dtype=float32)
    """

    info = None
    device = "cpu"
    #: Whether `_enhance` needs a noise estimate (computed when ``noise`` is not given).
    needs_noise = True
    #: What `set_target` was told about the image (band, whether it is in nanomaggies).
    target = {}

    def set_target(self, *, band=None, unit=None):
        """Tell the enhancer the band and unit of the images it will get.

        Enhancers that add a survey-depth texture (``gan``, ``srgan``) need them to draw
        noise of the right amplitude in physical units; the others ignore them.
        `astro_enhance.pipeline.enhance_fits` calls it for every image.

        Parameters
        ----------
        band : str, optional
            Band of the image (``"r"``...), None if unknown.
        unit : `astropy.units.UnitBase` or str, optional
            Unit of the pixel values; texture amplitudes are physical only for nanomaggies.

        Returns
        -------
        self

        Examples
        --------
        >>> from astro_enhance.enhancers import get_enhancer
        >>> get_enhancer("bicubic").set_target(band="r", unit="nanomaggy").target
        {'band': 'r', 'nanomaggy': True}
        """
        nmgy = False
        if unit is not None:
            import astropy.units as u

            from ..io import parse_unit
            try:
                nmgy = parse_unit(unit) == u.nanomaggy
            except Exception:   # noqa: BLE001 - an unknown unit is simply not nanomaggies
                nmgy = False
        self.target = {"band": None if band is None else str(band), "nanomaggy": bool(nmgy)}
        return self

    def to(self, device):
        """Move the enhancer to a device.

        The default implementation (classical enhancers) computes on the CPU with numpy
        whatever is asked, so ``device`` stays ``"cpu"`` (and provenance says so).

        Parameters
        ----------
        device : str or `torch.device`
            Target device.

        Returns
        -------
        self
        """
        self.device = "cpu"
        return self

    def enhance(self, data, *, noise=None, rng=None):
        """Enhance an image on its own pixel grid.

        Parameters
        ----------
        data : array-like, shape (ny, nx) or (C, ny, nx)
            Image in physical units, already on the target grid. Not modified.
        noise : float or sequence of float, optional
            Per-pixel noise sigma of ``data`` (one per channel); estimated robustly when
            None (`astro_enhance.normalize.estimate_noise`, on a sample of blocks for images
            above `NOISE_MAX_PIXELS`, see `estimate_noise_bounded`).
        rng : `numpy.random.Generator` or int, optional
            Randomness for stochastic enhancers (ignored by deterministic ones).

        Returns
        -------
        ndarray, float32
            ``(ny, nx)`` for single-band output, else ``(C_out, ny, nx)``; NaN where the
            input was not finite.

        Raises
        ------
        InputError
            If the array has the wrong shape or number of bands, or no finite pixel.
        """
        arr, squeeze = self._check_input(data)
        bad = self._bad_pixels(arr)
        # Private float32 copy: nothing downstream can touch the caller's array.
        filled = np.array(arr, dtype=np.float32, copy=True)
        filled[bad] = 0.0
        if self.needs_noise or noise is not None:
            noise = self._noise(filled, bad, noise)
        out = self._enhance(filled, mask=bad, noise=noise, rng=rng)
        del filled
        return self._finish(out, bad, squeeze)

    def enhance_samples(self, data, n, *, noise=None, rng=None):
        """``n`` outputs of a stochastic enhancer for one single-band image.

        The default calls `enhance` ``n`` times with the same generator; enhancers that can
        draw several samples in one pass (``sr3``) override it.

        Parameters
        ----------
        data : array-like, shape (ny, nx)
            Image on the target grid. Not modified.
        n : int
            Number of samples (at least 1).
        noise : float, optional
            Noise sigma of the input.
        rng : `numpy.random.Generator` or int, optional
            Random source.

        Returns
        -------
        ndarray, float32
            Shape ``(n, ny, nx)``, or ``(n, C_out, ny, nx)`` for several-band output.

        Raises
        ------
        EnhancerError
            If ``n`` is not a positive integer.

        Examples
        --------
        >>> import numpy as np
        >>> from astro_enhance.enhancers import get_enhancer
        >>> get_enhancer("bicubic").enhance_samples(np.ones((8, 8)), 3).shape
        (3, 8, 8)
        """
        self._check_sample_count(n)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return np.stack([np.asarray(self.enhance(data, noise=noise, rng=rng), np.float32)
                         for _ in range(int(n))])

    def _check_sample_count(self, n):
        """EnhancerError unless ``n`` is a positive integer (a number of samples)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise EnhancerError(f"{self.info.name}: the number of samples must be a positive "
                                f"integer, got {n!r}")

    def _finish(self, out, bad, squeeze):
        """Check the grid, restore NaN where the input was bad, squeeze single bands."""
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 2:
            out = out[None]
        if out.shape[1:] != bad.shape[1:]:
            raise EnhancerError(f"{self.info.name} returned shape {out.shape[1:]} for an image "
                                f"of shape {bad.shape[1:]}; enhancers must keep the grid")
        if out.shape[0] == bad.shape[0]:
            out[bad] = np.nan
        else:
            out[:, bad.any(axis=0)] = np.nan
        if squeeze and out.shape[0] == 1:
            return out[0]
        return out

    @staticmethod
    def _bad_pixels(arr):
        bad = np.isfinite(arr)
        np.logical_not(bad, out=bad)
        if bad.all():
            raise InputError("the image has no finite pixel to enhance")
        return bad

    @abstractmethod
    def _enhance(self, filled, *, mask, noise, rng):
        """Compute on a filled float32 ``(C, ny, nx)`` copy; return ``(C_out, ny, nx)``."""

    # helpers -------------------------------------------------------------------------------
    def _check_input(self, data):
        """Validate ``data``; return a (C, ny, nx) view of it (no copy) and a squeeze flag."""
        arr = np.asarray(data)
        if arr.dtype.kind not in "fiu":
            raise InputError(f"expected a real-valued image, got dtype {arr.dtype}")
        if arr.ndim == 2:
            arr, squeeze = arr[None], True
        elif arr.ndim == 3:
            squeeze = False
        else:
            raise InputError(f"expected an image of shape (ny, nx) or (C, ny, nx), got "
                             f"{arr.shape}")
        if min(arr.shape[1:]) < 1:
            raise InputError(f"the image is empty (shape {arr.shape[1:]})")
        cin = getattr(self.info, "channels_in", None)
        if cin and self._fixed_channels() and arr.shape[0] != cin:
            raise InputError(f"{self.info.name} expects {cin} band(s), got {arr.shape[0]}")
        return arr, squeeze

    def _fixed_channels(self):
        """Whether the number of input bands must equal ``info.channels_in``."""
        return True

    @staticmethod
    def _noise(filled, bad, noise):
        """Per-channel noise sigma: given values, or robust estimates."""
        nchan = filled.shape[0]
        if noise is None:
            return np.array([estimate_noise_bounded(filled[c], mask=bad[c])
                             for c in range(nchan)], dtype=np.float64)
        sig = np.atleast_1d(np.asarray(noise, dtype=np.float64))
        if sig.size == 1:
            sig = np.repeat(sig, nchan)
        if sig.size != nchan or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
            raise InputError(f"noise must be a positive finite number (or one per band); "
                             f"got {noise!r}")
        return sig

    def __repr__(self):
        name = getattr(self.info, "name", type(self).__name__)
        return f"<{type(self).__name__} {name!r} on {self.device}>"
