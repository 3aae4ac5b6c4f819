"""Multi-scale PSF template matching with OpenCV's normalised cross-correlation.

Each candidate is compared with the PSF stretched by several factors (``scales``) using
``cv2.matchTemplate`` with ``TM_CCOEFF_NORMED``: the correlation of the mean-subtracted
template with the mean-subtracted image window, divided by both norms. It is 1 for a perfect
match of any amplitude on any constant background, so it measures *shape* only. A star
matches best at scale 1; galaxy knots and cores, being extended, match best at larger scales
and less well at scale 1.

`psf_extent` asks the same question with the noise taken into account: the width of the
PSF that fits a source best (least squares, position free) and by how much it fits better
than the PSF itself.
"""

import numpy as np

__all__ = ["DEFAULT_SCALES", "match_scores", "psf_extent"]

#: Width factors of the PSF templates.
DEFAULT_SCALES = (0.8, 1.0, 1.25, 1.6, 2.0, 2.6)


def _template(psf, scale):
    half = int(np.ceil(1.5 * psf.fwhm * scale))
    half = max(half, 3)
    t = psf.stamp(2 * half + 1, scale=scale)
    return t.astype(np.float32), half


def match_scores(data, x, y, psf, *, scales=DEFAULT_SCALES, search=1, detrend=True,
                 add_back=None):
    """Normalised cross-correlation of PSF templates of several widths at given positions.

    For each position a window is cut out (the image is zero-padded at the edges); with
    ``detrend`` a plane fitted to the window's outer pixels (beyond 2 FWHM) is subtracted
    first, so that the light gradient of a galaxy under a star does not lower its score.
    ``cv2.matchTemplate`` (``TM_CCOEFF_NORMED``) then compares the window with each template.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image (background need not be subtracted; NaNs are treated as 0).
    x, y : ndarray
        0-based candidate positions.
    psf : `~astro_enhance.stars.PSFModel`
        The PSF.
    scales : sequence of float, optional
        Width factors of the templates.
    search : int, optional
        Half size (pixels) of the box around each position where the best score is taken.
    detrend : bool, optional
        Subtract a local plane from each window first.
    add_back : ndarray, optional
        Fluxes of PSF models to add back at each position: with ``data`` a residual image
        from which every candidate's model was subtracted, each candidate is then matched
        alone, without the light of its neighbours.

    Returns
    -------
    scores : ndarray, shape (n, len(scales))
        Best ``TM_CCOEFF_NORMED`` score of each template near each position (-1 to 1).
    best_scale : ndarray, shape (n,)
        Scale of the best-matching template.
    best_score : ndarray, shape (n,)
        Its score.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.stars import psf_from_fwhm
    >>> psf = psf_from_fwhm(3.0)
    >>> img = np.zeros((64, 64), np.float32)
    >>> img[22:43, 22:43] += 100 * psf.stamp(21)
    >>> s, scale, best = match_scores(img, np.array([32.0]), np.array([32.0]), psf)
    >>> float(scale[0]), bool(best[0] > 0.99)
    (1.0, True)
    """
    import cv2

    img = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    n = x.size
    scales = tuple(float(s) for s in scales)
    scores = np.full((n, len(scales)), np.nan)
    if n == 0:
        return scores, np.zeros(0), np.zeros(0)
    s = int(search)
    tpls = [_template(psf, sc) for sc in scales]
    hmax = max(h for _, h in tpls)
    W = hmax + s
    pad = np.pad(img, W)
    ny, nx = img.shape
    ix = np.clip(np.round(x).astype(int), 0, nx - 1) + W
    iy = np.clip(np.round(y).astype(int), 0, ny - 1) + W
    g = np.arange(-W, W + 1)
    gy, gx = np.meshgrid(g, g, indexing="ij")
    outer = (gx ** 2 + gy ** 2) >= (2.0 * psf.fwhm) ** 2
    A = np.column_stack([np.ones(outer.sum()), gx[outer], gy[outer]]).astype(np.float64)
    pinv = np.linalg.pinv(A)
    back = None
    if add_back is not None:
        add_back = np.asarray(add_back, dtype=float)
        back = np.zeros((n,) + gx.shape, np.float32)
        nz = np.nonzero(add_back != 0)[0]
        for s0 in range(0, nz.size, 2000):
            j = nz[s0:s0 + 2000]
            dx = (x[j] - (ix[j] - W))[:, None, None]
            dy = (y[j] - (iy[j] - W))[:, None, None]
            back[j] = add_back[j, None, None] * psf.evaluate(gx[None] - dx, gy[None] - dy)
    for i in range(n):
        win = pad[iy[i] - W:iy[i] + W + 1, ix[i] - W:ix[i] + W + 1]
        if back is not None:
            win = win + back[i]
        if detrend:
            coef = pinv @ win[outer].astype(np.float64)
            win = (win - (coef[0] + coef[1] * gx + coef[2] * gy)).astype(np.float32)
        for k, (tpl, h) in enumerate(tpls):
            d = hmax - h
            sub = win[d:win.shape[0] - d, d:win.shape[1] - d] if d else win
            res = cv2.matchTemplate(sub, tpl, cv2.TM_CCOEFF_NORMED)
            scores[i, k] = float(np.max(res)) if res.size else np.nan
    clean = np.where(np.isfinite(scores), scores, -np.inf)
    kbest = np.argmax(clean, axis=1)
    best_score = clean[np.arange(n), kbest]
    best_scale = np.asarray(scales)[kbest]
    best_score = np.where(np.isfinite(best_score), best_score, np.nan)
    return scores, best_scale, best_score


def psf_extent(data, rms, x, y, psf, *, add_back=None, radius=None, select=None,
               max_width=2.5):
    """Best-fitting width of each source, in units of the PSF's, and its significance.

    In a disk of ``radius`` pixels around each position, the source is fitted (weighted
    least squares, noise ``rms``) by the PSF stretched by a width factor ``w``
    (`PSFModel.evaluate` with ``scale=w``) plus a plane, its position free within 1.5
    pixels: once with ``w = 1``, once with ``w`` free in ``[0.7, max_width]``. An unresolved
    source (a star) has ``w`` near 1 and a chi-square hardly lower with ``w`` free; a
    resolved one (a blend of star-forming knots, a compact galaxy) has ``w > 1`` and a
    chi-square lower by far more than the ~1 expected for one extra parameter.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Background-subtracted image (NaNs are treated as 0).
    rms : ndarray, shape (ny, nx)
        Noise per pixel.
    x, y : ndarray
        0-based source positions.
    psf : `~astro_enhance.stars.PSFModel`
        The PSF.
    add_back : ndarray, optional
        Fluxes of PSF models to add back at each position (``data`` a residual image from
        which every source's model was subtracted: each source is then fitted alone).
    radius : float, optional
        Radius of the fitted disk, pixels; default 1.5 FWHM (at least 3).
    select : ndarray of bool, optional
        Fit only these sources (the others get NaN).
    max_width : float, optional
        Largest width factor tried.

    Returns
    -------
    width : ndarray
        Best width factor (1 = the PSF; NaN where not fitted).
    dchi2 : ndarray
        Chi-square with ``w = 1`` minus chi-square at the best width (>= 0).

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.stars import psf_from_fwhm
    >>> psf = psf_from_fwhm(3.0)
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(0.0, 1.0, (40, 60))
    >>> yy, xx = np.mgrid[0:40, 0:60]
    >>> img += 2000 * psf.evaluate(xx - 15.3, yy - 20.1)              # a star
    >>> img += 2000 * psf.evaluate(xx - 45.0, yy - 20.0, scale=1.6)   # a resolved source
    >>> w, d = psf_extent(img, np.ones_like(img), [15.3, 45.0], [20.1, 20.0], psf)
    >>> bool(abs(w[0] - 1) < 0.1 and d[0] < 10), bool(w[1] > 1.4 and d[1] > 100)
    (True, True)
    """
    import math

    from scipy.optimize import least_squares

    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    n = x.size
    width = np.full(n, np.nan)
    dchi2 = np.full(n, np.nan)
    if n == 0:
        return width, dchi2
    R = int(math.ceil(max(3.0, radius if radius is not None else 1.5 * psf.fwhm)))
    ny, nx = data.shape
    pad = np.pad(np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0,
                               neginf=0.0), R)
    prms = np.pad(np.asarray(rms, dtype=np.float64), R, mode="edge")
    g = np.arange(-R, R + 1)
    gy, gx = np.meshgrid(g, g, indexing="ij")
    disk = gx ** 2 + gy ** 2 <= R ** 2
    dxp, dyp = gx[disk].astype(float), gy[disk].astype(float)
    todo = np.ones(n, bool) if select is None else np.asarray(select, bool)
    for i in np.nonzero(todo)[0]:
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        ix, iy = int(round(x[i])), int(round(y[i]))
        if not (0 <= ix < nx and 0 <= iy < ny):
            continue
        win = pad[iy:iy + 2 * R + 1, ix:ix + 2 * R + 1][disk]
        noise = prms[iy:iy + 2 * R + 1, ix:ix + 2 * R + 1][disk]
        if not np.all(np.isfinite(noise) & (noise > 0)):
            continue
        w = 1.0 / noise
        ox, oy = x[i] - ix, y[i] - iy
        if add_back is not None and np.isfinite(add_back[i]):
            win = win + add_back[i] * psf.evaluate(dxp - ox, dyp - oy)
        d = win * w
        plane = np.column_stack([w, dxp * w, dyp * w])

        def resid(p):
            m = psf.evaluate(dxp - p[0], dyp - p[1], scale=math.exp(p[2]) if p.size > 2
                             else 1.0) * w
            A = np.column_stack([m, plane])
            coef = np.linalg.lstsq(A, d, rcond=None)[0]
            return d - A @ coef

        lo, hi = [ox - 1.5, oy - 1.5], [ox + 1.5, oy + 1.5]
        f1 = least_squares(resid, [ox, oy], bounds=(lo, hi))
        f2 = least_squares(resid, [f1.x[0], f1.x[1], 0.1],
                           bounds=(lo + [math.log(0.7)], hi + [math.log(max_width)]))
        c1 = float(np.sum(f1.fun ** 2))
        c2 = float(np.sum(f2.fun ** 2))
        if c2 < c1:
            width[i], dchi2[i] = math.exp(f2.x[2]), c1 - c2
        else:
            width[i], dchi2[i] = 1.0, 0.0
    return width, dchi2
