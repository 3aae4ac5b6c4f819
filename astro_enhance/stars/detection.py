"""Background, noise, star candidates, saturated regions and the protected galaxy.

* `background_and_noise`: photutils `~photutils.background.Background2D` maps (sigma-clipped
  medians in boxes), or global sigma-clipped statistics for images too small for boxes.
* `find_candidates`: photutils `~photutils.detection.DAOStarFinder` on the signal-to-noise
  image, keeping every peak (shape decisions are made later from template matching).
* `saturation_level` and `saturated_regions`: saturated cores and bleed trails, from a
  ``SATURATE`` header card or from flat plateaus at the image maximum.
* `galaxy_footprint`: the connected region of smoothed light around the protected position
  (the image centre by default) -- the target galaxy whose core and knots are never removed.
"""

import math
import warnings

import numpy as np
from scipy import ndimage

__all__ = ["background_and_noise", "find_candidates", "saturation_level", "saturated_regions",
           "galaxy_footprint"]


def background_and_noise(data, *, mask=None, box_size=None):
    """Background and noise maps of an image.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image (NaNs allowed).
    mask : ndarray of bool, optional
        Pixels to ignore.
    box_size : int, optional
        Box side for `~photutils.background.Background2D` (default: a quarter of the smaller
        side, 16 to 64 pixels).

    Returns
    -------
    background, rms : ndarray, float32, shape (ny, nx)
        Background level and per-pixel noise. The noise map is floored at a quarter of its
        median so that a box full of source light cannot claim a zero noise.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> bkg, rms = background_and_noise(rng.normal(5.0, 2.0, (128, 128)))
    >>> round(float(np.median(bkg))), round(float(np.median(rms)))
    (5, 2)
    """
    from astropy.stats import SigmaClip, sigma_clipped_stats

    arr = np.asarray(data, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if mask is not None:
        bad = bad | np.asarray(mask, dtype=bool)
    ny, nx = arr.shape
    if box_size is None:
        box_size = int(np.clip(min(ny, nx) // 4, 16, 64))
    box_size = int(box_size)
    good_vals = arr[~bad]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, med, std = sigma_clipped_stats(good_vals, sigma=3.0, maxiters=5)
    from ..normalize import estimate_noise
    noise0 = estimate_noise(arr, mask=bad)
    if not np.isfinite(std) or std <= 0:
        std = noise0
    if min(ny, nx) < 3 * box_size or good_vals.size < 0.5 * arr.size:
        bkg = np.full(arr.shape, med, np.float32)
        rms = np.full(arr.shape, min(std, noise0) if noise0 > 0 else std, np.float32)
        return bkg, rms
    from photutils.background import Background2D, MedianBackground, StdBackgroundRMS

    filled = np.where(bad, med, arr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b2d = Background2D(filled, box_size, mask=bad, filter_size=3,
                           sigma_clip=SigmaClip(sigma=3.0, maxiters=5),
                           bkg_estimator=MedianBackground(),
                           bkg_rms_estimator=StdBackgroundRMS(), exclude_percentile=50.0)
    bkg = np.asarray(b2d.background, dtype=np.float32)
    rms = np.asarray(b2d.background_rms, dtype=np.float32)
    floor = 0.25 * float(np.median(rms))
    rms = np.maximum(rms, max(floor, 1e-30)).astype(np.float32)
    return bkg, rms


def find_candidates(snr, fwhm, *, threshold=5.0, mask=None):
    """Peaks of a signal-to-noise image found by DAOStarFinder.

    Parameters
    ----------
    snr : ndarray, shape (ny, nx)
        Background-subtracted image divided by its noise.
    fwhm : float
        PSF FWHM in pixels (the DAOStarFinder kernel).
    threshold : float, optional
        Detection threshold in units of the noise.
    mask : ndarray of bool, optional
        Pixels where no peak is wanted.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``x``, ``y`` (0-based), ``peak`` (S/N of the brightest pixel), ``sharpness``,
        ``roundness``; empty when nothing is found.
    """
    from astropy.table import Table
    from photutils.detection import DAOStarFinder

    img = np.nan_to_num(np.asarray(snr, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if mask is not None:
        img = np.where(mask, 0.0, img).astype(np.float32)
    # peaks closer than 2.5 FWHM (photutils' default) are kept: stars on galaxy cores and
    # blends in crowded fields are exactly what must be separated
    finder = DAOStarFinder(threshold=float(threshold), fwhm=float(max(fwhm, 1.0)),
                           sharpness_range=(0.05, 3.0), roundness_range=(-2.0, 2.0),
                           exclude_border=False, min_separation=max(2.0, float(fwhm)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = finder(img)
    if tab is None or len(tab) == 0:
        return Table({"x": np.zeros(0), "y": np.zeros(0), "peak": np.zeros(0),
                      "sharpness": np.zeros(0), "roundness": np.zeros(0)})
    return Table({"x": np.asarray(tab["x_centroid"], float),
                  "y": np.asarray(tab["y_centroid"], float),
                  "peak": np.asarray(tab["peak"], float),
                  "sharpness": np.asarray(tab["sharpness"], float),
                  "roundness": np.asarray(tab["roundness1"], float)})


_SAT_KEYS = ("SATURATE", "SATURATA", "SATURATB", "SATLEVEL", "SATUR")

#: Without a saturation card, a plateau at the image maximum means saturation only when the
#: maximum is at least this many sky noise sigmas (robust standard deviation of the image).
PLATEAU_MIN_SNR = 150.0


def saturation_level(data, header=None, *, saturation=None):
    """Saturation level of an image, or None when nothing looks saturated.

    Parameters
    ----------
    data : ndarray
        Image.
    header : `~astropy.io.fits.Header`, optional
        Header; ``SATURATE`` (or ``SATURATA``/``SATURATB``, the lower) is used when the data
        reach it.
    saturation : float, optional
        Explicit level (overrides everything).

    Returns
    -------
    float or None
        Values at or above it are saturated. Without a usable header card, a flat plateau of
        five or more pixels within 2% of the image maximum marks saturation (the clipped cores
        and bleed trails of saturated stars, also after resampling) -- when the maximum is
        ``PLATEAU_MIN_SNR`` (150) sky noise sigmas or more (below that, the noise alone puts
        several pixels of a smooth peak, a galaxy's core, within 2% of it).
    """
    arr = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return None
    vmax = float(arr[finite].max())
    if saturation is not None:
        return float(saturation)
    if header is not None:
        levels = []
        for k in _SAT_KEYS:
            try:
                v = float(header[k])
            except (KeyError, TypeError, ValueError):
                continue
            if np.isfinite(v) and v > 0:
                levels.append(v)
        if levels:
            lev = min(levels)
            if vmax >= 0.995 * lev:
                return 0.995 * lev
    if vmax <= 0:
        return None
    # a smooth peak (a galaxy's core) has pixels within 2% of its maximum too, when 2% of it
    # is within the noise: only a maximum far above the sky noise, by PLATEAU_MIN_SNR (2% of
    # it then three noise sigmas), can show a plateau
    vals = arr[finite]
    vals = vals[::max(1, vals.size // 200000)]
    sigma = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    if vmax < PLATEAU_MIN_SNR * sigma:
        return None
    near = arr >= 0.98 * vmax
    n = int(near.sum())
    if n >= 5:
        lab, nlab = ndimage.label(near)
        sizes = np.bincount(lab.ravel())[1:]
        if sizes.size and sizes.max() >= 5:
            return 0.98 * vmax
    return None


def saturated_regions(data, level, *, min_pixels=3):
    """Connected saturated regions (cores and bleed trails).

    Parameters
    ----------
    data : ndarray
        Image.
    level : float or None
        Saturation level (see `saturation_level`).
    min_pixels : int, optional
        Smallest region kept.

    Returns
    -------
    labels : ndarray of int
        Region label of each pixel (0 outside).
    regions : list of dict
        Per region: ``label``, ``x``, ``y`` (centroid of the widest row: the star centre for
        a bleed trail along columns), ``npix``, ``slices``.
    """
    arr = np.asarray(data, dtype=np.float64)
    if level is None:
        return np.zeros(arr.shape, np.int32), []
    sat = np.isfinite(arr) & (arr >= level)
    lab, n = ndimage.label(sat, structure=np.ones((3, 3)))
    regions = []
    objs = ndimage.find_objects(lab)
    for k, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        sub = lab[sl] == k
        npix = int(sub.sum())
        if npix < min_pixels:
            lab[sl][sub] = 0
            continue
        widths_r = sub.sum(axis=1)
        widths_c = sub.sum(axis=0)
        # trails run along the longer axis; the star sits where the region is widest
        if sub.shape[0] >= sub.shape[1]:
            wide = np.nonzero(widths_r == widths_r.max())[0]
            r = float(np.mean(wide))
            cols = np.nonzero(sub[int(round(r))])[0]
            yc, xc = sl[0].start + r, sl[1].start + float(np.mean(cols))
        else:
            wide = np.nonzero(widths_c == widths_c.max())[0]
            cidx = float(np.mean(wide))
            rows = np.nonzero(sub[:, int(round(cidx))])[0]
            yc, xc = sl[0].start + float(np.mean(rows)), sl[1].start + cidx
        regions.append(dict(label=k, x=xc, y=yc, npix=npix, slices=sl))
    return lab, regions


def galaxy_footprint(data, rms, fwhm, center, *, nsigma=1.5, search=None, max_fraction=0.6):
    """The connected region of extended light at ``center`` (the protected galaxy).

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Background-subtracted image.
    rms : ndarray or float
        Per-pixel noise.
    fwhm : float
        PSF FWHM, pixels; the image is smoothed with a Gaussian of this FWHM.
    center : tuple of float
        ``(x, y)`` position of the galaxy, 0-based pixels.
    nsigma : float, optional
        Threshold in units of the smoothed noise.
    search : float, optional
        Radius (pixels) around ``center`` where the region must start (default ``3 * fwhm``).
    max_fraction : float, optional
        If the region covers more than this fraction of the image (e.g. a crowded field whose
        blended light percolates), it is cut to the ellipse of its central second moments.

    Returns
    -------
    footprint : ndarray of bool
        Pixels of the galaxy (all False when nothing is there).
    core : tuple of float or None
        ``(x, y)`` of the brightest smoothed pixel of the region near ``center``.
    radius : float
        Equivalent radius ``sqrt(area / pi)`` of the region, pixels.
    """
    arr = np.nan_to_num(np.asarray(data, dtype=np.float64))
    ny, nx = arr.shape
    sig = max(fwhm, 1.0) / 2.3548
    sm = ndimage.gaussian_filter(arr, sig)
    rms_s = np.asarray(rms, dtype=np.float64) / (2.0 * math.sqrt(math.pi) * sig)
    above = sm > nsigma * rms_s
    cx, cy = float(center[0]), float(center[1])
    if search is None:
        search = 3.0 * fwhm
    yy, xx = np.ogrid[0:ny, 0:nx]
    near = (xx - cx) ** 2 + (yy - cy) ** 2 <= search ** 2
    if not (above & near).any():
        return np.zeros((ny, nx), bool), None, 0.0
    lab, _ = ndimage.label(above)
    cand = np.where(above & near, sm, -np.inf)
    j = np.argmax(cand)
    k = lab.ravel()[j]
    fp = lab == k
    # the core: brightest smoothed pixel of the region within the search radius
    core_y, core_x = np.unravel_index(j, arr.shape)
    if fp.mean() > max_fraction:
        fp = _central_ellipse(fp, sm, core_x, core_y, search)
    radius = math.sqrt(fp.sum() / math.pi)
    return fp, (float(core_x), float(core_y)), float(radius)


def _central_ellipse(fp, sm, cx, cy, search):
    """Cut a percolating region to the 2-sigma ellipse of its light near the centre."""
    ny, nx = fp.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot(xx - cx, yy - cy)
    sel = fp & (r < 4 * search)
    w = np.clip(sm[sel], 0, None)
    if w.sum() <= 0:
        return fp & (r < search)
    dx, dy = xx[sel] - cx, yy[sel] - cy
    cov = np.array([[np.sum(w * dx * dx), np.sum(w * dx * dy)],
                    [np.sum(w * dx * dy), np.sum(w * dy * dy)]]) / w.sum()
    try:
        inv = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        return fp & (r < search)
    d2 = inv[0, 0] * (xx - cx) ** 2 + 2 * inv[0, 1] * (xx - cx) * (yy - cy) \
        + inv[1, 1] * (yy - cy) ** 2
    return fp & (d2 <= 4.0)
