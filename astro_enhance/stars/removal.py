"""Removing stars: PSF fitting and subtraction, masks for bright stars, float inpainting.

* `fit_psf_photometry`: vectorised linear least-squares PSF photometry of all candidates at
  once (flux, sub-pixel position refinement, local plane background), with a few Jacobi
  sweeps so that blended neighbours are fitted together.
* `render_stars`: the sum of star models on the image grid (vectorised ``np.add.at``).
* `bright_star_mask`: halo disk grown with brightness, diffraction spikes found in polar
  coordinates, saturated cores and bleed trails.
* `inpaint`: OpenCV Navier-Stokes, a Telea-style fast-marching fill, or scikit-image
  biharmonic inpainting, all in float (the image is scaled by its noise, never quantised),
  with noise added back so the patch is not smoother than its surroundings.
"""

import functools
import math
import warnings

import numpy as np
from scipy import ndimage

from ..exceptions import InputError

__all__ = ["fit_psf_photometry", "render_stars", "bright_star_mask", "spike_directions",
           "inpaint", "INPAINT_METHODS"]

#: Inpainting methods accepted by `inpaint`.
INPAINT_METHODS = ("telea", "ns", "biharmonic")


# -- photometry -------------------------------------------------------------------------
def _stamp_indices(x, y, half, shape):
    ny, nx = shape
    g = np.arange(-half, half + 1)
    ix0 = np.round(x).astype(np.int64)
    iy0 = np.round(y).astype(np.int64)
    px = ix0[:, None, None] + g[None, None, :]
    py = iy0[:, None, None] + g[None, :, None]
    px, py = np.broadcast_arrays(px, py)
    inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    return px, py, inside


def fit_psf_photometry(data, x, y, psf, *, rms, radius=None, bad=None, n_iter=3,
                       refine=True, max_shift=1.0):
    """PSF photometry of many stars at once (linear least squares, vectorised).

    Each star is fitted on a disk of ``radius`` pixels with the model
    ``F * PSF(x - x0 - dx, y - y0 - dy) + b0 + bx * (x - x0) + by * (y - y0)``; the position
    shift is linearised (one Gauss-Newton step per sweep). Neighbours are handled by Jacobi
    sweeps: each star is refitted on the image minus the current models of all other stars.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image (background need not be subtracted: the local plane absorbs it).
    x, y : ndarray
        0-based starting positions.
    psf : `~astro_enhance.stars.PSFModel`
        The PSF.
    rms : ndarray or float
        Per-pixel noise (map or scalar).
    radius : float, optional
        Fit radius in pixels (default ``1.5 * FWHM``, at least 3).
    bad : ndarray of bool, optional
        Pixels excluded from the fits (saturated, NaN, masked).
    n_iter : int, optional
        Jacobi sweeps.
    refine : bool, optional
        Refine the positions (shifts larger than ``max_shift`` pixels are ignored).
    max_shift : float, optional
        Largest accepted position change, pixels.

    Returns
    -------
    dict
        ``flux``, ``flux_err``, ``x``, ``y`` (refined), ``chi2`` (reduced chi^2 of the residual
        in the fit disk), ``npix`` (pixels used), ``peak`` (model peak value per pixel).
    """
    arr = np.asarray(data, dtype=np.float64)
    x = np.array(x, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    n = x.size
    out = dict(flux=np.zeros(n), flux_err=np.full(n, np.inf), x=x.copy(), y=y.copy(),
               chi2=np.full(n, np.nan), npix=np.zeros(n, int), peak=np.zeros(n))
    if n == 0:
        return out
    if radius is None:
        radius = max(3.0, 2.5 * psf.fwhm)
    half = int(math.ceil(radius))
    rms_map = np.broadcast_to(np.asarray(rms, dtype=np.float64), arr.shape)
    badmask = ~np.isfinite(arr)
    if bad is not None:
        badmask = badmask | np.asarray(bad, dtype=bool)
    x0, y0 = x.copy(), y.copy()
    px, py, inside = _stamp_indices(x0, y0, half, arr.shape)
    pxc = np.clip(px, 0, arr.shape[1] - 1)
    pyc = np.clip(py, 0, arr.shape[0] - 1)
    D = np.where(inside, arr[pyc, pxc], 0.0)
    disk = (px - x0[:, None, None]) ** 2 + (py - y0[:, None, None]) ** 2 <= radius ** 2
    W = (inside & disk & ~badmask[pyc, pxc]).astype(np.float64)
    D = np.where(W > 0, D, 0.0)
    sig = rms_map[np.clip(np.round(y0).astype(int), 0, arr.shape[0] - 1),
                  np.clip(np.round(x0).astype(int), 0, arr.shape[1] - 1)]
    flux = np.zeros(n)
    # linear index of every stamp pixel, for scattering the models
    lin = (pyc * arr.shape[1] + pxc)
    model_img = np.zeros(arr.size)
    xc, yc = x0.copy(), y0.copy()
    for it in range(max(1, n_iter)):
        dxs = px - xc[:, None, None]
        dys = py - yc[:, None, None]
        T = psf.evaluate(dxs, dys)
        own = flux[:, None, None] * T
        others = model_img[lin] - np.where(inside, own, 0.0)
        Dl = D - np.where(W > 0, others, 0.0)
        gx = (px - x0[:, None, None]).astype(np.float64)
        gy = (py - y0[:, None, None]).astype(np.float64)
        cols = [T]
        do_refine = refine and it == 0
        if do_refine:
            h = 0.25
            Tx = (psf.evaluate(dxs - h, dys) - psf.evaluate(dxs + h, dys)) / (2 * h)
            Ty = (psf.evaluate(dxs, dys - h) - psf.evaluate(dxs, dys + h)) / (2 * h)
            cols += [Tx, Ty]
        cols += [np.ones_like(T), gx, gy]
        A = np.stack(cols, axis=-1).reshape(n, -1, len(cols))
        w = W.reshape(n, -1)
        b = Dl.reshape(n, -1)
        AtA = np.einsum("npi,np,npj->nij", A, w, A)
        Atb = np.einsum("npi,np,np->ni", A, w, b)
        AtA += np.eye(len(cols))[None] * 1e-12 * np.trace(AtA, axis1=1, axis2=2)[:, None, None]
        ok = np.linalg.matrix_rank(AtA) == len(cols)
        sol = np.zeros((n, len(cols)))
        if ok.any():
            sol[ok] = np.linalg.solve(AtA[ok], Atb[ok][..., None])[..., 0]
        new_flux = sol[:, 0]
        if do_refine:
            with np.errstate(divide="ignore", invalid="ignore"):
                sx = np.where(new_flux > 0, sol[:, 1] / new_flux, 0.0)
                sy = np.where(new_flux > 0, sol[:, 2] / new_flux, 0.0)
            good = (np.hypot(sx, sy) <= max_shift) & np.isfinite(sx) & np.isfinite(sy)
            xc = np.where(good, xc + sx, xc)
            yc = np.where(good, yc + sy, yc)
            # re-evaluate the template at the refined positions for this sweep's flux
            T = psf.evaluate(px - xc[:, None, None], py - yc[:, None, None])
            A = np.stack([T, np.ones_like(T), gx, gy], axis=-1).reshape(n, -1, 4)
            AtA = np.einsum("npi,np,npj->nij", A, w, A)
            Atb = np.einsum("npi,np,np->ni", A, w, b)
            AtA += np.eye(4)[None] * 1e-12 * np.trace(AtA, axis1=1, axis2=2)[:, None, None]
            ok = np.linalg.matrix_rank(AtA) == 4
            sol = np.zeros((n, 4))
            if ok.any():
                sol[ok] = np.linalg.solve(AtA[ok], Atb[ok][..., None])[..., 0]
            new_flux = sol[:, 0]
        # damped update keeps the Jacobi sweeps stable in crowded fields
        flux = new_flux if it == 0 else 0.5 * flux + 0.5 * new_flux
        model_img = np.zeros(arr.size)
        np.add.at(model_img, lin[inside], (flux[:, None, None] * T)[inside])
        last = (A, w, b, sol, AtA, ok, T)
    A, w, b, sol, AtA, ok, T = last
    resid = b - np.einsum("npi,ni->np", A, sol)
    core = (((px - xc[:, None, None]) ** 2 + (py - yc[:, None, None]) ** 2)
            <= (1.5 * psf.fwhm) ** 2).reshape(n, -1)
    wc = w * core
    npar = A.shape[-1]
    dof = np.maximum(wc.sum(axis=1) - npar, 1)
    chi2 = (wc * resid ** 2).sum(axis=1) / (sig ** 2) / dof
    err = np.full(n, np.inf)
    if ok.any():
        inv = np.linalg.inv(AtA[ok])
        err[ok] = np.sqrt(np.maximum(inv[:, 0, 0], 0)) * sig[ok]
    out.update(flux=flux, flux_err=err, x=xc, y=yc, chi2=chi2, npix=w.sum(axis=1).astype(int),
               peak=flux * psf.evaluate(np.zeros(1), np.zeros(1))[0])
    return out


def render_stars(shape, x, y, flux, psf, *, radius, out=None):
    """Sum of PSF models on an image grid.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    x, y, flux : ndarray
        0-based positions and fluxes.
    psf : `~astro_enhance.stars.PSFModel`
        The PSF.
    radius : float or ndarray
        Render radius of each star, pixels (stars are grouped by radius so that the work
        stays vectorised).
    out : ndarray, optional
        Array to add into (float64).

    Returns
    -------
    ndarray, float64, shape ``shape``
    """
    if out is None:
        out = np.zeros(shape, dtype=np.float64)
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    flux = np.atleast_1d(np.asarray(flux, float))
    rad = np.broadcast_to(np.asarray(radius, float), x.shape)
    if x.size == 0:
        return out
    # radius classes: powers of two from 4 pixels
    cls = np.ceil(np.log2(np.maximum(rad, 4.0))).astype(int)
    flat = out.ravel()
    for c in np.unique(cls):
        sel = cls == c
        half = int(2 ** c)
        # keep the stamp memory bounded (~16 M values per chunk)
        per = (2 * half + 1) ** 2
        chunk = max(1, int(16e6 // per))
        idx = np.nonzero(sel)[0]
        for s in range(0, idx.size, chunk):
            j = idx[s:s + chunk]
            px, py, inside = _stamp_indices(x[j], y[j], half, shape)
            r2 = (px - x[j, None, None]) ** 2 + (py - y[j, None, None]) ** 2
            keep = inside & (r2 <= rad[j, None, None] ** 2)
            vals = flux[j, None, None] * psf.evaluate(px - x[j, None, None],
                                                      py - y[j, None, None])
            np.add.at(flat, (py * shape[1] + px)[keep], vals[keep])
    return out


# -- masks ------------------------------------------------------------------------------
def spike_directions(resid, x, y, *, r_in, r_out, rms, fwhm, n_theta=720, min_len=None,
                     z=1.5):
    """Diffraction spikes of a bright star, found as persistent angular excesses.

    The image around the star is resampled in polar coordinates; at each radius the
    azimuthal median (the symmetric halo, smooth galaxy light) is subtracted and the excess
    is divided by the robust azimuthal spread. A direction whose *median* excess over the
    first ``min_len`` pixels of radius exceeds ``z`` is a spike (a neighbouring star raises
    the excess over only a few pixels of radius, so it does not move the median) if the
    opposite direction shows at least a third of that (spikes come from diffraction by the
    secondary-mirror supports, in symmetric pairs). Its length is where a running median of
    the excess along it falls below 0.7.

    Parameters
    ----------
    resid : ndarray
        Image with the other stars subtracted (NaN allowed).
    x, y : float
        Star position.
    r_in, r_out : float
        Radii (pixels) between which spikes are searched.
    rms : float
        Noise per pixel near the star.
    fwhm : float
        PSF FWHM, pixels.
    n_theta : int, optional
        Angular samples.
    min_len : float, optional
        Radial extent over which the excess is measured (default ``max(30, 10 * fwhm)``).
    z : float, optional
        Median excess (robust sigmas) of a spike.

    Returns
    -------
    list of (float, float)
        ``(angle_radians, length_pixels)`` of each spike, angle from +x towards +y.
    """
    if min_len is None:
        min_len = max(30.0, 10.0 * fwhm)
    r_out = float(r_out)
    r_in = float(r_in)
    if r_out - r_in < 10:
        return []
    img = np.asarray(resid, dtype=np.float64)
    theta = np.linspace(0.0, 2 * np.pi, n_theta, endpoint=False)
    r = np.arange(r_in, r_out, 1.0)
    xx = x + r[:, None] * np.cos(theta)[None, :]
    yy = y + r[:, None] * np.sin(theta)[None, :]
    ny, nx = img.shape
    inside = (xx >= 0) & (xx <= nx - 1) & (yy >= 0) & (yy <= ny - 1)
    V = ndimage.map_coordinates(np.nan_to_num(img), [yy, xx], order=1, mode="nearest")
    fin = ndimage.map_coordinates(np.isfinite(img).astype(float), [yy, xx], order=0,
                                  mode="nearest") > 0
    V = np.where(inside & fin, V, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = _nanmedian(V, axis=1)[:, None]
        mad = 1.4826 * _nanmedian(np.abs(V - med), axis=1)[:, None]
        spread = np.maximum(np.nan_to_num(mad, nan=rms), rms)
        E = (V - med) / spread
        nlen = int(min(len(r), max(min_len, 10)))
        M = _nanmedian(E[:nlen], axis=0)
    M = np.nan_to_num(M, nan=0.0)
    Ms = ndimage.uniform_filter1d(M, 3, mode="wrap")
    E = np.where(np.isfinite(E), E, 0.0)
    peaks = (Ms >= z) & (Ms == ndimage.maximum_filter1d(Ms, int(n_theta / 36), mode="wrap"))
    # (within 15 degrees: a centre off by a pixel or two tilts the pair seen from it)
    opp = ndimage.maximum_filter1d(np.roll(Ms, n_theta // 2), int(n_theta * 30 / 360) | 1,
                                   mode="wrap")
    peaks &= opp >= z / 3.0
    out = []
    used = []
    for k in np.nonzero(peaks)[0][np.argsort(-Ms[peaks])]:
        t = theta[k]
        if any(abs((t - u + np.pi) % (2 * np.pi) - np.pi) < np.radians(5) for u in used):
            continue
        used.append(t)
        ks = [(k + d) % n_theta for d in (-1, 0, 1)]
        prof = E[:, ks].max(axis=1)
        run = ndimage.median_filter(prof, size=9, mode="nearest")
        above = np.nonzero(run > 0.7)[0]
        length = float(r[above[-1]]) if above.size else float(r[nlen - 1])
        # stop at the first long gap (a chance alignment further out is not the spike)
        if above.size > 1:
            gaps = np.nonzero(np.diff(above) > max(10, 2 * fwhm))[0]
            if gaps.size:
                length = float(r[above[gaps[0]]])
        out.append((float(t), max(length, r_in + 5.0)))
    return sorted(out)


def _nanmedian(a, axis):
    """``np.nanmedian`` along one axis of a 2-D array, vectorised (NumPy's falls back to a
    Python loop over the other axis when NaNs are present)."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    srt = np.sort(a, axis=-1)  # NaNs last
    cnt = np.isfinite(a).sum(axis=-1)
    lo = np.clip((cnt - 1) // 2, 0, a.shape[-1] - 1)
    hi = np.clip(cnt // 2, 0, a.shape[-1] - 1)
    v = 0.5 * (np.take_along_axis(srt, lo[..., None], -1)[..., 0]
               + np.take_along_axis(srt, hi[..., None], -1)[..., 0])
    return np.where(cnt > 0, v, np.nan)


def _segment_mask(shape, x, y, angle, length, halfwidth, r0=0.0):
    ny, nx = shape
    ex, ey = math.cos(angle), math.sin(angle)
    x1, y1 = x + length * ex, y + length * ey
    pad = halfwidth + 1
    xa, xb = int(max(0, math.floor(min(x, x1) - pad))), int(min(nx, math.ceil(max(x, x1) + pad)))
    ya, yb = int(max(0, math.floor(min(y, y1) - pad))), int(min(ny, math.ceil(max(y, y1) + pad)))
    m = np.zeros(shape, bool)
    if xb <= xa or yb <= ya:
        return m
    yy, xx = np.mgrid[ya:yb, xa:xb]
    t = (xx - x) * ex + (yy - y) * ey
    d = np.abs(-(xx - x) * ey + (yy - y) * ex)
    # spikes broaden a little outwards
    hw = halfwidth * (1.0 + 0.5 * np.clip(t / max(length, 1.0), 0, 1))
    m[ya:yb, xa:xb] = (t >= r0) & (t <= length) & (d <= hw)
    return m


def bright_star_mask(resid, x, y, flux, psf, *, rms, saturated=None, spikes=True,
                     level=0.5, max_radius=None, add_back=0.0, add_back_radius=None,
                     labels=None):
    """Mask of a bright star: halo disk grown with brightness, spikes, saturated trails.

    Everything is measured in a window around the star just large enough for the longest
    halo and spike search, so the cost does not grow with the image size.

    Parameters
    ----------
    resid : ndarray
        Image with the *other* stars subtracted (or, with ``add_back``, with every star
        subtracted).
    x, y, flux : float
        Star position and flux.
    psf : `~astro_enhance.stars.PSFModel`
        PSF (its wings set the halo radius).
    rms : float
        Local noise per pixel.
    saturated : ndarray of bool, optional
        Saturated pixels of the image; the connected region under the star (its core and
        bleed trails) is masked, grown by a margin.
    spikes : bool, optional
        Search and mask diffraction spikes.
    level : float, optional
        The halo is masked out to where the star falls below ``level * rms`` per pixel.
    max_radius : float, optional
        Cap on the halo radius (default a quarter of the image's larger side, at least 10).
    add_back : float, optional
        Flux of this star's PSF model to add back to ``resid`` (in the window only) when
        ``resid`` has every star subtracted.
    add_back_radius : float, optional
        Render radius of that model (default the radius where it falls to 5% of ``rms``).
    labels : ndarray of int, optional
        ``scipy.ndimage.label`` of ``saturated`` (8-connected), when already computed for
        several stars.

    Returns
    -------
    mask : ndarray of bool
    info : dict
        ``radius`` (halo radius, pixels), ``spikes`` (list of (angle, length)),
        ``bleed`` (number of saturated pixels masked).
    """
    shape = np.shape(resid)
    ny, nx = shape
    if max_radius is None:
        max_radius = max(10.0, 0.25 * max(shape))
    r_model = float(psf.radius_at(flux, level * rms))
    # data-driven extension: azimuthal median above level*rms (the aureoles of real stars
    # reach far beyond PSF-core models), within 4 model radii (at least 40 pixels)
    r_cap = max(4.0 * r_model, 40.0)
    # the window: the largest halo radius, the halo profile and the spike search all fit
    rad_hi = min(max(r_model, r_cap) + 0.5 * psf.fwhm, max_radius)
    r_out_hi = min(6.0 * rad_hi + 20.0, 0.75 * max(shape)) if spikes else 0.0
    half = int(math.ceil(max(rad_hi, r_out_hi, 1.5 * r_cap + 10) + 2 * psf.fwhm + 4))
    y0, y1 = int(max(0, math.floor(y) - half)), int(min(ny, math.floor(y) + half + 2))
    x0, x1 = int(max(0, math.floor(x) - half)), int(min(nx, math.floor(x) + half + 2))
    img = np.array(resid[y0:y1, x0:x1], dtype=np.float64)
    lx, ly = x - x0, y - y0
    if add_back:
        ab_r = add_back_radius if add_back_radius is not None else \
            max(1.5 * psf.fwhm, float(psf.radius_at(abs(add_back), 0.05 * rms)))
        img += render_stars(img.shape, [lx], [ly], [add_back], psf, radius=ab_r)
    r_data = _halo_radius_from_data(img, lx, ly, rms * level, r_cap, fwhm=psf.fwhm,
                                    rmax_limit=max(shape))
    radius = float(min(max(r_model, min(r_data, r_cap)) + 0.5 * psf.fwhm, max_radius))
    yy, xx = np.ogrid[0:img.shape[0], 0:img.shape[1]]
    local = (xx - lx) ** 2 + (yy - ly) ** 2 <= radius ** 2
    mask = np.zeros(shape, bool)
    info = dict(radius=radius, spikes=[], bleed=0)
    if saturated is not None and saturated.any():
        lab = labels if labels is not None else \
            ndimage.label(saturated, structure=np.ones((3, 3)))[0]
        r_look = max(2.0, psf.fwhm)
        ya, yb = int(max(0, math.floor(y - r_look))), int(min(ny, math.ceil(y + r_look) + 1))
        xa, xb = int(max(0, math.floor(x - r_look))), int(min(nx, math.ceil(x + r_look) + 1))
        ids = np.unique(lab[ya:yb, xa:xb])
        ids = ids[ids > 0]
        if ids.size:
            grow = int(max(2, math.ceil(0.75 * psf.fwhm)))
            objs = ndimage.find_objects(lab, max_label=int(ids.max()))
            sl = [objs[i - 1] for i in ids if objs[i - 1] is not None]
            sy0 = max(0, min(q[0].start for q in sl) - grow - 1)
            sy1 = min(ny, max(q[0].stop for q in sl) + grow + 1)
            sx0 = max(0, min(q[1].start for q in sl) - grow - 1)
            sx1 = min(nx, max(q[1].stop for q in sl) + grow + 1)
            sat = np.isin(lab[sy0:sy1, sx0:sx1], ids)
            sat = ndimage.binary_dilation(sat, structure=np.ones((3, 3)), iterations=grow)
            info["bleed"] = int(sat.sum())
            mask[sy0:sy1, sx0:sx1] |= sat
    if spikes:
        r_in = max(2.0 * psf.fwhm, 0.5 * radius)
        r_out = min(6.0 * radius + 20.0, 0.75 * max(shape))
        sp = spike_directions(img, lx, ly, r_in=r_in, r_out=r_out, rms=rms, fwhm=psf.fwhm)
        hw = 0.75 * psf.fwhm + 1.0
        for ang, length in sp:
            local |= _segment_mask(img.shape, lx, ly, ang, length + psf.fwhm, hw)
        info["spikes"] = sp
    mask[y0:y1, x0:x1] |= local
    return mask, info


def _halo_radius_from_data(img, x, y, level, r_cap, *, fwhm, rmax_limit=None):
    ny, nx = img.shape
    r_model = r_cap
    rmax = int(min(1.5 * r_cap + 10, rmax_limit if rmax_limit is not None else max(ny, nx)))
    y0, y1 = int(max(0, y - rmax)), int(min(ny, y + rmax + 1))
    x0, x1 = int(max(0, x - rmax)), int(min(nx, x + rmax + 1))
    sub = img[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(xx - x, yy - y).astype(int)
    fin = np.isfinite(sub) & (r <= rmax)
    if not fin.any():
        return r_model
    rr = r[fin]
    vv = sub[fin]
    # azimuthal medians per integer radius, all at once: sort by (radius, value), and take
    # the middle element(s) of each radius bin
    order = np.lexsort((vv, rr))
    rr, vv = rr[order], vv[order]
    bounds = np.searchsorted(rr, np.arange(rmax + 2))
    a, b = bounds[:-1], bounds[1:]
    cnt = b - a
    lo = np.clip(a + (cnt - 1) // 2, 0, max(vv.size - 1, 0))
    hi = np.clip(a + cnt // 2, 0, max(vv.size - 1, 0))
    meds = np.where(cnt >= 8, 0.5 * (vv[lo] + vv[hi]), np.nan)
    meds[:int(max(1, fwhm))] = np.nan
    # outer level (sky or galaxy plateau): median of the outermost quarter
    outer = meds[int(0.75 * rmax):]
    base = np.nanmedian(outer) if np.isfinite(outer).any() else 0.0
    above = np.nonzero(np.nan_to_num(meds - base, nan=-np.inf) > level)[0]
    if above.size == 0:
        return r_model
    # first radius where it drops below the level for good (3 consecutive radii)
    k = int(above[0])
    last = k
    for j in above:
        if j - last > 3:
            break
        last = j
    return float(last + 1)


# -- inpainting -------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _cv2_telea_float_ok():
    """OpenCV 5.0's Telea inpainting returns garbage on float32 images: check once."""
    try:
        import cv2
        c = np.full((40, 40), 5.0, np.float32)
        m = np.zeros((40, 40), np.uint8)
        m[15:25, 15:25] = 1
        r = cv2.inpaint(c, m, 3, cv2.INPAINT_TELEA)
        return bool(np.allclose(r, 5.0, atol=1e-3))
    except Exception:  # noqa: BLE001 - any failure: use the numpy fill
        return False


def _onion_fill(img, mask, radius):
    """Telea-style fast-marching fill: layers of increasing distance from the known pixels,
    each pixel the distance-weighted mean of the known pixels within ``radius``."""
    out = img.copy()
    if not mask.any():
        return out
    dist = ndimage.distance_transform_edt(mask)
    rad = int(max(1, radius))
    g = np.arange(-rad, rad + 1)
    oy, ox = np.meshgrid(g, g, indexing="ij")
    d2 = (ox ** 2 + oy ** 2).astype(np.float64)
    keep = (d2 <= rad * rad) & (d2 > 0)
    oy, ox, kw = oy[keep], ox[keep], 1.0 / d2[keep]
    ny, nx = img.shape
    known = ~mask
    pad = rad
    outp = np.pad(out, pad)
    knp = np.pad(known, pad)
    level = np.ceil(dist).astype(int)
    order = np.argsort(level[mask], kind="stable")
    ys, xs = np.nonzero(mask)
    ys, xs, lv = ys[order], xs[order], level[mask][order]
    bounds = np.searchsorted(lv, np.arange(1, lv.max() + 2))
    start = 0
    for b in bounds:
        if b <= start:
            continue
        py, px = ys[start:b] + pad, xs[start:b] + pad
        yy = py[:, None] + oy[None, :]
        xx = px[:, None] + ox[None, :]
        w = knp[yy, xx] * kw[None, :]
        sw = w.sum(axis=1)
        vals = (outp[yy, xx] * w).sum(axis=1)
        res = np.where(sw > 0, vals / np.where(sw > 0, sw, 1), 0.0)
        outp[py, px] = res
        knp[py, px] = sw > 0
        start = b
    return outp[pad:pad + ny, pad:pad + nx]


def inpaint(image, mask, *, method="telea", radius=None, noise=None, rng=None):
    """Fill masked pixels from their surroundings, in float, adding noise back.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Image; NaN pixels outside ``mask`` stay NaN.
    mask : ndarray of bool
        Pixels to fill.
    method : {"telea", "ns", "biharmonic"}, optional
        ``"telea"``: fast-marching fill of Telea (2004) -- OpenCV's when it handles float32
        images correctly, else an equivalent numpy implementation (OpenCV 5.0's float Telea
        is broken); ``"ns"``: OpenCV's Navier-Stokes method; ``"biharmonic"``:
        `skimage.restoration.inpaint_biharmonic` (smoothest, slowest).
    radius : float, optional
        Neighbourhood radius of Telea/NS, pixels (default 5).
    noise : float or ndarray, optional
        Per-pixel noise to add back inside the mask (none when None).
    rng : `numpy.random.Generator` or int, optional
        Random generator for the noise.

    Returns
    -------
    ndarray, float32
        Inpainted image; the image is scaled by its noise for OpenCV and never quantised.

    Raises
    ------
    astro_enhance.InputError
        Unknown ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    >>> m = np.zeros(img.shape, bool); m[10:20, 10:20] = True
    >>> out = inpaint(img, m, method="biharmonic")
    >>> bool(np.abs(out - img)[m].max() < 1e-4)
    True
    """
    if method not in INPAINT_METHODS:
        raise InputError(f"unknown inpaint method {method!r}: use one of "
                         f"{', '.join(INPAINT_METHODS)}")
    img = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    nan = ~np.isfinite(img)
    out = img.copy()
    if not mask.any():
        return out.astype(np.float32)
    radius = 5 if radius is None else max(1, int(round(radius)))
    # work on the bounding box of the mask plus a margin
    ys, xs = np.nonzero(mask)
    m = 3 * radius + 2
    y0, y1 = max(0, ys.min() - m), min(img.shape[0], ys.max() + m + 1)
    x0, x1 = max(0, xs.min() - m), min(img.shape[1], xs.max() + m + 1)
    sub = img[y0:y1, x0:x1]
    msub = mask[y0:y1, x0:x1]
    nsub = nan[y0:y1, x0:x1]
    fill_mask = msub | nsub
    # scale to noise units around a robust offset, so float32 keeps full precision
    good = sub[~fill_mask]
    if good.size == 0:
        offset, scale = 0.0, 1.0
    else:
        offset = float(np.median(good))
        scale = float(1.4826 * np.median(np.abs(good - offset))) or float(np.std(good)) or 1.0
    z = np.where(fill_mask, 0.0, (sub - offset) / scale)
    if method == "biharmonic":
        from skimage.restoration import inpaint_biharmonic
        filled = inpaint_biharmonic(z, fill_mask, split_into_regions=True)
    elif method == "ns" or (method == "telea" and _cv2_telea_float_ok()):
        import cv2
        flag = cv2.INPAINT_NS if method == "ns" else cv2.INPAINT_TELEA
        filled = cv2.inpaint(z.astype(np.float32), fill_mask.astype(np.uint8), radius,
                             flag).astype(np.float64)
    else:
        filled = _onion_fill(z, fill_mask, radius)
    res = filled * scale + offset
    block = out[y0:y1, x0:x1]
    block[msub] = res[msub]
    if noise is not None:
        gen = np.random.default_rng(rng)
        nz = np.broadcast_to(np.asarray(noise, dtype=np.float64), img.shape)[y0:y1, x0:x1]
        block[msub] += gen.standard_normal(int(msub.sum())) * nz[msub]
    out[nan & ~mask] = np.nan
    return out.astype(np.float32)
