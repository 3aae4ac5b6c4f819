"""Command-line tests of ``astro-enhance info`` and ``astro-enhance resample``.

Every bad input of the acceptance list must give a non-zero exit, a one-line message naming
the problem on stderr, no traceback, and no output file.
"""

import re
from unittest import mock

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from astro_enhance.cli import main

BAD_KINDS = ("missing", "not_fits", "truncated", "truncated_gz", "no_image", "one_d", "cube",
             "four_d", "all_nan", "no_wcs", "non_celestial")


def _one_line_error(err, pattern):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("astro-enhance: error:"), err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


def test_info_sample(sdss_file, capsys):
    assert main(["info", str(sdss_file)]) == 0
    out = capsys.readouterr().out
    assert "SDSS (confidence 0.95" in out
    assert "0.3960\"" in out and "nanomaggy" in out and "64 x 64 px" in out
    assert "band r" in out and "RA---TAN DEC--TAN" in out
    noise = float(re.search(r"noise:\s+([0-9.e-]+)", out).group(1))
    assert 0.02 < noise < 0.05  # the sample has SDSS r noise, 0.035


def test_info_hdu_option(sdss_hdu, tmp_path, capsys):
    path = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(np.zeros((10, 10), np.float32), name="JUNK"),
                  fits.ImageHDU(sdss_hdu.data, header=sdss_hdu.header, name="SCI")]
                 ).writeto(path)
    assert main(["info", str(path), "--hdu", "SCI"]) == 0
    assert "64 x 64 px" in capsys.readouterr().out
    assert main(["info", str(path), "--hdu", "2"]) == 0
    assert "64 x 64 px" in capsys.readouterr().out
    assert main(["info", str(path), "--hdu", "1"]) == 2  # JUNK has no WCS
    _one_line_error(capsys.readouterr().err, r"no WCS")


def test_resample_cli(sdss_file, tmp_path, capsys):
    out = tmp_path / "out.fits"
    assert main(["resample", str(sdss_file), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    with fits.open(out) as hdul:
        h = hdul[0].header
        assert h["BUNIT"] == "nanomaggy"
        np.testing.assert_allclose(proj_plane_pixel_scales(WCS(h)) * 3600, 0.262, atol=1e-6)
        assert h["AE_FLUXF"] == pytest.approx((0.262 / 0.396) ** 2, rel=1e-4)
        assert any("resampled with reproject" in str(x) for x in h["HISTORY"])
        assert hdul[0].data.dtype.kind == "f"
    # Options: no flux scaling, north up, another survey, overwrite.
    assert main(["resample", str(sdss_file), "-o", str(out), "--no-conserve-flux",
                 "--north-up", "--target", "hsc", "--order", "bilinear", "--overwrite"]) == 0
    h = fits.getheader(out)
    assert h["AE_FLUXF"] == 1.0
    w = WCS(h)
    np.testing.assert_allclose(w.pixel_scale_matrix, np.diag([-1, 1]) * 0.168 / 3600, atol=1e-15)


@pytest.mark.parametrize("command", ["info", "resample"])
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_inputs_cli(bad_fits, kind, command, tmp_path, capsys):
    path, _, pattern = bad_fits(kind)
    out = tmp_path / "out.fits"
    argv = [command, str(path)] + (["-o", str(out)] if command == "resample" else [])
    assert main(argv) == 2
    _one_line_error(capsys.readouterr().err, pattern)
    assert not out.exists()


def test_unknown_target(sdss_file, tmp_path, capsys):
    out = tmp_path / "out.fits"
    assert main(["resample", str(sdss_file), "-o", str(out), "--target", "euclid"]) == 2
    _one_line_error(capsys.readouterr().err, r"unknown survey 'euclid'.*decals")
    assert not out.exists()


def test_output_exists_without_overwrite(sdss_file, tmp_path, capsys):
    out = tmp_path / "out.fits"
    out.write_bytes(b"precious")
    assert main(["resample", str(sdss_file), "-o", str(out)]) == 2
    _one_line_error(capsys.readouterr().err, r"exists.*--overwrite")
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fits", "sdss.fits"]


@pytest.mark.parametrize("case", ["missing_dir", "parent_is_file", "read_only", "denied"])
def test_output_directory_not_writable(sdss_file, tmp_path, capsys, case):
    if case == "missing_dir":
        out, pattern = tmp_path / "nodir" / "out.fits", r"does not exist"
    elif case == "parent_is_file":
        (tmp_path / "afile").write_text("x")
        out, pattern = tmp_path / "afile" / "out.fits", r"not a directory"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "out.fits"
        pattern = r"not writable" if case == "read_only" else r"Permission denied"
    argv = ["resample", str(sdss_file), "-o", str(out)]
    if case == "read_only":
        # We may run as root, which ignores permissions: make the check see what a user sees.
        with mock.patch("astro_enhance.io.os.access", return_value=False):
            code = main(argv)
    elif case == "denied":
        with mock.patch("astro_enhance.io.tempfile.mkstemp",
                        side_effect=PermissionError(13, "Permission denied")):
            code = main(argv)
    else:
        code = main(argv)
    assert code == 2
    _one_line_error(capsys.readouterr().err, pattern)
    assert not out.exists()
    if case in ("read_only", "denied"):
        assert list(out.parent.iterdir()) == []
        out.parent.chmod(0o755)


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(Exception, match="not found"):
        main(["--debug", "info", str(tmp_path / "nope.fits")])


@pytest.mark.realdata
def test_info_real_files(sdss_frame_r, real_data_dir, capsys):
    assert main(["info", str(sdss_frame_r)]) == 0
    out = capsys.readouterr().out
    assert "SDSS (confidence 0.95" in out and "2048 x 1489 px" in out and "band r" in out
    decam = sorted((real_data_dir / "decam" / "testcase9" / "images").glob("*_ooi_*.fits"))
    if not decam:
        pytest.skip("DECam test images absent")
    assert main(["info", str(decam[0])]) == 0
    out = capsys.readouterr().out
    # Telescope keywords live in the primary header; the image is in HDU 1 with a TPV WCS.
    assert "DECam" in out and "TPV" in out and "101 x 101 px" in out
