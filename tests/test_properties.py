"""Property-based tests (hypothesis): random headers, WCS values and data never crash us.

Whatever WCS keywords a header has (valid or not: any CTYPE, values out of range, zero or
singular CD/PC matrices, huge numbers, strings where numbers belong, missing keys, NAXIS that
does not match the data), whatever a WCS object holds (NaN, inf) and whatever the data are
(any dtype and byte order, NaN/inf patterns, all zero, tiny or huge values), `read_image` and
`resample` either work or raise a documented `~astro_enhance.AstroEnhanceError` subclass.
Anything else (a ``ValueError`` from numpy, a ``MemoryError``, a ``KeyError`` from astropy...)
fails the test with the smallest example hypothesis can find.

The runs are deterministic (``derandomize=True``, no example database) so CI sees the same
examples every time: 1500 examples in all. The exception types seen are counted and printed
by the last test (run ``pytest -s tests/test_properties.py`` to see them).
"""

import os
import string
import warnings
from collections import Counter

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astro_enhance.io as ae_io
from astro_enhance.exceptions import AstroEnhanceError
from astro_enhance.io import Image, read_image
from astro_enhance.resample import resample

#: What the properties saw: "function: outcome" -> count.
SEEN = Counter()
#: Examples per test; the total is what the acceptance asks for (>= 1000). The environment
#: variable AE_HYPOTHESIS_SCALE multiplies them (e.g. 0.1 for a quick look, 10 for a soak).
_SCALE = float(os.environ.get("AE_HYPOTHESIS_SCALE", "1"))
N_HEADERS, N_WCS_OBJECTS, N_FILES, N_DATA = (max(1, round(n * _SCALE))
                                             for n in (600, 300, 300, 300))

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _small_limits(monkeypatch):
    """A 4 Mpx pixel limit: grids that would be larger fail fast with InputError (the real
    limit, 1 Gpx, is the same code path but would make a slow test of a legal request)."""
    monkeypatch.setattr(ae_io, "MAX_PIXELS", 2 ** 22)


def _attempt(label, fn, *args, **kwargs):
    """Call ``fn``; record the outcome; let anything but an AstroEnhanceError propagate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args, **kwargs)
        except AstroEnhanceError as exc:
            SEEN[f"{label}: {type(exc).__name__}"] += 1
            return None
    SEEN[f"{label}: ok"] += 1
    return out


def _check_image(img, shape=None):
    assert isinstance(img, Image)
    assert img.data.dtype == np.float32 and img.data.dtype.isnative and img.data.ndim == 2
    if shape is not None:
        assert img.data.shape == shape
    assert img.wcs.naxis == 2 and img.wcs.has_celestial
    assert np.isfinite(img.data).any()
    if img.mask is not None:
        assert img.mask.shape == img.data.shape
        assert img.mask[~np.isfinite(img.data)].all()


def _read_and_resample(label, data, shape=None, values=None):
    img = _attempt(f"read_image[{label}]", read_image, data)
    if img is None:
        return
    _check_image(img, shape)
    if values is not None:
        # Values are kept (as float32); every non-finite pixel is NaN and masked.
        with np.errstate(over="ignore", invalid="ignore"):
            expected = np.asarray(values).astype(np.float32)
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(img.data[finite], expected[finite])
        assert np.isnan(img.data[~finite]).all()
    out = _attempt(f"resample[{label}]", resample, img, "decals", return_type="image")
    if out is not None:
        assert out.data.dtype == np.float32 and out.data.ndim == 2
        assert out.data.size <= ae_io.MAX_PIXELS
        assert out.wcs.has_celestial


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 1e-12, 1e300, -1e300, 1e30, 90.0, -90.0,
           180.0, -180.0, 360.0, 720.0, 2.8e-4, -2.8e-4, 1.1e-4, 7.3e-5]
NUMBER = st.one_of(st.floats(-400.0, 400.0, allow_nan=False),
                   st.floats(-1e-2, 1e-2, allow_nan=False),
                   st.sampled_from(SPECIAL),
                   st.floats(allow_nan=False, allow_infinity=False),
                   st.integers(-10**6, 10**6))
NOT_A_NUMBER = st.sampled_from(["abc", "", " ", "1.0.0", "NaN", "inf", "12h30m", True, False])
ASCII = st.text(alphabet=string.ascii_uppercase + string.digits + "-_ ", max_size=10)
CTYPE_LNG = ["RA---TAN", "RA---SIN", "RA---TPV", "RA---CAR", "RA---ZEA", "RA---AIT",
             "GLON-TAN", "ELON-TAN", "RA---TAN-SIP", "RA--TAN", "RA---XYZ", "LINEAR", "",
             "FREQ", "RA", "DEC--TAN"]
CTYPE_LAT = ["DEC--TAN", "DEC--SIN", "DEC--TPV", "DEC--CAR", "DEC--ZEA", "DEC--AIT",
             "GLAT-TAN", "ELAT-TAN", "DEC--TAN-SIP", "DEC-TAN", "DEC--XYZ", "LINEAR", "",
             "WAVE", "DEC", "RA---TAN"]


def _maybe(strategy, p_absent=0.25):
    """A value from ``strategy``, or None (the keyword is absent) with probability ~p."""
    n = max(1, round((1 - p_absent) / p_absent))
    return st.one_of(*([strategy] * n), st.none())


def _number_or_junk(number=NUMBER):
    return st.one_of(number, number, number, number, number, number, NOT_A_NUMBER)


def _wild_values(scale):
    """For each WCS keyword, a strategy of values valid or not."""
    near = st.floats(-2.0, 2.0, allow_nan=False).map(lambda f: f * scale / 3600)
    cd_entry = _number_or_junk(st.one_of(near, near, NUMBER))
    return {
        "CTYPE1": st.one_of(st.sampled_from(CTYPE_LNG), ASCII),
        "CTYPE2": st.one_of(st.sampled_from(CTYPE_LAT), ASCII),
        "CRVAL1": _number_or_junk(st.one_of(st.floats(-720, 720), NUMBER)),
        "CRVAL2": _number_or_junk(st.one_of(st.floats(-100, 100), NUMBER)),
        "CRPIX1": _number_or_junk(st.one_of(st.floats(-50, 80), NUMBER)),
        "CRPIX2": _number_or_junk(st.one_of(st.floats(-50, 80), NUMBER)),
        "CD1_1": cd_entry, "CD1_2": cd_entry, "CD2_1": cd_entry, "CD2_2": cd_entry,
        "CDELT1": cd_entry, "CDELT2": cd_entry,
        "PC1_1": _number_or_junk(st.floats(-1.5, 1.5)), "PC1_2": _number_or_junk(),
        "PC2_1": _number_or_junk(), "PC2_2": _number_or_junk(st.floats(-1.5, 1.5)),
        "CROTA2": _number_or_junk(st.one_of(st.floats(-360, 360), NUMBER)),
        "CUNIT1": st.sampled_from(["deg", "DEG", "arcsec", "rad", "furlong", "", "m"]),
        "CUNIT2": st.sampled_from(["deg", "arcmin", "rad", "Hz", ""]),
        "RADESYS": st.sampled_from(["ICRS", "FK5", "FK4", "GAPPT", "XYZ"]),
        "EQUINOX": _number_or_junk(st.sampled_from([2000.0, 1950.0, 0.0, -1.0])),
        "LONPOLE": _number_or_junk(), "LATPOLE": _number_or_junk(),
        "WCSAXES": st.sampled_from([1, 2, 3, 0, -1]),
        "PV2_1": _number_or_junk(), "NAXIS": st.sampled_from([0, 1, 2, 3]),
        "NAXIS1": st.integers(-5, 10**9), "NAXIS2": st.integers(-5, 10**9),
    }


@st.composite
def wcs_cards(draw):
    """A dict of WCS keyword -> value (None = absent): a valid TAN description at some pixel
    scale (CD, CDELT + PC or CDELT + CROTA form), then 0 to 6 keywords changed to random
    values (valid or not) or removed; sometimes the matrix is made zero or singular."""
    scale = draw(st.sampled_from([0.396, 0.262, 1.0, 0.05, 3600.0, 1e-6, 36.0]))
    s = scale / 3600
    cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
             "CRPIX1": 6.5, "CRPIX2": 6.5, "CUNIT1": "deg", "CUNIT2": "deg"}
    form = draw(st.sampled_from(["cd", "cdelt_pc", "crota", "cdelt"]))
    if form == "cd":
        cards.update(CD1_1=-s, CD1_2=0.0, CD2_1=0.0, CD2_2=s)
    else:
        cards.update(CDELT1=-s, CDELT2=s)
        if form == "cdelt_pc":
            cards.update(PC1_1=0.8, PC1_2=-0.6, PC2_1=0.6, PC2_2=0.8)
        elif form == "crota":
            cards["CROTA2"] = 30.0
    wild = _wild_values(scale)
    keys = sorted(wild)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3, 4, 6]))):
        key = draw(st.sampled_from(keys))
        cards[key] = draw(st.one_of(wild[key], wild[key], wild[key], st.none()))
    special = draw(st.sampled_from(["none"] * 12 + ["zero", "singular", "zero_row"]))
    if special == "zero":
        cards.update({k: 0.0 for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")})
    elif special == "singular":
        a, b = draw(NUMBER), draw(NUMBER)
        cards.update({"CD1_1": a, "CD1_2": b, "CD2_1": 2 * a, "CD2_2": 2 * b})
    elif special == "zero_row":
        cards.update({"CD1_1": -s, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.0})
    return cards


@st.composite
def arrays(draw, *, max_side=14, float_only=False, min_side=1):
    ny, nx = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    dtypes = ["<f4", ">f4", "<f8", ">f8", "<f2"]
    if not float_only:
        dtypes += ["<i2", ">i2", "<i4", ">i8", "u1", "<u2", "?"]
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    kind = draw(st.sampled_from(["normal", "zero", "const", "huge", "tiny", "ramp", "max"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "normal":
        a = rng.normal(0, 1, (ny, nx))
    elif kind == "zero":
        a = np.zeros((ny, nx))
    elif kind == "const":
        a = np.full((ny, nx), 7.0)
    elif kind == "huge":
        a = rng.normal(0, 1e30, (ny, nx))
    elif kind == "tiny":
        a = rng.normal(0, 1e-30, (ny, nx))
    elif kind == "ramp":
        a = np.add.outer(np.arange(ny), np.arange(nx)).astype(float)
    else:
        a = np.full((ny, nx), np.finfo(np.float64).max if dtype.kind == "f" else 1e300)
    if dtype.kind in "iub":
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        if info is not None:
            a = np.clip(np.nan_to_num(a), info.min, info.max)
        with np.errstate(all="ignore"):
            return a.astype(dtype)
    with np.errstate(all="ignore"):
        a = a.astype(dtype)
    pattern = draw(st.sampled_from(["none", "none", "random", "all", "border", "row", "col",
                                    "inf", "-inf", "single", "all_but_one"]))
    if pattern == "random":
        a[rng.random(a.shape) < draw(st.floats(0.0, 1.0))] = np.nan
    elif pattern == "all":
        a[:] = np.nan
    elif pattern == "border":
        a[0], a[-1], a[:, 0], a[:, -1] = np.nan, np.nan, np.nan, np.nan
    elif pattern == "row":
        a[rng.integers(ny)] = np.nan
    elif pattern == "col":
        a[:, rng.integers(nx)] = np.nan
    elif pattern in ("inf", "-inf"):
        a[rng.random(a.shape) < 0.3] = np.inf if pattern == "inf" else -np.inf
    elif pattern == "single":
        a[rng.integers(ny), rng.integers(nx)] = np.nan
    elif pattern == "all_but_one":
        keep = a[0, 0]
        a[:] = np.nan
        a[0, 0] = keep
    return a


def _header(cards):
    h = fits.Header()
    for key, value in cards.items():
        if value is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                h[key] = value
            except ValueError:  # e.g. inf: no FITS header can hold it; the key stays absent
                SEEN["fits.Header refused a value"] += 1
    return h


def _good_cards(shape):
    ny, nx = shape
    return {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
            "CRPIX1": (nx + 1) / 2, "CRPIX2": (ny + 1) / 2, "CD1_1": -1.1e-4, "CD1_2": 0.0,
            "CD2_1": 0.0, "CD2_2": 1.1e-4, "BUNIT": "nanomaggy"}


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

@settings(max_examples=N_HEADERS, **SETTINGS)
@given(cards=wcs_cards(), data=arrays(max_side=12, float_only=True, min_side=2))
def test_random_wcs_headers(cards, data):
    """(array, Header) with random WCS keywords: works or a documented error."""
    _read_and_resample("header", (data, _header(cards)), data.shape)


NON_FINITE = st.sampled_from([np.nan, np.inf, -np.inf])


@settings(max_examples=N_WCS_OBJECTS, **SETTINGS)
@given(ctype=st.sampled_from([("RA---TAN", "DEC--TAN")] * 4 + [
           ("RA---SIN", "DEC--SIN"), ("GLON-CAR", "GLAT-CAR"), ("DEC--TAN", "RA---TAN"),
           ("RA---TAN", "RA---TAN"), ("LINEAR", "LINEAR"), ("", "")]),
       changes=st.lists(st.tuples(st.sampled_from(["crval", "crpix", "matrix"]),
                                  st.integers(0, 3), st.one_of(NUMBER, NON_FINITE)),
                        max_size=4),
       use_cd=st.booleans(), scale=st.sampled_from([1.1e-4, 7.3e-5, 1.0, 1e-9]),
       data=arrays(max_side=10, float_only=True))
def test_random_wcs_objects(ctype, changes, use_cd, scale, data):
    """(array, WCS) objects: a valid description with up to 4 values replaced by random,
    NaN or infinite ones (no FITS header can hold NaN or infinity, a WCS object can)."""
    crval, crpix = [150.0, 2.0], [5.0, 5.0]
    matrix = [-1.0, 0.0, 0.0, 1.0]
    for what, index, value in changes:
        target = {"crval": crval, "crpix": crpix, "matrix": matrix}[what]
        target[index % len(target)] = value
    w = WCS(naxis=2)
    try:
        w.wcs.ctype = list(ctype)
        w.wcs.crval = crval
        w.wcs.crpix = crpix
        m = np.array(matrix, dtype=float).reshape(2, 2)
        if use_cd:
            w.wcs.cd = m * scale
        else:
            w.wcs.pc = m
            w.wcs.cdelt = [scale, scale]
    except Exception as exc:  # noqa: BLE001 - the WCS object itself refuses: nothing to test
        SEEN[f"WCS() refused the values: {type(exc).__name__}"] += 1
        return
    _read_and_resample("wcs-object", (data, w), data.shape)


def _raw_card(key, value):
    if isinstance(value, bool):
        text = "T" if value else "F"
    elif isinstance(value, (int, float)):
        text = repr(value) if not isinstance(value, float) else f"{value:.16G}"
    else:
        text = "'" + str(value).replace("'", "''").ljust(8) + "'"
    return f"{key:<8}= {text:>20}".ljust(80)[:80]


@settings(max_examples=N_FILES, **SETTINGS)
@given(bitpix=st.sampled_from([-32] * 6 + [-64, 16, 32, 8, 64, 12, 0, "X"]),
       naxis=st.sampled_from([2] * 8 + [1, 3, 0, -1, 999, "two"]),
       dims=st.tuples(*[st.sampled_from([16] * 10 + [0, 1, 15, 17, -5, 10**6, 2**40, "x"])] * 2,
                      st.sampled_from([1, 2, 3])),
       extra=wcs_cards(),
       data_len=st.sampled_from(["exact"] * 5 + ["short", "none", "long", "one_block"]),
       simple=st.sampled_from(["T"] * 8 + ["F", "missing"]),
       end=st.sampled_from([True] * 5 + [False]))
def test_random_fits_files(bitpix, naxis, dims, extra, data_len, simple, end, tmp_path_factory):
    """Raw FITS files: corrupt SIMPLE/BITPIX/NAXIS cards, data too short or too long."""
    path = _files_dir(tmp_path_factory) / "random.fits"
    cards = []
    if simple != "missing":
        cards.append(_raw_card("SIMPLE", simple == "T"))
    cards.append(_raw_card("BITPIX", bitpix))
    cards.append(_raw_card("NAXIS", naxis))
    n_axes = naxis if isinstance(naxis, int) and 0 < naxis < 4 else 2
    for i in range(n_axes):
        cards.append(_raw_card(f"NAXIS{i + 1}", dims[i]))
    for key, value in extra.items():
        if value is not None:
            cards.append(_raw_card(key, value))
    cards.append(_raw_card("BUNIT", "nanomaggy"))
    if end:
        cards.append("END".ljust(80))
    header = "".join(cards)
    header += " " * (-len(header) % 2880)
    try:
        npix = int(np.prod([int(d) for d in dims[:n_axes]], dtype=object))
        nbytes = npix * abs(int(bitpix)) // 8
    except (TypeError, ValueError):
        nbytes = 16 * 16 * 4
    nbytes = max(nbytes, 0)
    size = {"exact": nbytes, "short": nbytes // 2, "none": 0, "long": nbytes + 5000,
            "one_block": 2880}[data_len]
    size = min(size, 2 ** 20)   # never write more than 1 MB
    body = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(header.encode("ascii") + body)
    img = _attempt("read_image[file]", read_image, str(path))
    if img is not None:
        _check_image(img)
        _attempt("resample[file]", resample, img, "decals", return_type="image")


_FILES = {}


def _files_dir(factory):
    if "dir" not in _FILES:
        _FILES["dir"] = factory.mktemp("hypothesis_files")
    return _FILES["dir"]


@settings(max_examples=N_DATA, **SETTINGS)
@given(data=arrays(max_side=16), as_hdu=st.booleans(), bunit=st.sampled_from(
    ["nanomaggy", "nanomaggies", "MJy/sr", "mag", "count", "ADU", "", "bogus unit", None]))
def test_random_data(data, as_hdu, bunit):
    """Any dtype, byte order, NaN/inf pattern and unit on a valid WCS; the input is never
    modified."""
    cards = _good_cards(data.shape)
    cards["BUNIT"] = bunit
    header = _header(cards)
    before = data.copy()
    if as_hdu and data.dtype.kind != "b" and data.dtype != np.float16:
        obj = fits.PrimaryHDU(data, header=header)
    else:
        obj = (data, header)
    _read_and_resample("data", obj, data.shape, values=before)
    assert np.array_equal(data, before, equal_nan=data.dtype.kind == "f")


def test_zz_report_exception_types():
    """Print what the properties saw (pytest -s) and check the strategies reach every kind
    of outcome, so that a broken generator cannot pass silently."""
    if not SEEN:
        pytest.skip("the property tests of this module did not run in this session")
    total = sum(v for k, v in SEEN.items() if k.startswith("read_image") or
                k.startswith("WCS()"))
    print(f"\nhypothesis: {total} examples; outcomes:")
    for key, n in sorted(SEEN.items()):
        print(f"  {key:45s} {n:6d}")
    assert total >= 1000 * min(_SCALE, 1)
    kinds = {k.split(": ")[1] for k in SEEN}
    assert {"ok", "WCSError", "InputError", "FITSReadError"} <= kinds, kinds
    assert SEEN["resample[header]: ok"] > 0 and SEEN["read_image[file]: ok"] > 0
