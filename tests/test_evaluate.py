"""Tests of the enhancer benchmark (astro_enhance.evaluate and the evaluate subcommand)."""

import numpy as np
import pytest

from astro_enhance import EnhancerError, InputError, SplitError
from astro_enhance.cli import main
from astro_enhance.evaluate import evaluate, evaluate_real, format_summary, summarize
from astro_enhance.simulate import simulate_pair, write_shards


@pytest.fixture(scope="module")
def result():
    return evaluate(["bicubic"], n=2, stamp_arcsec=20, keep_examples=1)


def test_table_rows_and_reference_rows(result):
    table, examples = result
    assert list(dict.fromkeys(table["method"])) == ["bicubic", "sdss-input", "decals-like"]
    assert len(table) == 6
    assert set(table["seed"]) == {20_000_000, 20_000_001}
    bic = table[table["method"] == "bicubic"]
    ref = table[table["method"] == "sdss-input"]
    # bicubic is the pipeline's resampling only: identical to the SDSS input on the grid
    assert np.allclose(bic["psnr"], ref["psnr"])
    assert (bic["seconds"] > 0).all()
    dec = table[table["method"] == "decals-like"]
    assert (dec["psnr"] > bic["psnr"]).all()
    assert np.allclose(dec["hf_power"], 1.0)
    assert np.all(np.abs(dec["chi2"] - 1) < 0.2)
    # an output carrying the SDSS noise itself reproduces that noise: chi2 well below 1
    assert (ref["chi2"] < 0.8).all()
    assert len(examples) == 1 and "bicubic" in examples[0]["outputs"]


def test_summary_median_and_p90(result):
    table, _ = result
    s = summarize(table)
    row = s[s["method"] == "bicubic"][0]
    v = np.asarray(table[table["method"] == "bicubic"]["psnr"])
    assert row["psnr_median"] == pytest.approx(np.median(v))
    assert row["psnr_p90"] == pytest.approx(np.percentile(v, 90))
    assert "abs_flux_error_median" in s.colnames and "seconds_p90" in s.colnames
    text = format_summary(s)
    assert text.splitlines()[0].split()[:3] == ["method", "n", "psnr"]
    assert len(text.splitlines()) == 4


def test_errors():
    with pytest.raises(SplitError):
        evaluate(["bicubic"], n=1, split="bench", start=3)
    with pytest.raises(EnhancerError):
        evaluate(["no-such-method"], n=1)


def test_shards_give_the_same_images(tmp_path, result):
    write_shards(tmp_path, n=1, split="bench", bands="r", stamp_arcsec=20)
    t, _ = evaluate(["bicubic"], n=1, shards=tmp_path, keep_examples=0, references=False)
    ref = result[0]
    ref = ref[(ref["method"] == "bicubic") & (ref["seed"] == 20_000_000)][0]
    assert t["psnr"][0] == pytest.approx(ref["psnr"], rel=1e-6)
    assert t["ssim"][0] == pytest.approx(ref["ssim"], rel=1e-6)
    assert t["chi2"][0] == pytest.approx(ref["chi2"], rel=0.2)  # approximate variance map


def test_cli_writes_tables_and_figure(tmp_path, capsys):
    args = ["evaluate", "--methods", "bicubic", "--n", "1", "--stamp-arcsec", "16",
            "--out", str(tmp_path), "--no-progress", "--examples", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "bicubic" in out and "decals-like" in out
    for name in ("evaluate_images.ecsv", "evaluate_summary.ecsv", "evaluate.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert main(args) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err


def test_real_pair_from_fits(tmp_path):
    from astro_enhance.io import image_to_hdu, write_fits

    p = simulate_pair(20_000_005, bands="r", stamp_arcsec=24)
    sf, df = tmp_path / "sdss.fits", tmp_path / "decals.fits"
    write_fits(image_to_hdu(p.sdss["r"]), sf)
    # a "DECaLS" image with another calibration and a background offset
    dec = p.decals["r"]
    dec2 = type(dec)(data=(2.0 * dec.data + 0.05).astype(np.float32), wcs=dec.wcs,
                     unit=dec.unit, header=dec.header)
    write_fits(image_to_hdu(dec2), df)
    t = evaluate_real(sf, df, ["bicubic"])
    assert list(t["method"]) == ["bicubic", "sdss-input"]
    # scale + offset matching finds the calibration difference
    assert t["scale"][0] == pytest.approx(2.0, rel=0.3)
    assert np.isfinite(t["psnr"]).all() and (t["ssim"] > 0).all()
    assert t["psnr"][0] == pytest.approx(t["psnr"][1], abs=1e-6)


@pytest.mark.realdata
def test_evaluate_real_on_degraded_decam_galaxy(tmp_path, capsys):
    """Issue 4, acceptance 5: ``evaluate --real`` on the real DECam galaxy of testcase9,
    degraded to SDSS with `degrade`, through the command line."""
    from pathlib import Path

    from astro_enhance.cli import main
    from astro_enhance.io import image_to_hdu, write_fits
    from astro_enhance.simulate import decam_to_nanomaggies, degrade

    real = Path(__file__).parents[1].parent / "shared" / "data" / "real"
    f = real / "decam" / "testcase9" / "images" / "c4d_141029_043420_ooi_r_ls9.N26.fits"
    if not f.exists():
        pytest.skip(f"real DECam test data absent ({f})")
    decam = decam_to_nanomaggies(f, band="r")
    sdss = degrade(decam, to="sdss", band="r", rng=7)
    sf, df = tmp_path / "sdss_from_decam.fits", tmp_path / "decam_r.fits"
    write_fits(image_to_hdu(sdss), sf)
    write_fits(image_to_hdu(decam), df)
    out = tmp_path / "eval_real"
    rc = main(["evaluate", "--real", str(sf), str(df), "--methods", "bicubic,bilateral",
               "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "bicubic" in text and "bilateral" in text and "sdss-input" in text
    tables = list(out.glob("*.ecsv"))
    assert tables, "evaluate --real wrote no table"
    from astropy.table import Table

    t = Table.read(tables[0])
    assert set(["bicubic", "bilateral", "sdss-input"]) <= set(t["method"])
    assert np.isfinite(t["psnr"]).all()
    # the degraded image really is the DECam galaxy: matched output correlates with it
    assert (t["ssim"] > 0).all()


def test_parse_methods_specs_and_errors():
    from astro_enhance.evaluate import parse_methods

    got = parse_methods("bicubic, richardson-lucy(iterations=5, damping=10.0),"
                        "bilateral(sigma_color=8,sigma_space=8)")
    assert got[0] == ("bicubic", "bicubic", {})
    assert got[1] == ("richardson-lucy(iterations=5,damping=10.0)", "richardson-lucy",
                      {"iterations": 5, "damping": 10.0})
    assert got[2][2] == {"sigma_color": 8, "sigma_space": 8}
    assert parse_methods(["unet"]) == [("unet", "unet", {})]
    for bad in ("", "bilateral(sigma_color=8", "bilateral(8)", "bilateral)x", "(a=1)"):
        with pytest.raises(InputError):
            parse_methods(bad)


def test_evaluate_with_options_labels_rows_and_uses_options():
    t, _ = evaluate("bilateral, bilateral(sigma_color=8, sigma_space=8)", n=1,
                    stamp_arcsec=16, keep_examples=0, references=False)
    labels = list(dict.fromkeys(map(str, t["method"])))
    assert labels == ["bilateral", "bilateral(sigma_color=8,sigma_space=8)"]
    # the options were applied: heavier smoothing gives a different image, hence PSNR
    assert t["psnr"][0] != t["psnr"][1]
    with pytest.raises(EnhancerError, match="option"):
        evaluate("bilateral(nonsense=1)", n=1, stamp_arcsec=16, keep_examples=0)


def test_texture_columns_noise_scale_and_two_sample(tmp_path):
    t1, _ = evaluate(["bicubic"], n=4, stamp_arcsec=24, keep_examples=0, two_sample=True)
    t2, _ = evaluate(["bicubic"], n=4, stamp_arcsec=24, keep_examples=0, noise_scale=2.0)
    dec = t1[t1["method"] == "decals-like"]
    # the DECaLS-like image errs exactly like DECaLS noise: ratio 1
    assert np.allclose(dec["noise_power"], 1.0) and (dec["anisotropy"] < 2).all()
    b1, b2 = (t[t["method"] == "bicubic"] for t in (t1, t2))
    # a noisier input: the resampled SDSS image errs ~4 times more at high frequency
    ratio = np.median(np.asarray(b2["noise_power"]) / np.asarray(b1["noise_power"]))
    assert 3.0 < ratio < 5.0
    assert t2.meta["noise_scale"] == 2.0 and "two_sample" not in t2.meta
    ts = t1.meta["two_sample"]["bicubic"]
    assert ts["n_test"] > 0 and 0.0 <= ts["accuracy"] <= 1.0
    with pytest.raises(InputError, match="noise_scale"):
        evaluate(["bicubic"], n=1, shards=tmp_path, noise_scale=2.0)


def test_cli_noise_scale_and_two_sample(capsys):
    assert main(["evaluate", "--methods", "bicubic", "--n", "4", "--stamp-arcsec", "24",
                 "--noise-scale", "0.5", "--two-sample", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "noise_power" in out and "two-sample test" in out and "bicubic" in out


def test_textured_methods_draw_noise_at_the_scene_depth():
    """gan-like methods are compared with the DECaLS-like image at that image's depth."""
    spec = "unet(texture='decals')"
    scene, _ = evaluate([spec], n=2, stamp_arcsec=24, keep_examples=1, references=False)
    nominal, _ = evaluate([spec], n=2, stamp_arcsec=24, keep_examples=0, references=False,
                          texture_depth="nominal")
    given, _ = evaluate([spec.replace(")", ", texture_sigma=0.05)")], n=2, stamp_arcsec=24,
                        keep_examples=0, references=False)
    assert not np.allclose(scene["noise_power"], nominal["noise_power"])
    # a texture 10 times the DECaLS noise: its error power is ~100 times DECaLS's
    assert (given["noise_power"] > 30).all() and (scene["noise_power"] < 10).all()
    with pytest.raises(InputError, match="texture_depth"):
        evaluate(["bicubic"], n=1, texture_depth="deep")
