"""The ``astro-enhance demo`` command and its built-in samples (`astro_enhance.sample_data`).

Sockets are disabled in the test run (pytest-socket), so these tests also show that the
Hubble Deep Field sample comes from scikit-image's local file, with no download.
"""

import numpy as np
import pytest
from astropy.io import fits

from astro_enhance.cli import main
from astro_enhance.io import read_image
from astro_enhance.normalize import estimate_noise
from astro_enhance.sample_data import HDFSample, make_hdf_sample, make_sdss_sample
from astro_enhance.surveys import get_survey


@pytest.fixture(scope="module")
def hdf():
    return make_hdf_sample(seed=1)


def test_hdf_sample_is_an_sdss_decals_pair(hdf):
    assert isinstance(hdf, HDFSample)
    sdss = read_image(hdf.sdss)
    assert sdss.unit is not None and sdss.header["BUNIT"] == "nanomaggy"
    scale = np.sqrt(abs(np.linalg.det(sdss.wcs.pixel_scale_matrix))) * 3600
    assert scale == pytest.approx(0.396, rel=1e-6)
    tscale = np.sqrt(abs(np.linalg.det(hdf.truth.wcs.pixel_scale_matrix))) * 3600
    assert tscale == pytest.approx(0.262, rel=1e-6)
    # The truth is on the very grid the pipeline puts the SDSS image on.
    from astro_enhance.resample import target_wcs

    w, shape = target_wcs(sdss, "decals")
    assert tuple(shape) == hdf.truth.shape
    assert np.allclose(w.wcs.crval, hdf.truth.wcs.wcs.crval)
    # Noise at the SDSS level of the band; the truth is noiseless and non-negative.
    assert estimate_noise(hdf.sdss.data) == pytest.approx(get_survey("sdss").noise["r"],
                                                          rel=0.15)
    assert hdf.truth.data.min() >= 0
    # Flux is conserved by the degradation (noise averages out over ~28000 pixels).
    total_truth = float(hdf.truth_with_stars.data.sum())
    assert float(hdf.sdss.data.sum()) == pytest.approx(total_truth, rel=0.03)
    # Stars were added to the SDSS image but not to the truth.
    assert len(hdf.stars) == 3
    diff = hdf.truth_with_stars.data - hdf.truth.data
    for x, y in zip(hdf.stars["x"], hdf.stars["y"]):
        assert diff[int(round(y)), int(round(x))] > 10 * hdf.sigma_decals


def test_hdf_sample_is_deterministic(hdf):
    again = make_hdf_sample(seed=1)
    assert np.array_equal(again.sdss.data, hdf.sdss.data)
    assert np.array_equal(again.truth.data, hdf.truth.data)
    other = make_hdf_sample(seed=2)
    assert not np.array_equal(other.sdss.data, hdf.sdss.data)
    assert np.array_equal(other.truth.data, hdf.truth.data)  # stars and noise only


def test_hdf_sample_has_real_morphology(hdf):
    # The spiral is resolved and asymmetric (not a smooth analytic profile): its 180-degree
    # rotation differs from it by a sizeable fraction of its flux.
    cx, cy = (int(round(v)) for v in hdf.center)
    r = 30
    stamp = hdf.truth.data[cy - r:cy + r + 1, cx - r:cx + r + 1].astype(float)
    asym = np.abs(stamp - stamp[::-1, ::-1]).sum() / (2 * stamp.sum())
    assert asym > 0.05


def test_demo_two_scenes(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--output", str(out), "--method", "bicubic"])
    text = capsys.readouterr().out
    assert rc == 0
    for name in ("demo_sdss.fits", "demo_enhanced.fits", "demo_truth.fits", "demo_decals.fits",
                 "demo_hdf_sdss.fits", "demo_hdf_enhanced.fits", "demo_hdf_truth.fits",
                 "demo_comparison.png"):
        assert (out / name).stat().st_size > 0
        assert str(out / name) in text
    assert "Hubble Deep Field" in text and "simulated" in text
    assert text.count("PSNR [dB]") == 2
    for prefix in ("demo", "demo_hdf"):
        with fits.open(out / f"{prefix}_enhanced.fits") as hdul:
            assert hdul[0].header["AE_METH"] == "bicubic"
            assert "MASK" in hdul  # star removal ran
            enhanced = hdul[0].data
        truth = fits.getdata(out / f"{prefix}_truth.fits")
        assert enhanced.shape == truth.shape
    # The PNG has two rows of panels: taller than wide / 4 * 2.
    from matplotlib.image import imread

    img = imread(out / "demo_comparison.png")
    assert img.shape[0] > 0.4 * img.shape[1]
    # Nothing is left over (no temporary files).
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_demo_refuses_to_overwrite_and_leaves_files(tmp_path):
    from astro_enhance.exceptions import OutputExistsError
    from astro_enhance.cli import build_parser
    from astro_enhance.commands import demo

    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo_hdf_truth.fits").write_bytes(b"precious")
    args = build_parser().parse_args(["demo", "-o", str(out), "--method", "bicubic"])
    with pytest.raises(OutputExistsError, match="demo_hdf_truth.fits exists"):
        demo.run(args)
    assert (out / "demo_hdf_truth.fits").read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["demo_hdf_truth.fits"]


def test_demo_checks_seed_before_writing(tmp_path):
    from astro_enhance.cli import build_parser
    from astro_enhance.commands import demo
    from astro_enhance.exceptions import SplitError

    args = build_parser().parse_args(["demo", "-o", str(tmp_path / "d"), "--method",
                                      "bicubic", "--seed", "5"])
    with pytest.raises(SplitError):
        demo.run(args)
    assert not (tmp_path / "d").exists()


def test_sdss_sample_unchanged():
    # make_sdss_sample is used by docs and tests: same arguments, same bytes.
    a = make_sdss_sample(shape=(32, 32), seed=4)
    b = make_sdss_sample(shape=(32, 32), seed=4)
    assert np.array_equal(a.data, b.data)
