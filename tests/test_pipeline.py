"""End-to-end tests of `astro_enhance.enhance_fits` and the ``enhance``/``demo`` subcommands."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from astro_enhance import EnhancerError, SurveyError, enhance_fits, read_image
from astro_enhance.cli import main
from astro_enhance.sample_data import make_sdss_sample

PROVENANCE = ("AE_VER", "AE_METH", "AE_DEV", "AE_TGT", "AE_CHI2", "AE_FLUXR")


@pytest.fixture(scope="module")
def sample():
    return make_sdss_sample(shape=(96, 96), seed=5)


def _tiny_unet_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from astro_enhance.models import build_model
    from astro_enhance.weights import save_weights

    torch.manual_seed(0)
    net = build_model("unet", {"width": 4, "depth": 2})
    return save_weights(net.state_dict(), tmp_path / "tiny_unet", architecture="unet",
                        config={"width": 4, "depth": 2},
                        info={"name": "unet", "kind": "neural", "size_multiple": 4})


@pytest.mark.parametrize("method", ["bicubic", "bilateral", "gaussian", "richardson-lucy"])
def test_classical_output_grid_units_and_provenance(sample, method):
    hdul = enhance_fits(sample, method=method)
    h = hdul[0].header
    assert hdul[0].data.dtype == np.float32
    for key in PROVENANCE:
        assert key in h, key
    assert h["AE_METH"] == method and h["AE_TGT"] == "decals"
    assert h["BUNIT"] == sample.header["BUNIT"]
    scale = proj_plane_pixel_scales(WCS(h).celestial) * 3600
    np.testing.assert_allclose(scale, 0.262, rtol=1e-6)
    assert any("enhanced with method" in str(c) for c in h["HISTORY"])
    # total flux on the footprint is kept by the classical methods
    assert abs(h["AE_FLUXR"] - 1) < 0.02
    # the input is never modified
    assert np.array_equal(sample.data, make_sdss_sample(shape=(96, 96), seed=5).data)


def test_neural_end_to_end_with_sockets_blocked(sample, tmp_path):
    """Issue 3, acceptance 4: enhance_fits runs a neural enhancer with the network off."""
    import pytest_socket

    path = _tiny_unet_weights(tmp_path)
    pytest_socket.disable_socket()
    try:
        hdul = enhance_fits(sample, method="unet", weights=path, device="cpu")
    finally:
        pytest_socket.enable_socket()
    h = hdul[0].header
    assert h["AE_METH"] == "unet" and h["AE_DEV"] == "cpu"
    assert len(h["AE_WSHA"]) >= 12
    assert any("trained model" in str(c) for c in h["HISTORY"])
    assert np.isfinite(hdul[0].data).sum() > 0.8 * hdul[0].data.size


def test_nan_inside_footprint_restored(sample):
    data = sample.data.copy()
    data[40:44, 40:44] = np.nan
    hdul = enhance_fits((data, WCS(sample.header)), method="bicubic")
    out = hdul[0].data
    assert np.isnan(out).any()
    assert np.isfinite(out).sum() > 0.5 * out.size


def test_samples_give_std_extension(sample):
    hdul = enhance_fits(sample, method="bicubic", samples=3, rng=1)
    assert "STD" in hdul and hdul["STD"].data.shape == hdul[0].data.shape
    assert hdul[0].header["AE_NSAMP"] == 3
    # a deterministic method has zero spread
    assert np.nanmax(hdul["STD"].data) == 0


def test_errors_name_the_problem(sample):
    with pytest.raises(EnhancerError, match="nosuch"):
        enhance_fits(sample, method="nosuch")
    with pytest.raises(SurveyError, match="hubble"):
        enhance_fits(sample, method="bicubic", target="hubble")
    with pytest.raises(ValueError, match="samples"):
        enhance_fits(sample, method="bicubic", samples=0)


def test_cli_enhance_writes_fits_and_preview(sample, tmp_path, capsys):
    src = tmp_path / "in.fits"
    sample.writeto(src)
    out, png = tmp_path / "out.fits", tmp_path / "out.png"
    rc = main(["enhance", str(src), "-o", str(out), "--method", "bilateral",
               "--preview", str(png), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    with fits.open(out) as hdul:
        assert hdul[0].header["AE_METH"] == "bilateral"
        assert hdul[0].header["AE_INPUT"].endswith("in.fits")
    from PIL import Image as PILImage

    with PILImage.open(png) as im:
        w, h = im.size
    assert w > 2.5 * h  # three panels side by side
    # second run without --overwrite refuses and keeps the file
    before = out.read_bytes()
    assert main(["enhance", str(src), "-o", str(out), "--method", "bicubic"]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_demo_runs_and_reports(tmp_path, capsys):
    rc = main(["demo", "--output", str(tmp_path / "demo"), "--method", "bicubic"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "PSNR" in text and "demo_comparison.png" in text
    for name in ("demo_sdss.fits", "demo_enhanced.fits", "demo_truth.fits",
                 "demo_comparison.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    enhanced = read_image(tmp_path / "demo" / "demo_enhanced.fits")
    truth = read_image(tmp_path / "demo" / "demo_truth.fits")
    assert enhanced.shape == truth.shape


def test_default_method_is_the_best_available():
    from astro_enhance.enhancers import list_enhancers
    from astro_enhance.pipeline import PREFERRED_METHODS, default_method

    names = set(list_enhancers()["name"])
    expected = next(m for m in PREFERRED_METHODS if m in names)
    assert default_method() == expected
    from astro_enhance.weights import weights_dir

    if (weights_dir() / "unet.safetensors").exists():
        assert default_method() == "unet"


def test_remove_stars_adds_mask_and_catalogue(sample):
    hdul = enhance_fits(make_sdss_sample(seed=3), method="bicubic", remove_stars=True, rng=0)
    assert "MASK" in hdul and "STARS" in hdul
    assert hdul["MASK"].data.shape == hdul[0].data.shape
    assert hdul["MASK"].data.any()
    assert any("removed before enhancement" in str(c) for c in hdul[0].header["HISTORY"])


def test_consistency_leaves_out_removed_stars():
    """AE_CHI2 with star removal compares the output with the input away from the removed
    stars (they are in the input, not in the output): it stays about 1."""
    import warnings

    from astro_enhance import enhance_fits
    from astro_enhance.sample_data import make_sdss_sample

    h = make_sdss_sample(shape=(256, 256))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = enhance_fits(h, method="bicubic")
        clean = enhance_fits(h, method="bicubic", remove_stars=True)
    assert clean["MASK"].data.any()
    assert 0.2 < clean[0].header["AE_CHI2"] < 1.5
    assert plain[0].header["AE_CHI2"] < 1.5
