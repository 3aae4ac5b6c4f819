"""Point-spread-function models for star removal.

A `PSFModel` is an *effective* PSF: a (possibly oversampled) array whose value at an offset
``(dx, dy)`` from the star centre is the fraction of the star's flux that falls in a native
pixel centred there. It comes from

* a seeing value (`psf_from_fwhm`: a pixel-integrated Moffat profile),
* an array given by the user (`psf_from_array`),
* a file (`read_psf`): a FITS image of the PSF, an SDSS ``psField`` file (KL-basis PSF
  reconstructed at a position) or a PsfEx ``.psf`` model (classic or Legacy Surveys merged),
* the image's own isolated stars (`build_epsf`, photutils' `~photutils.psf.EPSFBuilder`).

Beyond its array the model continues with a Moffat wing fitted to the array (or given), so
that bright stars can be rendered and masked out to large radii.
"""

import math
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..exceptions import FITSReadError, InputError

__all__ = ["PSFModel", "psf_from_fwhm", "psf_from_array", "read_psf", "build_epsf",
           "moffat_profile"]


def moffat_profile(r, fwhm, beta):
    """Moffat surface brightness normalised to unit total flux (per unit area in pixels).

    Parameters
    ----------
    r : ndarray
        Radius, pixels.
    fwhm : float
        Full width at half maximum, pixels.
    beta : float
        Moffat index (> 1).

    Returns
    -------
    ndarray
        Profile values; ``integral 2 pi r f(r) dr = 1``.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.linspace(0, 2000, 400001)
    >>> round(float(np.trapezoid(2 * np.pi * r * moffat_profile(r, 3.0, 3.0), r)), 4)
    1.0
    """
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    return (beta - 1.0) / (math.pi * alpha ** 2) * (1.0 + (np.asarray(r) / alpha) ** 2) ** (-beta)


class PSFModel:
    """An effective PSF sampled on an (optionally oversampled) grid, with Moffat wings.

    Parameters
    ----------
    data : ndarray, shape (n, n)
        PSF samples; the centre of the star is at the array centre ``((n - 1) / 2)``. It is
        normalised here so that the native-pixel samples sum to one.
    oversampling : int, optional
        Samples per native pixel along each axis.
    source : str, optional
        Where the model comes from (recorded in the catalogue metadata).
    wing_beta : float, optional
        Moffat index of the wings used beyond the array (default: fitted to the array,
        bounded to 2-6).

    Attributes
    ----------
    fwhm : float
        Full width at half maximum in native pixels, measured on the array: that of the
        effective (pixel-integrated) PSF, slightly larger than the optical FWHM.
    radius : float
        Half size of the array, native pixels.

    Examples
    --------
    >>> psf = psf_from_fwhm(3.0)
    >>> round(psf.fwhm, 1), round(float(psf.stamp(41).sum()), 2)
    (3.2, 1.0)
    """

    def __init__(self, data, *, oversampling=1, source="array", wing_beta=None):
        arr = np.array(data, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] < 3 or arr.shape[1] < 3:
            raise InputError(f"a PSF must be a 2-D array of at least 3 x 3 pixels, got shape "
                             f"{arr.shape}")
        if not np.isfinite(arr).all():
            arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        oversampling = int(oversampling)
        if oversampling < 1:
            raise InputError(f"oversampling must be a positive integer, got {oversampling}")
        # make it square and odd-sized around the peak-centred array centre
        n = max(arr.shape)
        if n % 2 == 0:
            n += 1
        if arr.shape != (n, n):
            pad = np.zeros((n, n))
            oy, ox = (n - arr.shape[0]) // 2, (n - arr.shape[1]) // 2
            pad[oy:oy + arr.shape[0], ox:ox + arr.shape[1]] = arr
            arr = pad
        total = arr.sum() / oversampling ** 2
        if not total > 0:
            raise InputError("the PSF array sums to zero or less: it cannot be a PSF")
        if oversampling < 4:
            # Spline-upsample coarse arrays once, so that the bilinear look-ups of
            # `evaluate` are accurate at sub-pixel offsets.
            f = int(math.ceil(4 / oversampling))
            c_old = (n - 1) / 2.0
            m = (n - 1) * f + 1
            g = (np.arange(m) - (m - 1) / 2.0) / f + c_old
            arr = ndimage.map_coordinates(arr, np.meshgrid(g, g, indexing="ij"), order=3,
                                          mode="constant", cval=0.0)
            oversampling *= f
            n = m
            total = arr.sum() / oversampling ** 2
        self.data = arr / total
        self.oversampling = oversampling
        self.source = str(source)
        self.radius = (n - 1) / 2.0 / oversampling
        self.fwhm = self._measure_fwhm()
        self.wing_beta = float(wing_beta) if wing_beta is not None else self._fit_wing_beta()
        self._wing_scale = self._match_wing()

    # -- measurements -------------------------------------------------------------------
    def _radial(self):
        n = self.data.shape[0]
        c = (n - 1) / 2.0
        yy, xx = np.mgrid[0:n, 0:n]
        r = np.hypot(xx - c, yy - c) / self.oversampling
        return r, self.data

    def _measure_fwhm(self):
        r, v = self._radial()
        peak = v.max()
        # half-maximum radius from the azimuthally averaged profile
        edges = np.arange(0, self.radius + 0.25, 0.25)
        idx = np.digitize(r.ravel(), edges)
        sums = np.bincount(idx, weights=v.ravel(), minlength=edges.size + 1)
        cnt = np.bincount(idx, minlength=edges.size + 1)
        good = cnt > 0
        prof = sums[good] / cnt[good]
        rr = np.concatenate([[0.0], edges])[:len(cnt)][good] + 0.125
        prof = np.maximum.accumulate(prof[::-1])[::-1]  # monotone outward
        half = 0.5 * max(peak, prof[0])
        below = np.nonzero(prof < half)[0]
        if below.size == 0:
            return float(2 * self.radius)
        k = below[0]
        if k == 0:
            return float(2 * rr[0])
        r0, r1, p0, p1 = rr[k - 1], rr[k], prof[k - 1], prof[k]
        rh = r0 + (half - p0) * (r1 - r0) / (p1 - p0) if p1 != p0 else r0
        return float(max(2 * rh, 0.5))

    def _fit_wing_beta(self):
        r, v = self._radial()
        sel = (r > 1.5 * self.fwhm) & (r < 0.9 * self.radius) & (v > 0)
        if sel.sum() < 10:
            return 3.0
        # log-log slope of the outer profile ~ -2 beta
        slope = np.polyfit(np.log(r[sel]), np.log(v[sel]), 1)[0]
        return float(np.clip(-slope / 2.0, 2.0, 6.0))

    def _match_wing(self):
        r, v = self._radial()
        sel = (r > 0.7 * self.radius) & (r < 0.95 * self.radius)
        ref = moffat_profile(r[sel], self.fwhm, self.wing_beta)
        if sel.sum() == 0 or ref.sum() <= 0:
            return 0.0
        return float(max(v[sel].sum() / ref.sum(), 0.0))

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, dx, dy, *, scale=1.0):
        """Fraction of the flux in native pixels centred at offsets ``(dx, dy)``.

        Parameters
        ----------
        dx, dy : ndarray
            Offsets from the star centre, native pixels (any matching shapes).
        scale : float, optional
            Stretch the PSF by this factor (templates of other sizes); flux is kept.

        Returns
        -------
        ndarray
            PSF values (float64), same shape as ``dx``.
        """
        dx = np.asarray(dx, dtype=np.float64) / scale
        dy = np.asarray(dy, dtype=np.float64) / scale
        n = self.data.shape[0]
        c = (n - 1) / 2.0
        u = c + dx * self.oversampling
        w = c + dy * self.oversampling
        inside = (u >= 0) & (u <= n - 1) & (w >= 0) & (w <= n - 1)
        out = np.zeros(dx.shape, dtype=np.float64)
        if inside.any():
            out[inside] = ndimage.map_coordinates(self.data, [w[inside], u[inside]], order=1,
                                                  mode="constant", cval=0.0, prefilter=False)
        if (~inside).any() and self._wing_scale > 0:
            r = np.hypot(dx[~inside], dy[~inside])
            out[~inside] = self._wing_scale * moffat_profile(r, self.fwhm, self.wing_beta)
        if scale != 1.0:
            out /= scale ** 2
        return out

    def stamp(self, size, *, dx=0.0, dy=0.0, scale=1.0):
        """The PSF on a native-pixel stamp.

        Parameters
        ----------
        size : int
            Side of the stamp (odd numbers keep the star on the central pixel).
        dx, dy : float, optional
            Sub-pixel offset of the star from the stamp centre.
        scale : float, optional
            Width factor (see `evaluate`).

        Returns
        -------
        ndarray, shape (size, size)
        """
        c = (size - 1) / 2.0
        yy, xx = np.mgrid[0:size, 0:size]
        return self.evaluate(xx - c - dx, yy - c - dy, scale=scale)

    def profile(self, r):
        """Azimuthally symmetric approximation of the PSF at radius ``r`` (pixels)."""
        r = np.asarray(r, dtype=np.float64)
        inner = self.evaluate(r, np.zeros_like(r))
        return np.where(r <= self.radius, inner,
                        self._wing_scale * moffat_profile(r, self.fwhm, self.wing_beta))

    def radius_at(self, flux, level):
        """Radius (pixels) beyond which a star of ``flux`` is fainter than ``level`` per pixel.

        Parameters
        ----------
        flux : float or ndarray
            Star flux.
        level : float or ndarray
            Per-pixel level (e.g. a fraction of the noise).

        Returns
        -------
        ndarray
            Radius in pixels (at least half the FWHM).
        """
        flux = np.asarray(flux, dtype=np.float64)
        level = np.broadcast_to(np.asarray(level, dtype=np.float64), flux.shape)
        # Conservative wings: real stars have aureoles that PSF cores do not model, so the
        # wing is never steeper than a Moffat of index 3 nor fainter than its fitted level.
        beta = min(self.wing_beta, 3.0)
        alpha = self.fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
        amp = max(self._wing_scale, 1.0) * (beta - 1.0) / (math.pi * alpha ** 2)
        ratio = np.maximum(np.abs(flux) * amp / np.maximum(level, 1e-30), 1.0)
        r = alpha * np.sqrt(np.maximum(ratio ** (1.0 / beta) - 1.0, 0.0))
        return np.maximum(r, 0.5 * self.fwhm)

    def __repr__(self):
        return (f"PSFModel(fwhm={self.fwhm:.2f} px, size={self.data.shape[0]}, "
                f"oversampling={self.oversampling}, source={self.source!r})")


def psf_from_fwhm(fwhm, *, beta=3.0, oversampling=4, radius=None):
    """A pixel-integrated Moffat PSF of given FWHM.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum of the Moffat profile, native pixels (> 0.5); the model's
        ``fwhm`` attribute is that of the pixel-integrated profile, a little larger.
    beta : float, optional
        Moffat index (3 is typical of ground-based seeing).
    oversampling : int, optional
        Samples per pixel of the model array.
    radius : float, optional
        Half size of the model array, pixels (default ``4 * fwhm``, at least 8).

    Returns
    -------
    PSFModel

    Raises
    ------
    astro_enhance.InputError
        If ``fwhm`` is not a positive finite number.

    Examples
    --------
    >>> round(psf_from_fwhm(4.0).fwhm, 1)
    4.2
    """
    try:
        fwhm = float(fwhm)
    except (TypeError, ValueError):
        raise InputError(f"fwhm must be a number of pixels, got {fwhm!r}") from None
    if not np.isfinite(fwhm) or fwhm <= 0.5:
        raise InputError(f"fwhm must be a finite number of pixels above 0.5, got {fwhm}")
    if radius is None:
        radius = max(8.0, 4.0 * fwhm)
    os_ = int(oversampling)
    half = int(math.ceil(radius * os_))
    n = 2 * half + 1
    # integrate over the native pixel on a 5x finer grid
    sub = 5
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    c = (n - 1) / 2.0
    g = (np.arange(n) - c) / os_
    acc = np.zeros((n, n))
    for oy in offs:
        for ox in offs:
            acc += moffat_profile(np.hypot(g[None, :] + ox, g[:, None] + oy), fwhm, beta)
    acc /= sub * sub
    return PSFModel(acc, oversampling=os_, source=f"moffat(fwhm={fwhm:.3g}px, beta={beta:g})",
                    wing_beta=beta)


def psf_from_array(array, *, oversampling=1, source="array"):
    """A PSF model from an image of the PSF.

    Parameters
    ----------
    array : ndarray, shape (n, m)
        The PSF, centred in the array (sky-subtracted; any normalisation).
    oversampling : int, optional
        Samples per native pixel.
    source : str, optional
        Description recorded with the model.

    Returns
    -------
    PSFModel

    Raises
    ------
    astro_enhance.InputError
        If the array is not 2-D or does not sum to a positive value.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[-10:11, -10:11]
    >>> psf = psf_from_array(np.exp(-(xx**2 + yy**2) / (2 * 1.5**2)))
    >>> round(psf.fwhm, 1)  # 2.355 sigma = 3.53, widened a little by the sampling
    3.6
    """
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"a PSF array must be 2-D, got {arr.ndim}-D of shape {arr.shape}")
    arr = np.where(np.isfinite(arr), arr, 0.0)
    return PSFModel(arr, oversampling=oversampling, source=source)


# -- files ------------------------------------------------------------------------------
_SDSS_FILTERS = ("u", "g", "r", "i", "z")


def read_psf(path, *, band=None, x=None, y=None):
    """Read a PSF from a file: a FITS PSF image, an SDSS psField or a PsfEx model.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file. The kind is recognised from its content: a FITS image HDU holding a 2-D
        array (the PSF itself), an SDSS ``psField`` (KL-basis PSFs of the five SDSS bands in
        table HDUs 1-5) or a PsfEx model (table with ``PSF_MASK``, classic or as merged by the
        Legacy Surveys pipeline).
    band : str, optional
        SDSS band (u, g, r, i, z) for a psField file (default r).
    x, y : float, optional
        Image position (0-based pixels) where a spatially varying model is evaluated (default:
        the centre of the model's range).

    Returns
    -------
    PSFModel

    Raises
    ------
    astro_enhance.FITSReadError
        If the file is missing or is not FITS.
    astro_enhance.InputError
        If the file is FITS but not one of the PSF kinds above, or lacks the band asked for.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from astropy.io import fits
    >>> path = os.path.join(tempfile.mkdtemp(), "psf.fits")
    >>> fits.PrimaryHDU(psf_from_fwhm(3.0).stamp(25)).writeto(path)
    >>> round(read_psf(path).fwhm, 1)
    3.2
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise FITSReadError(f"PSF file {str(path)!r} not found: give the path of a FITS PSF "
                            "image, an SDSS psField or a PsfEx .psf file")
    try:
        hdul = fits.open(path, memmap=False)
        hdul.verify("silentfix")
        _ = [h.header for h in hdul]
    except Exception as exc:  # noqa: BLE001 - any failure means: not a FITS file
        raise FITSReadError(f"PSF file {str(path)!r} is not a FITS file ({exc}); give a FITS "
                            "PSF image, an SDSS psField or a PsfEx .psf file") from None
    with hdul:
        kind = _psf_file_kind(hdul)
        if kind == "psfield":
            return _read_psfield(hdul, path, band=band, x=x, y=y)
        if kind == "psfex":
            return _read_psfex(hdul, path, x=x, y=y)
        if kind == "image":
            for h in hdul:
                if h.is_image and h.data is not None and np.asarray(h.data).ndim == 2:
                    osamp = int(h.header.get("OVERSAMP", h.header.get("OVERSAMPLING", 1)) or 1)
                    return psf_from_array(np.asarray(h.data, dtype=np.float64),
                                          oversampling=osamp, source=f"file {path.name}")
        shapes = [(h.name, h.__class__.__name__,
                   None if not h.is_image or h.data is None else h.data.shape) for h in hdul]
        raise InputError(f"{path.name} is not a PSF file: expected a 2-D FITS image of the PSF, "
                         f"an SDSS psField or a PsfEx .psf model; it holds {shapes}. For an "
                         "image of the sky, pass it as an image, not as psf=")


def _psf_file_kind(hdul):
    from astropy.io import fits

    names = []
    for h in hdul[1:]:
        if isinstance(h, fits.BinTableHDU):
            names.append({c.lower() for c in h.columns.names})
        else:
            names.append(set())
    if len(names) >= 5 and all({"rrows", "rnrow", "rncol", "c"} <= n for n in names[:5]):
        return "psfield"
    if any("psf_mask" in n for n in names):
        return "psfex"
    for h in hdul:
        if h.is_image and h.data is not None and np.asarray(h.data).ndim == 2:
            ny, nx = h.data.shape
            # a PSF image is small and peaked near its centre
            if ny <= 512 and nx <= 512:
                d = np.nan_to_num(np.asarray(h.data, dtype=np.float64))
                py, px = np.unravel_index(np.argmax(d), d.shape)
                if abs(py - (ny - 1) / 2) <= max(2, ny / 8) and \
                        abs(px - (nx - 1) / 2) <= max(2, nx / 8):
                    return "image"
            return None
    return None


def _read_psfield(hdul, path, *, band=None, x=None, y=None):
    band = "r" if band is None else str(band).strip().lower()
    if band not in _SDSS_FILTERS:
        raise InputError(f"SDSS psField files hold bands {', '.join(_SDSS_FILTERS)}; got "
                         f"band={band!r}")
    tab = hdul[1 + _SDSS_FILTERS.index(band)].data
    cols = {c.lower(): c for c in tab.columns.names}
    # position: row = y, col = x (0-based); default the frame centre (1489 x 2048 frames)
    rowc = 744.0 if y is None else float(y)
    colc = 1024.0 if x is None else float(x)
    psf = None
    for k in range(len(tab)):
        nrb = int(tab[cols["nrow_b"]][k])
        ncb = int(tab[cols["ncol_b"]][k])
        c = np.asarray(tab[cols["c"]][k], dtype=np.float64).reshape(5, 5)
        # acoeff_k = sum_i sum_j (0.001 rowc)^i (0.001 colc)^j C_k[i, j]  (photo's IDL
        # convention; FITS TDIM order makes numpy index [j, i])
        acoeff = 0.0
        for i in range(nrb):
            for j in range(ncb):
                acoeff += (0.001 * rowc) ** i * (0.001 * colc) ** j * c[j, i]
        nr = int(tab[cols["rnrow"]][k])
        nc = int(tab[cols["rncol"]][k])
        basis = np.asarray(tab[cols["rrows"]][k], dtype=np.float64).reshape(nr, nc)
        psf = acoeff * basis if psf is None else psf + acoeff * basis
    if psf is None:
        raise InputError(f"{path.name}: the psField holds no PSF basis for band {band}")
    # the KL PSF includes the soft-bias-free sky level 0 but may have a small pedestal
    edge = np.concatenate([psf[0], psf[-1], psf[:, 0], psf[:, -1]])
    psf = psf - np.median(edge)
    return psf_from_array(psf, source=f"SDSS psField {path.name} band {band}")


def _read_psfex(hdul, path, *, x=None, y=None):
    from astropy.io import fits

    for h in hdul[1:]:
        if isinstance(h, fits.BinTableHDU) and "psf_mask" in {c.lower() for c in
                                                              h.columns.names}:
            break
    else:  # pragma: no cover - guarded by _psf_file_kind
        raise InputError(f"{path.name}: no PSF_MASK column")
    hdr = h.header
    row = h.data[0]
    cols = {c.lower(): c for c in h.columns.names}

    def get(key, default=None):
        if key.lower() in cols:
            return row[cols[key.lower()]]
        return hdr.get(key.upper(), default)

    basis = np.asarray(row[cols["psf_mask"]], dtype=np.float64)
    if basis.ndim == 2:
        basis = basis[None]
    deg = int(get("POLDEG1", 0) or 0)
    naxis = int(get("POLNAXIS", 2) or 0)
    samp = float(get("PSF_SAMP", 1.0) or 1.0)
    terms = [1.0]
    if naxis >= 2 and deg > 0:
        z1, s1 = float(get("POLZERO1", 0.0)), float(get("POLSCAL1", 1.0))
        z2, s2 = float(get("POLZERO2", 0.0)), float(get("POLSCAL2", 1.0))
        # PsfEx positions are 1-based FITS pixels
        xs = 0.0 if x is None else (float(x) + 1.0 - z1) / s1
        ys = 0.0 if y is None else (float(y) + 1.0 - z2) / s2
        terms = []
        for j in range(deg + 1):
            for i in range(deg + 1 - j):
                terms.append(xs ** i * ys ** j)
    terms = np.asarray(terms[:basis.shape[0]])
    img = np.tensordot(terms, basis[:len(terms)], axes=1)
    src = f"PsfEx {path.name}"
    if abs(samp - 1.0) < 1e-3:
        return psf_from_array(img, source=src)
    inv = 1.0 / samp
    if abs(inv - round(inv)) < 1e-3:
        return psf_from_array(img, oversampling=int(round(inv)), source=src)
    # non-integer sampling: resample onto the native grid
    zoomed = ndimage.zoom(img, samp, order=3)
    return psf_from_array(zoomed, source=src)


# -- own stars --------------------------------------------------------------------------
def build_epsf(data, x, y, *, size=None, fwhm=None, oversampling=2, maxiters=4):
    """An effective PSF built from the image's own stars with photutils' EPSFBuilder.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Background-subtracted image.
    x, y : ndarray
        0-based positions of isolated, unsaturated, bright stars (5 or more).
    size : int, optional
        Side of the star cutouts (odd; default ``~8 FWHM``, 15-51 pixels).
    fwhm : float, optional
        Approximate FWHM in pixels, used for the default size.
    oversampling : int, optional
        Oversampling of the ePSF.
    maxiters : int, optional
        EPSFBuilder iterations.

    Returns
    -------
    PSFModel

    Raises
    ------
    astro_enhance.InputError
        If fewer than 5 stars can be cut out.

    Examples
    --------
    Six noiseless stars of FWHM 3 pixels (small cutouts, no oversampling, to be quick):

    >>> import numpy as np
    >>> psf = psf_from_fwhm(3.0)
    >>> img = np.zeros((60, 90), np.float32)
    >>> xs, ys = [15, 45, 75] * 2, [15] * 3 + [45] * 3
    >>> for x, y in zip(xs, ys):
    ...     img[y - 10:y + 11, x - 10:x + 11] += 1000 * psf.stamp(21)
    >>> epsf = build_epsf(img, xs, ys, size=15, oversampling=1, maxiters=2)
    >>> type(epsf).__name__, round(epsf.fwhm)
    ('PSFModel', 3)
    """
    from astropy.nddata import NDData
    from astropy.table import Table
    from photutils.psf import EPSFBuilder, extract_stars

    if size is None:
        f = 3.0 if fwhm is None else float(fwhm)
        size = int(np.clip(2 * int(4 * f) + 1, 15, 51))
    size = int(size) | 1
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    half = size // 2
    ny, nx = data.shape
    ok = (x > half) & (x < nx - 1 - half) & (y > half) & (y < ny - 1 - half)
    if ok.sum() < 5:
        raise InputError(f"only {int(ok.sum())} isolated stars away from the edges: an ePSF "
                         "needs 5 or more; give psf= or fwhm=")
    tab = Table({"x": x[ok], "y": y[ok]})
    clean = np.where(np.isfinite(data), data, 0.0).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stars = extract_stars(NDData(clean), tab, size=(size, size))
        builder = EPSFBuilder(oversampling=oversampling, maxiters=maxiters,
                              progress_bar=False, recentering_maxiters=10)
        epsf, _ = builder(stars)
    arr = np.asarray(epsf.data, dtype=np.float64)
    # the ePSF edges can carry small negative or positive pedestals: taper them
    n = arr.shape[0]
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - c, yy - c) / (c + 0.5)
    taper = np.clip((1.0 - r) / 0.15, 0.0, 1.0)
    arr = np.clip(arr, 0.0, None) * taper
    return PSFModel(arr, oversampling=oversampling,
                    source=f"ePSF from {int(ok.sum())} stars of the image")


def fit_moffat(data, x, y, *, fwhm, rms=1.0, radius=None, beta=3.0, beta_sigma=0.5):
    """Fit one circular Moffat PSF (FWHM and index) to a few stars at once.

    Each star has its own flux, sub-pixel position and constant background; the FWHM and
    Moffat index are shared. The model is integrated over the pixels (3 x 3 sub-samples).

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Background-subtracted image.
    x, y : ndarray
        Approximate 0-based positions of isolated, unsaturated stars (one or more).
    fwhm : float
        Starting FWHM, pixels.
    rms : float or ndarray, optional
        Per-pixel noise (scalar or map) weighting the fit.
    radius : float, optional
        Radius of the fitted stamps (default ``max(6, 3 * fwhm)``).
    beta : float, optional
        Starting value and prior mean of the Moffat index.
    beta_sigma : float, optional
        Width of the Gaussian prior on the index.

    Returns
    -------
    fwhm, beta : float
        Fitted values (pixels; index bounded to 1.5-10).

    Raises
    ------
    astro_enhance.InputError
        If no star stamp fits inside the image.
    """
    from scipy.optimize import least_squares

    arr = np.asarray(data, dtype=np.float64)
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    if radius is None:
        radius = max(6.0, 3.0 * fwhm)
    h = int(math.ceil(radius))
    ny, nx = arr.shape
    ok = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    x, y = x[ok], y[ok]
    if x.size == 0:
        raise InputError("no star inside the image to fit a PSF")
    g = np.arange(-h, h + 1)
    ix, iy = np.round(x).astype(int), np.round(y).astype(int)
    # NaN padding: stamps at the edges simply have fewer pixels
    padded = np.pad(arr, h, constant_values=np.nan)
    rmsmap = np.pad(np.broadcast_to(np.asarray(rms, float), arr.shape), h, mode="edge")
    stamps = np.stack([padded[j:j + 2 * h + 1, i:i + 2 * h + 1] for i, j in zip(ix, iy)])
    wts = np.stack([1.0 / rmsmap[j:j + 2 * h + 1, i:i + 2 * h + 1] for i, j in zip(ix, iy)])
    good = np.isfinite(stamps)
    stamps = np.where(good, stamps, 0.0)
    wts = np.where(good, wts, 0.0)
    sub = (np.arange(3) + 0.5) / 3 - 0.5
    gy, gx = np.meshgrid(g, g, indexing="ij")
    k = x.size

    def shapes(p):
        fw, be = p[0], p[1]
        alpha = fw / (2.0 * math.sqrt(2.0 ** (1.0 / be) - 1.0))
        amp = (be - 1.0) / (math.pi * alpha ** 2)
        dx = (x - ix + p[2::2])[:, None, None]
        dy = (y - iy + p[3::2])[:, None, None]
        acc = 0.0
        for oy in sub:
            for ox in sub:
                r2 = (gx[None] + ox - dx) ** 2 + (gy[None] + oy - dy) ** 2
                acc = acc + (1.0 + r2 / alpha ** 2) ** (-be)
        return amp * acc / 9.0

    def resid(p):
        # fluxes and backgrounds are linear: solved exactly for each trial shape
        t = shapes(p)
        w2 = wts ** 2
        stt = (w2 * t * t).sum(axis=(1, 2))
        st1 = (w2 * t).sum(axis=(1, 2))
        s11 = w2.sum(axis=(1, 2))
        std = (w2 * t * stamps).sum(axis=(1, 2))
        s1d = (w2 * stamps).sum(axis=(1, 2))
        det = stt * s11 - st1 ** 2
        det = np.where(np.abs(det) > 0, det, 1.0)
        f = (std * s11 - st1 * s1d) / det
        b = (stt * s1d - st1 * std) / det
        r = ((f[:, None, None] * t + b[:, None, None] - stamps) * wts).ravel()
        # weak prior on the index: few faint stars constrain it poorly, and ground-based
        # PSF wings have beta ~ 2.5-4
        return np.append(r, (p[1] - beta) / beta_sigma)

    p0 = [float(fwhm), float(beta)] + [0.0, 0.0] * k
    lo = [0.3 * fwhm, 1.5] + [-1.5, -1.5] * k
    hi = [3.0 * fwhm, 10.0] + [1.5, 1.5] * k
    sol = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=200)
    return float(sol.x[0]), float(sol.x[1])
