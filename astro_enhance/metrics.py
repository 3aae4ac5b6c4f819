"""Image-quality metrics for enhanced images, each with its exact definition.

All metrics compare images on the same pixel grid (the DECaLS grid for enhanced outputs),
except `consistency_chi2`, which goes back to the SDSS grid. Pixel values are in physical
units (e.g. nanomaggies per pixel); nothing is rescaled to [0, 1] or 8 bit.

``psnr`` and ``ssim`` work in a fixed stretched space::

    y = asinh(x / (3 * sigma))

where ``sigma`` is the per-pixel noise of the DECaLS(-like) image in that band (the same
stretch, with softening ``k = 3``, that the networks see). Their data range is that of the
stretched *truth*, ``max(y_truth) - min(y_truth)``, never a fixed 1 or 255.
"""

import math

import numpy as np

from .exceptions import InputError
from .normalize import DEFAULT_SOFTENING

__all__ = ["stretch", "psnr", "ssim", "flux_error", "half_light_radius", "consistency_chi2",
           "hf_power_ratio", "radial_power_spectrum", "aperture_colours", "colour_error",
           "noise_power_ratio", "anisotropy_score", "two_sample_accuracy", "TEXTURE_BANDS"]

#: Frequency bands (cycles per pixel) of `noise_power_ratio` and `anisotropy_score`; the last
#: one reaches the corners of the frequency plane (0.71), where checkerboards live.
TEXTURE_BANDS = ((0.15, 0.25), (0.25, 0.35), (0.35, 0.75))


def _pair(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"images must be 2-D and of the same shape, got {a.shape} and "
                         f"{b.shape}; resample them onto the same grid first")
    return a, b


def stretch(data, sigma, *, softening=DEFAULT_SOFTENING):
    """The metric space: ``asinh(data / (softening * sigma))`` in float64.

    Parameters
    ----------
    data : ndarray
        Image in physical units.
    sigma : float
        Per-pixel noise of the DECaLS(-like) image of this band.
    softening : float, optional
        Softening ``k`` (3 by default).

    Returns
    -------
    ndarray, float64

    Examples
    --------
    >>> round(float(stretch(3.0, 1.0)), 4)
    0.8814
    """
    sigma = float(sigma)
    if not sigma > 0:
        raise InputError(f"sigma must be positive, got {sigma}")
    return np.arcsinh(np.asarray(data, dtype=np.float64) / (softening * sigma))


def psnr(output, truth, *, sigma, softening=DEFAULT_SOFTENING):
    """Peak signal-to-noise ratio in the stretched space, dB.

    ``PSNR = 10 log10(R**2 / MSE)`` with ``y = asinh(x / (k sigma))``,
    ``R = max(y_truth) - min(y_truth)`` and ``MSE = mean((y_out - y_truth)**2)`` over pixels
    finite in both images.

    Parameters
    ----------
    output, truth : ndarray, shape (ny, nx)
        Images on the same grid, physical units.
    sigma : float
        Per-pixel noise of the DECaLS(-like) image of the band (fixes the stretch).
    softening : float, optional
        Softening ``k``.

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images.

    Raises
    ------
    astro_enhance.InputError
        Shapes differ, no common finite pixel, or ``sigma`` not positive.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.random.default_rng(0).normal(0, 1, (32, 32))
    >>> psnr(t, t, sigma=1.0)
    inf
    """
    o, t = _pair(output, truth)
    yo, yt = stretch(o, sigma, softening=softening), stretch(t, sigma, softening=softening)
    good = np.isfinite(yo) & np.isfinite(yt)
    if not good.any():
        raise InputError("no pixel is finite in both images")
    rng = float(yt[good].max() - yt[good].min())
    mse = float(np.mean((yo[good] - yt[good]) ** 2))
    if mse == 0:
        return math.inf
    if rng == 0:
        raise InputError("the truth is constant: PSNR is undefined")
    return 10.0 * math.log10(rng ** 2 / mse)


def ssim(output, truth, *, sigma, softening=DEFAULT_SOFTENING, win_size=7):
    """Structural similarity in the stretched space.

    `skimage.metrics.structural_similarity` of ``y_out`` and ``y_truth`` (``y = asinh(x / (k
    sigma))``, Gaussian-free 7x7 windows, skimage's default constants) with
    ``data_range = max(y_truth) - min(y_truth)``. Pixels not finite in either image are set to
    0 (the sky) in both before the comparison.

    Parameters
    ----------
    output, truth : ndarray, shape (ny, nx)
        Images on the same grid, physical units.
    sigma : float
        Per-pixel noise of the DECaLS(-like) image of the band.
    softening : float, optional
        Softening ``k``.
    win_size : int, optional
        Odd window size.

    Returns
    -------
    float
        Mean SSIM, 1 for identical images.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.random.default_rng(0).normal(0, 1, (32, 32))
    >>> ssim(t, t, sigma=1.0)
    1.0
    """
    from skimage.metrics import structural_similarity

    o, t = _pair(output, truth)
    yo, yt = stretch(o, sigma, softening=softening), stretch(t, sigma, softening=softening)
    bad = ~(np.isfinite(yo) & np.isfinite(yt))
    if bad.all():
        raise InputError("no pixel is finite in both images")
    yo[bad] = 0.0
    yt[bad] = 0.0
    rng = float(yt.max() - yt.min())
    if rng == 0:
        raise InputError("the truth is constant: SSIM is undefined")
    return float(structural_similarity(yt, yo, data_range=rng, win_size=win_size))


def _default_center(truth):
    from scipy.ndimage import gaussian_filter
    ny, nx = truth.shape
    sm = gaussian_filter(np.nan_to_num(truth), 2.0)
    y0, y1, x0, x1 = ny // 4, ny - ny // 4, nx // 4, nx - nx // 4
    sub = sm[y0:y1, x0:x1]
    iy, ix = np.unravel_index(np.argmax(sub), sub.shape)
    return float(ix + x0), float(iy + y0)


def half_light_radius(truth, *, center=None, r_max=None):
    """Half-light radius (pixels) of the light around ``center``.

    The growth curve of ``truth`` is built from pixel centres around ``center`` out to
    ``r_max`` (default: the distance from the centre to the nearest image edge); the radius
    enclosing half of the flux within ``r_max`` is returned (linear interpolation).

    Parameters
    ----------
    truth : ndarray, shape (ny, nx)
        Noiseless image.
    center : (float, float), optional
        ``(x, y)`` 0-based pixel centre; default: the peak of the smoothed image in the
        central half of the frame.
    r_max : float, optional
        Outer radius, pixels.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:101, :101]
    >>> g = np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / (2 * 5.0 ** 2))
    >>> abs(half_light_radius(g, center=(50, 50)) - 1.1774 * 5) < 0.15
    True
    """
    t = np.nan_to_num(np.asarray(truth, dtype=np.float64))
    ny, nx = t.shape
    cx, cy = _default_center(t) if center is None else map(float, center)
    if r_max is None:
        r_max = min(cx + 0.5, cy + 0.5, nx - 0.5 - cx, ny - 0.5 - cy)
    yy, xx = np.mgrid[:ny, :nx]
    r = np.hypot(xx - cx, yy - cy).ravel()
    v = t.ravel()
    sel = r <= r_max
    order = np.argsort(r[sel])
    rs, cs = r[sel][order], np.cumsum(v[sel][order])
    total = cs[-1]
    if not total > 0:
        raise InputError("no positive flux around the centre: cannot measure a half-light radius")
    k = int(np.searchsorted(cs, 0.5 * total))
    if k == 0:
        return float(rs[0])
    return float(np.interp(0.5 * total, cs[k - 1:k + 1], rs[k - 1:k + 1]))


def flux_error(output, truth, *, center=None, r50=None):
    """Relative aperture-flux error inside two half-light radii of the truth.

    ``(F_out - F_truth) / F_truth`` where ``F`` is the flux in a circular aperture of radius
    ``2 * r50`` (exact pixel overlap, photutils) centred on the galaxy; ``r50`` is measured on
    the truth with `half_light_radius` around ``center``.

    Parameters
    ----------
    output, truth : ndarray, shape (ny, nx)
        Images on the same grid, physical units (flux per pixel).
    center : (float, float), optional
        ``(x, y)`` galaxy centre, 0-based pixels; default as in `half_light_radius`.
    r50 : float, optional
        Half-light radius in pixels, instead of measuring it.

    Returns
    -------
    float
        Signed relative error (0 for a perfect flux).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> g = np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 18.0)
    >>> round(flux_error(1.1 * g, g, center=(32, 32)), 3)
    0.1
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    o, t = _pair(output, truth)
    t0 = np.nan_to_num(t)
    if center is None:
        center = _default_center(t0)
    if r50 is None:
        r50 = half_light_radius(t0, center=center)
    ap = CircularAperture([tuple(center)], r=max(2.0 * float(r50), 1.0))
    ft = float(aperture_photometry(t0, ap, method="exact")["aperture_sum"][0])
    fo = float(aperture_photometry(np.nan_to_num(o), ap, method="exact")["aperture_sum"][0])
    if ft == 0:
        raise InputError("the truth has no flux in the aperture")
    return (fo - ft) / ft


def aperture_colours(images, bands, *, center=None, r50=None, ref=None):
    """Colours (AB magnitudes) of consecutive bands in a circular aperture of 2 r50.

    For bands ``(b1, b2, b3)`` the colours are ``b1-b2`` and ``b2-b3``, each
    ``-2.5 log10(F_1 / F_2)`` with ``F`` the flux in the aperture (exact pixel overlap,
    photutils). Images in nanomaggies (or any flux unit common to the bands). A band with
    no positive flux in the aperture gives NaN colours.

    Parameters
    ----------
    images : ndarray, shape (C, ny, nx)
        One image per band, same grid.
    bands : sequence of str
        The C band names, in plane order.
    center : (float, float), optional
        ``(x, y)`` aperture centre, 0-based pixels; default the brightest smoothed pixel of
        ``ref`` in the central half (as `flux_error`).
    r50 : float, optional
        Half-light radius in pixels; default measured on ``ref`` with `half_light_radius`.
    ref : ndarray, shape (ny, nx), optional
        Image defining the centre and r50 (e.g. the truth in the middle band); default the
        middle plane of ``images``.

    Returns
    -------
    dict of str -> float
        ``{"g-r": ..., "r-z": ...}`` for bands g, r, z.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> g = np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 18.0)
    >>> c = aperture_colours(np.stack([g, 2 * g, 3 * g]), ("g", "r", "z"))
    >>> {k: round(v, 3) for k, v in c.items()}
    {'g-r': 0.753, 'r-z': 0.44}
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    cube = np.asarray(images, dtype=np.float64)
    bands = [str(b) for b in bands]
    if cube.ndim != 3 or cube.shape[0] != len(bands) or len(bands) < 2:
        raise InputError(f"images must be (C, ny, nx) with one plane per band and C >= 2, "
                         f"got shape {cube.shape} for bands {bands}")
    r = np.nan_to_num(cube[len(bands) // 2] if ref is None else np.asarray(ref, np.float64))
    if center is None:
        center = _default_center(r)
    if r50 is None:
        r50 = half_light_radius(r, center=center)
    ap = CircularAperture([tuple(center)], r=max(2.0 * float(r50), 1.0))
    flux = [float(aperture_photometry(np.nan_to_num(p), ap, method="exact")["aperture_sum"][0])
            for p in cube]
    out = {}
    for k in range(len(bands) - 1):
        f1, f2 = flux[k], flux[k + 1]
        ok = f1 > 0 and f2 > 0
        out[f"{bands[k]}-{bands[k + 1]}"] = -2.5 * math.log10(f1 / f2) if ok else float("nan")
    return out


def colour_error(output, truth, bands, *, center=None):
    """Colour differences output minus truth in the truth's 2 r50 aperture.

    Centre and half-light radius are measured on the truth's middle band (r for g, r, z)
    and the same aperture is used for both cubes (see `aperture_colours`).

    Parameters
    ----------
    output, truth : ndarray, shape (C, ny, nx)
        Band cubes on the same grid, flux units.
    bands : sequence of str
        Band names, in plane order.
    center : (float, float), optional
        Aperture centre; default from the truth.

    Returns
    -------
    dict of str -> float
        Signed errors in magnitudes, e.g. ``{"g-r": 0.03, "r-z": -0.05}``.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> g = np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 18.0)
    >>> t = np.stack([g, 2 * g, 3 * g])
    >>> e = colour_error(t * [[[1.0]], [[1.0]], [[1.1]]], t, ("g", "r", "z"))
    >>> round(e["g-r"], 3), round(e["r-z"], 3)
    (0.0, 0.103)
    """
    t = np.asarray(truth, dtype=np.float64)
    o = np.asarray(output, dtype=np.float64)
    if o.shape != t.shape:
        raise InputError(f"output {o.shape} and truth {t.shape} cubes differ in shape")
    if t.ndim != 3:
        raise InputError(f"colour_error needs (C, ny, nx) band cubes, got shape {t.shape}")
    ref = np.nan_to_num(t[len(t) // 2])
    if center is None:
        center = _default_center(ref)
    r50 = half_light_radius(ref, center=center)   # one aperture for both cubes
    ct = aperture_colours(t, bands, center=center, r50=r50, ref=ref)
    co = aperture_colours(o, bands, center=center, r50=r50, ref=ref)
    return {k: co[k] - ct[k] for k in ct}


def consistency_chi2(enhanced, sdss_input, *, sdss_wcs, enhanced_wcs, psf_sdss_fwhm,
                     psf_out_fwhm, sigma_sdss, mask=None, edge=2):
    """Reduced chi^2 of an enhanced image degraded back to SDSS against the SDSS image.

    The enhanced image (DECaLS grid, PSF FWHM ``psf_out_fwhm``) is convolved with the Gaussian
    kernel of FWHM ``sqrt(psf_sdss_fwhm**2 - psf_out_fwhm**2)`` and resampled onto the SDSS
    grid with `astro_enhance.resample.resample` (flux per pixel scaled by the pixel-area ratio,
    no noise added); then::

        chi2 = mean(((sdss - degraded) / sigma_sdss)**2)

    over pixels finite in both, not in ``mask`` and at least ``edge`` pixels from the border.
    About 1 for an enhanced image consistent with the SDSS data; larger when flux was invented,
    lost or moved.

    Parameters
    ----------
    enhanced : ndarray, shape (ny, nx)
        Enhanced image on ``enhanced_wcs`` (per-pixel flux units, like the SDSS image).
    sdss_input : ndarray, shape (my, mx)
        The native SDSS image.
    sdss_wcs, enhanced_wcs : `~astropy.wcs.WCS`
        Grids of the two images.
    psf_sdss_fwhm, psf_out_fwhm : float
        PSF FWHM (arcsec) of the SDSS image and of the enhanced one.
    sigma_sdss : float or ndarray
        Per-pixel noise of the SDSS image (a scalar, or a map including source noise).
    mask : ndarray of bool, optional
        True at SDSS pixels to ignore (e.g. saturated).
    edge : int, optional
        Border (SDSS pixels) left out.

    Returns
    -------
    float
        Reduced chi^2.

    Examples
    --------
    >>> from astro_enhance.simulate import simulate_pair
    >>> p = simulate_pair(20_000_003, bands="r", stamp_arcsec=24, n_stars=0)
    >>> c = consistency_chi2(p.truth["r"].data, p.sdss["r"].data, sdss_wcs=p.sdss_wcs,
    ...                      enhanced_wcs=p.decals_wcs, psf_sdss_fwhm=p.psf_fwhm_sdss["r"],
    ...                      psf_out_fwhm=p.psf_fwhm_decals["r"],
    ...                      sigma_sdss=p.variance_sdss["r"] ** 0.5)
    >>> 0.8 < c < 1.2
    True
    """
    from .io import Image
    from .resample import resample
    from .simulate import gaussian_psf_match

    import astropy.units as u

    e = np.asarray(enhanced, dtype=np.float64)
    s = np.asarray(sdss_input, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(enhanced_wcs.pixel_scale_matrix))) * 3600.0)
    blurred = gaussian_psf_match(e, float(psf_out_fwhm), float(psf_sdss_fwhm), scale)
    img = Image(data=blurred, wcs=enhanced_wcs, unit=u.nanomaggy)
    deg = resample(img, "sdss", wcs_out=sdss_wcs, shape_out=s.shape, conserve_flux=True,
                   return_type="image").data.astype(np.float64)
    sig = np.broadcast_to(np.asarray(sigma_sdss, dtype=np.float64), s.shape)
    good = np.isfinite(deg) & np.isfinite(s) & np.isfinite(sig) & (sig > 0)
    if mask is not None:
        good &= ~np.asarray(mask, dtype=bool)
    if edge:
        border = np.zeros(s.shape, bool)
        border[:edge], border[-edge:], border[:, :edge], border[:, -edge:] = (True,) * 4
        good &= ~border
    if not good.any():
        raise InputError("no SDSS pixel is covered by the enhanced image: check the WCSs")
    return float(np.mean(((s[good] - deg[good]) / sig[good]) ** 2))


def radial_power_spectrum(data, *, window=True):
    """Azimuthally averaged power spectrum.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image (NaNs are set to 0 after subtracting the finite mean).
    window : bool, optional
        Apply a 2-D Hann window first (reduces edge leakage).

    Returns
    -------
    freq : ndarray
        Bin centres, cycles per pixel (0 to ~0.7).
    power : ndarray
        Mean of ``|FFT|**2`` in each annulus of width 1 / max(ny, nx).

    Examples
    --------
    >>> import numpy as np
    >>> f, p = radial_power_spectrum(np.random.default_rng(0).normal(size=(64, 64)))
    >>> f.shape == p.shape
    True
    """
    a = np.asarray(data, dtype=np.float64)
    good = np.isfinite(a)
    a = np.where(good, a - (a[good].mean() if good.any() else 0.0), 0.0)
    ny, nx = a.shape
    if window:
        a = a * np.outer(np.hanning(ny), np.hanning(nx))
    p = np.abs(np.fft.fftshift(np.fft.fft2(a))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(ny))
    fx = np.fft.fftshift(np.fft.fftfreq(nx))
    fr = np.hypot(*np.meshgrid(fy, fx, indexing="ij"))
    df = 1.0 / max(ny, nx)
    idx = np.floor(fr / df).astype(int).ravel()
    sums = np.bincount(idx, weights=p.ravel())
    counts = np.bincount(idx)
    with np.errstate(invalid="ignore"):
        power = sums / np.maximum(counts, 1)
    freq = (np.arange(len(sums)) + 0.5) * df
    return freq, power


def hf_power_ratio(output, reference, *, cut=0.15):
    """High-frequency power of an image relative to a reference (the DECaLS-like image).

    ``sum(P_out(f) for f > cut) / sum(P_ref(f) for f > cut)`` with ``P`` the azimuthally
    averaged power spectrum (`radial_power_spectrum`, Hann-windowed, mean removed) and ``f``
    in cycles per pixel (Nyquist 0.5). Below 1: smoother than the reference (blurred, or
    less noisy); above 1: more small-scale structure or noise.

    Parameters
    ----------
    output, reference : ndarray, shape (ny, nx)
        Images on the same grid.
    cut : float, optional
        Frequency cut, cycles per pixel (0.15 = scales below ~7 DECaLS pixels, 1.7").

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(64, 64))
    >>> hf_power_ratio(x, x)
    1.0
    """
    o, r = _pair(output, reference)
    f, po = radial_power_spectrum(o)
    _, pr = radial_power_spectrum(r)
    sel = f > float(cut)
    den = float(np.sum(pr[sel]))
    if not den > 0:
        raise InputError("the reference has no power above the cut")
    return float(np.sum(po[sel]) / den)


def noise_power_ratio(output, truth, reference, *, bands=TEXTURE_BANDS):
    """Power of an output's error relative to the noise of a reference image, per band.

    For each frequency band ``(lo, hi)`` (cycles per pixel), the ratio of
    ``sum(P(output - truth))`` to ``sum(P(reference - truth))`` over the annuli of
    `radial_power_spectrum` with ``lo <= f < hi``. With ``reference`` the DECaLS-like image,
    1 in every band means the output errs with the texture and amplitude of DECaLS noise;
    below 1 it is smoother, above 1 noisier (or its structure wrong).

    Parameters
    ----------
    output, truth, reference : ndarray, shape (ny, nx)
        Images on the same grid.
    bands : sequence of (float, float), optional
        Frequency bands, default `TEXTURE_BANDS`.

    Returns
    -------
    ndarray, shape (len(bands),)

    Raises
    ------
    astro_enhance.InputError
        If the shapes differ or the reference's error has no power in a band.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((96, 96))
    >>> ref = rng.normal(0, 1, truth.shape)
    >>> r = noise_power_ratio(rng.normal(0, 2, truth.shape), truth, ref)
    >>> bool(np.all((r > 3) & (r < 5)))   # 4 = (2 / 1) ** 2, up to sampling noise
    True
    """
    o, t = _pair(output, truth)
    r, _ = _pair(reference, truth)
    f, po = radial_power_spectrum(o - t)
    _, pr = radial_power_spectrum(r - t)
    out = []
    for lo, hi in bands:
        sel = (f >= lo) & (f < hi)
        den = float(np.sum(pr[sel]))
        if not den > 0:
            raise InputError(f"the reference's error has no power in the band {lo}-{hi} "
                             "cycles/px")
        out.append(float(np.sum(po[sel])) / den)
    return np.array(out)


def anisotropy_score(data, *, bands=TEXTURE_BANDS, n_sectors=8):
    """How far the small-scale power of an image is from isotropic (hatching, checkerboards).

    The power spectrum ``|FFT|**2`` (mean removed, a Tukey window tapering the outer 10% on
    each side) is split, in each frequency band (cycles per pixel; default `TEXTURE_BANDS`,
    all at 0.15 and above), into ``n_sectors`` sectors of position angle over 180 degrees
    (the spectrum of a real image is symmetric). The score is the largest, over the bands, of
    the highest sector mean over the median sector mean: about 1 for isotropic noise (1.16
    median, 1.23 at most over 20 white-noise images of 160 x 160 pixels; more on smaller
    images), large for stripes, hatching or a checkerboard. Apply it to an error image
    (output minus truth), where the galaxy's own shape does not count.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image (NaNs are set to 0 after removing the finite mean).
    bands : sequence of (float, float), optional
        Frequency bands.
    n_sectors : int, optional
        Sectors of position angle.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(128, 128))
    >>> anisotropy_score(noise) < 1.3
    True
    >>> stripes = noise + 2 * np.cos(2 * np.pi * 0.3 * np.arange(128))[None, :]
    >>> anisotropy_score(stripes) > 3
    True
    """
    a = np.asarray(data, dtype=np.float64)
    if a.ndim != 2:
        raise InputError(f"anisotropy_score needs a 2-D image, got shape {a.shape}")
    good = np.isfinite(a)
    a = np.where(good, a - (a[good].mean() if good.any() else 0.0), 0.0)
    ny, nx = a.shape
    from scipy.signal.windows import tukey

    a = a * np.outer(tukey(ny, 0.2), tukey(nx, 0.2))
    p = np.abs(np.fft.fft2(a)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij")
    fr = np.hypot(fy, fx)
    ang = np.mod(np.arctan2(fy, fx), np.pi)
    sector = np.minimum((ang / np.pi * n_sectors).astype(int), n_sectors - 1)
    score = 0.0
    for lo, hi in bands:
        sel = (fr >= lo) & (fr < hi)
        counts = np.bincount(sector[sel], minlength=n_sectors)
        if np.count_nonzero(counts) < n_sectors:
            raise InputError(f"the image is too small for {n_sectors} sectors in the band "
                             f"{lo}-{hi} cycles/px")
        means = np.bincount(sector[sel], weights=p[sel], minlength=n_sectors) / counts
        med = float(np.median(means))
        if med > 0:
            score = max(score, float(means.max() / med))
    return score


def _patches(images, size, stride):
    out = []
    for img in images:
        a = np.asarray(img, dtype=np.float32)
        for y in range(0, a.shape[0] - size + 1, stride):
            for x in range(0, a.shape[1] - size + 1, stride):
                p = a[y:y + size, x:x + size]
                if np.isfinite(p).all():
                    out.append(p)
    return np.stack(out) if out else np.zeros((0, size, size), np.float32)


def two_sample_accuracy(sample, reference, *, patch=32, stride=None, test_fraction=0.3,
                        steps=400, seed=0):
    """Accuracy of a small classifier trained to tell two sets of images apart.

    The classifier two-sample test: square patches are cut from every image of ``sample``
    (e.g. an enhancer's outputs) and of ``reference`` (e.g. the DECaLS-like images of the
    same scenes). The images (scenes) are split in two: a small convolutional network
    (3 convolutions, global average and max pooling, about 6 000 weights) is trained on the
    patches of the first part and scored on the patches of the held-out part, with equal
    numbers of patches of both kinds. 0.5 is chance: the classifier cannot tell the two
    apart; 1 means any patch gives itself away.

    Give both sets in the same stretch, e.g. ``asinh(x / (3 sigma))`` (`stretch`), so that
    faint texture counts as much as bright structure.

    Parameters
    ----------
    sample, reference : sequence of ndarray
        Images, paired scene by scene (``sample[i]`` and ``reference[i]`` show the same
        scene, so both kinds come from the same scenes in training and in the test).
    patch : int, optional
        Patch side, pixels.
    stride : int, optional
        Step between patches (default ``patch``: no overlap).
    test_fraction : float, optional
        Fraction of the scenes held out for the score.
    steps : int, optional
        Training steps (Adam, batches of 64).
    seed : int, optional
        Seed of the split, the initial weights and the batches.

    Returns
    -------
    accuracy : float
        Fraction of held-out patches classified correctly.
    n_test : int
        Number of held-out patches.

    Raises
    ------
    astro_enhance.InputError
        If the sets differ in length, have fewer than 4 scenes, or give no patch.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> a = [rng.normal(0, 1, (64, 64)) for _ in range(12)]
    >>> b = [rng.normal(0, 3, (64, 64)) for _ in range(12)]
    >>> acc, n = two_sample_accuracy(a, b, steps=150)
    >>> acc > 0.9
    True
    """
    import torch
    from torch import nn

    if len(sample) != len(reference):
        raise InputError(f"two_sample_accuracy needs paired sets, got {len(sample)} and "
                         f"{len(reference)} images")
    if len(sample) < 4:
        raise InputError(f"two_sample_accuracy needs at least 4 scenes, got {len(sample)}")
    stride = int(stride or patch)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sample))
    n_test = max(1, int(round(test_fraction * len(sample))))
    test_idx, train_idx = order[:n_test], order[n_test:]

    def data(idx):
        a = _patches([sample[i] for i in idx], patch, stride)
        b = _patches([reference[i] for i in idx], patch, stride)
        m = min(len(a), len(b))
        if m == 0:
            raise InputError(f"no finite {patch} x {patch} patch in the images")
        a, b = a[rng.permutation(len(a))[:m]], b[rng.permutation(len(b))[:m]]
        x = np.concatenate([a, b])[:, None]
        y = np.concatenate([np.ones(m), np.zeros(m)]).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    x_tr, y_tr = data(train_idx)
    x_te, y_te = data(test_idx)
    torch.manual_seed(int(seed))

    class _Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.2))
            self.head = nn.Linear(32, 1)

        def forward(self, x):
            h = self.body(x)
            return self.head(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))[:, 0]

    net = _Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(int(seed))
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(int(steps)):
        idx = torch.randint(len(x_tr), (64,), generator=gen)
        opt.zero_grad()
        loss_fn(net(x_tr[idx]), y_tr[idx]).backward()
        opt.step()
    with torch.no_grad():
        pred = torch.cat([net(x_te[i:i + 512]) for i in range(0, len(x_te), 512)]) > 0
    return float((pred.float() == y_te).float().mean()), int(len(y_te))
