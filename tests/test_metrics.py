"""Tests of the image-quality metrics (astro_enhance.metrics)."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from astro_enhance import InputError
from astro_enhance.metrics import (consistency_chi2, flux_error, half_light_radius,
                                   hf_power_ratio, psnr, ssim, stretch)
from astro_enhance.simulate import simulate_pair


@pytest.fixture(scope="module")
def scene():
    return simulate_pair(20_000_021, bands="r", stamp_arcsec=32, n_stars=3)


def _chi2(p, enhanced, **kw):
    return consistency_chi2(enhanced, p.sdss["r"].data, sdss_wcs=p.sdss_wcs,
                            enhanced_wcs=p.decals_wcs, psf_sdss_fwhm=p.psf_fwhm_sdss["r"],
                            psf_out_fwhm=p.psf_fwhm_decals["r"],
                            sigma_sdss=np.sqrt(p.variance_sdss["r"]),
                            mask=p.saturated["r"], **kw)


def test_psnr_definition_and_limits(scene):
    t = scene.truth["r"].data
    s = scene.sigma_decals["r"]
    assert psnr(t, t, sigma=s) == math.inf
    noisy = scene.decals["r"].data
    yt, yo = stretch(t, s), stretch(noisy, s)
    expected = 10 * np.log10((yt.max() - yt.min()) ** 2 / np.mean((yo - yt) ** 2))
    assert psnr(noisy, t, sigma=s) == pytest.approx(expected, rel=1e-9)
    # the truth-derived data range, not a fixed 1 or 255: scaling both images changes it
    assert psnr(noisy, t, sigma=s) != pytest.approx(psnr(2 * noisy, 2 * t, sigma=s))
    # the SDSS input on the same grid is much worse than the DECaLS-like image
    assert psnr(scene.input["r"].data, t, sigma=s) < psnr(noisy, t, sigma=s) - 3
    with pytest.raises(InputError):
        psnr(t[:10], t, sigma=s)
    with pytest.raises(InputError):
        psnr(t, t, sigma=0)


def test_psnr_ignores_nan_pixels(scene):
    t = scene.truth["r"].data
    o = scene.decals["r"].data.copy()
    ref = psnr(o, t, sigma=scene.sigma_decals["r"])
    o[:3] = np.nan
    assert abs(psnr(o, t, sigma=scene.sigma_decals["r"]) - ref) < 0.5


def test_ssim_orders_images(scene):
    t = scene.truth["r"].data
    s = scene.sigma_decals["r"]
    assert ssim(t, t, sigma=s) == pytest.approx(1.0)
    good = ssim(scene.decals["r"].data, t, sigma=s)
    bad = ssim(scene.input["r"].data, t, sigma=s)
    assert 0 < bad < good < 1


def test_half_light_radius_and_flux_error():
    yy, xx = np.mgrid[:128, :128]
    r50 = 6.0
    # exponential profile: r50 = 1.678 h
    img = np.exp(-1.678 * np.hypot(xx - 64, yy - 64) / r50)
    assert half_light_radius(img, center=(64, 64)) == pytest.approx(r50, rel=0.03)
    assert flux_error(img, img) == pytest.approx(0.0, abs=1e-12)
    assert flux_error(1.1 * img, img, center=(64, 64)) == pytest.approx(0.1, rel=1e-6)
    # a blur moves light out of the 2 r50 aperture: negative error
    assert flux_error(gaussian_filter(img, 4), img, center=(64, 64)) < -0.01


def test_flux_error_on_simulated_galaxy(scene):
    t = scene.truth["r"].data
    c = (scene.galaxy["x_decals"], scene.galaxy["y_decals"])
    r50 = half_light_radius(t, center=c)
    assert r50 * 0.262 == pytest.approx(scene.galaxy["r50"], rel=0.5)
    assert abs(flux_error(scene.decals["r"].data, t, center=c)) < 0.05


def test_consistency_chi2_truth_is_consistent_and_blur_is_not(scene):
    t = scene.truth["r"].data
    c_truth = _chi2(scene, t)
    assert c_truth == pytest.approx(1.0, abs=0.15)
    c_blur = _chi2(scene, gaussian_filter(t, 2.5))
    assert c_blur > c_truth + 0.1
    c_flux = _chi2(scene, 1.5 * t)
    assert c_flux > c_truth + 0.1
    # the DECaLS-like noisy image is also consistent (its noise is small once degraded)
    assert _chi2(scene, scene.decals["r"].data) == pytest.approx(1.0, abs=0.2)


def test_consistency_chi2_with_scalar_sigma_and_no_overlap(scene):
    c = consistency_chi2(scene.truth["r"].data, scene.sdss["r"].data, sdss_wcs=scene.sdss_wcs,
                         enhanced_wcs=scene.decals_wcs, psf_sdss_fwhm=scene.psf_fwhm_sdss["r"],
                         psf_out_fwhm=scene.psf_fwhm_decals["r"],
                         sigma_sdss=scene.sigma_sdss["r"], mask=scene.saturated["r"])
    assert 0.8 < c < 1.5
    far = scene.decals_wcs.deepcopy()
    far.wcs.crval = far.wcs.crval + np.array([10.0, 0.0])
    with pytest.raises(InputError, match="no SDSS pixel"):
        consistency_chi2(scene.truth["r"].data, scene.sdss["r"].data, sdss_wcs=scene.sdss_wcs,
                         enhanced_wcs=far, psf_sdss_fwhm=1.3, psf_out_fwhm=1.2,
                         sigma_sdss=0.03)


def test_hf_power_ratio(scene):
    d = scene.decals["r"].data
    assert hf_power_ratio(d, d) == pytest.approx(1.0)
    assert hf_power_ratio(scene.truth["r"].data, d) < 0.9  # no noise, same PSF
    assert hf_power_ratio(gaussian_filter(d, 2.0), d) < 0.1
    rng = np.random.default_rng(0)
    assert hf_power_ratio(d + rng.normal(0, 3 * scene.sigma_decals["r"], d.shape), d) > 3


# -- texture metrics (issue 24) -------------------------------------------------------------

def test_noise_power_ratio_measures_error_power_per_band():
    from astro_enhance.metrics import TEXTURE_BANDS, noise_power_ratio

    rng = np.random.default_rng(4)
    truth = gaussian_filter(rng.normal(0, 5, (128, 128)), 3)
    ref = truth + rng.normal(0, 1, truth.shape)
    same = noise_power_ratio(truth + rng.normal(0, 1, truth.shape), truth, ref)
    double = noise_power_ratio(truth + rng.normal(0, 2, truth.shape), truth, ref)
    smooth = noise_power_ratio(gaussian_filter(ref, 1.5), truth, ref)
    assert same.shape == (len(TEXTURE_BANDS),)
    assert np.all(np.abs(same - 1) < 0.2) and np.all(np.abs(double - 4) < 0.8)
    assert np.all(smooth < 0.3)          # a blurred image errs far less than noise at HF
    with pytest.raises(InputError, match="no power"):
        noise_power_ratio(ref, truth, truth)


def test_anisotropy_score_flags_hatching_and_checkerboards_not_noise():
    from astro_enhance.metrics import anisotropy_score

    scores = [anisotropy_score(np.random.default_rng(s).normal(size=(160, 160)))
              for s in range(10)]
    assert max(scores) < 1.35
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(160, 160))
    yy, xx = np.mgrid[:160, :160]
    hatch = noise + 0.5 * np.cos(2 * np.pi * (0.2 * xx + 0.15 * yy))
    checker = noise + 0.5 * (-1.0) ** (xx + yy)
    assert anisotropy_score(hatch) > 3 and anisotropy_score(checker) > 3
    # rotating the image does not change an isotropic score much
    assert abs(anisotropy_score(noise.T) - anisotropy_score(noise)) < 0.2
    with pytest.raises(InputError, match="2-D"):
        anisotropy_score(np.zeros(10))


def test_two_sample_accuracy_chance_for_one_distribution_high_for_two():
    from astro_enhance.metrics import two_sample_accuracy

    rng = np.random.default_rng(2)
    a = [rng.normal(0, 1, (64, 64)) for _ in range(16)]
    b = [rng.normal(0, 1, (64, 64)) for _ in range(16)]
    c = [gaussian_filter(rng.normal(0, 1.4, (64, 64)), 0.7) for _ in range(16)]
    same, n = two_sample_accuracy(a, b, steps=200)
    # 5 held-out scenes x 4 patches x 2 kinds = 40 patches: chance within ~3 sigma
    assert n == 40 and abs(same - 0.5) < 0.25
    diff, _ = two_sample_accuracy(a, c, steps=200)
    assert diff > 0.85
    # seeded: the same call gives the same figure
    assert two_sample_accuracy(a, c, steps=200) == (diff, n)
    with pytest.raises(InputError, match="paired"):
        two_sample_accuracy(a, b[:3])
    with pytest.raises(InputError, match="at least 4"):
        two_sample_accuracy(a[:3], b[:3])
