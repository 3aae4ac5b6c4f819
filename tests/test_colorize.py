"""Tests of the several-band path (``colorize``): colour metrics, the colour dataset, the
weights adaptation, the FITS cube written by the pipeline, the RGB image and the CLI."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astro_enhance.exceptions import InputError, OutputError
from astro_enhance.metrics import aperture_colours, colour_error

torch = pytest.importorskip("torch")


def _blob(n=64, r=3.0):
    yy, xx = np.mgrid[:n, :n]
    return np.exp(-((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (2 * r * r))


def test_aperture_colours_of_known_ratios():
    g = _blob()
    c = aperture_colours(np.stack([g, 10 ** 0.4 * g, 10 ** 0.8 * g]), ("g", "r", "z"))
    assert c["g-r"] == pytest.approx(1.0, abs=1e-9)
    assert c["r-z"] == pytest.approx(1.0, abs=1e-9)
    # a band with no flux: NaN colour, not an exception
    c = aperture_colours(np.stack([0 * g, g, g]), ("g", "r", "z"))
    assert np.isnan(c["g-r"]) and c["r-z"] == pytest.approx(0.0, abs=1e-12)


def test_colour_error_uses_the_truth_aperture():
    g = _blob()
    t = np.stack([g, 2 * g, 3 * g])
    # a ring far outside 2 r50 of the truth changes nothing in the aperture
    o = t.copy()
    o[0, :3, :] += 5.0
    e = colour_error(o, t, ("g", "r", "z"))
    assert abs(e["g-r"]) < 1e-6 and abs(e["r-z"]) < 1e-6
    e = colour_error(t * np.array([1.0, 1.0, 2.0])[:, None, None], t, ("g", "r", "z"))
    assert e["r-z"] == pytest.approx(2.5 * np.log10(2.0), abs=1e-9)
    with pytest.raises(InputError, match="differ in shape"):
        colour_error(t[:2], t, ("g", "r", "z"))
    with pytest.raises(InputError, match="one plane per band"):
        aperture_colours(t, ("g", "r"))


def test_add_residual_broadcasts_a_single_band():
    from astro_enhance.models.unet import add_residual

    out = add_residual(torch.zeros(2, 3, 4, 4), torch.full((2, 1, 4, 4), 2.0))
    assert torch.all(out == 2.0)
    # same number of planes: plane by plane, as before
    x = torch.arange(2.0).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    assert torch.equal(add_residual(torch.zeros(1, 2, 4, 4), x), x)


def test_adapt_state_repeats_the_output_layer():
    from astro_enhance.models import build_model
    from astro_enhance.training.loops import _adapt_state

    torch.manual_seed(0)
    one = build_model("unet", {"width": 8, "depth": 2})
    three = build_model("unet", {"width": 8, "depth": 2, "out_channels": 3})
    three.load_state_dict(_adapt_state(one.state_dict(), three))
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        y1, y3 = one(x), three(x)
    # every band starts as the single-band network's output
    for k in range(3):
        assert torch.allclose(y3[:, k], y1[:, 0], atol=1e-6)
    # a genuine mismatch is still reported
    wide = build_model("unet", {"width": 16, "depth": 2, "out_channels": 3})
    with pytest.raises(RuntimeError):
        wide.load_state_dict(_adapt_state(one.state_dict(), wide))


@pytest.fixture(scope="module")
def colour_shards(tmp_path_factory):
    from astro_enhance.simulate import write_shards

    d = tmp_path_factory.mktemp("colour_shards")
    write_shards(d, n=2, split="val", bands="g,r,z", stamp_arcsec=16, shard_size=2)
    return d


def test_colour_dataset_groups_bands_of_a_scene(colour_shards):
    from astro_enhance.training import ColourShardDataset, load_shards

    ds = ColourShardDataset(colour_shards, bands=("g", "r", "z"))
    raw = load_shards(colour_shards)
    assert len(ds) == 2 and ds.bands == ("g", "r", "z")
    for i, seed in enumerate(ds.meta["seed"]):
        rows = {str(b): j for j, (b, s) in enumerate(zip(raw["band"], raw["seed"]))
                if s == seed}
        # the input is the r row's input; the target planes are g, r, z of the same seed
        from astro_enhance.normalize import asinh_stretch
        sig = ds.sigma[i]
        np.testing.assert_allclose(ds.x[i], asinh_stretch(raw["input"][rows["r"]], sig),
                                   rtol=1e-5, atol=1e-6)
        for k, b in enumerate("grz"):
            np.testing.assert_allclose(ds.y["truth"][i][k],
                                       asinh_stretch(raw["truth"][rows[b]], sig),
                                       rtol=1e-5, atol=1e-6)
    b = ds.sample(3, 16, np.random.default_rng(0))
    assert b["input"].shape == (3, 1, 16, 16) and b["truth"].shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="every band"):
        ColourShardDataset(colour_shards, bands=("g", "i", "z"))


def _tiny_colorize_weights(tmp_path):
    from astro_enhance.models import build_model
    from astro_enhance.weights import save_weights

    torch.manual_seed(0)
    cfg = {"width": 4, "depth": 2, "out_channels": 3}
    net = build_model("unet", cfg)
    return save_weights(net.state_dict(), tmp_path / "colorize", architecture="unet",
                        config=cfg,
                        info={"name": "colorize", "kind": "neural", "channels_out": 3,
                              "size_multiple": 4, "bands": ["r"],
                              "extra": {"bands_out": ["g", "r", "z"]}})


def test_pipeline_writes_a_band_cube(tmp_path):
    from astro_enhance import enhance_fits
    from astro_enhance.sample_data import make_sdss_sample

    w = _tiny_colorize_weights(tmp_path)
    hdu = make_sdss_sample(shape=(64, 64))
    before = hdu.data.copy()
    hdul = enhance_fits(hdu, method="unet", weights=w, device="cpu")
    h, cube = hdul[0].header, hdul[0].data
    assert cube.ndim == 3 and cube.shape[0] == 3 and h["NAXIS"] == 3 and h["NAXIS3"] == 3
    assert [h["BAND1"], h["BAND2"], h["BAND3"]] == ["g", "r", "z"]
    assert h["AE_BANDS"] == "g,r,z" and "FILTER" not in h
    assert any("Planes 1-3 are bands g, r, z" in str(c) for c in h["HISTORY"])
    wcs = WCS(h).celestial
    assert wcs.naxis == 2 and wcs.wcs.ctype[0] == "RA---TAN"
    # AE_FLUXR refers to the r plane (the input band): the same as a bicubic-like check
    assert np.isfinite(float(h["AE_FLUXR"]))
    np.testing.assert_array_equal(hdu.data, before)   # input untouched
    # the file round-trips with its planes
    p = tmp_path / "cube.fits"
    hdul.writeto(p)
    with fits.open(p) as back:
        assert back[0].data.shape == cube.shape and back[0].header["BAND3"] == "z"


def test_lupton_rgb_and_refusals(tmp_path):
    from astro_enhance.visualization import lupton_rgb, save_rgb

    g = _blob(32)
    red = lupton_rgb(np.stack([0.2 * g, g, 3 * g]))
    blue = lupton_rgb(np.stack([3 * g, g, 0.2 * g]))
    assert red[16, 16, 0] > red[16, 16, 2] and blue[16, 16, 2] > blue[16, 16, 0]
    with pytest.raises(OutputError, match="3 band planes"):
        lupton_rgb(np.stack([g, g]))
    with pytest.raises(OutputError, match="does not exist"):
        save_rgb(tmp_path / "nope" / "x.png", np.stack([g, g, g]))
    p = save_rgb(tmp_path / "x.png", np.stack([g, g, g]))
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".tmp-*"))


def test_cli_rgb(tmp_path, monkeypatch):
    from astro_enhance.cli import main
    from astro_enhance.sample_data import make_sdss_sample

    w = _tiny_colorize_weights(tmp_path)
    src = tmp_path / "in.fits"
    make_sdss_sample(shape=(64, 64)).writeto(src)
    out, rgb = tmp_path / "out.fits", tmp_path / "rgb.png"
    code = main(["enhance", str(src), "-o", str(out), "--method", "unet", "--weights", str(w),
                 "--device", "cpu", "--rgb", str(rgb), "--no-progress"])
    assert code == 0 and out.exists() and rgb.exists()
    # a single-band method with --rgb: a clear error and no output file
    out2 = tmp_path / "out2.fits"
    code = main(["enhance", str(src), "-o", str(out2), "--method", "bicubic",
                 "--rgb", str(tmp_path / "rgb2.png"), "--no-progress"])
    assert code != 0 and not out2.exists() and not (tmp_path / "rgb2.png").exists()


def test_evaluate_colour_baselines():
    from astro_enhance.evaluate import evaluate_colour, summarize

    t, _ = evaluate_colour([], n=3, paint=("bicubic",), stamp_arcsec=24, keep_examples=0)
    a = t[t["method"] == "median-colour(input)"]
    b = t[t["method"] == "median-colour(bicubic)"]
    # painting with constant colours: the colour error does not depend on the image painted
    np.testing.assert_allclose(a["g-r_error"], b["g-r_error"], atol=1e-6)
    # and is minus the truth's offset from the median colour: its median over 3 scenes is 0
    assert np.nanmedian(np.asarray(a["g-r_error"])) == pytest.approx(0.0, abs=1e-6)
    s = summarize(t)
    assert "abs_g-r_error_median" in s.colnames and "psnr_z_median" in s.colnames


def test_evaluate_refuses_the_wrong_number_of_bands():
    from astro_enhance.enhancers import list_enhancers
    from astro_enhance.evaluate import evaluate, evaluate_colour

    if "colorize" not in set(list_enhancers()["name"]):
        pytest.skip("the colorize weights are not installed")
    with pytest.raises(InputError, match="evaluate --colour"):
        evaluate(["colorize"], n=1, stamp_arcsec=16, keep_examples=0)
    with pytest.raises(InputError, match="paint needs 1"):
        evaluate_colour([], n=1, paint=("colorize",), stamp_arcsec=16, keep_examples=0)
    with pytest.raises(InputError, match="methods needs 3"):
        evaluate_colour(["bicubic"], n=1, paint=(), stamp_arcsec=16, keep_examples=0)


def test_cube_diagnostics_use_the_enhancers_input_band_when_the_header_has_none(tmp_path):
    from astro_enhance import enhance_fits
    from astro_enhance.sample_data import make_sdss_sample

    w = _tiny_colorize_weights(tmp_path)
    hdu = make_sdss_sample(shape=(64, 64))
    for key in ("FILTER", "BAND", "FILTNAM"):
        hdu.header.remove(key, ignore_missing=True, remove_all=True)
    h = enhance_fits(hdu, method="unet", weights=w, device="cpu")[0].header
    hist = "".join(str(c) for c in h["HISTORY"])   # long HISTORY lines wrap over cards
    assert "refer to the r plane (the band the enhancer reads)" in hist
