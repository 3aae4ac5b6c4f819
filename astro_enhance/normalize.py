"""Robust noise estimation and the invertible asinh stretch used around every network.

Networks see ``y = asinh(x / (k * sigma))`` where ``sigma`` is a robust estimate of the
background noise of the image (scaled median absolute deviation of the background pixels) and
``k`` a fixed softening factor. The stretch is exactly inverted by
``x = k * sigma * sinh(y)``, so data keep their physical units and zero point through a model.
Models are trained in exactly this space.
"""

import numpy as np

__all__ = ["estimate_noise", "asinh_stretch", "asinh_unstretch", "fill_nans",
           "DEFAULT_SOFTENING"]

#: Softening factor ``k`` of the stretch, in units of the noise ``sigma``.
DEFAULT_SOFTENING = 3.0


def estimate_noise(data, *, mask=None, n_iter=3, clip=3.0):
    """Robust standard deviation of the background of an image.

    The estimate is ``1.4826 * MAD`` of the finite, unmasked pixels, iteratively
    clipped at ``clip`` sigma around the median so that sources do not inflate it. On a
    smooth image (no pixel-to-pixel noise) the first differences are used instead of the
    pixel values, scaled by ``1 / sqrt(2)``, whichever is smaller.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image.
    mask : ndarray of bool, optional
        True where pixels must be ignored.
    n_iter : int, optional
        Number of clipping iterations.
    clip : float, optional
        Clipping threshold in units of the current sigma.

    Returns
    -------
    sigma : float
        Noise estimate, in the units of ``data``. Always positive and finite.

    Raises
    ------
    ValueError
        If the image has no finite pixel.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> round(estimate_noise(rng.normal(0, 2.0, (256, 256))), 1)
    2.0
    """
    arr = np.asarray(data, dtype=np.float64)
    good = np.isfinite(arr)
    if mask is not None:
        good &= ~np.asarray(mask, dtype=bool)
    vals = arr[good]
    if vals.size == 0:
        raise ValueError("cannot estimate noise: the image has no finite, unmasked pixel")
    sigma = _clipped_mad(vals, n_iter, clip)
    # Pixel-difference estimate: insensitive to smooth structure.
    if arr.ndim == 2 and arr.shape[1] > 1:
        d = arr[:, 1:] - arr[:, :-1]
        gd = good[:, 1:] & good[:, :-1]
        dv = d[gd]
        if dv.size > 10:
            sd = _clipped_mad(dv, n_iter, clip) / np.sqrt(2.0)
            if sd > 0 and (sigma <= 0 or sd < sigma):
                sigma = sd
    if not np.isfinite(sigma) or sigma <= 0:
        scale = np.nanmax(np.abs(vals)) if vals.size else 0.0
        sigma = 1e-3 * scale if scale > 0 else 1.0
    return float(sigma)


def _clipped_mad(vals, n_iter, clip):
    sel = vals
    sigma = 0.0
    for _ in range(max(1, n_iter)):
        med = np.median(sel)
        sigma = 1.4826 * np.median(np.abs(sel - med))
        if sigma <= 0:
            break
        new = vals[np.abs(vals - med) < clip * sigma]
        if new.size == sel.size or new.size < 10:
            break
        sel = new
    return float(sigma)


def asinh_stretch(data, sigma, *, softening=DEFAULT_SOFTENING):
    """Forward stretch ``y = asinh(x / (softening * sigma))``.

    Parameters
    ----------
    data : ndarray
        Image in physical units.
    sigma : float
        Noise scale of the image (see `estimate_noise`).
    softening : float, optional
        Softening factor ``k``.

    Returns
    -------
    ndarray, float32
        Stretched image.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.0, 1.0, 100.0])
    >>> np.allclose(asinh_unstretch(asinh_stretch(x, 0.5), 0.5), x, rtol=1e-5)
    True
    """
    scale = float(softening) * float(sigma)
    return np.arcsinh(np.asarray(data, dtype=np.float32) / np.float32(scale)).astype(np.float32)


def asinh_unstretch(data, sigma, *, softening=DEFAULT_SOFTENING):
    """Inverse stretch ``x = softening * sigma * sinh(y)``.

    Parameters
    ----------
    data : ndarray
        Stretched image.
    sigma : float
        Noise scale used in the forward stretch.
    softening : float, optional
        Softening factor ``k`` used in the forward stretch.

    Returns
    -------
    ndarray, float32
        Image in physical units.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.normalize import asinh_stretch, asinh_unstretch
    >>> x = np.array([-1.0, 0.0, 5.0, 300.0], dtype=np.float32)
    >>> np.allclose(asinh_unstretch(asinh_stretch(x, 0.5), 0.5), x, rtol=1e-5)
    True
    """
    scale = float(softening) * float(sigma)
    y = np.asarray(data, dtype=np.float32)
    return (np.float32(scale) * np.sinh(y)).astype(np.float32)


def fill_nans(data, *, value=0.0):
    """Return a copy with non-finite pixels replaced, and the mask of those pixels.

    Parameters
    ----------
    data : ndarray
        Image.
    value : float, optional
        Fill value (in the image's units; 0 is the sky level of sky-subtracted data).

    Returns
    -------
    filled : ndarray, float32
        Copy of ``data`` with non-finite pixels set to ``value``.
    bad : ndarray of bool
        True where ``data`` was not finite.

    Examples
    --------
    >>> import numpy as np
    >>> filled, bad = fill_nans(np.array([1.0, np.nan]))
    >>> filled.tolist(), bad.tolist()
    ([1.0, 0.0], [False, True])
    """
    arr = np.array(data, dtype=np.float32, copy=True)
    bad = ~np.isfinite(arr)
    arr[bad] = value
    return arr, bad
