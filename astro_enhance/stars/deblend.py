"""A point source beside (or on top of) a galaxy's core, measured from the light's asymmetry.

A galaxy core is nearly point-symmetric about the centre of the galaxy's light; a foreground
star a little off that centre is not. The difference between the image and its copy rotated
by 180 degrees about the centre ``c``, ``D(p) = I(p) - I(2c - p)``, cancels the symmetric
galaxy light (whatever its profile) and leaves ``F * [PSF(p - s) - PSF(2c - p - s)]`` for a
star of flux ``F`` at ``s``: a model linear in the flux, whose only other unknowns are the
star's position and the centre. Fitting it measures the star's own flux and position even
when the star and the core make a single peak (when the star sits within about one FWHM of
the core, no detection algorithm separates them). The fit is compared with the same fit
without a star (the centre alone) and with a template 1.6 times wider than the PSF (an
extended asymmetric structure such as a knot or a bar end fits that better).
"""

import math

import numpy as np

__all__ = ["fit_offcentre_star", "offcentre_flux"]


def _mirror(coef, valid, cxw, cyw, px, py):
    """Cubic-spline values at the mirror images ``2c - p`` (``coef``: the window's spline
    coefficients, `scipy.ndimage.spline_filter`) and whether they are valid (all four
    nearest pixels valid)."""
    from scipy import ndimage

    mx = 2 * cxw - px
    my = 2 * cyw - py
    inside = (mx >= 0) & (mx <= coef.shape[1] - 1) & (my >= 0) & (my <= coef.shape[0] - 1)
    vals = ndimage.map_coordinates(coef, [my, mx], order=3, mode="nearest", prefilter=False)
    ok = ndimage.map_coordinates(valid.astype(float), [my, mx], order=1, mode="nearest")
    return vals, inside & (ok > 0.999)


def _window(img, centre, h, rms, bad, exclude):
    """The (2h+1)-square window of ``img`` around ``centre`` (clipped to the image): data
    with unusable pixels zeroed, their mask, the noise, and the window's origin (x0, y0)."""
    ny, nx = img.shape
    X0, Y0 = int(round(centre[0])), int(round(centre[1]))
    x0, x1 = max(0, X0 - h), min(nx, X0 + h + 1)
    y0, y1 = max(0, Y0 - h), min(ny, Y0 + h + 1)
    win = img[y0:y1, x0:x1]
    valid = np.isfinite(win)
    if bad is not None:
        valid &= ~np.asarray(bad)[y0:y1, x0:x1]
    if exclude is not None:
        valid &= ~np.asarray(exclude)[y0:y1, x0:x1]
    win = np.where(valid, win, 0.0)
    rmsw = np.broadcast_to(np.asarray(rms, dtype=np.float64), img.shape)[y0:y1, x0:x1]
    return win, valid, rmsw, x0, y0


def fit_offcentre_star(image, centre, psf, *, rms, bad=None, exclude=None, starts=(),
                       known=(), radius=None, max_centre_shift=1.5, wide_scale=1.6,
                       resolved_scale=1.3, resolved_within=np.inf):
    """Fit a point source in the asymmetric part of the light around a galaxy's centre.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Background-subtracted image.
    centre : (float, float)
        First guess of the centre of symmetry of the galaxy's light (x, y), 0-based pixels.
    psf : `~astro_enhance.stars.PSFModel`
        The PSF.
    rms : float or ndarray
        Per-pixel noise.
    bad : ndarray of bool, optional
        Pixels to leave out (saturated, NaN, masked).
    exclude : ndarray of bool, optional
        More pixels to leave out (other sources); their mirror images are left out too.
    starts : sequence of (float, float), optional
        Starting positions of the star (the peak of the PSF-filtered asymmetry is always
        tried too).
    known : sequence of (float, float), optional
        Positions of point sources already known near the centre: fitted together with the
        new one (fluxes free, positions within a pixel), in the fit without the new star too.
    radius : float, optional
        Radius of the fitted disk about the centre (default ``max(3.5 FWHM, 6)`` pixels).
    max_centre_shift : float, optional
        Largest change of the centre during the fit, pixels.
    wide_scale, resolved_scale : float, optional
        Widths (in PSF widths) of the two extended templates the PSF fit is compared with.
    resolved_within : float, optional
        The ``resolved_scale`` template is fitted only when the star lies within this many
        pixels of the fitted centre (each template fit costs about as much as the PSF fit).

    Returns
    -------
    dict or None
        ``x``, ``y`` (star), ``cx``, ``cy`` (centre of symmetry), ``flux``, ``flux_err``,
        ``dchi2`` (chi-square gained over the centre-only fit), ``dchi2_wide`` (chi-square
        gained over the fit with the ``wide_scale`` template; positive when the PSF fits
        better), ``dchi2_resolved`` (the same against the ``resolved_scale`` template; NaN
        beyond ``resolved_within``),
        ``chi2`` and ``chi2_0`` (with and without the star), ``n_pix`` (independent pixels),
        ``known`` (x, y, flux of the known sources); None when the window holds too few
        usable pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.stars import psf_from_fwhm
    >>> psf = psf_from_fwhm(2.5)
    >>> yy, xx = np.mgrid[0:41, 0:41]
    >>> galaxy = 5.0 * np.exp(-np.hypot(xx - 20, yy - 20) / 3.0)
    >>> star = 40.0 * psf.evaluate(xx - 21.5, yy - 19.0)
    >>> noise = np.random.default_rng(0).normal(0, 0.05, xx.shape)
    >>> fit = fit_offcentre_star(galaxy + star + noise, (20.3, 19.8), psf, rms=0.05)
    >>> round(fit["x"], 1), round(fit["y"], 1), bool(abs(fit["flux"] / 40.0 - 1) < 0.05)
    (21.5, 19.0, True)
    """
    from scipy import ndimage
    from scipy.optimize import least_squares

    img = np.asarray(image, dtype=np.float64)
    fwhm = float(psf.fwhm)
    R = float(radius) if radius is not None else max(3.5 * fwhm, 6.0)
    h = int(math.ceil(R + max_centre_shift)) + 2
    win, valid, rmsw, x0, y0 = _window(img, centre, h, rms, bad, exclude)
    c0x, c0y = float(centre[0]) - x0, float(centre[1]) - y0
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]]
    disk = (xx - c0x) ** 2 + (yy - c0y) ** 2 <= R ** 2
    coef = ndimage.spline_filter(win, order=3, mode="nearest")
    _, mok = _mirror(coef, valid, c0x, c0y, xx.astype(float), yy.astype(float))
    use = disk & valid & mok
    if use.sum() < 30:
        return None
    px = xx[use].astype(np.float64)
    py = yy[use].astype(np.float64)
    dat = win[use]
    sig = math.sqrt(2.0) * np.maximum(rmsw[use], 1e-30)

    def diff(c):
        m, _ = _mirror(coef, valid, c[0], c[1], px, py)
        return dat - m

    def model(c, s, scale=1.0):
        smx, smy = 2 * c[0] - s[0], 2 * c[1] - s[1]
        return psf.evaluate(px - s[0], py - s[1], scale=scale) - \
            psf.evaluate(smx - px, smy - py, scale=scale)

    kn = [(float(x) - x0, float(y) - y0) for x, y in known]
    nk = len(kn)

    def known_model(c, q):
        out = np.zeros(px.size)
        for i in range(nk):
            out = out + q[3 * i + 2] * model(c, (q[3 * i], q[3 * i + 1]))
        return out

    def resid(p, scale=1.0):
        c, s_, f = p[0:2], p[2:4], p[4]
        return (diff(c) - f * model(c, s_, scale) - known_model(c, p[5:])) / sig

    def resid0(p):
        return (diff(p[0:2]) - known_model(p[0:2], p[2:])) / sig

    lo_c = [c0x - max_centre_shift, c0y - max_centre_shift]
    hi_c = [c0x + max_centre_shift, c0y + max_centre_shift]
    q0, lo_q, hi_q, xs_q = [], [], [], []
    for qx, qy in kn:
        q0 += [qx, qy, 1.0]
        lo_q += [qx - 1.0, qy - 1.0, 0.0]
        hi_q += [qx + 1.0, qy + 1.0, np.inf]
        xs_q += [0.3, 0.3, 1.0]
    if nk:
        # starting fluxes of the known sources: linear fit with the first-guess centre
        mats = np.column_stack([model((c0x, c0y), (qx, qy)) for qx, qy in kn]) / sig[:, None]
        fq = np.linalg.lstsq(mats, diff((c0x, c0y)) / sig, rcond=None)[0]
        for i in range(nk):
            q0[3 * i + 2] = max(float(fq[i]), 1e-6)
            xs_q[3 * i + 2] = max(abs(float(fq[i])), 1e-3)
    q0 = np.clip(q0, np.array(lo_q) + 1e-9, np.array(hi_q) - 1e-9) if nk else np.zeros(0)
    # the centre (and the known sources) alone
    r0 = least_squares(resid0, np.concatenate([[c0x, c0y], q0]),
                       bounds=(lo_c + lo_q, hi_c + hi_q), method="trf",
                       x_scale=[0.3, 0.3] + xs_q, max_nfev=100)
    chi0 = float(np.sum(r0.fun ** 2)) / 2.0
    qfit = r0.x[2:]
    # starting positions: the given ones and the peak of the PSF-filtered asymmetry about
    # the first-guess centre and about the centre-only fit
    half = int(math.ceil(1.5 * fwhm))
    k = psf.stamp(2 * half + 1)
    k = k / np.sum(k ** 2)
    trials = []
    for cc in ((c0x, c0y), (float(r0.x[0]), float(r0.x[1]))):
        for x, y in starts:
            trials.append((cc, (float(x) - x0, float(y) - y0)))
        full_d = np.zeros(win.shape)
        full_d[use] = diff(cc) - known_model(cc, qfit)
        conv = ndimage.convolve(full_d, k, mode="constant")
        conv = np.where(disk & ((xx - cc[0]) ** 2 + (yy - cc[1]) ** 2 >= (0.3 * fwhm) ** 2),
                        conv, -np.inf)
        j = int(np.argmax(conv))
        trials.append((cc, (float(j % win.shape[1]), float(j // win.shape[1]))))
    best = None
    for (ccx, ccy), (sx, sy) in trials:
        if (sx - ccx) ** 2 + (sy - ccy) ** 2 > R ** 2:
            continue
        if (sx - ccx) ** 2 + (sy - ccy) ** 2 < (0.25 * fwhm) ** 2:
            # on the centre: start a little off it
            sx, sy = sx + 0.3 * fwhm, sy
        mod = model((ccx, ccy), (sx, sy))
        dd = diff((ccx, ccy)) - known_model((ccx, ccy), qfit)
        f0 = float(np.sum(mod * dd / sig ** 2) / max(np.sum(mod ** 2 / sig ** 2), 1e-30))
        lo = lo_c + [sx - R, sy - R, 0.0] + lo_q
        hi = hi_c + [sx + R, sy + R, np.inf] + hi_q
        p0 = np.clip(np.concatenate([[ccx, ccy, sx, sy, max(f0, 1e-6)], qfit]),
                     np.array(lo) + 1e-9, np.array(hi) - 1e-9)
        try:
            r1 = least_squares(resid, p0, bounds=(lo, hi), method="trf",
                               x_scale=[0.3, 0.3, 0.3, 0.3, max(abs(f0), 1e-3)] + xs_q,
                               max_nfev=150)
        except (ValueError, np.linalg.LinAlgError):
            continue
        chi1 = float(np.sum(r1.fun ** 2)) / 2.0
        if best is None or chi1 < best[0]:
            best = (chi1, r1)
    if best is None:
        return None
    chi1, r1 = best
    c1x, c1y, s1x, s1y, f1 = r1.x[:5]
    # flux error: each pixel appears twice (as p and as the mirror of 2c - p)
    try:
        cov = np.linalg.inv(r1.jac.T @ r1.jac) * 2.0
        ferr = float(math.sqrt(max(cov[4, 4], 0.0)))
    except np.linalg.LinAlgError:
        ferr = float("inf")
    # the same fit with wider templates
    lw = lo_c + [s1x - R, s1y - R, 0.0] + lo_q
    hw = hi_c + [s1x + R, s1y + R, np.inf] + hi_q
    pw = np.clip(r1.x, np.array(lw) + 1e-9, np.array(hw) - 1e-9)

    def chi_scaled(scale):
        try:
            rw = least_squares(lambda p: resid(p, scale), pw, bounds=(lw, hw), method="trf",
                               x_scale=[0.3, 0.3, 0.3, 0.3, max(abs(f1), 1e-3)] + xs_q,
                               max_nfev=100)
            return float(np.sum(rw.fun ** 2)) / 2.0
        except (ValueError, np.linalg.LinAlgError):
            return chi1

    chiw = chi_scaled(wide_scale)
    chir = (chi_scaled(resolved_scale) if math.hypot(s1x - c1x, s1y - c1y) <= resolved_within
            else float("nan"))
    qf = r1.x[5:]
    return dict(x=float(s1x + x0), y=float(s1y + y0), cx=float(c1x + x0), cy=float(c1y + y0),
                flux=float(f1), flux_err=ferr, dchi2=chi0 - chi1, dchi2_wide=chiw - chi1,
                dchi2_resolved=chir - chi1,
                n_pix=int(use.sum()) // 2, chi2=chi1, chi2_0=chi0,
                known=[(float(qf[3 * i] + x0), float(qf[3 * i + 1] + y0), float(qf[3 * i + 2]))
                       for i in range(nk)])


def offcentre_flux(image, centre, star, psf, *, rms, bad=None, exclude=None, known=(),
                   radius=None):
    """Flux (and its error) of a star at ``star`` in the asymmetric part of the light about
    ``centre``: the linear part of `fit_offcentre_star` with all positions fixed (used for
    the other bands); the fluxes of the ``known`` sources are fitted with it.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Background-subtracted image.
    centre, star : (float, float)
        Centre of symmetry and star position (x, y), 0-based pixels.
    psf : `~astro_enhance.stars.PSFModel`
        The PSF.
    rms : float or ndarray
        Per-pixel noise.
    bad, exclude : ndarray of bool, optional
        Pixels to leave out (with their mirror images).
    known : sequence of (float, float), optional
        Other point sources in the window, fitted at fixed positions.
    radius : float, optional
        Radius of the fitted disk about the centre (default ``max(3.5 FWHM, 6)``).

    Returns
    -------
    flux, flux_err : float
        NaN and inf when the window holds too few usable pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.stars import psf_from_fwhm
    >>> psf = psf_from_fwhm(2.5)
    >>> yy, xx = np.mgrid[0:41, 0:41]
    >>> img = 5.0 * np.exp(-np.hypot(xx - 20, yy - 20) / 3.0) + \\
    ...     30.0 * psf.evaluate(xx - 22.0, yy - 20.0)
    >>> f, e = offcentre_flux(img, (20.0, 20.0), (22.0, 20.0), psf, rms=0.05)
    >>> round(f, 1)
    30.0
    """
    img = np.asarray(image, dtype=np.float64)
    fwhm = float(psf.fwhm)
    R = float(radius) if radius is not None else max(3.5 * fwhm, 6.0)
    h = int(math.ceil(R)) + 2
    win, valid, rmsw, x0, y0 = _window(img, centre, h, rms, bad, exclude)
    cxw, cyw = float(centre[0]) - x0, float(centre[1]) - y0
    sx, sy = float(star[0]) - x0, float(star[1]) - y0
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]]
    xx = xx.astype(np.float64)
    yy = yy.astype(np.float64)
    from scipy import ndimage

    coef = ndimage.spline_filter(win, order=3, mode="nearest")
    mir, mok = _mirror(coef, valid, cxw, cyw, xx, yy)
    use = ((xx - cxw) ** 2 + (yy - cyw) ** 2 <= R ** 2) & valid & mok
    if use.sum() < 10:
        return float("nan"), float("inf")
    d = (win - mir)[use]
    px, py = xx[use], yy[use]
    cols = []
    for qx, qy in [(sx, sy)] + [(float(a) - x0, float(b) - y0) for a, b in known]:
        cols.append(psf.evaluate(px - qx, py - qy) -
                    psf.evaluate(2 * cxw - qx - px, 2 * cyw - qy - py))
    w = 1.0 / (math.sqrt(2.0) * np.maximum(rmsw[use], 1e-30))
    a = np.column_stack(cols) * w[:, None]
    ata = a.T @ a
    try:
        cov = np.linalg.inv(ata)
    except np.linalg.LinAlgError:
        return float("nan"), float("inf")
    f = cov @ (a.T @ (d * w))
    # each pixel appears twice (as p and as the mirror of 2c - p)
    return float(f[0]), float(math.sqrt(max(2.0 * cov[0, 0], 0.0)))
