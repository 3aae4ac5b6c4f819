"""`remove_stars`: the star-removal pipeline and its result record.

Steps (see the narrative docs, ``docs/star_removal.rst``): read the bands (resampled onto the
first one's grid when needed) -> background and noise (photutils) -> PSF (given, from a seeing
value, or built from the image's own isolated stars) -> candidates (DAOStarFinder on the
signal-to-noise image, plus saturated regions) -> multi-scale template matching
(``cv2.matchTemplate``) -> PSF photometry in every band (colours) -> decision (star, galaxy
knot, galaxy core, other galaxy), protecting the target galaxy -> removal: fitted-PSF
subtraction of unsaturated stars, masking and float inpainting (with noise added back) of
saturated cores, bright halos, diffraction spikes and bleed trails.
"""

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exceptions import AstroEnhanceWarning, InputError, NoStarsWarning, WCSError
from . import decide as _decide
from .detection import (background_and_noise, find_candidates, galaxy_footprint,
                        saturated_regions, saturation_level)
from .matching import DEFAULT_SCALES, match_scores, psf_extent
from .psf import PSFModel, build_epsf, fit_moffat, psf_from_array, psf_from_fwhm, read_psf
from .removal import (INPAINT_METHODS, bright_star_mask, fit_psf_photometry, inpaint,
                      render_stars)

__all__ = ["remove_stars", "StarRemovalResult", "METHODS"]

#: Removal methods accepted by `remove_stars`.
METHODS = ("auto", "subtract", "inpaint")

#: In ``method="auto"``, stars whose fitted peak exceeds this many noise sigmas are masked
#: and inpainted (their halos and spikes go beyond what a PSF model subtracts well).
BRIGHT_PEAK_SNR = 1000.0

#: Lowest PSF score (scale 1, best scale at most 1.25) of a point source in the image minus
#: the core's symmetric light for it to be a star beside the core.
SYM_MIN_SCORE = 0.9

#: A star on or beside the protected core, fitted in the light's asymmetry about the
#: galaxy's centre of symmetry, is kept when its flux is at least this many errors (and the
#: fit's chi-square gain at least its square) ...
CORE_STAR_SNR = 20.0
#: ... or, down to this many errors (but `CORE_STAR_SNR` within `CORE_STAR_CORE_OFFSET`
#: FWHM of the centre), when it is also sharp (`CORE_STAR_SHARP`) ...
CORE_STAR_SNR_SHARP = 10.0
#: ... and it lies at least this many FWHM from the centre (closer in, a star and a
#: slightly off-centre core make the same asymmetry).
CORE_STAR_MIN_OFFSET = 0.35
#: On an elongated galaxy (smooth light's axis ratio below `ELONGATED_AXIS_RATIO`), a star
#: found at the candidate taken for the core must lie this many FWHM from the fitted centre
#: (the core of an edge-on disk with knots sits up to about half a FWHM off the centre of
#: symmetry of the outer light) -- unless it is bright, `CORE_STAR_SNR` errors, and sharp:
#: a template 1.3 times wider than the PSF fits it worse by `CORE_STAR_RESOLVED_DCHI2` or
#: more (a star on the core, not a lopsided core). A star at the core candidate is never
#: taken when the galaxy's centre had to be refitted with a freer bound: the centre of
#: symmetry of the outer light was off, and what is found at the core candidate from there
#: is the core.
CORE_STAR_CORE_OFFSET = 0.6
ELONGATED_AXIS_RATIO = 0.5
#: ... and it explains at least this fraction of the asymmetry's chi-square above the noise
#: (an imperfectly subtracted bright neighbour, arms or knots leave asymmetries that one
#: point source does not explain).
CORE_STAR_EXPLAINED = 0.6
#: ... sharp: the PSF fits it better than a template 1.6 times wider by at least this
#: fraction of its own chi-square gain (a star is sharp; an extended asymmetry -- a knot
#: cluster, an arm, a lopsided core -- fits the wider template almost as well).
CORE_STAR_SHARP = 0.1
#: ... and, within `CORE_STAR_RESOLVED_OFFSET` FWHM of the fitted centre, it is not
#: resolved: refused when a template 1.3 times wider than the PSF fits the asymmetry better
#: by this much chi-square or more (a core a little off the centre of symmetry of the outer
#: light; farther out, true stars beside the core fit that template better about as often
#: as blends of knots do, so the test is not made there).
CORE_STAR_RESOLVED_DCHI2 = 9.0
CORE_STAR_RESOLVED_OFFSET = 0.7
#: Candidates within this many FWHM of the centre are where such a star is looked for (and
#: anywhere within that distance when no candidate is there); farther ones are either fitted
#: with it (sharp point sources) or left out.
CORE_STAR_SEARCH = 3.5

_RGB_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class StarRemovalResult:
    """What `remove_stars` returns.

    Attributes
    ----------
    clean : ndarray, float32
        The image without its stars: ``(ny, nx)`` for one band, ``(nband, ny, nx)`` when
        ``bands=`` were given (the main image first), ``(ny, nx, 3)`` for an RGB input.
    stars : ndarray, float32
        What was removed (``input - clean``), same shape as ``clean``.
    mask : ndarray of bool, shape (ny, nx)
        Pixels changed by the removal: inpainted pixels and pixels where a subtracted star
        model exceeds the noise.
    inpainted : ndarray of bool, shape (ny, nx)
        The masked-and-inpainted pixels only.
    catalog : `~astropy.table.QTable`
        One row per candidate (stars and what was kept): ``id``, ``x``, ``y`` (0-based
        pixels), ``sky`` (`~astropy.coordinates.SkyCoord`, when there is a WCS), ``flux``,
        ``flux_err``, ``snr``, ``peak_snr``, ``score`` and ``scale`` (best template match),
        ``score1`` (match at the PSF scale), ``colour`` (magnitude differences of consecutive
        bands, NaN with one band), ``decision`` (star, knot, core, galaxy), ``reason``,
        ``removal`` (subtract, inpaint or empty), ``saturated``, ``on_galaxy``, ``chi2``,
        ``extent`` and ``extent_dchi2`` (best-fitting width in PSF units and its chi-square
        gain, `~astro_enhance.stars.psf_extent`, for sources on the protected galaxy that
        could be stars; NaN elsewhere), ``mask_radius``; per-band fluxes ``flux_<band>``
        with several bands. ``meta`` records the PSF, thresholds and method.
    psf : `~astro_enhance.stars.PSFModel` or list of them
        PSF used (one per band).
    band_names : list of str
        Band (or channel) names.
    wcs : `~astropy.wcs.WCS` or None
        WCS of the grid.
    header : `~astropy.io.fits.Header`
        Header of the main image (copy).
    unit : `~astropy.units.UnitBase` or None
        Unit of the pixel values.
    footprint : ndarray of bool
        The protected galaxy's pixels (all False when nothing is protected).
    layout : str
        ``"single"``, ``"multi"`` (``bands=`` given) or ``"rgb"``.

    Examples
    --------
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> from astro_enhance.stars import remove_stars
    >>> res = remove_stars(make_sdss_sample(shape=(128, 128)), rng=0)
    >>> res.layout, res.clean.shape, res.mask.dtype, res.n_removed > 0
    ('single', (128, 128), dtype('bool'), True)
    >>> hdul = res.to_hdulist()
    >>> [h.name for h in hdul][1:4]
    ['STARS', 'MASK', 'CATALOG']
    """

    clean: np.ndarray
    stars: np.ndarray
    mask: np.ndarray
    catalog: object
    inpainted: np.ndarray = None
    psf: object = None
    band_names: list = field(default_factory=list)
    wcs: object = None
    header: object = None
    unit: object = None
    footprint: np.ndarray = None
    layout: str = "single"

    @property
    def n_removed(self):
        """Number of stars removed."""
        if self.catalog is None or len(self.catalog) == 0:
            return 0
        return int(np.sum(np.asarray(self.catalog["decision"]) == "star"))

    def to_hdulist(self, *, history=()):
        """The result as FITS: clean image, ``STARS``, ``MASK`` and ``CATALOG`` extensions.

        Parameters
        ----------
        history : sequence of str, optional
            Extra HISTORY lines for the primary header.

        Returns
        -------
        `~astropy.io.fits.HDUList`
            Primary: the clean image (float32, with the WCS, BUNIT and provenance cards; the
            main band when several were given, a ``(3, ny, nx)`` cube for an RGB input);
            ``STARS``: the removed stars (float32); ``CLEAN_<band>`` and ``STARS_<band>`` for
            the other bands; ``MASK``: uint8, 1 where pixels were changed, 2 where they were
            inpainted; ``CATALOG``: the catalogue as a binary table (sky positions as
            ``ra``/``dec`` columns in degrees).
        """
        from astropy.io import fits

        from ..version import __version__

        header = fits.Header()
        if self.header is not None:
            from ..io import _clean_header
            header = _clean_header(self.header)
        if self.wcs is not None:
            for card in self.wcs.to_header(relax=True).cards:
                if card.keyword not in ("COMMENT", "HISTORY", ""):
                    header[card.keyword] = (card.value, card.comment)
        if self.unit is not None:
            from ..io import unit_to_bunit
            b = unit_to_bunit(self.unit)
            if b is not None:
                header["BUNIT"] = (b, "unit of the pixel values")
        meta = self.catalog.meta if self.catalog is not None else {}
        header["AE_VER"] = (__version__, "astro_enhance version")
        header["AE_METH"] = ("remove-stars", "astro_enhance processing")
        header["AE_NSTAR"] = (self.n_removed, "stars removed")
        header["AE_PSF"] = (str(meta.get("psf", ""))[:50], "PSF of star removal")
        if self.band_names:
            header["AE_BANDS"] = (",".join(self.band_names)[:68], "bands, in HDU order")
        header.add_history(f"astro_enhance {__version__}: {self.n_removed} star(s) removed "
                           f"(method {meta.get('method', '?')}, inpaint "
                           f"{meta.get('inpaint', '?')}); STARS holds what was removed, MASK "
                           "the changed pixels, CATALOG every candidate with its decision.")
        for line in history:
            header.add_history(str(line))
        clean = np.asarray(self.clean, dtype=np.float32)
        stars_img = np.asarray(self.stars, dtype=np.float32)
        extra = []
        wh = self.wcs.to_header(relax=True) if self.wcs is not None else fits.Header()
        if self.layout == "rgb":
            clean = np.moveaxis(clean, -1, 0)
            stars_img = np.moveaxis(stars_img, -1, 0)
            header["COMMENT"] = "RGB input: planes R, G, B along the third FITS axis"
        elif clean.ndim == 3:
            for k in range(1, clean.shape[0]):
                name = self.band_names[k] if k < len(self.band_names) else str(k)
                extra.append(fits.ImageHDU(clean[k], header=wh.copy(), name=f"CLEAN_{name}"))
                extra.append(fits.ImageHDU(stars_img[k], header=wh.copy(),
                                           name=f"STARS_{name}"))
            clean, stars_img = clean[0], stars_img[0]
        prim = fits.PrimaryHDU(clean, header=header)
        stars = fits.ImageHDU(stars_img, header=wh.copy(), name="STARS")
        m = np.asarray(self.mask, dtype=np.uint8)
        if self.inpainted is not None:
            m = np.where(self.inpainted, 2, m).astype(np.uint8)
        mhdr = wh.copy()
        mhdr["COMMENT"] = "1: star model subtracted above the noise; 2: masked and inpainted"
        mask = fits.ImageHDU(m, header=mhdr, name="MASK")
        tab = _catalog_hdu(self.catalog)
        return fits.HDUList([prim, stars, mask, tab] + extra)


def plain_catalog(catalog):
    """The catalogue with the SkyCoord column split into ``ra``/``dec`` (degrees).

    Parameters
    ----------
    catalog : `~astropy.table.QTable`

    Returns
    -------
    `~astropy.table.Table`

    Examples
    --------
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> from astro_enhance.stars import remove_stars
    >>> cat = remove_stars(make_sdss_sample(shape=(128, 128)), rng=0).catalog
    >>> "sky" in cat.colnames
    True
    >>> t = plain_catalog(cat)
    >>> "sky" in t.colnames, t.colnames[3:5], str(t["ra"].unit)
    (False, ['ra', 'dec'], 'deg')
    """
    from astropy.table import Table

    t = Table(catalog, copy=True)
    t.meta.pop("spikes", None)
    for k, v in list(t.meta.items()):
        if isinstance(v, (list, tuple)):
            t.meta[k] = ",".join(str(e) for e in v)
    if "sky" in t.colnames:
        sky = catalog["sky"]
        t.remove_column("sky")
        t.add_column(np.asarray(sky.ra.deg), name="ra", index=3)
        t.add_column(np.asarray(sky.dec.deg), name="dec", index=4)
        t["ra"].unit = "deg"
        t["dec"].unit = "deg"
    return t


_META_KEYS = {"psf": "PSF", "fwhm_pixels": "FWHMPIX", "threshold": "THRESH", "method": "METHOD",
              "inpaint": "INPAINT", "bands": "BANDS", "colour_definition": "COLOURS",
              "protected": "PROTECT"}


def _catalog_hdu(catalog):
    """The catalogue as a FITS binary table named CATALOG (FITS-safe keywords and units)."""
    from astropy.io import fits

    from ..io import unit_to_bunit

    t = plain_catalog(catalog)
    meta = {}
    for k, v in t.meta.items():
        if k in _META_KEYS:
            meta[_META_KEYS[k]] = str(v)[:68] if not isinstance(v, (int, float)) else v
    t.meta = meta
    units = {}
    for name in t.colnames:
        u = t[name].unit
        if u is None:
            continue
        try:
            u.to_string("fits")
        except ValueError:
            units[name] = unit_to_bunit(u) or str(u)
            t[name].unit = None
    hdu = fits.table_to_hdu(t)
    for i, name in enumerate(t.colnames, start=1):
        if name in units:
            hdu.header[f"TUNIT{i}"] = units[name]
    hdu.name = "CATALOG"
    return hdu


# -- inputs -----------------------------------------------------------------------------
@dataclass
class _Band:
    data: np.ndarray
    wcs: object = None
    header: object = None
    unit: object = None
    name: str = ""
    mask: np.ndarray = None


def _band_name(header, default):
    if header is not None:
        for k in ("FILTER", "BAND", "FILTNAM"):
            v = header.get(k) if hasattr(header, "get") else None
            if v:
                return str(v).strip().split()[0]
    return default


def _read_rgb(path):
    from skimage import io as skio

    try:
        arr = skio.imread(str(path))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read image {str(path)!r}: {exc}") from None
    return _from_array(np.asarray(arr), source=Path(path).name)


def _from_array(arr, source="array"):
    arr = np.asarray(arr)
    if arr.ndim == 2:
        return [_Band(data=arr.astype(np.float64), name="image")], "gray"
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3]
        return [_Band(data=arr[..., k].astype(np.float64), name=n)
                for k, n in enumerate("RGB")], "rgb"
    raise InputError(f"{source}: expected a 2-D image or an RGB image (ny, nx, 3), got an "
                     f"array of shape {arr.shape}")


def _read_bands(obj, default_name):
    """Read one input into a list of bands and a layout ('single', 'gray', 'rgb')."""
    from ..io import Image, read_image

    if isinstance(obj, (str, Path)) and Path(obj).suffix.lower() in _RGB_SUFFIXES:
        if not Path(obj).is_file():
            from ..exceptions import FITSReadError
            raise FITSReadError(f"input image {str(obj)!r} not found")
        return _read_rgb(obj)
    if isinstance(obj, np.ndarray):
        return _from_array(obj)
    if isinstance(obj, Image):
        img = obj
    else:
        try:
            img = read_image(obj)
        except WCSError:
            # star removal does not need a WCS: read the pixels alone
            img = _read_without_wcs(obj)
    data = np.asarray(img.data, dtype=np.float64)
    mask = None if img.mask is None else np.asarray(img.mask, bool)
    return [_Band(data=data, wcs=img.wcs, header=img.header, unit=img.unit,
                  name=_band_name(img.header, default_name), mask=mask)], "single"


def _read_without_wcs(obj):
    from astropy.io import fits

    from ..io import Image, parse_unit

    if isinstance(obj, (str, Path)):
        with fits.open(obj) as hdul:
            for h in hdul:
                if h.is_image and h.data is not None and h.data.ndim == 2:
                    return Image(data=np.asarray(h.data, np.float32), wcs=None,
                                 unit=_safe_unit(h.header, parse_unit),
                                 header=h.header.copy(), filename=str(obj))
    if isinstance(obj, (fits.PrimaryHDU, fits.ImageHDU)) and obj.data is not None \
            and obj.data.ndim == 2:
        return Image(data=np.asarray(obj.data, np.float32), wcs=None,
                     unit=_safe_unit(obj.header, parse_unit), header=obj.header.copy())
    if isinstance(obj, fits.HDUList):
        for h in obj:
            if h.is_image and h.data is not None and h.data.ndim == 2:
                return Image(data=np.asarray(h.data, np.float32), wcs=None,
                             unit=_safe_unit(h.header, parse_unit), header=h.header.copy())
    raise InputError("the input has no 2-D image data")


def _safe_unit(header, parse_unit):
    try:
        return parse_unit(header.get("BUNIT"))
    except Exception:  # noqa: BLE001 - an odd BUNIT must not stop star removal
        return None


def _same_grid(a, b):
    if a.data.shape != b.data.shape:
        return False
    if a.wcs is None or b.wcs is None:
        return True
    ny, nx = a.data.shape
    xs = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    ys = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    try:
        w = a.wcs.pixel_to_world(xs, ys)
        bx, by = b.wcs.world_to_pixel(w)
    except Exception:  # noqa: BLE001
        return False
    return bool(np.all(np.hypot(bx - xs, by - ys) < 0.05))


def _align(band, ref, index):
    if _same_grid(band, ref):
        return band
    if band.wcs is None or ref.wcs is None:
        raise InputError(
            f"band {index} ({band.name or '?'}) has shape {band.data.shape} but the main image "
            f"has shape {ref.data.shape}, and without a WCS on both it cannot be resampled: "
            "give all bands on the same pixel grid, or with celestial WCSs")
    from ..io import Image
    from ..resample import resample

    img = Image(data=band.data.astype(np.float32), wcs=band.wcs, unit=band.unit,
                header=band.header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = resample(img, wcs_out=ref.wcs, shape_out=ref.data.shape, return_type="image")
    warnings.warn(f"band {index} ({band.name or '?'}) was on another pixel grid: resampled onto "
                  "the main image's grid", AstroEnhanceWarning)
    return _Band(data=np.asarray(out.data, np.float64), wcs=ref.wcs, header=band.header,
                 unit=out.unit, name=band.name,
                 mask=None if out.mask is None else np.asarray(out.mask, bool))


# -- PSF --------------------------------------------------------------------------------
def _pixel_scale_arcsec(wcs):
    if wcs is None:
        return None
    try:
        from astropy.wcs.utils import proj_plane_pixel_scales
        return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)
    except Exception:  # noqa: BLE001
        return None


def _fwhm_pixels(fwhm, wcs):
    import astropy.units as u

    if isinstance(fwhm, u.Quantity):
        if fwhm.unit.physical_type == "angle":
            scale = _pixel_scale_arcsec(wcs)
            if scale is None:
                raise WCSError(f"fwhm={fwhm} is an angle but the image has no WCS to convert it "
                               "to pixels: give fwhm in pixels (a plain number)")
            return float(fwhm.to_value(u.arcsec)) / scale
        if fwhm.unit in (u.pix, u.dimensionless_unscaled):
            return float(fwhm.value)
        raise InputError(f"fwhm={fwhm}: give pixels (a number) or an angle (e.g. 1.2 * u.arcsec)")
    return float(fwhm)


def _header_fwhm(header, wcs):
    """A seeing guess (pixels) from common header cards in arcsec."""
    if header is None:
        return None
    scale = _pixel_scale_arcsec(wcs)
    for k in ("PSFFWHM", "SEEING", "PSF_FWHM"):
        try:
            v = float(header[k])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(v) and v > 0 and scale:
            return v / scale
    return None


def _as_psf(psf, band, x=None, y=None):
    if isinstance(psf, PSFModel):
        return psf
    if isinstance(psf, (str, Path)):
        name = band.name.lower() if band.name and band.name.lower() in "ugriz" else None
        return read_psf(psf, band=name, x=x, y=y)
    if isinstance(psf, np.ndarray):
        return psf_from_array(psf)
    try:
        from astropy.io import fits
        if isinstance(psf, (fits.PrimaryHDU, fits.ImageHDU)):
            return psf_from_array(np.asarray(psf.data, float))
    except ImportError:  # pragma: no cover
        pass
    raise InputError(f"psf must be a PSFModel, a 2-D array or a PSF file path, got "
                     f"{type(psf).__name__}")


def _good_psf_stars(cands, fwhm, shape, excl, centre=None, limit=80, min_peak=10.0):
    """Bright, isolated, unsaturated, round candidates for PSF fitting.

    First choice: no brighter-than-a-tenth neighbour within 3 FWHM, outside ``excl`` (the
    protected galaxy and saturated areas). When there is none, candidates on the galaxy
    (but not within 3 FWHM of ``centre``) with no comparable neighbour within 2 FWHM.
    """
    if len(cands) == 0:
        return np.zeros(0, int)
    x = np.asarray(cands["x"])
    y = np.asarray(cands["y"])
    peak = np.asarray(cands["peak"])
    ny, nx = shape
    edge = fwhm
    base = (peak >= min_peak) & (x > edge) & (x < nx - 1 - edge) & (y > edge) \
        & (y < ny - 1 - edge)
    base &= (np.asarray(cands["sharpness"]) > 0.2) & (np.asarray(cands["sharpness"]) < 1.0)
    base &= np.abs(np.asarray(cands["roundness"])) < 0.5
    if base.sum() == 0:
        return np.zeros(0, int)
    from scipy.spatial import cKDTree
    tree = cKDTree(np.column_stack([x, y]))
    ix = np.clip(np.round(x).astype(int), 0, nx - 1)
    iy = np.clip(np.round(y).astype(int), 0, ny - 1)

    def isolated(radius, ratio):
        return np.array([all(peak[j] < ratio * peak[i]
                             for j in tree.query_ball_point([x[i], y[i]], radius) if j != i)
                         for i in range(x.size)])

    ok = base & ~excl[iy, ix] & isolated(3 * fwhm, 0.1)
    if not ok.any():
        ok = base & isolated(2 * fwhm, 0.3)
        if centre is not None:
            ok &= np.hypot(x - centre[0], y - centre[1]) > 3 * fwhm
    idx = np.nonzero(ok)[0]
    idx = idx[np.argsort(-peak[idx])]
    return idx[:limit]


#: The protected galaxy's footprint: smoothed light above this many smoothed-noise sigmas
#: (about 0.7 sigma per pixel for a 3-pixel FWHM).
FOOTPRINT_NSIGMA = 3.0

#: With at least this many bright isolated stars the PSF is an ePSF built from them;
#: with fewer, a Moffat profile fitted to them.
EPSF_MIN_STARS = 25


def _auto_psf(bkgsub, rms, x, y, peak, guess):
    """PSF of one band from the selected isolated stars (ePSF, Moffat fit, or the guess)."""
    if x.size == 0:
        return psf_from_fwhm(guess), f"no isolated star: Moffat of FWHM {guess:.2f} px (guess)"
    nfit = min(x.size, 8)
    try:
        fw, beta = fit_moffat(bkgsub, x[:nfit], y[:nfit], fwhm=guess, rms=rms)
    except InputError:
        return psf_from_fwhm(guess), f"no usable star: Moffat of FWHM {guess:.2f} px (guess)"
    if not (0.4 * guess <= fw <= 1.8 * guess) and nfit > 1:
        # a bad first star (a blend, a galaxy): fit each one and keep the median
        fits_ = []
        for i in range(nfit):
            try:
                fits_.append(fit_moffat(bkgsub, x[i:i + 1], y[i:i + 1], fwhm=guess, rms=rms))
            except InputError:
                continue
        if fits_:
            fw, beta = np.median(np.asarray(fits_), axis=0)
    if not (0.4 * guess <= fw <= 1.8 * guess):
        return (psf_from_fwhm(guess),
                f"implausible fitted FWHM {fw:.2f} px: Moffat of FWHM {guess:.2f} px (guess)")
    bright = peak >= 30
    if bright.sum() >= EPSF_MIN_STARS:
        try:
            return (build_epsf(bkgsub, x[bright], y[bright], fwhm=fw),
                    f"ePSF from {int(bright.sum())} stars")
        except Exception as exc:  # noqa: BLE001 - fall back to the fitted Moffat
            warnings.warn(f"ePSF construction failed ({exc}); using the fitted Moffat",
                          AstroEnhanceWarning)
    return (psf_from_fwhm(fw, beta=beta),
            f"Moffat (FWHM {fw:.2f} px, beta {beta:.2f}) fitted to {nfit} star(s)")


# -- protection -------------------------------------------------------------------------
def _protect_center(protect, ref, shape):
    """(x, y) centre or footprint array, and whether it was automatic."""
    ny, nx = shape
    if protect is None:
        return ((nx - 1) / 2.0, (ny - 1) / 2.0), None, True
    if protect is False:
        return None, None, False
    try:
        from astropy.coordinates import SkyCoord
        if isinstance(protect, SkyCoord):
            if ref.wcs is None:
                raise WCSError("protect= is a sky position but the image has no WCS: give a "
                               "pixel position (x, y) or a boolean pixel mask")
            px, py = ref.wcs.world_to_pixel(protect)
            return (float(np.ravel(px)[0]), float(np.ravel(py)[0])), None, False
    except ImportError:  # pragma: no cover
        pass
    if hasattr(protect, "to_mask"):  # regions.PixelRegion
        fp = protect.to_mask(mode="center").to_image(shape)
        fp = np.zeros(shape, bool) if fp is None else fp.astype(bool)
        return None, fp, False
    arr = np.asarray(protect)
    if arr.dtype == bool and arr.shape == shape:
        return None, arr.copy(), False
    if arr.shape == (2,) and np.issubdtype(arr.dtype, np.number):
        return (float(arr[0]), float(arr[1])), None, False
    raise InputError("protect= must be None (the object at the image centre), False (nothing), "
                     "a SkyCoord, an (x, y) pixel position, a boolean mask of the image's shape "
                     "or a regions PixelRegion")


# -- main -------------------------------------------------------------------------------
def remove_stars(image, *, bands=None, psf=None, fwhm=None, threshold=5.0, method="auto",
                 inpaint="telea", protect=None, rng=None, saturation=None, rules=None):
    """Remove foreground stars from an image, protecting the target galaxy.

    Parameters
    ----------
    image : path, HDU, `~astropy.io.fits.HDUList`, NDData, ``(array, WCS)``, \
`~astro_enhance.Image`, ndarray or RGB image
        The image (anything `~astro_enhance.read_image` accepts; also a plain 2-D array, an
        RGB array ``(ny, nx, 3)`` or a PNG/JPEG file, whose channels are used as bands).
    bands : sequence, optional
        More bands of the same field (same forms as ``image``); used for detection, the colour
        test, and cleaned too. Bands on another pixel grid are resampled onto the image's
        grid when both have a WCS.
    psf : `~astro_enhance.stars.PSFModel`, ndarray, path or list, optional
        The PSF: a model, an array, or a file (FITS PSF image, SDSS psField, PsfEx); a list
        gives one per band. Default: built from the image's own isolated stars (photutils
        ePSF with 10 or more, else a Moffat of the measured width).
    fwhm : float or `~astropy.units.Quantity`, optional
        Seeing FWHM (pixels, or an angle): use a Moffat PSF of this width.
    threshold : float, optional
        Detection threshold in noise sigmas.
    method : {"auto", "subtract", "inpaint"}, optional
        ``"auto"``: fitted-PSF subtraction for unsaturated stars, masking + inpainting for
        saturated or very bright ones (halos, spikes, bleed trails); ``"subtract"``: subtract
        every star; ``"inpaint"``: mask and inpaint every star.
    inpaint : {"telea", "ns", "biharmonic"}, optional
        Inpainting algorithm (see `~astro_enhance.stars.removal.inpaint`).
    protect : None, False, `~astropy.coordinates.SkyCoord`, (x, y), bool array or region
        The galaxy to protect (its core and knots are never removed). None: the object at
        the image centre; False: nothing.
    rng : `numpy.random.Generator` or int, optional
        Random generator of the noise added to inpainted pixels.
    saturation : float, optional
        Saturation level of the main image (default: ``SATURATE`` header card, or a plateau
        at the maximum).
    rules : `~astro_enhance.stars.DecisionRules`, optional
        Thresholds of the star / knot / core / galaxy decision (default: the ones measured
        in the docs). Stricter on-galaxy thresholds keep more galaxy knots at the price of
        missing more stars on the galaxy.

    Returns
    -------
    StarRemovalResult

    Raises
    ------
    astro_enhance.InputError
        Bad options, an unreadable PSF, or bands on different grids that cannot be
        resampled.
    astro_enhance.FITSReadError, astro_enhance.NoImageError
        Unreadable input (see `~astro_enhance.read_image`).

    Warns
    -----
    astro_enhance.NoStarsWarning
        When no star was found; the result is then a copy of the input.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.stars import remove_stars, psf_from_fwhm
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(0, 1, (96, 96)).astype(np.float32)
    >>> img[10:31, 60:81] += 2000 * psf_from_fwhm(3.0).stamp(21)
    >>> res = remove_stars(img, fwhm=3.0, protect=False, rng=0)
    >>> res.n_removed, bool(abs(res.clean[15:26, 65:76].sum()) < 30)
    (1, True)
    """
    from astropy.table import QTable

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if inpaint not in INPAINT_METHODS:
        raise InputError(f"unknown inpaint method {inpaint!r}: use one of "
                         f"{', '.join(INPAINT_METHODS)}")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number of sigmas, got {threshold!r}") from None
    if not np.isfinite(threshold) or threshold <= 0:
        raise InputError(f"threshold must be a positive number of sigmas, got {threshold}")
    if rules is None:
        rules = _decide.DecisionRules()
    elif not isinstance(rules, _decide.DecisionRules):
        raise InputError(f"rules must be a DecisionRules, got {type(rules).__name__}")
    gen = np.random.default_rng(rng)

    blist, layout = _read_bands(image, "band0")
    if bands is not None:
        if layout == "rgb":
            raise InputError("an RGB image already holds its bands: do not also pass bands=")
        extra = list(bands) if isinstance(bands, (list, tuple)) else [bands]
        for k, b in enumerate(extra, start=1):
            more, lay = _read_bands(b, f"band{k}")
            if lay == "rgb":
                raise InputError(f"band {k} is an RGB image: give single-band images in bands=")
            blist.extend(more)
        layout = "multi"
    ref = blist[0]
    if ref.data.ndim != 2 or min(ref.data.shape) < 8:
        raise InputError(f"the image must be 2-D and at least 8 x 8 pixels, got shape "
                         f"{ref.data.shape}")
    for k in range(1, len(blist)):
        blist[k] = _align(blist[k], ref, k)
    shape = ref.data.shape
    ny, nx = shape
    nb = len(blist)
    if not np.isfinite(ref.data).any():
        raise InputError("the image is entirely NaN: nothing to do")

    # -- background, noise, saturation ------------------------------------------------
    bkgs, rmss, sats, bad = [], [], [], []
    for k, b in enumerate(blist):
        bg, rms = background_and_noise(b.data, mask=b.mask)
        bkgs.append(bg.astype(np.float64))
        rmss.append(rms.astype(np.float64))
        lev = saturation_level(b.data, b.header, saturation=saturation if k == 0 else None)
        sat = np.isfinite(b.data) & (b.data >= lev) if lev is not None else np.zeros(shape, bool)
        sats.append(sat)
        bd = ~np.isfinite(b.data) | sat
        if b.mask is not None:
            bd |= b.mask
        bad.append(bd)
    sat_any = np.logical_or.reduce(sats)
    sub = [np.where(np.isfinite(b.data), b.data - bg, 0.0) for b, bg in zip(blist, bkgs)]

    # -- PSF ------------------------------------------------------------------------------
    protect_xy, protect_fp, auto_protect = _protect_center(protect, ref, shape)
    if fwhm is not None:
        fw = _fwhm_pixels(fwhm, ref.wcs)
        if not np.isfinite(fw) or fw <= 0.5:
            raise InputError(f"fwhm must be above 0.5 pixel, got {fw:g}")
    if isinstance(psf, (list, tuple)) and len(psf) != nb:
        raise InputError(f"psf= lists {len(psf)} PSFs for {nb} band(s): give one per band")
    snr_img = sum(np.where(bad[k], 0.0, sub[k] / rmss[k]) for k in range(nb)) / math.sqrt(nb)
    psfs = [None] * nb
    psf_notes = [""] * nb
    for k, b in enumerate(blist):
        pk = psf[k] if isinstance(psf, (list, tuple)) else psf
        if pk is not None:
            psfs[k] = _as_psf(pk, b, x=(nx - 1) / 2, y=(ny - 1) / 2)
            psf_notes[k] = psfs[k].source
        elif fwhm is not None:
            psfs[k] = psf_from_fwhm(fw)
            psf_notes[k] = f"Moffat of FWHM {fw:.2f} px (fwhm=)"
    if any(p is None for p in psfs):
        guesses = [_header_fwhm(b.header, b.wcs) or 3.0 for b in blist]
        known = [p.fwhm for p in psfs if p is not None]
        guess0 = known[0] if known else guesses[0]
        excl = sat_any.copy()
        if sat_any.any():
            from scipy import ndimage
            excl |= ndimage.binary_dilation(sat_any, iterations=int(6 * guess0))
        if protect_fp is not None:
            excl |= protect_fp
        elif protect_xy is not None:
            fp0, _, _ = galaxy_footprint(snr_img, 1.0, guess0, protect_xy,
                                         search=max(3 * guess0, 0.05 * min(nx, ny)),
                                         nsigma=FOOTPRINT_NSIGMA)
            excl |= fp0
        cands0 = find_candidates(snr_img, guess0, threshold=max(threshold, 5.0), mask=sat_any)
        idx = _good_psf_stars(cands0, guess0, shape, excl, centre=protect_xy)
        xs = np.asarray(cands0["x"])[idx]
        ys = np.asarray(cands0["y"])[idx]
        pk_ = np.asarray(cands0["peak"])[idx]
        auto = [k for k in range(nb) if psfs[k] is None]
        for k in auto:
            psfs[k], psf_notes[k] = _auto_psf(sub[k], rmss[k], xs, ys, pk_, guesses[k])
        if len(auto) >= 3:
            # seeing varies little between bands: an outlier band fit is a bad fit
            med = float(np.median([psfs[k].fwhm for k in auto]))
            for k in auto:
                if abs(math.log(psfs[k].fwhm / med)) > math.log(1.5):
                    psfs[k] = psf_from_fwhm(med)
                    psf_notes[k] = (f"Moffat of FWHM {med:.2f} px (median of the bands; "
                                    "this band's own fit was an outlier)")
    fwhm0 = psfs[0].fwhm

    # -- candidates -------------------------------------------------------------------------
    cands = find_candidates(snr_img, fwhm0, threshold=threshold, mask=sat_any)
    cx = list(np.asarray(cands["x"], float))
    cy = list(np.asarray(cands["y"], float))
    csat = [False] * len(cx)
    _, regions = saturated_regions(np.where(sat_any, 1.0, 0.0), 0.5, min_pixels=1)
    if regions:
        from scipy import ndimage
        grown = ndimage.binary_dilation(sat_any, iterations=int(max(2, 2 * fwhm0)))
        ix = np.clip(np.round(cx).astype(int), 0, nx - 1) if cx else np.zeros(0, int)
        iy = np.clip(np.round(cy).astype(int), 0, ny - 1) if cy else np.zeros(0, int)
        keep = ~grown[iy, ix] if cx else np.zeros(0, bool)
        cx = [v for v, k in zip(cx, keep) if k]
        cy = [v for v, k in zip(cy, keep) if k]
        csat = [False] * len(cx)
        for reg in regions:
            cx.append(reg["x"])
            cy.append(reg["y"])
            csat.append(True)
    cx = np.asarray(cx, float)
    cy = np.asarray(cy, float)
    csat = np.asarray(csat, bool)

    # -- photometry, pass 1 ---------------------------------------------------------------
    cx, cy, phot = _photometry(sub, bad, rmss, psfs, cx, cy)

    # -- protected galaxy ------------------------------------------------------------------
    footprint = np.zeros(shape, bool)
    core_xy = ext_light = core_xy2 = ext_light2 = c_sym = no_centre = None
    gal_models = [np.zeros(shape) for _ in range(nb)]
    if protect_fp is not None:
        footprint = protect_fp
    elif protect_xy is not None:
        footprint, _, _ = galaxy_footprint(snr_img, 1.0, fwhm0, protect_xy,
                                           search=max(3 * fwhm0, 0.05 * min(nx, ny)),
                                           nsigma=FOOTPRINT_NSIGMA)
    # bright blends off the galaxy (saturated cores interpolated by survey pipelines break
    # into several peaks): one saturated-like candidate each
    if cx.size:
        cx, cy, csat, phot, merged = _merge_bright_blends(cx, cy, csat, phot, rmss[0],
                                                          footprint, fwhm0)
        if merged:
            cx, cy, phot = _photometry(sub, bad, rmss, psfs, cx, cy)
    if footprint.any() and cx.size:
        # A smooth model of the galaxy (candidates masked and interpolated over), so that
        # stars on it are measured on a flat background: found, fitted and matched.
        from scipy import ndimage
        near = ndimage.binary_dilation(footprint, iterations=int(2 * fwhm0) + 1)
        for k in range(nb):
            gal_models[k] = _smooth_galaxy(sub[k], cx, cy, phot[k]["flux"], psfs[k], rmss[k],
                                           near, fwhm0)
        flat = sum(np.where(bad[k], 0.0, (sub[k] - gal_models[k]) / rmss[k])
                   for k in range(nb)) / math.sqrt(nb)
        ys_, xs_ = np.nonzero(near)
        by0, by1, bx0, bx1 = ys_.min(), ys_.max() + 1, xs_.min(), xs_.max() + 1
        more = find_candidates(np.where(near, flat, 0.0)[by0:by1, bx0:bx1], fwhm0,
                               threshold=threshold, mask=sat_any[by0:by1, bx0:bx1])
        if len(more):
            more["x"] += bx0
            more["y"] += by0
        if len(more):
            mx, my = np.asarray(more["x"], float), np.asarray(more["y"], float)
            dmin = np.min(np.hypot(mx[:, None] - cx[None], my[:, None] - cy[None]), axis=1)
            new = dmin > max(2.0, fwhm0)
            if new.any():
                cx = np.concatenate([cx, mx[new]])
                cy = np.concatenate([cy, my[new]])
                csat = np.concatenate([csat, np.zeros(int(new.sum()), bool)])
                # the new sources must be masked in the galaxy model too
                cx, cy, phot = _photometry_near(sub, gal_models, bad, rmss, psfs, cx, cy,
                                                phot, near)
                for k in range(nb):
                    gal_models[k] = _smooth_galaxy(sub[k], cx, cy, phot[k]["flux"], psfs[k],
                                                   rmss[k], near, fwhm0)
        cx, cy, phot = _photometry_near(sub, gal_models, bad, rmss, psfs, cx, cy, phot, near)
        # two estimates: with every candidate subtracted (a bright star beside the core does
        # not pull it) and without (a compact bulge subtracted as a PSF does not push it
        # along an elongated galaxy); the candidates at both are protected
        # the centre is never looked for next to a saturated star (its residual halo would
        # be the brightest "galaxy light" there)
        no_centre = None
        if csat.any():
            no_centre = ndimage.binary_dilation(sat_any, iterations=int(max(3, 2 * fwhm0)))
            for j in np.nonzero(csat)[0]:
                f_sat = max(float(phot[0]["flux"][j]), _flux_from_saturation(
                    sat_any, cx[j], cy[j], blist[0].data, psfs[0]))
                _star_dominated(no_centre, sub[0], rmss[0], psfs[0], cx[j], cy[j], f_sat)
        core_xy, ext_light = _galaxy_centre(sub[0], rmss[0], cx, cy, phot[0]["flux"], psfs[0],
                                            footprint, protect_xy, exclude=no_centre)
        core_xy2, ext_light2 = _galaxy_centre(sub[0], rmss[0], cx, cy, phot[0]["flux"],
                                              psfs[0], footprint, protect_xy, subtract=False,
                                              exclude=no_centre)
        # the centre of symmetry of the galaxy's extended light (pixels near every candidate
        # left out, so neither a star nor the core's own blend moves it) ...
        r_fp_ = math.sqrt(footprint.sum() / math.pi)
        c_sym = _symmetry_centre(sub[0], bad[0], core_xy, cx, cy, fwhm0,
                                 search=max(2.0, 1.5 * fwhm0),
                                 radius=float(np.clip(0.5 * r_fp_, 3 * fwhm0, 25.0)))
        # ... and point sources hidden in the core's blend: peaks of the image minus its
        # symmetric part (a star one FWHM from a bright core makes no peak of its own)
        bx, by = _asymmetric_peaks(sub[0], bad[0], c_sym, cx, cy, phot[0]["flux"], psfs[0],
                                   rmss[0], r_in=max(1.2, 0.4 * fwhm0), r_out=2.0 * fwhm0,
                                   nsigma=max(threshold, 5.0))
        if bx.size:
            cx = np.concatenate([cx, bx])
            cy = np.concatenate([cy, by])
            csat = np.concatenate([csat, np.zeros(bx.size, bool)])
            cx, cy, phot = _photometry_near(sub, gal_models, bad, rmss, psfs, cx, cy, phot,
                                            near)
    n = cx.size
    ix = np.clip(np.round(cx).astype(int), 0, nx - 1)
    iy = np.clip(np.round(cy).astype(int), 0, ny - 1)
    flux = phot[0]["flux"] if n else np.zeros(0)
    ferr = phot[0]["flux_err"] if n else np.zeros(0)
    if n:
        # S/N from all bands together
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.sqrt(sum(np.where(p["flux"] > 0, (p["flux"] / p["flux_err"]) ** 2, 0.0)
                              for p in phot))
        peak_snr = phot[0]["peak"] / rmss[0][iy, ix]
    else:
        snr = peak_snr = np.zeros(0)

    # -- template matching -------------------------------------------------------------------
    scales = DEFAULT_SCALES
    # each candidate is matched on the image without the galaxy and without its neighbours
    fl_pos = np.where(flux > 0, flux, 0.0) if n else np.zeros(0)
    if n:
        lvl = rmss[0][iy, ix]
        rad_m = np.clip(psfs[0].radius_at(fl_pos, 0.1 * lvl), 2 * fwhm0, 0.25 * max(nx, ny))
        neigh = render_stars(shape, cx, cy, fl_pos, psfs[0], radius=rad_m)
    else:
        neigh = 0.0
    resid0 = np.where(np.isfinite(sub[0]), sub[0] - gal_models[0] - neigh, 0.0)
    scores, best_scale, best_score = match_scores(resid0, cx, cy, psfs[0], scales=scales,
                                                  add_back=fl_pos)
    k1 = list(scales).index(1.0)
    score1 = scores[:, k1] if n else np.zeros(0)
    pointlike = (best_scale <= 1.0) & (score1 >= 0.8) & (flux > 0) if n else np.zeros(0, bool)

    # A bright unsaturated star beside the core (sharp, peak above BRIGHT_PEAK_SNR sigmas,
    # 1.5 FWHM from the centre of the star-subtracted light or more, and inside the disk
    # where a star on the core is fitted: 3.5 FWHM, at least 6 px) pulls the centre
    # estimates that keep or mirror its light: they are found again with its PSF model
    # subtracted, and no star is looked for in the light's asymmetry.
    bright_near = np.zeros(n, bool)
    if core_xy is not None and n:
        d_core = np.hypot(cx - core_xy[0], cy - core_xy[1])
        bright_near = (~csat & (peak_snr >= BRIGHT_PEAK_SNR) & (score1 >= 0.9)
                       & (best_scale <= 1.3) & near[iy, ix]
                       & (d_core >= 1.5 * fwhm0) & (d_core <= max(3.5 * fwhm0, 6.0)))
        if bright_near.any():
            sub_nb = sub[0] - _psf_models(shape, rmss[0], cx, cy, flux, psfs[0], bright_near)
            core_xy2, ext_light2 = _galaxy_centre(sub_nb, rmss[0], cx, cy, flux, psfs[0],
                                                  footprint, protect_xy, subtract=False,
                                                  exclude=no_centre)
            c_sym = _symmetry_centre(sub_nb, bad[0], core_xy, cx, cy, fwhm0,
                                     search=max(2.0, 1.5 * fwhm0),
                                     radius=float(np.clip(0.5 * r_fp_, 3 * fwhm0, 25.0)))

    # the core: of the candidates near the centre of the galaxy's light, the one sitting
    # highest on its smoothed extended light
    is_core = np.zeros(n, bool)
    not_core = np.zeros(n, bool)  # taken for the core, then found to be a star
    if core_xy is not None and n:
        r_fp = math.sqrt(footprint.sum() / math.pi)
        r_c = max(2.0, fwhm0, 0.1 * r_fp)
        rest = []

        def centred_on(j):
            """Whether the galaxy's light with every candidate subtracted is centred
            nearer candidate ``j`` than the peak of its smoothed light (``core_xy``): its
            first moment over the footprint within the distance between the two plus two
            FWHM of their midpoint (saturated stars' surroundings left out). Around a star
            on the galaxy that light is centred where the galaxy is; around the compact
            core of a small galaxy, taken for a star and subtracted, it is what the
            subtraction leaves -- a ring around the core, whose smoothed peak lies
            anywhere on it."""
            if not rest:
                r_img = np.nan_to_num(sub[0]) - _psf_models(shape, rmss[0], cx, cy, flux,
                                                             psfs[0], np.ones(n, bool))
                keep = footprint if no_centre is None else footprint & ~no_centre
                rest.append(np.where(keep, r_img, 0.0))
            mx, my = 0.5 * (cx[j] + core_xy[0]), 0.5 * (cy[j] + core_xy[1])
            dist = math.hypot(cx[j] - core_xy[0], cy[j] - core_xy[1])
            yy_, xx_ = np.ogrid[0:ny, 0:nx]
            w = np.where((xx_ - mx) ** 2 + (yy_ - my) ** 2 <= (dist + 2 * fwhm0) ** 2,
                         rest[0], 0.0)
            tot = float(w.sum())
            if not tot > 0:
                return False
            c = (float((w * xx_).sum()) / tot, float((w * yy_).sum()) / tot)
            return math.hypot(cx[j] - c[0], cy[j] - c[1]) < \
                math.hypot(core_xy[0] - c[0], core_xy[1] - c[1])

        for e, (cxy, light) in enumerate(((core_xy, ext_light), (core_xy2, ext_light2))):
            d = np.hypot(cx - cxy[0], cy - cxy[1])
            near_c = np.nonzero(d <= r_c)[0]
            if near_c.size:
                j = near_c[np.argmax(light[iy[near_c], ix[near_c]])]
                if e == 1 and not is_core[j] and best_scale[j] <= 1.0 and score1[j] >= 0.9 \
                        and math.hypot(cx[j] - core_xy[0], cy[j] - core_xy[1]) > 1.5 * r_c \
                        and not centred_on(j):
                    # a sharp point source that only the unsubtracted light puts at the
                    # centre, well away from the centre of the star-subtracted light: a
                    # bright star beside the core, not the core
                    continue
                is_core[j] = True
        # A core holding most of the galaxy's flux, away from the centre of the
        # star-subtracted light, is a bright star on the galaxy (a bulge's PSF flux is a
        # fraction of the galaxy's) -- unless that light is centred on it; saturated
        # sources are stars.
        gflux = float(np.nansum(np.where(footprint, sub[0], 0.0)))
        for j in np.nonzero(is_core)[0]:
            frac_j = flux[j] / gflux if gflux > 0 else 0.0
            # (a point source holding nearly all of it is the protected object itself -- a
            # compact galaxy -- with no extended light to place a centre by)
            if csat[j] or (0.6 < frac_j <= 0.9 and
                           math.hypot(cx[j] - core_xy[0], cy[j] - core_xy[1]) > 1.5 and
                           not centred_on(j)):
                is_core[j] = False
                not_core[j] = True
    on_gal = footprint[iy, ix] if n else np.zeros(0, bool)

    # -- deblending at the core: a point source beside a symmetric core -------------------
    # Galaxy cores are nearly point-symmetric; a star a few pixels from the core is not. The
    # image minus its symmetric part about the core's centre (SDSS-deblender style) holds
    # the star alone: a candidate off the centre that is a bright PSF in it is a star, and
    # its flux there (not that of the blend) is what is removed.
    sym_flux = sym_score = c_ref = None
    sym_star = np.zeros(n, bool)
    sym_dup = np.zeros(n, int)  # id of the star a candidate is a second detection of
    if core_xy is not None and n and footprint.any():
        r_sym = 2.0 * fwhm0
        d_min = max(1.2, 0.4 * fwhm0)

        def sym_fit(c):
            """Candidates off the centre ``c``, their PSF fluxes, errors and scale-1 scores
            in the image minus its symmetric part about ``c``, and their positions there."""
            d_c = np.hypot(cx - c[0], cy - c[1])
            cj = np.nonzero((d_c >= d_min) & (d_c <= r_sym) & ~csat & on_gal)[0]
            far = d_c > r_sym + 2 * fwhm0
            fl_, er_, sc_ = [], [], None
            if not cj.size:
                return cj, fl_, er_, sc_, None
            qx, qy = cx[cj].copy(), cy[cj].copy()
            for k in range(nb):
                fk = np.where(far & (phot[k]["flux"] > 0), phot[k]["flux"], 0.0)
                rad_k = np.clip(psfs[k].radius_at(fk, 0.1 * rmss[k][iy, ix]),
                                2 * psfs[k].fwhm, 0.25 * max(nx, ny))
                e_img, (wx0, wy0) = _symmetric_excess(sub[k], bad[k], c, cx, cy, fk, psfs[k],
                                                      rad_k, r_sym + 3 * fwhm0)
                for _ in range(3 if k == 0 else 1):
                    fit = fit_psf_photometry(e_img, qx - wx0, qy - wy0, psfs[k],
                                             rms=rmss[k][iy[cj], ix[cj]].mean(),
                                             refine=k == 0, n_iter=1,
                                             radius=max(3.0, 1.5 * psfs[k].fwhm))
                    if k == 0:
                        qx, qy = fit["x"] + wx0, fit["y"] + wy0
                fl_.append(fit["flux"])
                er_.append(fit["flux_err"])
                if k == 0:
                    # positions refined on the star alone (the blend pulls them to the core)
                    # shape in the excess: a star matches the PSF best (not a wider
                    # template); an extended knot's excess matches wider ones better
                    sc_all, bsc, _ = match_scores(e_img, qx - wx0, qy - wy0, psfs[0],
                                                  scales=scales)
                    sc_ = np.where(bsc <= 1.25, sc_all[:, list(scales).index(1.0)], -1.0)
            return cj, fl_, er_, sc_, (qx, qy)

        c_ref = c_sym
        # the candidate at the centre of symmetry is the core when the smoothed-light peak
        # found none
        d_sym = np.hypot(cx - c_ref[0], cy - c_ref[1])
        j_c = int(np.argmin(d_sym))
        if d_sym[j_c] < d_min and not csat[j_c] and on_gal[j_c] and not is_core.any() \
                and not not_core[j_c]:
            is_core[j_c] = True
        cand_j, sym_flux, sym_err, sym_score, sym_pos = sym_fit(c_ref)
        if cand_j.size:
            f0 = np.asarray(sym_flux[0])
            e0 = np.asarray(sym_err[0])
            ok = (sym_score >= SYM_MIN_SCORE) & (f0 > 0) & (f0 >= 10 * e0) & \
                (f0 >= 0.5 * np.maximum(flux[cand_j], 0.0))
            # a candidate taken for the core by the smoothed light needs more: well away
            # from that centre too, and most of its flux in the asymmetric part
            # (from both estimates of that centre: they disagree on lopsided galaxies)
            d_peak = np.minimum(np.hypot(cx[cand_j] - core_xy[0], cy[cand_j] - core_xy[1]),
                                np.hypot(cx[cand_j] - core_xy2[0], cy[cand_j] - core_xy2[1]))
            ok &= ~is_core[cand_j] | ((d_peak >= 1.5) &
                                      (f0 >= 0.6 * np.maximum(flux[cand_j], 0.0)))
            # two detections of one star (a blend split in two): keep the brighter
            for q in np.argsort(-f0):
                if not ok[q]:
                    continue
                dup = ok & (np.hypot(cx[cand_j] - cx[cand_j[q]], cy[cand_j] - cy[cand_j[q]])
                            < fwhm0) & (f0 <= f0[q])
                dup[q] = False
                ok &= ~dup
                sym_dup[cand_j[dup]] = cand_j[q] + 1
            for q, j in enumerate(cand_j):
                if not ok[q]:
                    continue
                sym_star[j] = True
                is_core[j] = False
                cx[j], cy[j] = sym_pos[0][q], sym_pos[1][q]
                for k in range(nb):
                    fk = float(sym_flux[k][q])
                    phot[k]["flux"][j] = fk
                    phot[k]["peak"][j] = fk * psfs[k].evaluate(np.zeros(1), np.zeros(1))[0]
            # the candidate taken for the core may be a second detection of a star found
            # here (a blend split in two; within half a FWHM of the star and nearer to it
            # than to the centre of symmetry): it goes with the star, and the core is the
            # candidate nearest the centre of symmetry (within a FWHM)
            for j in np.nonzero(is_core)[0]:
                d_st = np.where(sym_star, np.hypot(cx - cx[j], cy - cy[j]), np.inf)
                q = int(np.argmin(d_st))
                if d_st[q] < min(0.5 * fwhm0, math.hypot(cx[j] - c_ref[0], cy[j] - c_ref[1])):
                    is_core[j] = False
                    sym_dup[j] = q + 1
                    free_c = ~(sym_star | (sym_dup > 0) | csat | not_core) & on_gal
                    d_cr = np.where(free_c, np.hypot(cx - c_ref[0], cy - c_ref[1]), np.inf)
                    if d_cr.min() <= fwhm0:
                        is_core[int(np.argmin(d_cr))] = True
            for j in np.nonzero(sym_dup)[0]:
                is_core[j] = False
                for k in range(nb):
                    phot[k]["flux"][j] = 0.0
                    phot[k]["peak"][j] = 0.0
            if sym_star.any():
                flux = phot[0]["flux"]
                peak_snr = phot[0]["peak"] / rmss[0][iy, ix]
            sym_flux = (cand_j, f0, sym_score)

    # -- a star on or beside the core, from the light's asymmetry -----------------------
    # A star within about one FWHM of the core makes one peak with it (taken for the core,
    # or for an extended knot); the image minus its copy rotated about the centre of
    # symmetry holds the star alone, whatever the galaxy's profile (`fit_offcentre_star`).
    asym_star = np.zeros(n, bool)
    asym_info = {}
    protect_centres = []
    if core_xy is not None and footprint.any() and c_ref is not None and n:
        cx, cy, csat, phot, arrays, asym_star, asym_info, c_fit = _core_star(
            sub, bad, rmss, psfs, cx, cy, csat, phot, c_ref, on_gal,
            sym_star | (sym_dup > 0),
            dict(snr=snr, peak_snr=peak_snr, scores=scores, best_scale=best_scale,
                 best_score=best_score, score1=score1, pointlike=pointlike, is_core=is_core,
                 not_core=not_core, on_gal=on_gal, sym_star=sym_star, sym_dup=sym_dup),
            footprint, fwhm0,
            core_offset=(CORE_STAR_CORE_OFFSET if _axis_ratio(gal_models[0], footprint)
                         < ELONGATED_AXIS_RATIO else CORE_STAR_MIN_OFFSET),
            bright=bright_near)
        if c_fit is not None:
            protect_centres.append(c_fit)
        if cx.size != n:
            n = cx.size
            ix = np.clip(np.round(cx).astype(int), 0, nx - 1)
            iy = np.clip(np.round(cy).astype(int), 0, ny - 1)
        snr, peak_snr = arrays["snr"], arrays["peak_snr"]
        scores, best_scale, best_score = arrays["scores"], arrays["best_scale"], \
            arrays["best_score"]
        score1, pointlike, is_core = arrays["score1"], arrays["pointlike"], arrays["is_core"]
        not_core, on_gal = arrays["not_core"], arrays["on_gal"]
        sym_star, sym_dup = arrays["sym_star"], arrays["sym_dup"]
        flux = phot[0]["flux"]
        ferr = phot[0]["flux_err"]
        if c_fit is not None:
            # with the star accounted for, the candidate at the centre of symmetry is the core
            d_cf = np.where(asym_star | csat, np.inf, np.hypot(cx - c_fit[0], cy - c_fit[1]))
            j_c = int(np.argmin(d_cf))
            if d_cf[j_c] < max(1.2, 0.4 * fwhm0):
                is_core[j_c] = True
                not_core[j_c] = False

    # -- colours ------------------------------------------------------------------------------
    order = _wavelength_order([b.name for b in blist])
    canon = [_canonical_band(b.name) for b in blist]
    colour = np.full((n, max(nb - 1, 1)), np.nan)
    colour_err = np.full((n, max(nb - 1, 1)), np.nan)
    locus = locus_err = None
    cand_gr = np.full(n, np.nan)  # g - r of every candidate (g and r given)
    if nb > 1 and n:
        for c_i, (ka, kb) in enumerate(zip(order[:-1], order[1:])):
            colour[:, c_i], colour_err[:, c_i] = _colour(phot[ka], phot[kb])
        if {"g", "r"} <= set(canon):
            cand_gr, egr = _colour(phot[canon.index("g")], phot[canon.index("r")])
        if {"g", "r", "i"} <= set(canon):
            ri, eri = _colour(phot[canon.index("r")], phot[canon.index("i")])
            locus = _decide.stellar_locus_offset(cand_gr, ri)
            locus_err = np.hypot(egr, eri)
    knot_dist = knot_ratio = None
    if nb > 1 and n:
        knot_dist = _knot_population_distance(colour, colour_err, on_gal & ~is_core & ~csat,
                                              best_score, snr)
        knot_ratio = _knot_flux_ratio(flux, colour, on_gal & ~is_core & ~csat, best_score, snr)

    # -- automatic protection of a point-like centre -------------------------------------
    if auto_protect and is_core.any():
        j = int(np.nonzero(is_core)[0][0])
        fp_r = math.sqrt(footprint.sum() / math.pi)
        if (csat[j] or pointlike[j]) and fp_r <= 3.0 * fwhm0:
            is_core[j] = False
            footprint = np.zeros(shape, bool)
            on_gal = np.zeros(n, bool)

    gal_frac = np.zeros(n)
    near_core = np.zeros(n, bool)
    if footprint.any() and n:
        gflux = float(np.nansum(np.where(footprint, sub[0], 0.0)))
        if gflux > 0:
            gal_frac = np.where(flux > 0, flux / gflux, 0.0)
        if core_xy is not None:
            r_fp = math.sqrt(footprint.sum() / math.pi)
            rc = max(2 * fwhm0, 0.15 * r_fp)
            near_core = (np.hypot(cx - core_xy[0], cy - core_xy[1]) <= rc) | \
                (np.hypot(cx - core_xy2[0], cy - core_xy2[1]) <= rc)
    # the colour of the galaxy's smooth light (g - r): red, passive galaxies have no
    # star-forming knots
    galaxy_gr = float("nan")
    if footprint.any() and {"g", "r"} <= set(canon):
        mg = float(np.sum(gal_models[canon.index("g")][footprint]))
        mr = float(np.sum(gal_models[canon.index("r")][footprint]))
        if mg > 0 and mr > 0:
            galaxy_gr = -2.5 * math.log10(mg / mr)
    feat = dict(snr=snr, peak_snr=peak_snr, galaxy_fraction=gal_frac, near_core=near_core,
                score=best_score, scale=best_scale, score1=score1, saturated=csat,
                on_galaxy=on_gal, is_core=is_core, locus_offset=locus, locus_err=locus_err,
                knot_distance=knot_dist, knot_flux_ratio=knot_ratio, galaxy_gr=galaxy_gr)
    decision, reason = (_decide.classify(feat, rules=rules) if n else
                        (np.zeros(0, str), np.zeros(0, str)))
    # A source on the galaxy that the PSF fits worse than a wider copy of it is resolved (a
    # blend of knots, a knot larger than the seeing): measured where it can change a
    # decision -- sources on the galaxy taken for stars so far -- on the image without the
    # galaxy's smooth light and without the neighbours (sources added since have their
    # light there still). Stars found in the light's asymmetry are not tested: beside the
    # core that image holds some of the core's light too, and they were fitted on the
    # asymmetric light, where the core cancels.
    extent = np.full(n, np.nan)
    extent_dchi2 = np.full(n, np.nan)
    fit_ext = on_gal & ~csat & ~is_core & (decision == "star") & ~asym_star if n else None
    if n and fit_ext.any():
        back = np.zeros(n)
        back[:fl_pos.size] = fl_pos
        extent, extent_dchi2 = psf_extent(resid0, rmss[0], cx, cy, psfs[0], add_back=back,
                                          select=fit_ext)
        feat.update(extent=extent, extent_dchi2=extent_dchi2)
        # only the measured ones can change: decided again alone
        part = {k: (v[fit_ext] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v)
                for k, v in feat.items()}
        decision, reason = decision.astype(object), reason.astype(object)
        decision[fit_ext], reason[fit_ext] = _decide.classify(part, rules=rules)
        decision, reason = decision.astype(str), reason.astype(str)
    if sym_star.any():
        decision = decision.astype(object)
        reason = reason.astype(object)
        cand_j, f_sym, s_sym = sym_flux
        for q, j in enumerate(cand_j):
            if sym_star[j] and decision[j] != "star":
                decision[j] = "star"
                reason[j] = (f"point source {math.hypot(cx[j] - c_ref[0], cy[j] - c_ref[1]):.1f}"
                             f" px from the symmetric core (PSF score {s_sym[q]:.2f} after "
                             "removing the core's symmetric light)")
        for j in np.nonzero(sym_dup)[0]:
            decision[j] = "star"
            reason[j] = (f"second detection of star {sym_dup[j]} (one blend split in two): "
                         "removed with it")
        decision = decision.astype(str)
        reason = reason.astype(str)

    if asym_star.any():
        decision = decision.astype(object)
        reason = reason.astype(object)
        for j, info in asym_info.items():
            if decision[j] == "star":
                continue
            if locus is not None and np.isfinite(locus[j]):
                err = float(locus_err[j]) if np.isfinite(locus_err[j]) else 1.0
                tol = max(rules.colour_sigma * math.hypot(err, 0.1), rules.colour_floor)
                if locus[j] > tol:
                    reason[j] = (f"{reason[j]}; a point source {info['offset']:.1f} px from the "
                                 f"centre, but its colours are {locus[j]:.2f} mag off the "
                                 "stellar locus")
                    continue
            # (no knot holds that much of the galaxy's light, whatever its colour)
            if knot_dist is not None and np.isfinite(knot_dist[j]) and \
                    knot_dist[j] < rules.knot_sigma and gal_frac[j] < rules.knot_max_fraction:
                reason[j] = (f"{reason[j]}; a point source {info['offset']:.1f} px from the "
                             "centre, but with the colours of the galaxy's knots "
                             f"({knot_dist[j]:.1f} sigma)")
                continue
            # as blue as star-forming regions and not bright, on a galaxy blue enough to
            # have them: a knot that the light's symmetry singles out, as often as a star
            if (cand_gr[j] < rules.asym_knot_gr and snr[j] < rules.asym_knot_snr
                    and galaxy_gr < rules.asym_knot_galaxy_gr
                    and gal_frac[j] < rules.knot_max_fraction):
                reason[j] = (f"{reason[j]}; a point source {info['offset']:.1f} px from the "
                             f"centre, but as blue as star-forming knots (g-r "
                             f"{cand_gr[j]:.2f} < {rules.asym_knot_gr:g}, S/N {snr[j]:.0f} < "
                             f"{rules.asym_knot_snr:g}, galaxy g-r {galaxy_gr:.2f})")
                continue
            decision[j] = "star"
            reason[j] = (f"point source {info['offset']:.1f} px from the galaxy's centre of "
                         f"symmetry, fitted in the light's asymmetry (flux "
                         f"{info['flux']:.3g} +- {info['flux_err']:.2g})")
        decision = decision.astype(str)
        reason = reason.astype(str)

    # -- removal ----------------------------------------------------------------------------
    is_star = decision == "star"
    removal = np.array([""] * n, dtype=object)
    if method == "subtract":
        to_inpaint = np.zeros(n, bool)
    elif method == "inpaint":
        to_inpaint = is_star.copy()
    else:
        to_inpaint = is_star & (csat | (peak_snr >= BRIGHT_PEAK_SNR))
        # a star fitted on the core is subtracted: a mask there would take the core too
        to_inpaint &= ~(asym_star & ~csat)
    removal[is_star] = "subtract"
    removal[to_inpaint] = "inpaint"
    mask_radius = np.zeros(n)
    spikes = {}

    # render radius: where the star falls below 5% of the noise (capped)
    rcap = 0.25 * max(nx, ny) + 10
    models = []
    rads = []
    for k in range(nb):
        if not is_star.any():
            models.append(np.zeros(shape))
            rads.append(np.zeros(n))
            continue
        fl = phot[k]["flux"]
        lvl = 0.05 * rmss[k][iy, ix]
        rad = np.clip(psfs[k].radius_at(np.abs(fl), lvl), 1.5 * psfs[k].fwhm, rcap)
        rads.append(rad)
        sel = is_star & (fl > 0)
        models.append(render_stars(shape, cx[sel], cy[sel], fl[sel], psfs[k], radius=rad[sel]))

    inpainted = np.zeros(shape, bool)
    if to_inpaint.any():
        # others subtracted, so spikes and halos of each bright star stand out: every star
        # is subtracted once, and each one's own model is added back in its window
        resid_all = np.where(np.isfinite(blist[0].data), sub[0] - models[0], np.nan)
        sat_lab = None
        if sat_any.any():
            from scipy import ndimage
            sat_lab = ndimage.label(sat_any, structure=np.ones((3, 3)))[0]
        for j in np.nonzero(to_inpaint)[0]:
            f_est = max(flux[j], 0.0)
            if csat[j]:
                # the saturated core hides flux: use the saturated area as a floor
                f_est = max(f_est, _flux_from_saturation(sats[0] | sat_any, cx[j], cy[j],
                                                         blist[0].data, psfs[0]))
            m, info = bright_star_mask(resid_all, cx[j], cy[j], f_est, psfs[0],
                                       rms=float(rmss[0][iy[j], ix[j]]), saturated=sat_any,
                                       spikes=bool(csat[j] or peak_snr[j] >= BRIGHT_PEAK_SNR),
                                       add_back=float(flux[j]) if is_star[j] and flux[j] > 0
                                       else 0.0, add_back_radius=rads[0][j], labels=sat_lab)
            mask_radius[j] = info["radius"]
            spikes[j] = info["spikes"]
            inpainted |= m
        # on the protected galaxy (when a core was found on it: a footprint without one can
        # be a saturated star's halo), a star's mask leaves out the pixels where the
        # galaxy's smooth light outshines the star's model -- the star's light is
        # subtracted there; inpainting would take the galaxy's light with it
        if footprint.any() and np.any(decision == "core"):
            inpainted &= ~(footprint & (models[0] < gal_models[0]))
        # the protected core is never inpainted: around each candidate decided "core",
        # unless it sits where a saturated star dominates (its mask wins there)
        if core_xy is not None and footprint.any():
            yy, xx = np.ogrid[0:ny, 0:nx]
            for j in np.nonzero(decision == "core")[0]:
                if no_centre is not None and no_centre[iy[j], ix[j]]:
                    continue
                inpainted &= (xx - cx[j]) ** 2 + (yy - cy[j]) ** 2 > (1.5 * fwhm0) ** 2
            for pc in protect_centres:
                if no_centre is None or not no_centre[int(round(pc[1])), int(round(pc[0]))]:
                    inpainted &= (xx - pc[0]) ** 2 + (yy - pc[1]) ** 2 > (1.5 * fwhm0) ** 2
    # saturated pixels of any band belong to stars (bleed trails between stars)
    if method != "subtract" and is_star.any() and sat_any.any():
        from scipy import ndimage
        lab, _ = ndimage.label(sat_any, structure=np.ones((3, 3)))
        ids = np.unique(lab[iy[is_star & csat], ix[is_star & csat]])
        ids = ids[ids > 0]
        if ids.size:
            inpainted |= ndimage.binary_dilation(np.isin(lab, ids), iterations=2)

    clean_bands = []
    for k, b in enumerate(blist):
        work = b.data - models[k]
        if inpainted.any():
            work = inpaint_float(work, inpainted, inpaint, rmss[k], gen)
        work = np.where(np.isfinite(b.data), work, np.nan)
        clean_bands.append(work.astype(np.float32))
    changed = inpainted | (models[0] > rmss[0])

    # -- outputs ---------------------------------------------------------------------------
    names = [b.name for b in blist]
    cat = QTable()
    cat["id"] = np.arange(1, n + 1)
    cat["x"] = cx
    cat["y"] = cy
    if ref.wcs is not None and n:
        cat["sky"] = ref.wcs.pixel_to_world(cx, cy)
    elif ref.wcs is not None:
        from astropy.coordinates import SkyCoord
        cat["sky"] = SkyCoord([], [], unit="deg")
    unit = ref.unit
    cat["flux"] = flux * unit if unit is not None else flux
    cat["flux_err"] = ferr * unit if unit is not None else ferr
    cat["snr"] = snr
    cat["peak_snr"] = peak_snr
    cat["score"] = best_score
    cat["scale"] = best_scale
    cat["score1"] = score1
    cat["colour"] = colour if nb > 2 else colour[:, 0]
    cat["decision"] = decision
    cat["reason"] = reason
    cat["removal"] = removal.astype(str)
    cat["saturated"] = csat
    cat["on_galaxy"] = on_gal
    cat["chi2"] = phot[0]["chi2"] if n else np.zeros(0)
    cat["extent"] = extent
    cat["extent_dchi2"] = extent_dchi2
    cat["mask_radius"] = mask_radius
    cat["n_spikes"] = np.array([len(spikes.get(j, ())) for j in range(n)], dtype=int)
    if nb > 1:
        for k in range(nb):
            cat[f"flux_{names[k]}"] = phot[k]["flux"] if n else np.zeros(0)
    cat.meta.update(dict(psf="; ".join(psf_notes), fwhm_pixels=round(fwhm0, 3),
                         threshold=threshold, method=method, inpaint=inpaint, bands=names,
                         colour_definition=([f"{names[a]}-{names[b]}"
                                             for a, b in zip(order[:-1], order[1:])]
                                            if nb > 1 else "none"),
                         spikes={int(j + 1): [(round(a, 4), round(L, 1)) for a, L in v]
                                 for j, v in spikes.items() if v},
                         galaxy_gr=round(galaxy_gr, 3) if np.isfinite(galaxy_gr) else "unknown",
                         symmetry_centre=("none" if c_ref is None else
                                          f"{c_ref[0]:.2f},{c_ref[1]:.2f}"),
                         protected=("none" if core_xy is None or not footprint.any() else
                                    f"core at x={core_xy[0]:.1f}, y={core_xy[1]:.1f}, "
                                    f"{int(footprint.sum())} px")))
    if not is_star.any():
        warnings.warn("no stars found: the image is returned unchanged (threshold "
                      f"{threshold:g} sigma, PSF FWHM {fwhm0:.2f} px)", NoStarsWarning)

    inputs = [b.data for b in blist]
    if layout == "rgb":
        clean = np.stack(clean_bands, axis=-1)
        orig = np.stack(inputs, axis=-1)
    elif nb > 1:
        clean = np.stack(clean_bands)
        orig = np.stack(inputs)
    else:
        clean = clean_bands[0]
        orig = inputs[0]
    stars_img = (orig - clean).astype(np.float32)
    return StarRemovalResult(clean=clean, stars=stars_img, mask=changed, inpainted=inpainted,
                             catalog=cat, psf=psfs if nb > 1 else psfs[0], band_names=names,
                             wcs=ref.wcs, header=None if ref.header is None else
                             ref.header.copy(), unit=ref.unit, footprint=footprint,
                             layout=layout)


def _core_star(sub, bad, rmss, psfs, cx, cy, csat, phot, c, on_gal, taken, arrays,
               footprint, fwhm, *, max_stars=2, core_offset=CORE_STAR_MIN_OFFSET,
               bright=None):
    """Stars on or beside the protected core, fitted in the light's asymmetry about the
    centre of symmetry ``c`` (`fit_offcentre_star`), one at a time (each one found is fitted
    with the next); the candidate at each (or a new one) gets its position and per-band
    fluxes. Returns the updated candidates and arrays, the candidates found this way
    (bool), their fit results and the fitted centre (None when no star was found). A star
    at the candidate taken for the core must lie ``core_offset`` FWHM or more from the
    fitted centre. Nothing is looked for near a saturated star or a ``bright`` one (bool per
    candidate)."""
    from .deblend import fit_offcentre_star, offcentre_flux

    n = cx.size
    nb = len(sub)
    shape = sub[0].shape
    ny, nx = shape
    R = max(3.5 * fwhm, 6.0)
    d_c = np.hypot(cx - c[0], cy - c[1])
    if ((csat | (bright if bright is not None else False)) & (d_c <= R + 6 * fwhm)).any():
        # a saturated (or bright) star's halo breaks the symmetry
        return cx, cy, csat, phot, arrays, np.zeros(n, bool), {}, None
    a = arrays
    f0 = np.asarray(phot[0]["flux"], float)
    # sources fitted together with the new star (fluxes free): stars found already, and
    # sharp point sources away from the core; the others near the core are where the new
    # star is looked for first; the rest are left out (with their mirror images)
    sharp = a["pointlike"] & (a["score1"] >= 0.9) & (d_c > 2 * fwhm)
    is_known = (d_c <= R + 3 * fwhm) & (f0 > 0) & (taken | sharp)
    targets = np.nonzero((d_c <= CORE_STAR_SEARCH * fwhm) & ~is_known & on_gal)[0]
    yy, xx = np.mgrid[0:ny, 0:nx]
    box = (np.abs(xx - c[0]) <= R + 4) & (np.abs(yy - c[1]) <= R + 4)
    excl = np.zeros(shape, bool)
    for j in np.nonzero((d_c <= R + 3 * fwhm) & (d_c > 1.5 * fwhm) & ~is_known)[0]:
        if j not in targets:
            excl |= box & ((xx - cx[j]) ** 2 + (yy - cy[j]) ** 2 <= (1.2 * fwhm) ** 2)
    known = [(float(cx[j]), float(cy[j])) for j in np.nonzero(is_known)[0]]
    found = {}
    c_fit = None
    star = np.zeros(n, bool)
    shift = 1.5

    def fit_star(starts, max_shift):
        return fit_offcentre_star(sub[0], c, psfs[0], rms=rmss[0], bad=bad[0], exclude=excl,
                                  starts=starts, known=known, radius=R,
                                  max_centre_shift=max_shift,
                                  resolved_within=CORE_STAR_RESOLVED_OFFSET * fwhm)

    for _ in range(max_stars):
        starts = [(cx[j], cy[j]) for j in targets if j not in found]
        fit = fit_star(starts, shift)
        refit = (fit is not None
                 and max(abs(fit["cx"] - c[0]), abs(fit["cy"] - c[1])) >= 0.95 * shift)
        if refit:
            # the centre ran into its bound: the centre of symmetry of the outer light is off
            # (a structured or faint galaxy); refit with the centre twice as free, so that a
            # core seen from a wrong centre is not taken for a star beside it
            fit = fit_star(starts, 2 * shift)
        if fit is None:
            break
        d_s = math.hypot(fit["x"] - fit["cx"], fit["y"] - fit["cy"])
        bright = fit["flux"] >= CORE_STAR_SNR * fit["flux_err"]
        strong = bright and fit["dchi2"] >= CORE_STAR_SNR ** 2
        sharp_faint = (fit["flux"] >= CORE_STAR_SNR_SHARP * fit["flux_err"]
                       and fit["dchi2"] >= CORE_STAR_SNR_SHARP ** 2
                       and fit["dchi2_wide"] >= CORE_STAR_SHARP * fit["dchi2"])
        ok = (fit["flux"] > 0 and (strong or sharp_faint) and fit["dchi2_wide"] > 0
              and CORE_STAR_MIN_OFFSET * fwhm <= d_s <= R
              # closer in than CORE_STAR_CORE_OFFSET FWHM (on any galaxy), a flux of
              # CORE_STAR_SNR errors: there a fainter sharp asymmetry is as often a
              # lopsided core as a star
              and (bright or d_s >= CORE_STAR_CORE_OFFSET * fwhm)
              # the star explains most of the asymmetry (above the noise) about the centre
              and fit["dchi2"] >= CORE_STAR_EXPLAINED * (fit["chi2_0"] - fit["n_pix"])
              # and it is not resolved (measured within CORE_STAR_RESOLVED_OFFSET FWHM)
              and not fit["dchi2_resolved"] <= -CORE_STAR_RESOLVED_DCHI2)
        if not ok:
            break
        # the candidate at the star (not a known source), or a new one
        d_s_all = np.hypot(cx - fit["x"], cy - fit["y"])
        tol = max(1.5, 0.75 * fwhm)
        if d_s_all.size and d_s_all.min() <= tol and (
                is_known[int(np.argmin(d_s_all))] if int(np.argmin(d_s_all)) < is_known.size
                else True):
            break  # a source fitted already
        j = int(np.argmin(d_s_all)) if d_s_all.size else -1
        sharp_bright = bright and fit["dchi2_resolved"] >= CORE_STAR_RESOLVED_DCHI2
        if 0 <= j < n and d_s_all[j] <= tol and a["is_core"][j] and (
                refit or (d_s < core_offset * fwhm and not sharp_bright)):
            # the core itself, a little off a lopsided galaxy's centre of symmetry, or seen
            # from a centre that had to be refitted
            break
        if j < 0 or d_s_all[j] > tol:
            j = cx.size
            cx = np.append(cx, fit["x"])
            cy = np.append(cy, fit["y"])
            csat = np.append(csat, False)
            star = np.append(star, False)
            phot = [dict((key, np.append(np.asarray(v, dtype=float), np.nan))
                         for key, v in p.items()) for p in phot]
            a["snr"] = np.append(a["snr"], 0.0)
            a["peak_snr"] = np.append(a["peak_snr"], 0.0)
            a["scores"] = np.vstack([a["scores"], np.full((1, a["scores"].shape[1]), np.nan)])
            a["best_scale"] = np.append(a["best_scale"], np.nan)
            a["best_score"] = np.append(a["best_score"], np.nan)
            a["score1"] = np.append(a["score1"], np.nan)
            for key in ("pointlike", "is_core", "not_core", "sym_star"):
                a[key] = np.append(a[key], False)
            iyf = int(np.clip(round(fit["y"]), 0, ny - 1))
            ixf = int(np.clip(round(fit["x"]), 0, nx - 1))
            a["on_gal"] = np.append(a["on_gal"], bool(footprint[iyf, ixf]))
            a["sym_dup"] = np.append(a["sym_dup"], 0)
        cx = cx.copy()
        cy = cy.copy()
        cx[j], cy[j] = fit["x"], fit["y"]
        c_fit = (fit["cx"], fit["cy"])
        snr2 = 0.0
        for k in range(nb):
            if k == 0:
                fk, ek = fit["flux"], fit["flux_err"]
            else:
                fk, ek = offcentre_flux(sub[k], c_fit, (fit["x"], fit["y"]), psfs[k],
                                        rms=rmss[k], bad=bad[k], exclude=excl,
                                        known=[q[:2] for q in fit["known"]], radius=R)
            phot[k]["flux"][j] = fk
            phot[k]["flux_err"][j] = ek
            phot[k]["peak"][j] = fk * psfs[k].evaluate(np.zeros(1), np.zeros(1))[0]
            if np.isfinite(fk) and fk > 0 and ek > 0:
                snr2 += (fk / ek) ** 2
        a["snr"][j] = math.sqrt(snr2)
        iyj = int(np.clip(round(cy[j]), 0, ny - 1))
        ixj = int(np.clip(round(cx[j]), 0, nx - 1))
        a["peak_snr"][j] = phot[0]["peak"][j] / rmss[0][iyj, ixj]
        a["is_core"][j] = False
        a["not_core"][j] = True
        star[j] = True
        found[j] = dict(fit, offset=d_s)
        known.append((fit["x"], fit["y"]))
        # the next one is fitted about this star's fitted centre, which it may barely move
        c = c_fit
        shift = max(0.5, 0.2 * fwhm)
    return cx, cy, csat, phot, a, star, found, c_fit


def _star_dominated(out, sub0, rms0, psf, x, y, flux):
    """Mark in ``out`` (bool image, updated in place) the pixels a star of ``flux`` at
    (``x``, ``y``) dominates: out to 3 FWHM, and wherever its PSF model is above half the
    light. No galaxy centre is looked for there (the star's residual halo would be the
    brightest "galaxy light")."""
    ny, nx = out.shape
    fwhm = psf.fwhm
    r0 = 3 * fwhm
    r_j = r0
    if flux > 0:
        lvl = 0.1 * rms0[int(np.clip(round(y), 0, ny - 1)), int(np.clip(round(x), 0, nx - 1))]
        r_j = float(np.clip(psf.radius_at(flux, lvl), r0, 0.25 * max(nx, ny)))
    x0, x1 = max(0, int(x - r_j)), min(nx, int(x + r_j) + 2)
    y0, y1 = max(0, int(y - r_j)), min(ny, int(y + r_j) + 2)
    yb, xb = np.mgrid[y0:y1, x0:x1]
    r2 = (xb - x) ** 2 + (yb - y) ** 2
    sel = r2 <= r0 ** 2
    if flux > 0:
        inside = r2 <= r_j ** 2
        mod = flux * psf.evaluate((xb - x)[inside], (yb - y)[inside])
        dom = np.zeros(r2.shape, bool)
        dom[inside] = mod > 0.5 * np.abs(sub0[y0:y1, x0:x1][inside])
        sel |= dom
    out[y0:y1, x0:x1] |= sel


def _axis_ratio(model, footprint):
    """Axis ratio (minor / major, from second moments) of the positive light of ``model``
    inside ``footprint``; 1 when undefined."""
    ys, xs = np.nonzero(footprint)
    w = np.clip(np.nan_to_num(model[ys, xs]), 0.0, None)
    tot = float(w.sum())
    if tot <= 0:
        return 1.0
    dx = xs - float(np.dot(w, xs)) / tot
    dy = ys - float(np.dot(w, ys)) / tot
    cov = np.array([[np.dot(w, dx * dx), np.dot(w, dx * dy)],
                    [np.dot(w, dx * dy), np.dot(w, dy * dy)]]) / tot
    ev = np.linalg.eigvalsh(cov)
    return float(math.sqrt(max(ev[0], 0.0) / ev[1])) if ev[1] > 0 else 1.0


def _photometry(images, bad, rmss, psfs, cx, cy):
    """PSF photometry in every band; positions refined in the first band only."""
    if cx.size == 0:
        return cx, cy, [dict(flux=np.zeros(0), flux_err=np.zeros(0), chi2=np.zeros(0),
                             peak=np.zeros(0)) for _ in images]
    r = max(3.0, 2.0 * psfs[0].fwhm)
    p0 = fit_psf_photometry(images[0], cx, cy, psfs[0], rms=rmss[0], bad=bad[0], radius=r)
    cx, cy = p0["x"], p0["y"]
    phot = [p0]
    for k in range(1, len(images)):
        phot.append(fit_psf_photometry(images[k], cx, cy, psfs[k], rms=rmss[k], bad=bad[k],
                                       refine=False, radius=max(3.0, 2.0 * psfs[k].fwhm)))
    return cx, cy, phot


def _merge_bright_blends(cx, cy, csat, phot, rms, footprint, fwhm, *, min_peak_snr=200.0):
    """Merge groups of candidates within 1.5 FWHM of each other around a bright peak (off
    the protected galaxy) into one candidate treated as saturated."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    ny, nx = rms.shape
    ix = np.clip(np.round(cx).astype(int), 0, nx - 1)
    iy = np.clip(np.round(cy).astype(int), 0, ny - 1)
    flux = np.nan_to_num(phot[0]["flux"])
    peak = np.nan_to_num(phot[0]["peak"]) / rms[iy, ix]
    off = ~footprint[iy, ix]
    pairs = cKDTree(np.column_stack([cx, cy])).query_pairs(1.5 * fwhm, output_type="ndarray")
    if pairs.size == 0:
        return cx, cy, csat, phot, False
    keep = off[pairs[:, 0]] & off[pairs[:, 1]] & \
        (np.maximum(peak[pairs[:, 0]], peak[pairs[:, 1]]) >= min_peak_snr)
    pairs = pairs[keep]
    if pairs.size == 0:
        return cx, cy, csat, phot, False
    from scipy.sparse import coo_matrix
    n = cx.size
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    sizes = np.bincount(lab)
    drop = np.zeros(n, bool)
    for grp in np.nonzero(sizes > 1)[0]:
        members = np.nonzero(lab == grp)[0]
        w = np.clip(flux[members], 0, None) + 1e-12
        j = members[np.argmax(peak[members])]
        cx[j] = float(np.sum(w * cx[members]) / w.sum())
        cy[j] = float(np.sum(w * cy[members]) / w.sum())
        csat[j] = True
        drop[members[members != j]] = True
    keep = ~drop
    phot = [dict((k, np.asarray(v)[keep]) for k, v in p.items()) for p in phot]
    return cx[keep], cy[keep], csat[keep], phot, True


def _photometry_near(sub, gal_models, bad, rmss, psfs, cx, cy, phot, near):
    """Redo the photometry of the candidates in ``near`` on the images minus the galaxy
    model (candidates added since ``phot`` are all in ``near``); the others keep theirs."""
    ny, nx = near.shape
    ix = np.clip(np.round(cx).astype(int), 0, nx - 1)
    iy = np.clip(np.round(cy).astype(int), 0, ny - 1)
    sel = near[iy, ix]
    n_old = phot[0]["flux"].size
    sel[n_old:] = True
    out = [dict((k, np.concatenate([np.asarray(v), np.full(cx.size - n_old, np.nan)]))
                for k, v in p.items()) for p in phot]
    if not sel.any():
        return cx, cy, out
    j = np.nonzero(sel)[0]
    x2, y2, ph = _photometry([sub[k] - gal_models[k] for k in range(len(sub))], bad, rmss,
                             psfs, cx[j], cy[j])
    cx, cy = cx.copy(), cy.copy()
    cx[j], cy[j] = x2, y2
    for k in range(len(out)):
        for key, v in ph[k].items():
            if key in out[k]:
                out[k][key] = np.asarray(out[k][key], dtype=float)
                out[k][key][j] = v
    return cx, cy, out


def _ignore_mask(shape, cx, cy, flux, psf, rms_at, fwhm):
    """Weights 0 within the cores (and bright halos) of the candidates, 1 elsewhere."""
    ny, nx = shape
    w = np.ones(shape)
    pos = flux > 0
    r_ign = np.clip(psf.radius_at(np.abs(flux), rms_at), 1.5 * fwhm, 0.25 * max(nx, ny))
    r_ign = np.where(pos, r_ign, 1.5 * fwhm)
    yy, xx = np.ogrid[0:ny, 0:nx]
    for j in range(cx.size):
        y0, y1 = int(max(0, cy[j] - r_ign[j])), int(min(ny, cy[j] + r_ign[j] + 1))
        x0, x1 = int(max(0, cx[j] - r_ign[j])), int(min(nx, cx[j] + r_ign[j] + 1))
        if y1 <= y0 or x1 <= x0:
            continue
        block = w[y0:y1, x0:x1]
        block[(xx[:, x0:x1] - cx[j]) ** 2 + (yy[y0:y1] - cy[j]) ** 2 <= r_ign[j] ** 2] = 0.0
    return w


def _smooth_galaxy(sub, cx, cy, flux, psf, rms, region, fwhm):
    """Smooth galaxy light inside ``region``: the lightly smoothed image with every candidate
    masked (out to where it falls below twice the noise) and filled by Navier-Stokes
    inpainting from the surrounding galaxy light."""
    from scipy import ndimage

    shape = sub.shape
    ix = np.clip(np.round(cx).astype(int), 0, shape[1] - 1)
    iy = np.clip(np.round(cy).astype(int), 0, shape[0] - 1)
    holes = _ignore_mask(shape, cx, cy, flux, psf, 2.0 * rms[iy, ix], fwhm) == 0
    holes &= ndimage.binary_dilation(region, iterations=int(2 * fwhm) + 2)
    img = ndimage.gaussian_filter(np.nan_to_num(sub), max(0.5, 0.5 * fwhm))
    if holes.any():
        img = inpaint(img, holes, method="ns", radius=max(3, int(fwhm)))
        img = ndimage.gaussian_filter(img.astype(np.float64), max(0.5, 0.5 * fwhm))
    return np.where(region, img, 0.0)


def _psf_models(shape, rms0, cx, cy, flux, psf, sel):
    """The PSF models of the candidates ``sel`` (bool) with positive flux, each rendered out
    to where it falls below a tenth of the local noise (3 FWHM at least); 0.0 when there is
    none."""
    ny, nx = shape
    sel = np.asarray(sel, bool) & (flux > 0)
    if not sel.any():
        return 0.0
    ix = np.clip(np.round(cx[sel]).astype(int), 0, nx - 1)
    iy = np.clip(np.round(cy[sel]).astype(int), 0, ny - 1)
    rad = np.clip(psf.radius_at(flux[sel], 0.1 * rms0[iy, ix]), 3 * psf.fwhm,
                  0.25 * max(nx, ny))
    return render_stars(shape, cx[sel], cy[sel], flux[sel], psf, radius=rad)


def _galaxy_centre(sub0, rms0, cx, cy, flux, psf, footprint, protect_xy, subtract=True,
                   exclude=None):
    """Centre of the protected galaxy and its smoothed light.

    Every candidate's PSF model is subtracted; a median filter (0.4 footprint radii)
    removes what is left of compact sources (imperfect subtractions, knots) and a Gaussian
    (0.2 radii) smooths the rest: the peak is the centre of the galaxy's light, which
    neither a star beside it nor knots and arms move much.
    """
    from scipy import ndimage

    shape = sub0.shape
    ny, nx = shape
    fwhm = psf.fwhm
    img = np.nan_to_num(sub0 / rms0)
    if subtract:
        img = img - _psf_models(shape, rms0, cx, cy, flux, psf, np.ones(cx.size, bool)) / rms0
    if exclude is not None:
        img = np.where(exclude, 0.0, img)  # residuals of saturated stars are no galaxy light
    r_fp = math.sqrt(footprint.sum() / math.pi)
    # the footprint's bounding box, block-averaged when the galaxy is large
    ys, xs = np.nonzero(footprint)
    pad = int(r_fp) + 2
    y0, y1 = max(0, ys.min() - pad), min(ny, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(nx, xs.max() + pad + 1)
    f = int(max(1, math.ceil(r_fp / 40.0)))
    box = img[y0:y1, x0:x1]
    hb, wb = box.shape[0] // f, box.shape[1] // f
    if f > 1:
        box = box[:hb * f, :wb * f].reshape(hb, f, wb, f).mean(axis=(1, 3))
    size = int(max(3, 0.4 * r_fp / f)) | 1
    smb = ndimage.gaussian_filter(ndimage.median_filter(box, size=size),
                                  max(1.0, 0.2 * r_fp / f))
    if f > 1:
        smb = np.kron(smb, np.ones((f, f)))
    sm = np.full(shape, -np.inf)
    sm[y0:y0 + smb.shape[0], x0:x0 + smb.shape[1]] = smb
    allowed = footprint.copy()
    if protect_xy is not None:
        yy, xx = np.ogrid[0:ny, 0:nx]
        allowed &= (xx - protect_xy[0]) ** 2 + (yy - protect_xy[1]) ** 2 \
            <= max(3 * fwhm, 0.5 * r_fp) ** 2
        if not allowed.any():
            allowed = footprint.copy()
    if exclude is not None and (allowed & ~exclude).any():
        allowed &= ~exclude
    j = int(np.argmax(np.where(allowed, sm, -np.inf)))
    return (float(j % nx), float(j // nx)), sm


def _refine_peak(img, xy):
    """Sub-pixel position of a peak of a smooth map: a parabola through the 3 x 3 pixels
    around the integer position ``xy`` (each axis separately, shift capped at half a
    pixel)."""
    ny, nx = img.shape
    x, y = int(round(xy[0])), int(round(xy[1]))
    if not (1 <= x < nx - 1 and 1 <= y < ny - 1):
        return float(xy[0]), float(xy[1])
    out = []
    for a, b, c in ((img[y, x - 1], img[y, x], img[y, x + 1]),
                    (img[y - 1, x], img[y, x], img[y + 1, x])):
        den = a - 2 * b + c
        sh = 0.5 * (a - c) / den if np.isfinite(den) and den < 0 else 0.0
        out.append(float(np.clip(sh, -0.5, 0.5)) if np.isfinite(sh) else 0.0)
    return x + out[0], y + out[1]


def _symmetry_centre(sub, bad, c0, cx, cy, fwhm, *, search, radius):
    """Centre of point symmetry of the light around ``c0``: the point ``c`` (on a half-pixel
    grid within ``search`` pixels, then refined by a parabola) minimising the mean
    ``|I(p) - I(2c - p)|`` over a disk of ``radius``, leaving out pixels within 1.5 FWHM of
    any candidate (and their mirror images)."""
    ny, nx = sub.shape
    m = int(math.floor(radius))
    h = int(math.ceil(search)) + m + 2
    X0, Y0 = int(round(c0[0])), int(round(c0[1]))
    x0, x1 = max(0, X0 - h), min(nx, X0 + h + 1)
    y0, y1 = max(0, Y0 - h), min(ny, Y0 + h + 1)
    win = np.asarray(sub[y0:y1, x0:x1], dtype=np.float64)
    ok = ~bad[y0:y1, x0:x1] & np.isfinite(win)
    near = (cx > x0 - 2 * fwhm) & (cx < x1 + 2 * fwhm) & (cy > y0 - 2 * fwhm) & \
        (cy < y1 + 2 * fwhm)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    for j in np.nonzero(near)[0]:
        ok &= (xx - cx[j]) ** 2 + (yy - cy[j]) ** 2 > (1.5 * fwhm) ** 2
    win = np.where(ok, win, 0.0)
    g = np.arange(-m, m + 1)
    disk = (g[:, None] ** 2 + g[None, :] ** 2) <= radius ** 2
    ns = int(math.ceil(2 * search))
    best = (np.inf, X0, Y0)
    cost = {}
    for dv in range(-ns, ns + 1):
        for du in range(-ns, ns + 1):
            u, v = 2 * X0 + du, 2 * Y0 + dv  # 2c
            # pixel ranges symmetric about c = (u/2, v/2)
            xa = (u - 2 * m) // 2 if u % 2 == 0 else (u + 1) // 2 - m
            ya = (v - 2 * m) // 2 if v % 2 == 0 else (v + 1) // 2 - m
            xb, yb = u - xa + 1, v - ya + 1
            if xa < x0 or ya < y0 or xb > x1 or yb > y1:
                continue
            S = win[ya - y0:yb - y0, xa - x0:xb - x0]
            V = ok[ya - y0:yb - y0, xa - x0:xb - x0]
            dk = disk if S.shape == disk.shape else np.ones(S.shape, bool)
            V = V & V[::-1, ::-1] & dk
            nv = V.sum()
            if nv < 20:
                continue
            c = float(np.abs(S - S[::-1, ::-1])[V].sum() / nv)
            cost[(du, dv)] = c
            if c < best[0]:
                best = (c, du, dv)
    if not np.isfinite(best[0]):
        return float(c0[0]), float(c0[1])
    _, du, dv = best
    out = []
    for a, b, c in ((cost.get((du - 1, dv)), best[0], cost.get((du + 1, dv))),
                    (cost.get((du, dv - 1)), best[0], cost.get((du, dv + 1)))):
        sh = 0.0
        if a is not None and c is not None and a - 2 * b + c > 0:
            sh = float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5))
        out.append(sh)
    return X0 + 0.5 * (du + out[0]), Y0 + 0.5 * (dv + out[1])


def _asymmetric_peaks(sub, bad, c, cx, cy, flux, psf, rms, *, r_in, r_out, nsigma):
    """Point sources in the image minus its part symmetric about ``c``, between ``r_in`` and
    ``r_out`` pixels from it, more than 0.6 FWHM from every candidate: peaks of the
    PSF-filtered excess above ``nsigma`` times its robust noise."""
    from scipy import ndimage

    fwhm = psf.fwhm
    d_c = np.hypot(cx - c[0], cy - c[1])
    far = d_c > r_out + 2 * fwhm
    fk = np.where(far & (flux > 0), flux, 0.0)
    ny, nx = sub.shape
    ix = np.clip(np.round(cx).astype(int), 0, nx - 1)
    iy = np.clip(np.round(cy).astype(int), 0, ny - 1)
    rad = np.clip(psf.radius_at(fk, 0.1 * rms[iy, ix]), 2 * fwhm, 0.25 * max(nx, ny))
    e_img, (x0, y0) = _symmetric_excess(sub, bad, c, cx, cy, fk, psf, rad,
                                        r_out + 4 * fwhm)
    half = int(math.ceil(1.5 * fwhm))
    k = psf.stamp(2 * half + 1)
    k = k / np.sqrt(np.sum(k ** 2))
    conv = ndimage.convolve(e_img, k, mode="constant")
    yy, xx = np.mgrid[0:e_img.shape[0], 0:e_img.shape[1]]
    r = np.hypot(xx + x0 - c[0], yy + y0 - c[1])
    ring = (r >= r_out) & (r <= r_out + 3 * fwhm)
    vals = conv[ring] if ring.sum() >= 20 else conv.ravel()
    med = float(np.median(vals))
    sig = float(1.4826 * np.median(np.abs(vals - med)))
    sig = max(sig, float(np.median(rms[iy, ix])) if cx.size else 0.0, 1e-30)
    peak = (conv == ndimage.maximum_filter(conv, size=2 * half + 1)) & \
        (conv > med + nsigma * sig) & (r >= r_in) & (r <= r_out)
    py, px = np.nonzero(peak)
    # sub-pixel: a parabola through the filtered excess along each axis
    sx = np.zeros(px.size)
    sy = np.zeros(py.size)
    ok_ = (px >= 1) & (px < conv.shape[1] - 1) & (py >= 1) & (py < conv.shape[0] - 1)
    for arr_, a_, b_, c_ in ((sx, conv[py[ok_], px[ok_] - 1], conv[py[ok_], px[ok_]],
                              conv[py[ok_], px[ok_] + 1]),
                             (sy, conv[py[ok_] - 1, px[ok_]], conv[py[ok_], px[ok_]],
                              conv[py[ok_] + 1, px[ok_]])):
        den = a_ - 2 * b_ + c_
        with np.errstate(divide="ignore", invalid="ignore"):
            arr_[ok_] = np.where(den < 0, np.clip(0.5 * (a_ - c_) / den, -0.5, 0.5), 0.0)
    bx, by = px + sx + float(x0), py + sy + float(y0)
    if bx.size and cx.size:
        dmin = np.min(np.hypot(bx[:, None] - cx[None], by[:, None] - cy[None]), axis=1)
        keep = dmin > 0.6 * fwhm
        bx, by = bx[keep], by[keep]
    return bx.astype(float), by.astype(float)


def _symmetric_excess(sub, bad, c, cx, cy, flux, psf, rad, half):
    """The image around ``c`` minus its part symmetric about ``c``: ``I - min(I, I')`` with
    ``I'`` the image rotated by 180 degrees about ``c`` (bilinear), after subtracting the
    PSF models of the candidates given a non-zero ``flux`` (those far from ``c``). Returns
    the excess window and its (x0, y0) origin."""
    from scipy import ndimage

    ny, nx = sub.shape
    h = int(math.ceil(half))
    x0, x1 = max(0, int(c[0]) - h), min(nx, int(c[0]) + h + 2)
    y0, y1 = max(0, int(c[1]) - h), min(ny, int(c[1]) + h + 2)
    win = np.where(bad[y0:y1, x0:x1], np.nan, sub[y0:y1, x0:x1]).astype(np.float64)
    sel = flux != 0
    sel &= (cx > x0 - rad) & (cx < x1 + rad) & (cy > y0 - rad) & (cy < y1 + rad)
    if sel.any():
        win -= render_stars(win.shape, cx[sel] - x0, cy[sel] - y0, flux[sel], psf,
                            radius=rad[sel])
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]]
    mx = 2 * (c[0] - x0) - xx
    my = 2 * (c[1] - y0) - yy
    inside = (mx >= 0) & (mx <= win.shape[1] - 1) & (my >= 0) & (my <= win.shape[0] - 1)
    filled = np.nan_to_num(win, nan=0.0)
    mir = ndimage.map_coordinates(filled, [my, mx], order=1, mode="nearest")
    mir_ok = ndimage.map_coordinates(np.isfinite(win).astype(float), [my, mx], order=1,
                                     mode="nearest") > 0.999
    excess = np.where(inside & mir_ok & np.isfinite(win), filled - np.minimum(filled, mir), 0.0)
    return excess, (x0, y0)


def inpaint_float(data, mask, method, rms, rng):
    """Inpaint ``mask`` of ``data`` with noise added back: the background noise map, capped
    at 1.5 times the image's robust pixel-to-pixel noise (background boxes dominated by a
    bright star overestimate the sky noise)."""
    from ..normalize import estimate_noise

    cap = 1.5 * estimate_noise(data, mask=mask)
    return inpaint(data, mask, method=method, noise=np.minimum(rms, cap),
                   rng=rng).astype(np.float64)


def _flux_from_saturation(sat, x, y, data, psf):
    """Lower bound of a saturated star's flux: the PSF peak must exceed the level over the
    saturated area of its core."""
    from scipy import ndimage

    lab, _ = ndimage.label(sat)
    ny, nx = sat.shape
    j = lab[int(np.clip(round(y), 0, ny - 1)), int(np.clip(round(x), 0, nx - 1))]
    if j == 0:
        return 0.0
    region = lab == j
    # core radius from the widest row (trails run along columns)
    width = region.sum(axis=1).max()
    r = 0.5 * width
    level = float(np.nanmin(data[region]))
    prof = psf.profile(np.array([r]))[0]
    return float(level / prof) if prof > 0 else 0.0


_BAND_ORDER = "ugrizy"


def _canonical_band(name):
    n = str(name or "").strip()
    if len(n) >= 1 and n[0].lower() in _BAND_ORDER and (len(n) == 1 or not n[1].isalpha()):
        return n[0].lower()
    return n


def _wavelength_order(names):
    """Band indices sorted blue to red when all names are known survey bands."""
    canon = [_canonical_band(n) for n in names]
    if all(c in _BAND_ORDER and len(c) == 1 for c in canon) and len(set(canon)) == len(canon):
        return sorted(range(len(names)), key=lambda k: _BAND_ORDER.index(canon[k]))
    if [n.upper() for n in names] == ["R", "G", "B"]:
        return [2, 1, 0]
    return list(range(len(names)))


def _colour(pa, pb):
    """Colour (mag) and its error from two bands' PSF photometry."""
    fa, fb = pa["flux"], pb["flux"]
    ea, eb = pa["flux_err"], pb["flux_err"]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = -2.5 * np.log10(fa / fb)
        e = 1.0857 * np.sqrt((ea / fa) ** 2 + (eb / fb) ** 2)
    ok = (fa > 0) & (fb > 0)
    return np.where(ok, c, np.nan), np.where(ok, e, np.nan)


def _compact_population(colour, on_gal, score, snr):
    """The galaxy's compact sources whose colours and flux are compared with each
    candidate's (`_knot_population_distance`, `_knot_flux_ratio`): on the galaxy, all
    colours measured, S/N 5 or more, best template score 0.5 or more."""
    return on_gal & np.all(np.isfinite(colour), axis=1) & (snr >= 5) & (score >= 0.5)


def _knot_flux_ratio(flux, colour, on_gal, score, snr, *, min_members=5):
    """Each candidate's flux over the median flux of the *other* members of the galaxy's
    compact population (`_compact_population`; NaN when it has fewer than ``min_members``
    with the candidate). The knots of one galaxy differ in flux by a factor of a few; a
    foreground star with their colours is often far brighter."""
    n = flux.size
    use = _compact_population(colour, on_gal, score, snr) & np.isfinite(flux)
    m = int(use.sum())
    if m < min_members - 1:
        return np.full(n, np.nan)
    vals = np.sort(flux[use])
    med = np.full(n, float(np.median(vals)))  # candidates outside the population
    if m - 1 >= min_members - 1:
        # a member against the others: the sorted values without its own
        for j in np.nonzero(use)[0]:
            med[j] = np.median(np.delete(vals, np.searchsorted(vals, flux[j])))
    else:
        med[use] = np.nan  # with the candidate left out, too few remain
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(med > 0, flux / med, np.nan)


def _knot_population_distance(colour, colour_err, on_gal, score, snr, *, min_members=5,
                              floor=0.1, clip=3.0, max_spread=0.15):
    """How far each candidate's colours are from those of the galaxy's compact sources.

    Star-forming knots share one colour; a foreground star on the galaxy generally does not.
    When the protected galaxy carries ``min_members`` or more compact candidates, the knot
    population is the largest group of them that share one colour: members further than
    ``clip`` combined errors (measurement error and ``floor`` mag) from the group's median
    are dropped, and the median recomputed, until nothing changes -- so stars and background
    galaxies among the compact sources do not widen it. The distance of every candidate from
    the group's median is returned in units of its error, the group's intrinsic scatter
    (capped at ``max_spread``) and 0.05 mag added in quadrature. When fewer than
    ``min_members`` share a colour, the whole population is the group (NaN when it has fewer
    than ``min_members``).
    """
    n = colour.shape[0]
    out = np.full(n, np.nan)
    use = _compact_population(colour, on_gal, score, snr)
    if use.sum() < min_members:
        return out
    err = np.nan_to_num(colour_err, nan=1.0)
    member = use.copy()
    for _ in range(10):
        med = np.median(colour[member], axis=0)
        z = np.max(np.abs(colour - med[None]) / np.hypot(err, floor), axis=1)
        new = use & (z <= clip)
        if new.sum() < min_members:
            # no group of that size shares a colour: the whole population, as it is
            member = use
            break
        if np.array_equal(new, member):
            break
        member = new
    c = colour[member]
    med = np.median(c, axis=0)
    mad = 1.4826 * np.median(np.abs(c - med), axis=0)
    e2 = np.median(err[member] ** 2, axis=0)
    spread = np.minimum(np.sqrt(np.maximum(mad ** 2 - e2, 0.0)), max_spread)
    tot = np.sqrt(spread[None] ** 2 + err ** 2 + 0.05 ** 2)
    z = np.abs(colour - med[None]) / tot
    return np.nanmax(z, axis=1)
