"""Multi-scale PSF template matching with OpenCV's normalised cross-correlation.

Each candidate is compared with the PSF stretched by several factors (``scales``) using
``cv2.matchTemplate`` with ``TM_CCOEFF_NORMED``: the correlation of the mean-subtracted
template with the mean-subtracted image window, divided by both norms. It is 1 for a perfect
match of any amplitude on any constant background, so it measures *shape* only. A star
matches best at scale 1; galaxy knots and cores, being extended, match best at larger scales
and less well at scale 1.
"""

import numpy as np

__all__ = ["DEFAULT_SCALES", "match_scores"]

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
