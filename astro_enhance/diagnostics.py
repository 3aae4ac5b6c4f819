"""Checks of an enhanced image against its input: tile seams and photometry of isolated sources.

Neural enhancers run on overlapping tiles; a seam between tiles would repeat with the tile
stride and show as a peak in the power spectrum at that period (`tile_seam_score`). Flux must
survive enhancement: `compare_aperture_fluxes` measures isolated sources in the enhanced image
and in the resampled input with the same apertures.
"""

import numpy as np

from .exceptions import InputError

__all__ = ["tile_seam_score", "step_profile", "compare_aperture_fluxes"]


def _peak_ratio(profile, period, harmonics):
    g = np.asarray(profile, dtype=np.float64)
    g = g[np.isfinite(g)]
    n = g.size
    if n < 4 * period:
        raise InputError(f"a profile of {n} pixels is too short for period {period}: it needs "
                         f"at least four periods")
    g = (g - g.mean()) * np.hanning(n)
    p = np.abs(np.fft.rfft(g)) ** 2
    # the detrended profile has a flat spectrum: its median away from every harmonic of the
    # tile frequency is the reference level
    away = np.ones(p.size, dtype=bool)
    away[0] = False
    m = 1
    while m * n / period < p.size:
        k0 = int(round(m * n / period))
        away[max(k0 - 2, 0):k0 + 3] = False
        m += 1
    level = float(np.median(p[away]))
    ratios = []
    for m in range(1, harmonics + 1):
        k0 = int(round(m * n / period))
        if k0 >= p.size - 1:
            break
        ratios.append(float(p[max(k0 - 1, 1):k0 + 2].max() / level))
    return max(ratios) if ratios else float("nan")


def step_profile(change, axis):
    """Mean squared pixel-to-pixel step of an image across ``axis``, per position.

    For ``axis=1`` entry ``j`` is the mean over rows of ``(change[:, j + 1] - change[:, j])**2``
    with the largest 5% of each column left out (stars and cosmic rays touch a few rows; a
    tile seam runs along the whole tile edge).

    Parameters
    ----------
    change : ndarray, shape (ny, nx)
        Usually ``output - reference``.
    axis : int
        1: steps between columns (profile along x); 0: between rows (along y).

    Returns
    -------
    ndarray
        Length ``nx - 1`` (axis 1) or ``ny - 1`` (axis 0).

    Examples
    --------
    >>> import numpy as np
    >>> d = np.zeros((50, 10)); d[:, 5:] = 1.0
    >>> int(np.argmax(step_profile(d, 1)))
    4
    """
    q = np.diff(np.asarray(change, dtype=np.float64), axis=axis) ** 2
    if axis == 0:
        q = q.T
    with np.errstate(invalid="ignore"):
        cut = np.nanpercentile(q, 95, axis=0)
        return np.nanmean(np.where(q <= cut, q, np.nan), axis=0)


def tile_seam_score(output, reference, period, *, harmonics=3):
    """How much the tile period stands out in the power spectrum of an enhancement.

    The change made by the enhancer, ``d = output - reference``, is differentiated along each
    axis; the mean squared difference per column (per row; the largest 5% left out so that
    stars do not dominate), minus its running median, gives a profile in which a seam
    every ``period`` pixels is a periodic spike. The score is the largest ratio, over both
    axes and the first ``harmonics`` multiples of the tile frequency, of the profile's power
    at that frequency (largest of the 3 nearest bins) to the median power away from all the
    harmonics. Without seams the ratio is that of noise, rarely above ~12 (a maximum over 18
    exponential variates); a visible seam gives hundreds. Other periodic patterns (e.g. the
    moire of resampling 0.396" pixels onto 0.262" ones, which an enhancer smooths away)
    raise it at their own periods, so compare with a few other periods.

    Parameters
    ----------
    output, reference : ndarray, shape (ny, nx)
        Enhanced image and the input it was made from, on the same grid (NaNs ignored).
    period : int
        Tile stride in pixels (tile size minus overlap).
    harmonics : int, optional
        Number of harmonics of the tile frequency examined.

    Returns
    -------
    float

    Raises
    ------
    astro_enhance.InputError
        If the shapes differ or the image spans fewer than four periods on an axis.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(256, 256))
    >>> smooth = ref * 0.5
    >>> bool(tile_seam_score(smooth, ref, 32) < 20)
    True
    >>> seamed = smooth.copy()
    >>> seamed[:, ::32] += 2.0          # a step every 32 pixels
    >>> bool(tile_seam_score(seamed, ref, 32) > 100)
    True
    """
    o = np.asarray(output, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if o.shape != r.shape or o.ndim != 2:
        raise InputError(f"output {o.shape} and reference {r.shape} must be 2-D images of "
                         f"the same shape")
    period = int(period)
    if period < 2:
        raise InputError(f"period must be at least 2 pixels, got {period}")
    d = o - r
    scores = []
    for axis in (1, 0):
        # per-column (per-row) size of the pixel-to-pixel change: stars and galaxies only
        # touch a few lines, a seam runs along the whole tile edge
        g = step_profile(d, axis)
        g = g[np.isfinite(g)]
        if g.size < 4 * period:
            continue
        # remove the large-scale trend (the image's own structure) so the spectrum is flat
        from scipy.ndimage import median_filter

        g = g - median_filter(g, size=max(5, period // 4) | 1, mode="reflect")
        scores.append(_peak_ratio(g, period, harmonics))
    if not scores:
        raise InputError(f"image {o.shape} spans fewer than four periods of {period} px")
    return float(max(scores))


def compare_aperture_fluxes(output, reference, *, n=30, fwhm=4.5, radius=None,
                            isolation=None, saturation=None, snr_min=30.0):
    """Aperture fluxes of isolated sources in an enhanced image and in its input.

    Sources are found in ``reference`` with photutils segmentation (5 sigma, 10 pixels);
    a source is kept when its footprint does not touch another one within ``isolation``
    pixels, it lies ``2 * radius`` from the edges and NaNs, its peak is below ``saturation``
    and its aperture signal-to-noise is at least ``snr_min``. The ``n`` brightest kept are
    measured in both images with the same circular apertures, whose radius is the larger of
    ``radius`` and twice the source's FWHM along its major axis (2.35 times photutils'
    ``semimajor_axis``), so galaxies get apertures that hold their light.

    Parameters
    ----------
    output, reference : ndarray, shape (ny, nx)
        Enhanced image and the resampled input, same grid and units.
    n : int, optional
        Number of sources.
    fwhm : float, optional
        PSF FWHM in pixels (default 4.5, SDSS seeing on the DECaLS grid).
    radius : float, optional
        Smallest aperture radius in pixels (default ``2 * fwhm``).
    isolation : float, optional
        Distance in pixels to the nearest other source footprint (default ``4 * fwhm``).
    saturation : float, optional
        Peaks above this are left out (saturated stars); default: no limit.
    snr_min : float, optional
        Smallest aperture signal-to-noise ratio.

    Returns
    -------
    `~astropy.table.Table`
        One row per source: ``x``, ``y``, ``radius``, ``extended`` (semi-major axis above
        the PSF's), ``flux_in``, ``flux_out`` and ``ratio``.

    Raises
    ------
    astro_enhance.InputError
        If the shapes differ or no source qualifies.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:200, :200]
    >>> img = sum(np.exp(-((x - a) ** 2 + (y - b) ** 2) / 8.0)
    ...           for a, b in ((50, 50), (150, 60), (100, 150)))
    >>> img = img + np.random.default_rng(0).normal(0, 0.01, img.shape)
    >>> t = compare_aperture_fluxes(img * 1.01, img, n=3, fwhm=3.3)
    >>> len(t), bool(np.allclose(t["ratio"], 1.01, atol=1e-3))
    (3, True)
    """
    from astropy.table import Table
    from photutils.aperture import CircularAperture, aperture_photometry
    from photutils.segmentation import SourceCatalog, detect_sources
    from scipy import ndimage

    from .normalize import estimate_noise

    o = np.asarray(output, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if o.shape != r.shape or o.ndim != 2:
        raise InputError(f"output {o.shape} and reference {r.shape} must be 2-D images of "
                         f"the same shape")
    radius = 2.0 * fwhm if radius is None else float(radius)
    isolation = 4.0 * fwhm if isolation is None else float(isolation)
    bad = ~np.isfinite(r) | ~np.isfinite(o)
    sigma = float(estimate_noise(np.where(bad, 0, r), mask=bad))
    work = np.where(bad, 0.0, r)
    import inspect

    npix = ("n_pixels" if "n_pixels" in inspect.signature(detect_sources).parameters
            else "npixels")
    seg = detect_sources(work, 5.0 * sigma, mask=bad, **{npix: 10})
    if seg is None:
        raise InputError("no source detected in the reference image")
    cat = SourceCatalog(work, seg, mask=bad)
    labels = np.asarray(cat.labels)
    # distance from every pixel to the nearest footprint of each label is costly; instead
    # grow each footprint by `isolation` and count overlaps with other labels
    grown_max = ndimage.maximum_filter(seg.data, size=int(2 * isolation) + 1)
    seg_pos = np.where(seg.data > 0, seg.data, np.iinfo(np.int32).max)
    grown_min = ndimage.minimum_filter(seg_pos, size=int(2 * isolation) + 1)
    near_bad = ndimage.binary_dilation(bad, iterations=int(2 * radius)) if bad.any() else bad
    ny, nx = r.shape
    rows = []
    # photutils 3 renamed these (the old names warn); photutils >= 1.9 is supported
    new = hasattr(type(cat), "x_centroid")
    xc = np.asarray(cat.x_centroid if new else cat.xcentroid)
    yc = np.asarray(cat.y_centroid if new else cat.ycentroid)
    a_ax = np.asarray((cat.semimajor_axis if new else cat.semimajor_sigma).value)
    peak = np.asarray(cat.max_value)
    psf_sigma = fwhm / 2.3548
    for i, lab in enumerate(labels):
        x, y = xc[i], yc[i]
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        rad = max(radius, 2.0 * 2.3548 * a_ax[i])  # twice the source's FWHM
        if x < 2 * rad or y < 2 * rad or x > nx - 1 - 2 * rad or y > ny - 1 - 2 * rad:
            continue
        sl = seg.slices[seg.get_index(lab)]
        box = (slice(max(sl[0].start - 1, 0), sl[0].stop + 1),
               slice(max(sl[1].start - 1, 0), sl[1].stop + 1))
        mine = seg.data[box] == lab
        if (grown_max[box][mine] != lab).any() or (grown_min[box][mine] != lab).any():
            continue
        if near_bad[int(round(y)), int(round(x))]:
            continue
        if saturation is not None and peak[i] >= saturation:
            continue
        rows.append((x, y, rad, bool(a_ax[i] > 1.5 * psf_sigma)))
    if not rows:
        raise InputError("no isolated source qualifies; lower snr_min or isolation")
    xs = np.array([q[0] for q in rows])
    ys = np.array([q[1] for q in rows])
    rads = np.array([q[2] for q in rows])
    ext = np.array([q[3] for q in rows])
    f_in = np.empty(len(rows))
    f_out = np.empty(len(rows))
    for j in range(len(rows)):
        ap = CircularAperture([(xs[j], ys[j])], r=rads[j])
        f_in[j] = float(aperture_photometry(r, ap)["aperture_sum"][0])
        f_out[j] = float(aperture_photometry(o, ap)["aperture_sum"][0])
    snr = f_in / (sigma * np.sqrt(np.pi) * rads)
    keep = np.flatnonzero(snr >= snr_min)
    if keep.size == 0:
        raise InputError(f"no isolated source reaches S/N {snr_min}")
    keep = keep[np.argsort(-f_in[keep])][:int(n)]
    t = Table({"x": xs[keep], "y": ys[keep], "radius": rads[keep], "extended": ext[keep],
               "flux_in": f_in[keep], "flux_out": f_out[keep],
               "ratio": f_out[keep] / f_in[keep]})
    return t
