"""DECaLS-depth texture: the noise realisation that makes a restored image look like DECaLS.

A DECaLS image is the sky plus DECaLS noise. The generative enhancers (``gan``, ``srgan``)
return a *sample* of such an image: their network's restored sky plus a noise realisation
drawn from the DECaLS noise model of the band,

    variance = sigma_sky**2 + k * max(sky, 0)

(sky noise of the survey's depth, plus the source Poisson term; both in nanomaggies per
DECaLS pixel). The texture therefore follows the target survey's depth, not the input's
noise: a noisier SDSS input gives a less certain sky but the same DECaLS-like grain. The
restored sky's own error is small next to DECaLS noise (the ``unet`` scores 42.6 dB against
the truth, DECaLS noise about 26 dB), so such a sample errs by about as much as DECaLS does.

The per-band figures are `astro_enhance.surveys.SURVEYS` ``["decals"].noise`` (sky) and
`decals_noise_model` (source term). When the image is not in nanomaggies or its band is
unknown, the sky sigma falls back to ``noise_ratio`` times the measured noise of the input
(the DECaLS-like over resampled-SDSS noise of the simulated training data), and the source
term is left out.
"""

import numpy as np

from ..exceptions import EnhancerError

__all__ = ["decals_noise_model", "add_texture", "TEXTURE_KINDS", "DEFAULT_NOISE_RATIO"]

#: Accepted values of the ``texture`` option.
TEXTURE_KINDS = ("decals",)

#: DECaLS-like noise over the noise of the resampled SDSS input, in the simulated training
#: data (median); the texture's fallback when the image is not in nanomaggies.
DEFAULT_NOISE_RATIO = 0.58


def decals_noise_model(band, *, sigma=None):
    """Sky sigma and source Poisson factor of a DECaLS image in one band.

    Parameters
    ----------
    band : str
        ``g``, ``r``, ``i`` or ``z``.
    sigma : float, optional
        Sky noise per DECaLS pixel (nanomaggies); default the survey table's
        (`astro_enhance.surveys.SURVEYS` ``["decals"].noise``, about 1.7 mag deeper than
        SDSS). A deeper or shallower image keeps the same sky brightness, so the source
        factor scales with ``sigma**2`` (as in `astro_enhance.simulate`).

    Returns
    -------
    sigma : float
        Sky noise per pixel, nanomaggies.
    k : float
        Source Poisson variance per nanomaggy: the variance of a pixel is
        ``sigma**2 + k * flux``.

    Raises
    ------
    astro_enhance.EnhancerError
        If the band is not a DECaLS band or ``sigma`` is not positive.

    Examples
    --------
    >>> s, k = decals_noise_model("r")
    >>> round(s, 4), f"{k:.2e}"
    (0.0054, '6.41e-05')
    """
    from ..simulate import DECALS_PIXEL_SCALE, SDSS_PIXEL_SCALE, sdss_poisson_k
    from ..surveys import SURVEYS

    dec, sdss = SURVEYS["decals"], SURVEYS["sdss"]
    if band not in dec.noise:
        raise EnhancerError(f"no DECaLS noise model for band {band!r}; the bands are "
                            f"{', '.join(dec.noise)}")
    nominal = float(dec.noise[band])
    sigma = nominal if sigma is None else float(sigma)
    if not sigma > 0:
        raise EnhancerError(f"texture sigma must be positive, got {sigma}")
    # same sky brightness per arcsec^2 as SDSS: k scales like the sky variance per pixel
    k = sdss_poisson_k(band) * (sigma / float(sdss.noise[band])) ** 2 * \
        (SDSS_PIXEL_SCALE / DECALS_PIXEL_SCALE) ** 2
    return sigma, float(k)


def add_texture(res, *, sigma, k, rng, block_rows=256):
    """Add a noise realisation of variance ``sigma**2 + k * max(res, 0)``, in place.

    Parameters
    ----------
    res : ndarray, shape (C, ny, nx), float32
        Restored sky (may be a memory map); NaN pixels stay NaN.
    sigma, k : sequence of float
        Sky sigma and source factor per plane.
    rng : `numpy.random.Generator`
        Random source.
    block_rows : int, optional
        Rows drawn at a time (bounded temporaries).

    Returns
    -------
    res

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((1, 200, 200), np.float32)
    >>> _ = add_texture(img, sigma=[0.5], k=[0.0], rng=np.random.default_rng(0))
    >>> round(float(img.std()), 2)
    0.5
    """
    for c in range(res.shape[0]):
        s, kc = float(sigma[c]), float(k[c])
        plane = res[c]
        for r0 in range(0, plane.shape[0], block_rows):
            blk = plane[r0:r0 + block_rows]
            var = s * s + (kc * np.clip(np.nan_to_num(blk), 0.0, None) if kc > 0 else 0.0)
            blk += (np.sqrt(var) * rng.standard_normal(blk.shape)).astype(np.float32)
    return res
