"""Real-morphology pairs, the SDSS KL PSF, PSF-image degradation and the real-data bench."""

import math

import numpy as np
import pytest

from astro_enhance.exceptions import InputError
from astro_enhance.real_morphology import (REAL_SPLIT_SEEDS, galaxy_names, invert_decals_stretch,
                                           make_split, psf_effective_fwhm, split_table)


def _dr2_forward(x, scale, mnmx=(-0.5, 300.0)):
    """The Galaxy Zoo DECaLS stretch (no desaturation), as the module documents it."""
    lo, hi = np.arcsinh(mnmx[0]), np.arcsinh(mnmx[1])
    return np.clip((np.arcsinh(x / scale) - lo) / (hi - lo), 0, 1)


def test_stretch_inversion_recovers_linear_flux_to_8_bit_precision():
    rng = np.random.default_rng(3)
    flux = {"g": rng.uniform(0, 2.0, (16, 16)), "r": rng.uniform(0, 3.0, (16, 16)),
            "z": rng.uniform(0, 4.0, (16, 16))}
    planes = {"g": (2, 0.008), "r": (1, 0.014), "z": (0, 0.019)}
    rgb = np.zeros((16, 16, 3))
    for b, (p, s) in planes.items():
        rgb[:, :, p] = _dr2_forward(flux[b], s)
    rgb8 = np.round(rgb * 255).astype(np.uint8)
    back = invert_decals_stretch(rgb8)
    for b in planes:
        # rows come back bottom-up (FITS order); 8-bit steps of the asinh curve: a few %
        rel = np.abs(back[b][::-1] - flux[b]) / np.maximum(flux[b], 0.05)
        assert np.median(rel) < 0.02, b
        assert np.percentile(rel, 95) < 0.05, b


def test_stretch_inversion_rejects_grey_images():
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        invert_decals_stretch(np.zeros((8, 8)))


def test_split_is_fixed_disjoint_and_big_enough():
    t = split_table()
    names = [str(n) for n in t["name"]]
    assert len(names) == len(set(names)) == 423
    bench, val, train = galaxy_names("bench"), galaxy_names("val"), galaxy_names("train", hdf=False)
    assert len(bench) >= 60 and len(val) >= 40
    assert not (set(bench) & set(val)) and not (set(bench) & set(train))
    assert not (set(val) & set(train))
    # the committed file is what make_split gives: nothing was picked by hand
    assert dict(make_split(names)) == dict(zip(names, map(str, t["split"])))
    with pytest.raises(InputError, match="unknown split"):
        galaxy_names("test")


def test_seed_ranges_of_real_pairs_stay_inside_their_splits():
    from astro_enhance.simulate import SPLITS
    for split, first in REAL_SPLIT_SEEDS.items():
        n = len(galaxy_names(split))
        assert first in SPLITS[split] and first + 10 * n in SPLITS[split]


def test_effective_fwhm_of_a_moffat_matches_the_simulator_convention():
    from astro_enhance.real_morphology import _moffat_image
    img = _moffat_image(1.3, 3.0, 0.05, size=301)
    assert psf_effective_fwhm(img, 0.05) == pytest.approx(1.3, rel=0.01)


def test_psf_image_degrade_reaches_the_psf_width_and_keeps_flux():
    from astropy.wcs import WCS

    from astro_enhance.io import Image
    from astro_enhance.simulate import degrade, psf_image_match
    from astro_enhance.real_morphology import _moffat_image

    # a sharp star (Gaussian, 0.5") at 0.1"/px degraded with a 1.4" Moffat image
    y, x = np.mgrid[:201, :201] - 100.0
    s = 0.5 / 2.3548 / 0.1
    star = np.exp(-0.5 * (x ** 2 + y ** 2) / s ** 2)
    star = (star / star.sum() * 100.0).astype(np.float32)
    psf = _moffat_image(1.4, 3.0, 0.2, size=81)
    out = psf_image_match(star, psf, 0.2, 0.5, 0.1)
    assert out.sum() == pytest.approx(100.0, rel=1e-3)
    assert psf_effective_fwhm(out, 0.1) == pytest.approx(1.4, rel=0.03)
    # through degrade: onto the SDSS grid, flux conserved, header says what was done
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [101.0, 101.0]
    w.wcs.cd = np.diag([-0.1 / 3600, 0.1 / 3600])
    img = Image(data=star, wcs=w, unit="nanomaggy", header=None)
    sd = degrade(img, to="sdss", psf=psf, psf_scale=0.2, psf_fwhm_in=0.5, noise=False,
                 band="r")
    assert float(np.nansum(sd.data)) == pytest.approx(100.0, rel=0.01)
    assert sd.header["PSFFWHM"] == pytest.approx(1.4, rel=0.01)
    assert "PSF-image PSF match" in str(sd.header["HISTORY"])
    assert psf_effective_fwhm(np.nan_to_num(sd.data), 0.396) == pytest.approx(1.4, rel=0.08)
    with pytest.raises(InputError, match="not broader"):
        psf_image_match(star, psf, 0.2, 2.0, 0.1)


@pytest.mark.realdata
def test_sdss_kl_psf_matches_the_psfield_seeing(real_data_dir):
    from astropy.io import fits

    from astro_enhance.real_morphology import sdss_kl_psf
    path = real_data_dir / "sdss" / "psField-002583-2-0136.fits"
    widths = fits.getdata(path, 6)["psf_width"][0]
    for k, band in enumerate("ugriz"):
        psf = sdss_kl_psf(path, band, 744.0, 1024.0)
        assert psf.shape == (51, 51)
        assert psf.sum() == pytest.approx(1.0)
        assert np.unravel_index(np.argmax(psf), psf.shape) == (25, 25)
        # psField psf_width is the effective FWHM of the field's PSF
        assert psf_effective_fwhm(psf, 0.396) == pytest.approx(widths[k], rel=0.1), band
    # the PSF varies over the field
    a = sdss_kl_psf(path, "r", 0.0, 0.0)
    b = sdss_kl_psf(path, "r", 1488.0, 2047.0)
    assert np.abs(a - b).sum() > 1e-3
    with pytest.raises(InputError, match="no SDSS PSF"):
        sdss_kl_psf(path, "y", 0.0, 0.0)


@pytest.mark.realdata
def test_real_morphology_pair_is_consistent(real_data_dir):
    from astro_enhance.metrics import psnr
    from astro_enhance.real_morphology import real_morphology_pair

    name = galaxy_names("train")[5]
    pair = real_morphology_pair(name, REAL_SPLIT_SEEDS["train"] + 50, bands="g,r,i",
                                data_dir=real_data_dir)
    again = real_morphology_pair(name, REAL_SPLIT_SEEDS["train"] + 50, bands="r",
                                 data_dir=real_data_dir)
    assert np.array_equal(pair.sdss["r"].data, again.sdss["r"].data)
    g = pair.galaxy
    assert g["name"] == name and 14.0 <= g["mag_r"] <= 17.8
    assert 0.10 <= g["scale"] <= 0.25 and g["r50"] > 0.5
    for b in pair.bands:
        truth, sdss = pair.truth[b].data, pair.sdss[b].data
        # the truth holds the galaxy's flux; the SDSS image the same flux on its grid
        assert float(sdss.sum()) == pytest.approx(float(truth.sum()), rel=0.05)
        assert pair.input[b].shape == truth.shape == pair.decals[b].shape
        # the resampled SDSS image is far from the truth, the DECaLS-like one close
        assert (psnr(pair.decals[b].data, truth, sigma=pair.sigma_decals[b])
                > psnr(pair.input[b].data, truth, sigma=pair.sigma_decals[b]) + 3)
    # the galaxy keeps its own colours: g-r from the cutout, not a fixed value
    fl = {b: float(pair.truth[b].data.sum()) for b in pair.bands}
    assert fl["r"] == pytest.approx(10 ** (-0.4 * (g["mag_r"] - 22.5)), rel=0.05)
    other = real_morphology_pair(galaxy_names("train")[11], REAL_SPLIT_SEEDS["train"] + 110,
                                 bands="g,r", data_dir=real_data_dir)
    gr = -2.5 * math.log10(fl["g"] / fl["r"])
    gr2 = -2.5 * math.log10(other.truth["g"].data.sum() / other.truth["r"].data.sum())
    assert -0.5 < gr < 2.0 and -0.5 < gr2 < 2.0 and abs(gr - gr2) > 1e-3


@pytest.mark.realdata
def test_real_shards_load_beside_parametric_ones(real_data_dir, tmp_path):
    from astro_enhance.real_morphology import write_real_shards
    from astro_enhance.training.data import ShardDataset, synthetic_shard

    synthetic_shard(tmp_path, n=2, size=40, split="train", rng=np.random.default_rng(0))
    t = write_real_shards(tmp_path, split="train", per_galaxy=1, bands="r",
                          data_dir=real_data_dir, max_galaxies=2)
    assert len(t) == 2 and set(t["name"]) <= set(galaxy_names("train"))
    assert (tmp_path / "manifest_real_train.ecsv").exists()
    ds = ShardDataset(tmp_path, split="train", targets=("truth",))
    assert len(ds) == 4
    shapes = {a.shape for a in ds.x}
    assert (40, 40) in shapes and len(shapes) == 2 and min(max(shapes)) > 96
    b = ds.sample(6, 32, np.random.default_rng(1))
    assert b["input"].shape == (6, 1, 32, 32) and np.isfinite(b["truth"]).all()


@pytest.mark.realdata
def test_real_morphology_evaluate_and_decam_bench(real_data_dir):
    from astro_enhance.evaluate import (best_classical, evaluate, evaluate_decam, format_decam,
                                        summarize)

    t, _ = evaluate(["bicubic", "gaussian(sigma=1.5)"], n=2, split="val", keep_examples=0,
                    source="real-morphology", data_dir=real_data_dir)
    assert set(t["name"]) == set(galaxy_names("val")[:2])
    s = summarize(t)
    assert str(best_classical(s)["method"]) == "gaussian(sigma=1.5)"
    d, ex = evaluate_decam(["bicubic", "gaussian(sigma=2)"], frames=("testcase9",),
                           data_dir=real_data_dir)
    rows = {str(r["method"]): r for r in d}
    assert set(rows) == {"sdss-input", "bicubic", "gaussian(sigma=2)", "target+noise"}
    # the blur averages SDSS noise down; a copy of the DECam image is the ceiling
    assert rows["gaussian(sigma=2)"]["psnr"] > rows["bicubic"]["psnr"] + 3
    assert rows["target+noise"]["psnr"] > rows["gaussian(sigma=2)"]["psnr"]
    assert abs(rows["bicubic"]["flux_error"]) < 0.05
    assert "gaussian(sigma=2)*" in format_decam(d)
    with pytest.raises(InputError, match="unknown source"):
        evaluate(["bicubic"], n=1, source="hst")


def test_gaussian_blur_enhancer_options():
    from astro_enhance.enhancers import get_enhancer
    from astro_enhance.exceptions import EnhancerError

    rng = np.random.default_rng(0)
    img = rng.normal(0, 1, (48, 48)).astype(np.float32)
    out = get_enhancer("gaussian", sigma=2.0).enhance(img, noise=1.0)
    assert out.std() < 0.3 * img.std()
    assert float(out.mean()) == pytest.approx(float(img.mean()), abs=0.02)
    with pytest.raises(EnhancerError, match="positive"):
        get_enhancer("gaussian", sigma=0)
    with pytest.raises(EnhancerError, match="does not take"):
        get_enhancer("gaussian", width=2)


@pytest.mark.realdata
def test_cli_evaluate_real_morphology(real_data_dir, tmp_path, capsys):
    from astropy.table import Table

    from astro_enhance.cli import main

    code = main(["evaluate", "--source", "real-morphology", "--split", "val", "--n", "2",
                 "--methods", "bicubic,gaussian(sigma=2)", "--real-data", str(real_data_dir),
                 "--out", str(tmp_path), "--examples", "0", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "2 val real-morphology galaxies" in text
    assert "best classical method (median PSNR): gaussian(sigma=2)" in text
    assert "testcase9" in text and "testcase6" in text
    d = Table.read(tmp_path / "evaluate_decam.ecsv")
    assert set(d["frame"]) == {"testcase9", "testcase6"}
    s = Table.read(tmp_path / "evaluate_summary.ecsv")
    assert s.meta["source"] == "real-morphology"
    assert main(["evaluate", "--source", "real-morphology", "--n", "1", "--real-data",
                 str(tmp_path / "nowhere"), "--no-progress"]) != 0
    assert "real-data folder" in capsys.readouterr().err
