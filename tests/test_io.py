"""Tests of astro_enhance.io: reading every astropy image form, units, errors, atomic writing."""

import os
import stat
from unittest import mock

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData
from astropy.wcs import WCS

import astro_enhance
from astro_enhance.exceptions import (AstroEnhanceWarning, FITSReadError, InputError,
                                      NoImageError, OutputError, OutputExistsError, WCSError)
from astro_enhance.io import (Image, add_provenance, image_to_hdu, parse_unit, read_image,
                              unit_to_bunit, write_fits)

BAD_KINDS = ("missing", "not_fits", "truncated", "truncated_gz", "no_image", "one_d", "cube",
             "four_d", "all_nan", "no_wcs", "non_celestial")


def _tan_header(shape=(20, 30), scale=0.396):
    from conftest import tan_header

    return tan_header(shape, scale=scale)


# --- every input form --------------------------------------------------------------------


def test_read_hdu_basic(sdss_hdu):
    img = read_image(sdss_hdu)
    assert isinstance(img, Image)
    assert img.shape == (64, 64)
    assert img.data.dtype == np.float32 and img.data.dtype.isnative
    assert img.unit == u.nanomaggy
    assert img.mask is None
    assert img.wcs.naxis == 2 and img.wcs.has_celestial
    assert img.header["TELESCOP"] == "SDSS 2.5-M"
    np.testing.assert_array_equal(img.data, sdss_hdu.data)


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz", ".fits.bz2", ".fits.fz"])
def test_read_paths_all_compressions(sdss_hdu, tmp_path, suffix):
    path = tmp_path / f"img{suffix}"
    if suffix == ".fits.fz":
        hdul = fits.HDUList([fits.PrimaryHDU(),
                             fits.CompImageHDU(sdss_hdu.data, header=sdss_hdu.header,
                                               compression_type="GZIP_2")])
        hdul.writeto(path)
    else:
        sdss_hdu.writeto(path)
    img = read_image(path)
    assert img.shape == (64, 64)
    assert img.filename == str(path)
    # .fz float compression is quantised (lossy, well below the noise of 0.035).
    atol = 0.01 if suffix == ".fits.fz" else 0.0
    np.testing.assert_allclose(img.data, sdss_hdu.data, rtol=0, atol=atol)
    assert img.unit == u.nanomaggy
    ref = read_image(sdss_hdu).wcs
    assert np.allclose(img.wcs.wcs.crval, ref.wcs.crval)


def test_read_hdulist_picks_first_image_with_data_and_hdu_option(sdss_hdu):
    table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(3.0))])
    second = fits.ImageHDU(sdss_hdu.data * 2, header=sdss_hdu.header, name="SCI2")
    hdul = fits.HDUList([fits.PrimaryHDU(), table,
                         fits.ImageHDU(sdss_hdu.data, header=sdss_hdu.header, name="SCI"),
                         second])
    np.testing.assert_array_equal(read_image(hdul).data, sdss_hdu.data)
    np.testing.assert_array_equal(read_image(hdul, hdu=3).data, sdss_hdu.data * 2)
    np.testing.assert_array_equal(read_image(hdul, hdu="SCI2").data, sdss_hdu.data * 2)
    with pytest.raises(NoImageError, match="BinTableHDU, not an image"):
        read_image(hdul, hdu=1)
    with pytest.raises(NoImageError, match="no HDU 'NOPE'"):
        read_image(hdul, hdu="NOPE")


def test_read_skips_1d_vector_before_image():
    # Like an SDSS frame read from HDU 1 first: a 1-D vector then the image.
    hdul = fits.HDUList([fits.PrimaryHDU(np.arange(10.0)),
                         fits.ImageHDU(np.ones((20, 30), np.float32), header=_tan_header())])
    assert read_image(hdul).shape == (20, 30)


def test_extension_inherits_primary_identity():
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "CTIO 4.0-m telescope"
    primary.header["INSTRUME"] = "DECam"
    primary.header["OBSERVER"] = "someone"
    primary.header["FILTER"] = "z"
    ext_header = _tan_header()
    ext_header["FILTER"] = "r"  # the extension's own value wins
    hdul = fits.HDUList([primary, fits.ImageHDU(np.ones((20, 30), np.float32),
                                                header=ext_header)])
    h = read_image(hdul).header
    assert h["TELESCOP"] == "CTIO 4.0-m telescope" and h["INSTRUME"] == "DECam"
    assert h["FILTER"] == "r" and "OBSERVER" not in h
    hdul[1].header["INHERIT"] = True
    assert read_image(hdul).header["OBSERVER"] == "someone"
    assert "TELESCOP" not in hdul[1].header  # the input is not modified


def test_read_ccddata_keeps_mask_and_unit(sdss_hdu):
    mask = np.zeros((64, 64), bool)
    mask[10:12, 20:25] = True
    ccd = CCDData(sdss_hdu.data.copy(), wcs=WCS(sdss_hdu.header), unit="adu", mask=mask,
                  meta=sdss_hdu.header)
    img = read_image(ccd)
    assert img.unit == u.adu
    np.testing.assert_array_equal(img.mask, mask)
    assert img.header["FILTER"] == "r"


def test_read_nddata_and_tuples(sdss_hdu):
    w = WCS(sdss_hdu.header)
    nd = NDData(sdss_hdu.data, wcs=w, unit=u.nanomaggy)
    assert read_image(nd).unit == u.nanomaggy
    img_w = read_image((sdss_hdu.data, w))
    img_h = read_image((sdss_hdu.data, sdss_hdu.header))
    assert img_w.unit is None  # a WCS carries no unit
    assert img_h.unit == u.nanomaggy  # a header does (BUNIT)
    np.testing.assert_array_equal(img_w.data, img_h.data)
    assert read_image(sdss_hdu.data, wcs=w).shape == (64, 64)
    with pytest.raises(WCSError, match="no WCS"):
        read_image(sdss_hdu.data)
    with pytest.raises(InputError, match="tuple"):
        read_image((sdss_hdu.data, w, 3))
    with pytest.raises(InputError, match="cannot read an image from a list"):
        read_image([1, 2])


def test_read_image_returns_independent_copy(sdss_hdu):
    img = read_image(sdss_hdu)
    img2 = read_image(img)
    assert img2 is not img
    img2.data[0, 0] = 1e9
    img2.header["NEW"] = 1
    img2.wcs.wcs.crval = [0, 0]
    assert img.data[0, 0] != 1e9
    assert "NEW" not in img.header
    assert img.wcs.wcs.crval[0] != 0


def test_input_never_modified(sdss_hdu):
    data_before = sdss_hdu.data.copy()
    header_before = sdss_hdu.header.tostring()
    img = read_image(sdss_hdu)
    img.data += 5
    img.header["FOO"] = "bar"
    np.testing.assert_array_equal(sdss_hdu.data, data_before)
    assert sdss_hdu.header.tostring() == header_before
    assert not np.shares_memory(img.data, sdss_hdu.data)


def test_integer_big_endian_and_blank():
    raw = np.arange(600, dtype=">i2").reshape(20, 30)
    h = _tan_header()
    h["BLANK"] = 5
    img = read_image(fits.PrimaryHDU(raw, header=h))
    assert img.data.dtype == np.dtype(np.float32) and img.data.dtype.isnative
    assert np.isnan(img.data[0, 5]) and img.mask[0, 5] and img.mask.sum() == 1
    assert img.data[3, 4] == 94.0
    be = np.ones((20, 30), dtype=">f8")
    assert read_image((be, h)).data.dtype == np.dtype(np.float32)


def test_nan_and_inf_are_masked():
    data = np.ones((20, 30), np.float32)
    data[3, 4] = np.nan
    data[5, 6] = np.inf
    img = read_image((data, _tan_header()))
    assert img.mask.sum() == 2 and img.mask[3, 4] and img.mask[5, 6]
    assert np.isnan(img.data[5, 6])


def test_cube_plane_and_squeeze():
    h = _tan_header((20, 30))
    h["CTYPE3"], h["CRVAL3"], h["CRPIX3"], h["CDELT3"] = "FREQ", 1e9, 1.0, 1e6
    cube = np.stack([np.full((20, 30), i, np.float32) for i in range(3)])
    img = read_image(fits.PrimaryHDU(cube, header=h), plane=2)
    assert img.shape == (20, 30) and np.all(img.data == 2)
    assert img.wcs.naxis == 2
    single = read_image(fits.PrimaryHDU(cube[:1], header=h))
    assert single.shape == (20, 30)
    with pytest.raises(InputError, match="outside the cube's 3 planes"):
        read_image(fits.PrimaryHDU(cube, header=h), plane=5)


def test_sip_distortion_is_kept():
    h = _tan_header((50, 50))
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    h["A_ORDER"] = h["B_ORDER"] = 2
    h["A_2_0"] = 1e-5
    h["B_0_2"] = -2e-5
    img = read_image((np.ones((50, 50), np.float32), h))
    assert img.wcs.sip is not None
    assert img.wcs.sip.a[2, 0] == pytest.approx(1e-5)


def test_wcs_and_unit_overrides(sdss_hdu):
    w = WCS(_tan_header((64, 64), scale=1.0))
    img = read_image(sdss_hdu, wcs=w, unit="MJy/sr")
    assert img.unit == u.MJy / u.sr
    assert img.wcs.wcs.cd[1, 1] == pytest.approx(1.0 / 3600)


# --- units -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, unit", [
    ("nanomaggy", u.nanomaggy), ("nanomaggies", u.nanomaggy), ("NANOMAGGY", u.nanomaggy),
    ("ADU", u.adu), ("counts", u.count), ("counts/s", u.count / u.s), ("e-/s", u.electron / u.s),
    ("electrons", u.electron), ("MJy/sr", u.MJy / u.sr), ("Jy", u.Jy),
    ("mag/arcsec2", u.mag / u.arcsec ** 2),
])
def test_parse_unit(text, unit):
    assert parse_unit(text) == unit


def test_parse_unit_unknown_warns_and_gives_none():
    with pytest.warns(AstroEnhanceWarning, match="not a unit astropy understands"):
        assert parse_unit("furlongs per fortnight squiggle") is None
    assert parse_unit("") is None and parse_unit(None) is None


def test_nanomaggy_bunit_roundtrip_and_reimport():
    import subprocess
    import sys
    from pathlib import Path

    assert unit_to_bunit(u.nanomaggy) == "nanomaggy"
    assert unit_to_bunit(u.MJy / u.sr) == "MJy sr-1"
    # Reloading the module (unit definitions) must work; done in a subprocess so that this
    # process keeps a single Image class.
    code = ("import importlib, sys, astro_enhance.io as m; importlib.reload(m); "
            "import astropy.units as u; assert m.parse_unit('nanomaggy') == u.nanomaggy; "
            "print('ok')")
    root = Path(__file__).parents[1]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


# --- bad inputs --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_inputs_raise_clear_errors(bad_fits, kind):
    path, exc_type, pattern = bad_fits(kind)
    with pytest.raises(exc_type, match=pattern) as info:
        read_image(path)
    assert isinstance(info.value, astro_enhance.AstroEnhanceError)


def test_bad_in_memory_inputs():
    with pytest.raises(NoImageError, match="table HDU"):
        read_image(fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])]))
    with pytest.raises(NoImageError, match="no data"):
        read_image(fits.PrimaryHDU())
    with pytest.raises(NoImageError, match="no image HDU"):
        read_image(fits.HDUList([fits.PrimaryHDU()]))
    with pytest.raises(InputError, match="entirely NaN"):
        read_image((np.full((5, 5), np.inf), _tan_header((5, 5))))
    with pytest.raises(InputError, match="at least 2 x 2"):
        read_image((np.ones((1, 30)), _tan_header()))


def test_missing_file_is_filenotfound_like(tmp_path):
    with pytest.raises(FITSReadError, match="not found") as info:
        read_image(tmp_path / "nope.fits")
    assert isinstance(info.value, OSError)
    with pytest.raises(FITSReadError, match="empty"):
        (tmp_path / "empty.fits").write_bytes(b"")
        read_image(tmp_path / "empty.fits")


# --- writing -----------------------------------------------------------------------------


def test_write_roundtrip_and_no_overwrite(sdss_hdu, tmp_path):
    path = tmp_path / "out.fits"
    assert write_fits(sdss_hdu, path) == path
    np.testing.assert_array_equal(fits.getdata(path), sdss_hdu.data)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o044  # not the 0600 of a private temp file
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="exists"):
        write_fits(fits.PrimaryHDU(np.zeros((3, 3))), path)
    assert path.read_bytes() == before
    write_fits(fits.PrimaryHDU(np.zeros((3, 3))), path, overwrite=True)
    assert fits.getdata(path).shape == (3, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fits"]


def test_write_compressed_and_image(sdss_hdu, tmp_path):
    img = read_image(sdss_hdu)
    img.mask = np.zeros(img.shape, bool)
    img.mask[5, 5] = True
    path = write_fits(img, tmp_path / "out.fits.gz")
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASK"]
        assert hdul[0].header["BUNIT"] == "nanomaggy"
        assert hdul["MASK"].data[5, 5] == 1 and hdul["MASK"].data.sum() == 1
    with open(path, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    back = read_image(path)
    np.testing.assert_array_equal(back.data, img.data)


def test_write_missing_dir_or_parent_is_file(sdss_hdu, tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_fits(sdss_hdu, tmp_path / "nodir" / "out.fits")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        write_fits(sdss_hdu, tmp_path / "afile" / "out.fits")
    with pytest.raises(OutputError, match="is a directory"):
        write_fits(sdss_hdu, tmp_path)


def test_write_read_only_directory(sdss_hdu, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.geteuid() != 0:  # root ignores permissions: covered by the patched tests below
            with pytest.raises(OutputError, match="not writable"):
                write_fits(sdss_hdu, ro / "out.fits")
        with mock.patch("astro_enhance.io.os.access", return_value=False):
            with pytest.raises(OutputError, match="not writable"):
                write_fits(sdss_hdu, ro / "out.fits")
        with mock.patch("astro_enhance.io.tempfile.mkstemp",
                        side_effect=PermissionError(13, "Permission denied")):
            with pytest.raises(OutputError, match="Permission denied"):
                write_fits(sdss_hdu, ro / "out.fits")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_write_failure_leaves_nothing(sdss_hdu, tmp_path, error):
    path = tmp_path / "out.fits"
    with mock.patch.object(fits.HDUList, "writeto", side_effect=error):
        with pytest.raises((KeyboardInterrupt, OutputError)):
            write_fits(sdss_hdu, path)
    assert list(tmp_path.iterdir()) == []
    # With overwrite, an existing file survives a failed write intact.
    write_fits(sdss_hdu, path)
    before = path.read_bytes()
    with mock.patch.object(fits.HDUList, "writeto", side_effect=error):
        with pytest.raises((KeyboardInterrupt, OutputError)):
            write_fits(fits.PrimaryHDU(np.zeros((2, 2))), path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.fits"]


def test_image_to_hdu_replaces_stale_wcs(sdss_hdu):
    img = read_image(sdss_hdu)
    new = WCS(_tan_header((64, 64), scale=0.262))
    img.wcs = new  # header still holds the old CD matrix
    hdu = image_to_hdu(img)
    back = WCS(hdu.header)
    np.testing.assert_allclose(back.pixel_scale_matrix, new.pixel_scale_matrix)
    assert hdu.header["BUNIT"] == "nanomaggy"
    assert hdu.header["FILTER"] == "r"
    assert isinstance(image_to_hdu(img, primary=False), fits.ImageHDU)


def test_add_provenance():
    h = add_provenance(fits.Header(), method="gan", target="decals", weights_sha256="a" * 64,
                       device="cpu", chi2=1.05, input_name="/some/dir/frame.fits",
                       history=["Enhanced with the GAN."])
    assert h["AE_VER"] == astro_enhance.__version__
    assert (h["AE_METH"], h["AE_TGT"], h["AE_DEV"]) == ("gan", "decals", "cpu")
    assert h["AE_WSHA"] == "a" * 64 and h["AE_CHI2"] == pytest.approx(1.05)
    assert h["AE_INPUT"] == "frame.fits"
    hist = " ".join(str(x) for x in h["HISTORY"])
    assert "not an original observation" in hist and "Enhanced with the GAN." in hist
    # The header survives a FITS round trip (long sha256 card included).
    hdu = fits.PrimaryHDU(np.zeros((2, 2)), header=h)
    assert fits.Header.fromstring(hdu.header.tostring())["AE_WSHA"] == "a" * 64
    h2 = add_provenance(fits.Header(), method="bicubic", target="decals")
    assert "AE_WSHA" not in h2 and "AE_CHI2" not in h2
