"""Shared test fixtures.

- ``real_data_dir``: the real survey images in ``../shared/data/real`` (next to the repository);
  tests using it skip, with the reason, when it is absent. Mark them ``@pytest.mark.realdata``.
- ``sdss_frame_r``: path of the real SDSS r frame (skips when absent).
- ``sdss_hdu``: a small synthetic SDSS-like frame (64 x 64, nanomaggies, rotated TAN WCS) made
  by the package itself; a fresh HDU for each test, so tests may modify it.
- ``sdss_file``: that frame written to a temporary ``.fits`` file.
"""

from pathlib import Path

import pytest

#: Real data shipped next to the repository (never copied into it).
REAL_DATA_DIR = Path(__file__).parents[1].parent / "shared" / "data" / "real"
SDSS_FRAME_R = "sdss/frame-r-002583-2-0136.fits.bz2"


@pytest.fixture(scope="session")
def real_data_dir():
    """Directory of the real survey images; skips the test when it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real data directory {REAL_DATA_DIR} absent (it lives in ../shared next to "
                    "the repository)")
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def sdss_frame_r(real_data_dir):
    """Path of the real SDSS r-band frame (run 2583, camcol 2, field 136)."""
    path = real_data_dir / SDSS_FRAME_R
    if not path.is_file():
        pytest.skip(f"real SDSS frame {path} absent")
    return path


@pytest.fixture
def sdss_hdu():
    """A fresh 64 x 64 synthetic SDSS-like r-band PrimaryHDU (seed 0)."""
    from astro_enhance.sample_data import make_sdss_sample

    return make_sdss_sample(shape=(64, 64), seed=0, band="r")


@pytest.fixture
def sdss_file(sdss_hdu, tmp_path):
    """The ``sdss_hdu`` frame written to ``tmp_path / 'sdss.fits'``."""
    path = tmp_path / "sdss.fits"
    sdss_hdu.writeto(path)
    return path


def tan_header(shape=(20, 20), *, scale=0.396, ra=150.0, dec=2.0):
    """A FITS header with a plain celestial TAN WCS for an image of ``shape`` (ny, nx)."""
    from astropy.io import fits

    ny, nx = shape
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CRPIX1"], h["CRPIX2"] = (nx + 1) / 2, (ny + 1) / 2
    h["CD1_1"], h["CD1_2"] = -scale / 3600, 0.0
    h["CD2_1"], h["CD2_2"] = 0.0, scale / 3600
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["BUNIT"] = "nanomaggy"
    return h


#: Every bad input of the acceptance list: kind -> (exception name, message pattern).
BAD_INPUTS = {
    "missing": ("FITSReadError", r"not found"),
    "not_fits": ("FITSReadError", r"not a FITS file"),
    "truncated": ("FITSReadError", r"truncated"),
    "truncated_gz": ("FITSReadError", r"truncated"),
    "no_image": ("NoImageError", r"no image HDU"),
    "one_d": ("InputError", r"1-D"),
    "cube": ("InputError", r"3-D cube.*plane="),
    "four_d": ("InputError", r"4 dimensions"),
    "all_nan": ("InputError", r"entirely NaN"),
    "no_wcs": ("WCSError", r"no WCS"),
    "non_celestial": ("WCSError", r"not celestial"),
}


@pytest.fixture
def bad_fits(tmp_path):
    """Factory: ``bad_fits(kind)`` writes a bad input file and returns
    ``(path, exception class, message pattern)``; kinds are the keys of ``BAD_INPUTS``."""
    import gzip

    import numpy as np
    from astropy.io import fits

    import astro_enhance.exceptions as exc

    def make(kind):
        path = tmp_path / f"bad_{kind}.fits"
        rng = np.random.default_rng(1)
        img = rng.normal(size=(40, 40)).astype(np.float32)
        if kind == "missing":
            pass
        elif kind == "not_fits":
            path.write_text("this is a text file, not FITS\n" * 20)
        elif kind in ("truncated", "truncated_gz"):
            full = tmp_path / "full.fits"
            fits.PrimaryHDU(img, header=tan_header(img.shape)).writeto(full)
            raw = full.read_bytes()
            if kind == "truncated":
                path.write_bytes(raw[:2880 + 1000])
            else:
                path = tmp_path / "bad_truncated.fits.gz"
                packed = gzip.compress(raw)
                path.write_bytes(packed[:len(packed) // 2])
        elif kind == "no_image":
            table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(5.0))])
            fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
        elif kind == "one_d":
            fits.PrimaryHDU(np.arange(50, dtype=np.float32)).writeto(path)
        elif kind == "cube":
            h = tan_header((20, 20))
            h["CTYPE3"], h["CRVAL3"], h["CRPIX3"], h["CDELT3"] = "FREQ", 1e9, 1.0, 1e6
            fits.PrimaryHDU(rng.normal(size=(3, 20, 20)).astype(np.float32), header=h) \
                .writeto(path)
        elif kind == "four_d":
            fits.PrimaryHDU(rng.normal(size=(2, 2, 20, 20)).astype(np.float32),
                            header=tan_header((20, 20))).writeto(path)
        elif kind == "all_nan":
            fits.PrimaryHDU(np.full((20, 20), np.nan, np.float32),
                            header=tan_header((20, 20))).writeto(path)
        elif kind == "no_wcs":
            fits.PrimaryHDU(img).writeto(path)
        elif kind == "non_celestial":
            h = fits.Header()
            h["CTYPE1"], h["CTYPE2"] = "LINEAR", "LINEAR"
            h["CRPIX1"] = h["CRPIX2"] = 1.0
            h["CDELT1"] = h["CDELT2"] = 1.0
            fits.PrimaryHDU(img, header=h).writeto(path)
        else:  # pragma: no cover - a typo in a test
            raise KeyError(kind)
        name, pattern = BAD_INPUTS[kind]
        return path, getattr(exc, name), pattern

    return make


# ---------------------------------------------------------------------------------------------
# No network: the suite runs with pytest-socket's --disable-socket --allow-unix-socket
# --allow-hosts=127.0.0.1,localhost,::1 (setup.cfg addopts). Connections may only go to
# loopback (dask's schedulers and workers) or Unix sockets (asyncio). Two additions here:
# - tests marked ``enable_socket`` still may only connect to loopback;
# - host names other than localhost are not resolved (pytest-socket's host filter checks
#   connect() only, and a DNS lookup is network use too).

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_NET_STATE = {}


def _allowed_hosts(config):
    try:
        return config.getoption("--allow-hosts")
    except ValueError:  # pytest-socket not installed
        return None


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    import ipaddress

    name = host.decode() if isinstance(host, bytes) else host
    if name in (None, "") or str(name).lower() in _LOOPBACK_NAMES:
        return _NET_STATE["getaddrinfo"](host, *args, **kwargs)
    try:
        ipaddress.ip_address(str(name).split("%")[0])
    except ValueError:
        import pytest_socket

        raise pytest_socket.SocketBlockedError(
            f"A test tried to resolve the host name {name!r} (DNS is network use; only "
            "loopback is allowed in the test suite).") from None
    return _NET_STATE["getaddrinfo"](host, *args, **kwargs)


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item):
    hosts = _allowed_hosts(item.config)
    if not hosts or item.config.getoption("--force-enable-socket"):
        return
    import socket

    import pytest_socket

    if item.get_closest_marker("enable_socket") or "socket_enabled" in item.fixturenames:
        pytest_socket.socket_allow_hosts(hosts, allow_unix_socket=True)
    if "getaddrinfo" not in _NET_STATE:
        _NET_STATE["getaddrinfo"] = socket.getaddrinfo
        socket.getaddrinfo = _loopback_only_getaddrinfo


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    import socket

    real = _NET_STATE.pop("getaddrinfo", None)
    if real is not None and socket.getaddrinfo is _loopback_only_getaddrinfo:
        socket.getaddrinfo = real
