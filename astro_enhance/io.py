"""Reading any astropy image form into one record, and writing FITS safely.

`read_image` is the single input parser of the package (in the spirit of
``reproject.utils.parse_input_data``): a path (``.fits``, ``.fits.gz``, ``.fits.bz2``,
``.fits.fz``), an HDU, an `~astropy.io.fits.HDUList`, a `~astropy.nddata.CCDData` or
`~astropy.nddata.NDData`, an ``(array, WCS or Header)`` tuple or an `Image` all become an
`Image`: float32 native-endian data in physical units, a two-dimensional celestial WCS, the unit
from ``BUNIT``, a mask and a copy of the header. The input object is never modified.

`write_fits` writes atomically (a temporary file in the target directory, then a rename), so an
output is either complete or absent; `add_provenance` records what astro_enhance did in the
header.
"""

import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .exceptions import (AstroEnhanceWarning, FITSReadError, InputError, NoImageError,
                         OutputError, OutputExistsError, WCSError)
from .version import __version__

__all__ = ["Image", "read_image", "write_fits", "write_table_atomic",
           "add_provenance", "image_to_hdu",
           "parse_unit", "unit_to_bunit", "MAX_PIXELS"]

#: Largest number of pixels an input file may declare (and `~astro_enhance.resample` may
#: make): 2**30, i.e. 4 GiB as float32. Larger requests fail at once with a clear message
#: instead of trying to allocate the memory; raise it if you really have such images.
MAX_PIXELS = 2 ** 30


@dataclass
class Image:
    """One normalised image record: the common currency of astro_enhance.

    Parameters
    ----------
    data : ndarray, shape (ny, nx), float32
        Pixel values in their physical units and zero point (never rescaled to [0, 1]).
    wcs : `~astropy.wcs.WCS`
        Two-dimensional celestial WCS of ``data``.
    unit : `~astropy.units.UnitBase` or None
        Unit of the pixel values (from BUNIT), None when unknown.
    mask : ndarray of bool, shape (ny, nx), or None
        True where a pixel is bad or missing. NaN pixels are always also masked.
    header : `~astropy.io.fits.Header`
        The input header (a copy; the input is never modified).
    filename : str or None
        The file the image was read from, when there was one.

    Examples
    --------
    >>> from astro_enhance.io import read_image
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> img = read_image(make_sdss_sample(shape=(32, 32)))
    >>> img.data.dtype, img.shape, img.unit
    (dtype('float32'), (32, 32), Unit("nmgy"))
    """

    data: np.ndarray
    wcs: WCS
    unit: object = None
    mask: np.ndarray = None
    header: fits.Header = field(default_factory=fits.Header)
    filename: str = None

    @property
    def shape(self):
        """Shape ``(ny, nx)`` of the data."""
        return self.data.shape


# ---------------------------------------------------------------------------------------------
# Units

# ``nanomaggy`` (what SDSS writes in BUNIT) is a regular astropy unit in astropy >= 4.x
# (``u.nanomaggy``, shown as ``nmgy``; astropy defines the maggy as a dimensionless flux ratio
# relative to 3631 Jy). Very old astropy versions lack it: define it once, then, in terms of
# the AB zero point, and enable it so that the string parser finds it. ``hasattr`` keeps this
# idempotent across re-imports of this module.
if not hasattr(u, "nanomaggy"):  # pragma: no cover - astropy in use always has it
    u.nanomaggy = u.def_unit("nanomaggy", 3.631e-6 * u.Jy,
                             doc="SDSS nanomaggy: 3.631e-6 Jy (AB magnitude 22.5)")
    u.add_enabled_units([u.nanomaggy])

#: Spellings found in real BUNIT cards that the astropy parsers do not know.
_UNIT_ALIASES = {
    "nanomaggies": u.nanomaggy, "NANOMAGGY": u.nanomaggy, "NANOMAGGIES": u.nanomaggy,
    "nmgys": u.nanomaggy, "maggies": u.Unit("maggy"),
    "counts": u.count, "COUNTS": u.count, "Counts": u.count, "cts": u.count,
    "ADU": u.adu, "ADUs": u.adu, "adus": u.adu, "DN": u.Unit("DN"), "dn": u.Unit("DN"),
    "electrons": u.electron, "ELECTRONS": u.electron, "e": u.electron,
    "JY": u.Jy, "JANSKY": u.Jy, "jansky": u.Jy, "pixel": u.pix, "pixels": u.pix,
    "PIXEL": u.pix, "SEC": u.s, "sec": u.s,
}


def parse_unit(bunit):
    """Parse a ``BUNIT`` string into an astropy unit.

    Knows the FITS and astropy spellings plus common survey variants (``nanomaggy``,
    ``nanomaggies``, ``ADU``, ``counts``, ``e-/s``, ``DN``...).

    Parameters
    ----------
    bunit : str, `~astropy.units.UnitBase` or None
        The unit string (or a unit, returned unchanged).

    Returns
    -------
    unit : `~astropy.units.UnitBase` or None
        None when ``bunit`` is empty or cannot be parsed (a warning then says so).

    Examples
    --------
    >>> parse_unit("nanomaggy")
    Unit("nmgy")
    >>> parse_unit("MJy/sr")
    Unit("MJy / sr")
    """
    if bunit is None:
        return None
    if isinstance(bunit, (u.UnitBase, u.FunctionUnitBase)):
        return bunit
    text = str(bunit).strip()
    if not text:
        return None
    # Electron spellings that no tokenizer handles ("e-", "e-/s").
    cleaned = re.sub(r"\be-(?=/|\s|$|\*)", "electron", text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        for fmt in ("fits", None):
            try:
                return u.Unit(cleaned, format=fmt)
            except ValueError:
                pass
        try:
            with u.add_enabled_aliases(_UNIT_ALIASES):
                return u.Unit(cleaned)
        except ValueError:
            pass
    warnings.warn(f"BUNIT {text!r} is not a unit astropy understands; the image is treated as "
                  "having no unit (set unit= to say what it is)", AstroEnhanceWarning)
    return None


def unit_to_bunit(unit):
    """Format a unit for the ``BUNIT`` card.

    Uses the FITS unit syntax where it can, and the survey spelling ``nanomaggy`` for SDSS
    and Legacy Survey data (which the FITS standard does not know).

    Parameters
    ----------
    unit : `~astropy.units.UnitBase` or None

    Returns
    -------
    str or None

    Examples
    --------
    >>> import astropy.units as u
    >>> unit_to_bunit(u.nanomaggy), unit_to_bunit(u.MJy / u.sr)
    ('nanomaggy', 'MJy sr-1')
    """
    if unit is None:
        return None
    try:
        if unit == u.nanomaggy:
            return "nanomaggy"
    except (TypeError, ValueError):  # pragma: no cover - exotic function units
        pass
    try:
        return unit.to_string("fits")
    except (ValueError, AttributeError):
        return unit.to_string()


# ---------------------------------------------------------------------------------------------
# Reading

_IMAGE_HDU_TYPES = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)

#: What astropy raises on a damaged file: the usual I/O errors, and the KeyError, IndexError,
#: ArithmeticError or VerifyError of an inconsistent header (NAXIS = 3 without NAXIS3,
#: BITPIX = 12...). MemoryError is not among them.
_DAMAGED = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            ArithmeticError, fits.verify.VerifyError)


def read_image(data, *, hdu=None, plane=None, wcs=None, unit=None):
    """Read any astropy image form into an `Image`.

    Parameters
    ----------
    data : str, `~pathlib.Path`, HDU, `~astropy.io.fits.HDUList`, `~astropy.nddata.NDData`, \
tuple or `Image`
        A FITS file (``.fits``, ``.fits.gz``, ``.fits.bz2``, ``.fits.fz``), a
        `~astropy.io.fits.PrimaryHDU`, `~astropy.io.fits.ImageHDU` or
        `~astropy.io.fits.CompImageHDU`, an HDU list, a `~astropy.nddata.CCDData` or
        `~astropy.nddata.NDData`, an ``(array, WCS)`` or ``(array, Header)`` tuple, a plain
        array together with ``wcs=``, or an `Image` (returned as a copy).
    hdu : int or str, optional
        Which HDU to read from a file or HDU list (index or EXTNAME). By default the first
        image HDU with at least two-dimensional data.
    plane : int, optional
        For a three-dimensional cube, the index of the plane to read (along the first numpy
        axis, i.e. the last FITS axis). Axes of length 1 are dropped first.
    wcs : `~astropy.wcs.WCS` or `~astropy.io.fits.Header`, optional
        Use this WCS instead of the one in the input.
    unit : `~astropy.units.UnitBase` or str, optional
        Use this unit instead of the one in the input (``BUNIT``).

    Returns
    -------
    image : `Image`
        ``data`` float32 native-endian of shape (ny, nx); ``wcs`` the celestial part of the
        WCS (SIP and TPV distortions kept); ``unit`` from ``BUNIT`` (None when absent);
        ``mask`` True at NaN pixels and wherever the input's mask is set (None when no pixel
        is masked); ``header`` a copy of the input header.

    Raises
    ------
    astro_enhance.FITSReadError
        The file is missing, is not FITS or is truncated.
    astro_enhance.NoImageError
        The file or HDU list holds no image HDU with data.
    astro_enhance.InputError
        The data are 1-D, a cube without ``plane=``, 4-D or more, or entirely NaN.
    astro_enhance.WCSError
        There is no WCS, or it is not celestial.

    Examples
    --------
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> img = read_image(make_sdss_sample(shape=(64, 80)))
    >>> img.shape, img.data.dtype.name, img.unit
    ((64, 80), 'float32', Unit("nmgy"))
    """
    if isinstance(data, Image):
        img = _copy_image(data)
        if wcs is not None:
            img.wcs = _celestial_from(wcs, img.data.ndim, source="wcs=")
        if unit is not None:
            img.unit = parse_unit(unit)
        return img

    filename = None
    mask_in = None
    meta_unit = None
    if isinstance(data, (str, os.PathLike)):
        filename = str(data)
        with warnings.catch_warnings():
            # Truncation is reported as an error when the data are read.
            warnings.filterwarnings("ignore", message="File may have been truncated")
            with _open_fits(filename) as hdul:
                hdu_obj, index = _select_hdu(hdul, hdu, filename)
                _check_declared_size(hdu_obj, index, filename, hdul)
                array = _load_data(hdu_obj, index, filename)
                header = hdu_obj.header.copy()
                wcs_full = wcs if wcs is not None else _wcs_from_header(header, hdul)
                _inherit_primary(header, hdul, index)
    elif isinstance(data, fits.HDUList):
        filename = data.filename() if hasattr(data, "filename") else None
        hdu_obj, index = _select_hdu(data, hdu, filename)
        _check_declared_size(hdu_obj, index, filename, data)
        array = _load_data(hdu_obj, index, filename)
        header = hdu_obj.header.copy()
        wcs_full = wcs if wcs is not None else _wcs_from_header(header, data)
        _inherit_primary(header, data, index)
    elif isinstance(data, _IMAGE_HDU_TYPES):
        if data.data is None:
            raise NoImageError("the HDU has no data: pass an image HDU that holds an image")
        array = _load_data(data, 0, None)
        header = data.header.copy()
        wcs_full = wcs if wcs is not None else _wcs_from_header(header, None)
    elif isinstance(data, (fits.BinTableHDU, fits.TableHDU)):
        raise NoImageError("a table HDU was given where an image was expected: pass an image "
                           "HDU (PrimaryHDU, ImageHDU or CompImageHDU)")
    elif _is_nddata(data):
        array = np.asarray(data.data)
        meta = getattr(data, "meta", None) or {}
        header = meta.copy() if isinstance(meta, fits.Header) else _header_from_meta(meta)
        if getattr(data, "mask", None) is not None:
            mask_in = np.asarray(data.mask, dtype=bool)
        meta_unit = data.unit
        wcs_full = wcs if wcs is not None else _wcs_of_nddata(data, header)
    elif isinstance(data, tuple):
        if len(data) != 2:
            raise InputError(f"a tuple input must be (array, WCS or Header), got a tuple of "
                             f"{len(data)} items")
        array, wcs_or_header = data
        array = np.asarray(array)
        if isinstance(wcs_or_header, fits.Header):
            header = wcs_or_header.copy()
        else:
            header = fits.Header()
        wcs_full = wcs if wcs is not None else wcs_or_header
        if wcs_full is None:
            raise WCSError("the (array, WCS) tuple has no WCS: pass a celestial WCS or header")
    elif isinstance(data, np.ndarray):
        if wcs is None:
            raise WCSError("a bare array has no WCS: pass (array, wcs) or wcs=")
        array = data
        header = wcs.copy() if isinstance(wcs, fits.Header) else fits.Header()
        wcs_full = wcs
    else:
        raise InputError(f"cannot read an image from a {type(data).__name__}: pass a FITS path, "
                         "an HDU or HDUList, CCDData/NDData, (array, WCS) or an Image")

    array, full_ndim = _to_2d(array, plane)
    celestial = _celestial_from(wcs_full, full_ndim, source="the input", header=header,
                                kept=array.kept_axes)
    data2d = array.data
    if data2d.shape[0] < 2 or data2d.shape[1] < 2:
        raise InputError(f"the image is {data2d.shape[1]} x {data2d.shape[0]} pixels: need at "
                         "least 2 x 2")

    # Float32, native byte order, always a fresh array (the input is never modified).
    out = _as_float32(data2d, header)
    finite = np.isfinite(out)
    if not finite.any():
        raise InputError("the image is entirely NaN (or infinite): there is no data to work on")
    # Infinities are as unusable as NaN: both become NaN and are masked.
    if not finite.all():
        out[~finite] = np.nan
    mask = None
    if mask_in is not None:
        mask_in = _to_2d(np.asarray(mask_in, dtype=bool), plane)[0].data
        if mask_in.shape != out.shape:
            raise InputError(f"the mask has shape {mask_in.shape} but the data {out.shape}")
        mask = mask_in | ~finite
    elif not finite.all():
        mask = ~finite
    if mask is not None and not mask.any():
        mask = None

    if unit is not None:
        img_unit = parse_unit(unit)
    elif meta_unit is not None:
        img_unit = meta_unit
    else:
        img_unit = parse_unit(header.get("BUNIT"))
    return Image(data=out, wcs=celestial, unit=img_unit, mask=mask, header=header,
                 filename=filename)


#: Primary-header keywords copied into an extension's header when it lacks them (what the
#: image is: telescope, instrument, filter, exposure, calibration).
_IDENTITY_KEYS = ("TELESCOP", "INSTRUME", "ORIGIN", "OBSERVAT", "SURVEY", "PROJECT", "FILTER",
                  "BAND", "EXPTIME", "DATE-OBS", "MJD-OBS", "MAGZERO", "MAGZPT", "GAIN",
                  "OBJECT", "LEGPIPEV", "BUNIT")


def _inherit_primary(header, hdul, index):
    """Add primary-header cards to an extension's header copy: all of them when the
    extension says ``INHERIT = T`` (the FITS inheritance convention), else the identity
    keywords only. Keywords already in the extension win; layout and WCS cards never move."""
    if not index:
        return
    try:
        primary = hdul[0].header
    except (IndexError, KeyError, OSError):  # pragma: no cover
        return
    inherit_all = bool(header.get("INHERIT", False))
    for card in primary.cards:
        key = card.keyword
        if not key or key in ("COMMENT", "HISTORY", "INHERIT") or key in header:
            continue
        if _STRUCTURAL.match(key) or _WCS_KEYS.match(key):
            continue
        if inherit_all or key in _IDENTITY_KEYS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # HIERARCH
                    header.append(fits.Card(key, card.value, card.comment), end=True)
            except (ValueError, fits.verify.VerifyError):  # pragma: no cover
                continue


def _copy_image(img):
    return Image(data=np.array(img.data, dtype=np.float32, copy=True),
                 wcs=img.wcs.deepcopy() if img.wcs is not None else None,
                 unit=img.unit,
                 mask=None if img.mask is None else np.array(img.mask, dtype=bool, copy=True),
                 header=img.header.copy() if img.header is not None else fits.Header(),
                 filename=img.filename)


def _is_nddata(obj):
    try:
        from astropy.nddata import NDDataBase
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, NDDataBase)


def _header_from_meta(meta):
    header = fits.Header()
    for key, value in dict(meta).items():
        try:
            if isinstance(key, str) and len(key) <= 8 and np.isscalar(value):
                header[key] = value
        except (ValueError, TypeError):
            continue
    return header


def _wcs_of_nddata(nd, header):
    w = getattr(nd, "wcs", None)
    if w is None:
        if len(header):
            return _wcs_from_header(header, None)
        raise WCSError("the NDData/CCDData has no WCS: set its .wcs or pass wcs=")
    if isinstance(w, WCS):
        return w
    low = getattr(w, "low_level_wcs", None)
    if isinstance(low, WCS):
        return low
    raise WCSError(f"the NDData WCS is a {type(w).__name__}, not a FITS WCS: pass wcs= with an "
                   "astropy.wcs.WCS")


def _open_fits(filename):
    path = Path(filename)
    if not path.exists():
        raise FITSReadError(f"file not found: {filename!r}: check the path")
    if path.is_dir():
        raise FITSReadError(f"{filename!r} is a directory, not a FITS file")
    if path.stat().st_size == 0:
        raise FITSReadError(f"{filename!r} is empty (0 bytes): it is not a FITS file")
    try:
        return fits.open(filename, memmap=False)
    except PermissionError as exc:
        raise FITSReadError(f"cannot read {filename!r}: permission denied; check the file's "
                            "permissions") from exc
    except _DAMAGED as exc:
        if _looks_like_fits(filename):
            raise FITSReadError(f"{filename!r} is a truncated or corrupt FITS file ({exc}): "
                                "download or write it again") from exc
        raise FITSReadError(f"{filename!r} is not a FITS file (no SIMPLE card at its start): "
                            "pass a FITS image") from exc


def _looks_like_fits(filename):
    """True when the (decompressed) file starts like FITS: a truncated FITS, not another kind."""
    import bz2
    import gzip

    opener = open
    if str(filename).endswith(".gz"):
        opener = gzip.open
    elif str(filename).endswith(".bz2"):
        opener = bz2.open
    try:
        with opener(filename, "rb") as fh:
            start = fh.read(30)
    except (OSError, EOFError, ValueError):
        # A compressed stream cut short still has a valid magic number: call it truncated.
        with open(filename, "rb") as fh:
            magic = fh.read(3)
        return magic[:2] == b"\x1f\x8b" or magic == b"BZh"
    return start.startswith(b"SIMPLE  =")


def _select_hdu(hdul, hdu, filename):
    where = f" in {filename!r}" if filename else ""
    try:
        n = len(hdul)
    except _DAMAGED as exc:  # lazy loading hits the truncation
        raise FITSReadError(f"truncated or corrupt FITS file{where} ({exc})") from exc
    if hdu is not None:
        try:
            obj = hdul[hdu]
        except (KeyError, IndexError) as exc:
            names = [h.name for h in hdul]
            raise NoImageError(f"no HDU {hdu!r}{where}: it has {n} HDU(s) named {names}") \
                from exc
        index = hdu if isinstance(hdu, int) else hdul.index_of(hdu)
        if not isinstance(obj, _IMAGE_HDU_TYPES):
            raise NoImageError(f"HDU {hdu!r}{where} is a {type(obj).__name__}, not an image: "
                               "choose an image HDU with hdu=")
        if obj.header.get("NAXIS", 0) == 0 and not isinstance(obj, fits.CompImageHDU):
            raise NoImageError(f"HDU {hdu!r}{where} has no data: choose an image HDU with hdu=")
        return obj, index
    first_1d = None
    for i, obj in enumerate(hdul):
        if not isinstance(obj, _IMAGE_HDU_TYPES):
            continue
        hdr = obj.header
        naxis = hdr.get("ZNAXIS", hdr.get("NAXIS", 0)) if isinstance(obj, fits.CompImageHDU) \
            else hdr.get("NAXIS", 0)
        if naxis == 0:
            continue
        if naxis == 1:
            first_1d = (obj, i) if first_1d is None else first_1d
            continue
        return obj, i
    if first_1d is not None:
        return first_1d
    kinds = ", ".join(type(h).__name__ for h in hdul)
    raise NoImageError(f"no image HDU with data{where} (HDUs: {kinds}): pass a FITS image, or "
                       "choose the HDU with hdu=")


def _human_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0


def _check_declared_size(hdu_obj, index, filename, hdul):
    """Fail fast, before any allocation, when the header declares more data than the file
    holds (a corrupt or truncated file) or more pixels than `MAX_PIXELS`."""
    where = f" of {filename!r}" if filename else ""
    hdr = hdu_obj.header
    try:
        naxis = int(hdr.get("NAXIS", 0))
        dims = [int(hdr.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
        bitpix = abs(int(hdr.get("BITPIX", 8)))
    except (TypeError, ValueError) as exc:
        raise FITSReadError(f"HDU {index}{where} has a corrupt NAXIS or BITPIX card ({exc}): "
                            "the file is damaged") from exc
    if not dims or any(d < 0 for d in dims):
        return
    npix = int(np.prod(dims, dtype=object))
    shape_txt = " x ".join(str(d) for d in dims)
    file_obj = getattr(hdul, "_file", None)
    compressed = getattr(file_obj, "compression", None) or isinstance(hdu_obj, fits.CompImageHDU)
    offset = getattr(hdu_obj, "_data_offset", None)
    if filename and not compressed and offset is not None and os.path.isfile(filename):
        have = os.path.getsize(filename) - offset
        need = npix * bitpix // 8
        if need > have:
            raise FITSReadError(
                f"{filename!r} is truncated or its header is corrupt: HDU {index} declares "
                f"{shape_txt} pixels of {bitpix} bits ({_human_bytes(need)}) but the file holds "
                f"only {_human_bytes(max(have, 0))} of data; download or write it again")
    if npix > MAX_PIXELS:
        raise InputError(
            f"HDU {index}{where} declares {shape_txt} pixels ({_human_bytes(4 * npix)} as "
            f"float32), more than astro_enhance processes in memory (MAX_PIXELS = "
            f"{MAX_PIXELS}): cut it into smaller images (e.g. astropy.nddata.Cutout2D) or "
            "raise astro_enhance.io.MAX_PIXELS")


def _load_data(hdu_obj, index, filename):
    where = f" of {filename!r}" if filename else ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            arr = hdu_obj.data
    except _DAMAGED as exc:
        raise FITSReadError(f"the data of HDU {index}{where} cannot be read: the file is "
                            f"truncated or corrupt ({exc})") from exc
    if arr is None:
        raise NoImageError(f"HDU {index}{where} has no data: choose an image HDU with hdu=")
    return arr


class _Plane:
    """A 2-D array plus which FITS axes (0-based) of the original it kept."""

    def __init__(self, data, kept_axes):
        self.data = data
        self.kept_axes = kept_axes


def _to_2d(array, plane):
    arr = np.asarray(array)
    ndim = arr.ndim
    if ndim == 0:
        raise InputError("the data is a scalar, not an image")
    # numpy axis i is FITS axis (ndim - 1 - i).
    fits_axes = [ndim - 1 - i for i in range(ndim)]
    keep = [i for i in range(ndim) if arr.shape[i] != 1]
    if len(keep) < 2 and ndim >= 2:
        # Keep the last two axes when squeezing would leave fewer than two.
        keep = sorted(set(keep) | {ndim - 2, ndim - 1})
    squeezed = arr.reshape([arr.shape[i] for i in keep]) if len(keep) != ndim else arr
    axes = [fits_axes[i] for i in keep]
    if squeezed.ndim == 1:
        raise InputError(f"the data is 1-D (length {squeezed.shape[0]}): an image needs two "
                         "dimensions (is this a spectrum or a calibration vector? choose another "
                         "HDU with hdu=)")
    if squeezed.ndim == 3:
        if plane is None:
            raise InputError(f"the data is a 3-D cube of shape {squeezed.shape}: choose the "
                             f"image plane with plane= (0..{squeezed.shape[0] - 1})")
        plane = int(plane)
        if not -squeezed.shape[0] <= plane < squeezed.shape[0]:
            raise InputError(f"plane={plane} is outside the cube's {squeezed.shape[0]} planes")
        squeezed = squeezed[plane]
        axes = axes[1:]
    elif squeezed.ndim > 3:
        raise InputError(f"the data has {squeezed.ndim} dimensions {squeezed.shape}: only 2-D "
                         "images and 3-D cubes (with plane=) are supported")
    elif plane is not None and plane not in (0, -1):
        raise InputError(f"plane={plane} was given but the data is a 2-D image")
    return _Plane(squeezed, sorted(axes)), ndim


def _as_float32(arr, header):
    out = np.asarray(arr).astype(np.float32)  # always a copy, native byte order
    if arr.dtype.kind in "iu" and "BLANK" in header and "BSCALE" not in header \
            and "BZERO" not in header:
        # Unscaled integer data: BLANK marks missing pixels (astropy only applies it when
        # scaling).
        out[np.asarray(arr) == header["BLANK"]] = np.nan
    return out


#: WCS keywords that define the geometry: a value astropy cannot parse is an error, not a
#: warning (astropy would silently use 0 or 1 instead, i.e. a wrong sky position or scale).
_GEOMETRY_KEY = re.compile(r"^(CRVAL\d+|CRPIX\d+|CDELT\d+|CD\d+_\d+|PC\d+_\d+|CROTA\d+|"
                           r"PV\d+_\d+|LONPOLE|LATPOLE) *=")


def _wcs_from_header(header, hdul):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FITSFixedWarning)
        try:
            w = WCS(header, fobj=hdul) if hdul is not None else WCS(header)
        except Exception as exc:  # noqa: BLE001 - astropy raises many kinds here
            raise WCSError(f"the WCS in the header cannot be parsed ({_wcslib_text(exc)}): fix "
                           "the header or pass wcs=") from exc
    for item in caught:
        text = str(item.message)
        m = _GEOMETRY_KEY.match(text)
        if issubclass(item.category, FITSFixedWarning) and m and "value was expected" in text:
            card = text.split("\n")[0].split("/")[0].strip()
            raise WCSError(f"the WCS keyword {m.group(1)} has a value that is not a number "
                           f"({card}): fix the header or pass wcs=")
        if not issubclass(item.category, FITSFixedWarning):
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    _check_cd_matrix(header, w)
    return w


def _wcslib_text(exc):
    """The readable part of a wcslib error ("Unrecognized projection code (XYZ in CTYPE1).")
    without its "ERROR 4 in wcs_types() at line 3121 of file ..." locator, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    readable = [ln for ln in lines if not re.match(r"^ERROR \d+ in \w+\(\)", ln)]
    return " ".join(readable or lines) or type(exc).__name__


def _check_cd_matrix(header, w):
    """wcslib replaces a zero row of a CD matrix by the unit matrix's (1 degree per pixel):
    refuse a singular CD matrix of the celestial axes instead of silently using that."""
    lng, lat = w.wcs.lng, w.wcs.lat
    # Only when the CD matrix is what wcslib uses (PCi_j, when present, takes precedence).
    if lng < 0 or lat < 0 or not w.wcs.has_cd() or w.wcs.has_pc():
        return
    axes = (lng + 1, lat + 1)
    try:
        cd = np.array([[float(header.get(f"CD{i}_{j}", 0.0)) for j in axes] for i in axes])
    except (TypeError, ValueError):
        return  # a non-number was reported by the keyword check
    det = np.linalg.det(cd)
    if not np.isfinite(det) or det == 0:
        what = "singular" if det == 0 else "not finite"
        raise WCSError(f"the CD matrix of the celestial axes is {what} ({cd.tolist()}): fix "
                       "the CD keywords or pass wcs=")


def _celestial_from(wcs_like, full_ndim, *, source, header=None, kept=None):
    """The 2-D celestial WCS matching the kept data axes, or a clear WCSError."""
    if isinstance(wcs_like, fits.Header):
        w = _wcs_from_header(wcs_like, None)
    elif isinstance(wcs_like, WCS):
        w = wcs_like
    elif wcs_like is None:
        raise WCSError(f"{source} has no WCS: a celestial WCS (e.g. RA---TAN/DEC--TAN) is "
                       "needed; add one or pass wcs=")
    else:
        low = getattr(wcs_like, "low_level_wcs", None)
        if isinstance(low, WCS):
            w = low
        else:
            raise WCSError(f"cannot use a {type(wcs_like).__name__} as a WCS: pass an "
                           "astropy.wcs.WCS or a FITS header")
    ctypes = [c for c in w.wcs.ctype]
    if any(c.strip() for c in ctypes):
        # wcslib checks the whole description here (singular matrices, inconsistent axis
        # types, out-of-range values...); on a copy: the caller's WCS is never touched.
        try:
            w = w.deepcopy()
            w.wcs.set()
        except Exception as exc:  # noqa: BLE001 - wcslib raises many kinds here
            raise WCSError(f"the WCS of {source} is invalid ({_wcslib_text(exc)}): fix it or "
                           "pass wcs=") from exc
    if not any(c.strip() for c in ctypes):
        raise WCSError(f"{source} has no WCS (no CTYPE keywords): a celestial WCS (e.g. "
                       "RA---TAN/DEC--TAN) is needed; add one or pass wcs=")
    if not w.has_celestial:
        raise WCSError(f"the WCS of {source} is not celestial (CTYPE {ctypes}): a sky WCS such as "
                       "RA---TAN/DEC--TAN is needed; pass wcs=")
    lng, lat = w.wcs.lng, w.wcs.lat
    if kept is not None and w.naxis > 2 and sorted([lng, lat]) != list(kept):
        raise WCSError(f"the celestial axes of {source} (FITS axes {lng + 1}, {lat + 1}) are not "
                       f"the image axes kept (FITS axes {[k + 1 for k in kept]}): choose another "
                       "plane or pass wcs=")
    try:
        cel = w.celestial if w.naxis != 2 else w.deepcopy()
    except Exception as exc:  # noqa: BLE001 - e.g. IndexError for NAXISn/WCSAXES mismatches
        raise WCSError(f"the celestial part of the WCS of {source} cannot be extracted "
                       f"({type(exc).__name__}: {exc}); check WCSAXES and NAXISn, or pass "
                       "wcs=") from exc
    if cel.naxis != 2:
        raise WCSError(f"the celestial WCS of {source} has {cel.naxis} axes, expected 2")
    try:
        matrix = np.asarray(cel.pixel_scale_matrix, dtype=float)
        sv = np.linalg.svd(matrix, compute_uv=False) if np.isfinite(matrix).all() else None
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds on broken WCS
        raise WCSError(f"the celestial WCS of {source} cannot be evaluated ({exc}): fix the "
                       "header or pass wcs=") from exc
    # Singular, or so close to it that pixel areas underflow (pixels 1e10 times longer than
    # they are wide): no image is like that, a header with such a matrix is broken.
    if sv is None or not sv[-1] > 1e-10 * sv[0] or not sv[-1] > 1e-100:
        what = "not finite" if sv is None else "singular" if sv[-1] == 0 else "degenerate"
        raise WCSError(f"the pixel-to-sky matrix of {source} (CD, or PC x CDELT) is {what}: "
                       f"{matrix.tolist()}; fix the CD/PC/CDELT keywords or pass wcs=")
    return cel


# ---------------------------------------------------------------------------------------------
# Writing

#: Header keywords describing the data layout or the WCS: never copied from an old header.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|BSCALE|BZERO|BLANK|CHECKSUM|"
    r"DATASUM|Z[A-Z0-9_]*|TFIELDS|T(TYPE|FORM|UNIT|DIM)\d+)$")
_WCS_KEYS = re.compile(
    r"^(WCSAXES[A-Z]?|WCSNAME[A-Z]?|CTYPE\d+[A-Z]?|CUNIT\d+[A-Z]?|CRVAL\d+[A-Z]?|"
    r"CRPIX\d+[A-Z]?|CDELT\d+[A-Z]?|CROTA\d+|CD\d+_\d+[A-Z]?|PC\d+_\d+[A-Z]?|PV\d+_\d+[A-Z]?|"
    r"PS\d+_\d+[A-Z]?|CRDER\d+[A-Z]?|CSYER\d+[A-Z]?|LONPOLE[A-Z]?|LATPOLE[A-Z]?|"
    r"RADESYS[A-Z]?|RADECSYS|EQUINOX[A-Z]?|EPOCH|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|"
    r"A_\d+_\d+|B_\d+_\d+|AP_\d+_\d+|BP_\d+_\d+|A_DMAX|B_DMAX|CPDIS\d+|CPERR\d+|DP\d+|DQ\d+|"
    r"D2IMDIS\d+|D2IMERR\d+|D2IM\d+|D2IMEXT|AXISCORR|NAXISW?\d*)$")


def _clean_header(header):
    """Copy of ``header`` without data-layout and WCS keywords."""
    out = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # HIERARCH cards
        for card in header.cards:
            key = card.keyword
            if _STRUCTURAL.match(key) or _WCS_KEYS.match(key):
                continue
            try:
                if key in ("COMMENT", "HISTORY", ""):
                    out.append(fits.Card(key, card.value), end=True)
                else:
                    out.append(fits.Card(key, card.value, card.comment), end=True)
            except (ValueError, fits.verify.VerifyError):  # pragma: no cover - broken cards
                continue
    return out


def image_to_hdu(image, *, primary=True):
    """Turn an `Image` into a FITS HDU: data, WCS, ``BUNIT`` and the kept header cards.

    Layout and WCS keywords of the old header are dropped and replaced by those of
    ``image.wcs`` (SIP terms included), so the HDU never carries a stale WCS.

    Parameters
    ----------
    image : `Image`
        The image.
    primary : bool, optional
        Make a `~astropy.io.fits.PrimaryHDU` (default) or an `~astropy.io.fits.ImageHDU`.

    Returns
    -------
    `~astropy.io.fits.PrimaryHDU` or `~astropy.io.fits.ImageHDU`

    Examples
    --------
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> hdu = image_to_hdu(read_image(make_sdss_sample(shape=(32, 32))))
    >>> hdu.header["BUNIT"], hdu.header["CTYPE1"]
    ('nanomaggy', 'RA---TAN')
    """
    header = _clean_header(image.header if image.header is not None else fits.Header())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs_header = image.wcs.to_header(relax=True)
    for card in wcs_header.cards:
        if card.keyword in ("COMMENT", "HISTORY", ""):
            continue
        header[card.keyword] = (card.value, card.comment)
    bunit = unit_to_bunit(image.unit)
    if bunit is not None:
        header["BUNIT"] = (bunit, "unit of the pixel values")
    elif "BUNIT" in image.header:
        header["BUNIT"] = image.header["BUNIT"]
    data = np.asarray(image.data, dtype=np.float32)
    cls = fits.PrimaryHDU if primary else fits.ImageHDU
    return cls(data=data, header=header)


def add_provenance(header, *, method, target, weights_sha256=None, device=None, chi2=None,
                   input_name=None, history=()):
    """Record in a header what astro_enhance did, so anyone opening the file can tell.

    Writes ``AE_VER`` (package version), ``AE_METH`` (method), ``AE_TGT`` (target survey),
    and when given ``AE_WSHA`` (sha256 of the model weights), ``AE_DEV`` (compute device),
    ``AE_CHI2`` (consistency chi^2 with the input) and ``AE_INPUT`` (input file name, without
    its directory), then a HISTORY line in plain words followed by ``history``.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`
        The output header; modified in place and returned.
    method : str
        What was done (an enhancer name, ``"resample"``...).
    target : str
        Target survey name.
    weights_sha256 : str, optional
        sha256 of the weights file used.
    device : str, optional
        Device the model ran on.
    chi2 : float, optional
        Reduced chi^2 of the output degraded back to the input.
    input_name : str, optional
        Input file name (its directory is not recorded).
    history : iterable of str, optional
        Further HISTORY lines, in plain words.

    Returns
    -------
    header : `~astropy.io.fits.Header`
        The same header.

    Examples
    --------
    >>> from astropy.io import fits
    >>> h = add_provenance(fits.Header(), method="bicubic", target="decals")
    >>> h["AE_METH"], h["AE_TGT"]
    ('bicubic', 'decals')
    """
    header["AE_VER"] = (__version__, "astro_enhance version")
    header["AE_METH"] = (str(method), "astro_enhance method")
    header["AE_TGT"] = (str(target), "target survey of the output grid")
    if weights_sha256 is not None:
        header["AE_WSHA"] = str(weights_sha256)
    if device is not None:
        header["AE_DEV"] = (str(device), "compute device")
    if chi2 is not None:
        chi2 = float(chi2)
        header["AE_CHI2"] = (chi2 if np.isfinite(chi2) else "nan",
                             "consistency chi2 of output vs input")
    if input_name is not None:
        header["AE_INPUT"] = (os.path.basename(str(input_name)), "input file")
    header.add_history(f"Processed by astro_enhance {__version__} (method '{method}', target "
                       f"{target}): this is not an original observation.")
    for line in history:
        header.add_history(str(line))
    return header


def write_fits(hdul_or_image, path, *, overwrite=False):
    """Write FITS atomically: a temporary file in the target directory, then a rename.

    The output is either complete or absent: a failure (disk full, Ctrl-C...) removes the
    temporary file and leaves any existing file untouched.

    Parameters
    ----------
    hdul_or_image : `~astropy.io.fits.HDUList`, HDU or `Image`
        What to write. An `Image` becomes a primary HDU (`image_to_hdu`) plus a ``MASK``
        extension (uint8, 1 = masked) when pixels other than NaN are masked.
    path : str or `~pathlib.Path`
        Output file. ``.gz`` and ``.bz2`` suffixes compress it.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    path : `~pathlib.Path`
        The file written.

    Raises
    ------
    astro_enhance.OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    astro_enhance.OutputError
        The directory is missing, is not a directory or is not writable.

    Examples
    --------
    >>> import tempfile, os
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> out = write_fits(make_sdss_sample(shape=(16, 16)),
    ...                  os.path.join(tempfile.mkdtemp(), "sample.fits"))
    >>> out.name
    'sample.fits'
    """
    path = Path(path)
    hdul = _as_hdulist(hdul_or_image)
    parent = _check_output_path(path, overwrite=overwrite)
    compress = path.suffix if path.suffix in (".gz", ".bz2") else ""
    tmp = None
    try:
        try:
            # The compression suffix goes last: astropy compresses by file name.
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.",
                                       suffix=".tmp" + compress)
        except OSError as exc:
            raise OutputError(f"cannot write in directory {str(parent)!r}: {exc.strerror or exc}"
                              ) from exc
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            hdul.writeto(tmp, overwrite=True)
        except OSError as exc:
            raise OutputError(f"writing {str(path)!r} failed: {exc.strerror or exc}") from exc
        except fits.verify.VerifyError as exc:
            raise OutputError(f"cannot write {str(path)!r}: invalid FITS header ({exc})") from exc
        if overwrite:
            os.replace(tmp, path)
        else:
            # No-clobber rename: fails if the file appeared meanwhile.
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise OutputExistsError(f"{str(path)!r} appeared while writing: choose another "
                                        "name or overwrite") from exc
            except OSError:
                # Filesystem without hard links: the check above has to do.
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def _check_output_path(path, *, overwrite=False):
    """Raise `OutputError` / `OutputExistsError` unless ``path`` can be written; return its
    directory. Commands call it before long computations so that they fail at once."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist; "
                          "create it first")
    if not parent.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: {str(parent)!r} is not a directory")
    if path.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: it is a directory; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{str(path)!r} exists: choose another name or overwrite "
                                "(overwrite=True, --overwrite)")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not "
                          "writable")
    return parent


def _as_hdulist(obj):
    if isinstance(obj, fits.HDUList):
        return obj
    if isinstance(obj, fits.PrimaryHDU):
        return fits.HDUList([obj])
    if isinstance(obj, (fits.ImageHDU, fits.CompImageHDU, fits.BinTableHDU, fits.TableHDU)):
        return fits.HDUList([fits.PrimaryHDU(), obj])
    if isinstance(obj, Image):
        hdus = [image_to_hdu(obj, primary=True)]
        if obj.mask is not None:
            beyond_nan = obj.mask & np.isfinite(obj.data)
            if beyond_nan.any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FITSFixedWarning)
                    mhdr = obj.wcs.to_header(relax=True)
                hdus.append(fits.ImageHDU(obj.mask.astype(np.uint8), header=mhdr, name="MASK"))
        return fits.HDUList(hdus)
    raise InputError(f"cannot write a {type(obj).__name__} as FITS: pass an HDUList, an HDU or "
                     "an Image")


def write_table_atomic(table, path, *, format="ascii.ecsv"):
    """Write an astropy table through a temporary file in the same directory and a rename.

    The file is either complete or absent: a failure removes the temporary file and leaves
    any existing file untouched. (Overwrite policy is the caller's.)

    Parameters
    ----------
    table : `~astropy.table.Table`
        Table to write.
    path : str or path-like
        Destination.
    format : str, optional
        astropy table format (default ECSV).

    Returns
    -------
    `pathlib.Path`

    Examples
    --------
    >>> import tempfile, os
    >>> from astropy.table import Table
    >>> p = write_table_atomic(Table({"a": [1]}), os.path.join(tempfile.mkdtemp(), "t.ecsv"))
    >>> p.exists()
    True
    """
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        table.write(tmp, format=format, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
