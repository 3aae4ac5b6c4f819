"""Tests of astro_enhance.stars.deblend: a star on or beside a galaxy's core, fitted in the
light's asymmetry about the galaxy's centre, and its use by `remove_stars`.

Synthetic scenes (seeded): a symmetric galaxy (exponential disk plus a compact bulge) and a
Moffat star placed within about one FWHM of the core, where star and core make one peak.
"""

import doctest
import math
import warnings

import numpy as np
import pytest

import astro_enhance.stars.deblend as deblend
from astro_enhance.stars import psf_from_fwhm, remove_stars
from astro_enhance.stars.deblend import fit_offcentre_star, offcentre_flux

FWHM = 2.6
PSF = psf_from_fwhm(FWHM)


def _galaxy(shape, x0, y0, flux, r_e, q=0.75, bulge=0.0, bulge_sigma=1.6):
    """Exponential disk plus a Gaussian bulge, seen through the PSF."""
    from scipy import ndimage

    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot(xx - x0, (yy - y0) / q)
    disk = np.exp(-r * 1.678 / r_e)
    img = flux * disk / disk.sum()
    if bulge:
        b = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * bulge_sigma ** 2))
        img += bulge * b / b.sum()
    return ndimage.convolve(img, PSF.stamp(15), mode="constant")


def _star(shape, x, y, flux):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return flux * PSF.evaluate(xx - x, yy - y)


def test_doctests():
    res = doctest.testmod(deblend, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 2 and res.failed == 0


@pytest.mark.parametrize("offset", [1.0, 1.5, 2.5, 5.0])
def test_star_near_the_core_is_measured(offset):
    shape = (61, 61)
    gal = _galaxy(shape, 30.2, 29.7, 400.0, 8.0, bulge=150.0)
    ang = 0.7
    sx, sy = 30.2 + offset * math.cos(ang), 29.7 + offset * math.sin(ang)
    rng = np.random.default_rng(3)
    img = gal + _star(shape, sx, sy, 60.0) + rng.normal(0, 0.05, shape)
    fit = fit_offcentre_star(img, (30.0, 30.0), PSF, rms=0.05, starts=[(30.0, 30.0)])
    assert math.hypot(fit["x"] - sx, fit["y"] - sy) < 0.3
    assert math.hypot(fit["cx"] - 30.2, fit["cy"] - 29.7) < 0.3
    assert abs(fit["flux"] / 60.0 - 1) < 0.08
    assert fit["flux"] > 20 * fit["flux_err"] and fit["dchi2_wide"] > 0
    assert fit["dchi2_resolved"] > 0  # a star: the PSF fits better than a wider template
    # the other bands: the flux at fixed positions
    f, e = offcentre_flux(img, (fit["cx"], fit["cy"]), (fit["x"], fit["y"]), PSF, rms=0.05)
    assert abs(f / 60.0 - 1) < 0.08 and e > 0


def test_a_resolved_asymmetry_fits_the_wider_template_better():
    # a core 1.5 px off the centre of the outer disk, 1.5 times wider than the PSF: the
    # asymmetry it leaves is fitted, but better by the template 1.3 times wider
    shape = (61, 61)
    rng = np.random.default_rng(6)
    img = _galaxy(shape, 30.0, 30.0, 400.0, 8.0) + \
        _galaxy(shape, 31.2, 30.9, 0.0, 8.0, bulge=80.0, bulge_sigma=1.2) + \
        rng.normal(0, 0.05, shape)
    fit = fit_offcentre_star(img, (30.0, 30.0), PSF, rms=0.05, starts=[(31.0, 31.0)])
    assert fit["flux"] > 20 * fit["flux_err"]
    assert fit["dchi2_resolved"] < -9


def test_the_resolved_template_is_fitted_only_near_the_centre():
    # resolved_within (pixels from the fitted centre) skips the third fit farther out
    shape = (61, 61)
    rng = np.random.default_rng(3)
    img = _galaxy(shape, 30.2, 29.7, 400.0, 8.0, bulge=150.0) + \
        _star(shape, 32.6, 31.6, 60.0) + rng.normal(0, 0.05, shape)
    near = fit_offcentre_star(img, (30.0, 30.0), PSF, rms=0.05, resolved_within=5.0)
    far = fit_offcentre_star(img, (30.0, 30.0), PSF, rms=0.05, resolved_within=2.0)
    assert near["dchi2_resolved"] > 0 and math.isnan(far["dchi2_resolved"])
    assert far["flux"] == near["flux"] and far["dchi2_wide"] == near["dchi2_wide"]


def test_symmetric_galaxy_has_no_star():
    shape = (61, 61)
    rng = np.random.default_rng(4)
    img = _galaxy(shape, 30.4, 30.1, 400.0, 8.0, bulge=150.0) + rng.normal(0, 0.05, shape)
    fit = fit_offcentre_star(img, (30.0, 30.0), PSF, rms=0.05)
    assert fit["flux"] < 10 * fit["flux_err"] or fit["dchi2"] < 100


def test_a_known_neighbour_is_fitted_with_the_new_star():
    shape = (61, 61)
    rng = np.random.default_rng(5)
    img = _galaxy(shape, 30.0, 30.0, 400.0, 8.0, bulge=150.0) + \
        _star(shape, 31.5, 30.5, 40.0) + _star(shape, 25.0, 33.0, 300.0) + \
        rng.normal(0, 0.05, shape)
    fit = fit_offcentre_star(img, (30.0, 30.0), PSF, rms=0.05, known=[(25.2, 32.9)])
    assert math.hypot(fit["x"] - 31.5, fit["y"] - 30.5) < 0.3
    assert abs(fit["flux"] / 40.0 - 1) < 0.1
    assert abs(fit["known"][0][2] / 300.0 - 1) < 0.05


def test_too_small_window_gives_none():
    img = np.zeros((5, 5))
    assert fit_offcentre_star(img, (2.0, 2.0), PSF, rms=1.0) is None


@pytest.mark.parametrize("case", [(150.0, 1.5, 80.0, 1.4, -0.4), (250.0, 1.0, 80.0, 0.6, 1.3),
                                  (200.0, 1.0, 60.0, 1.2, 0.7), None])
def test_remove_stars_takes_the_star_off_the_core_and_keeps_the_core(case):
    # a star about 1.4 px (half a FWHM) from the core: one peak, which the candidate finder
    # and the template matching take for the core (without the asymmetry fit, all three
    # stars are left in); the asymmetry fit finds the star in it
    shape = (96, 96)
    bulge, bulge_sigma, sf, dx, dy = case if case is not None else (200.0, 1.0, 0, 0, 0)
    gal = _galaxy(shape, 48.3, 47.8, 300.0, 8.0, bulge=bulge, bulge_sigma=bulge_sigma)
    star = (48.3 + dx, 47.8 + dy, sf)
    rng = np.random.default_rng(6)
    noise = rng.normal(0, 0.05, shape)
    img = gal + noise + (_star(shape, *star) if sf else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = remove_stars(img.astype(np.float32), fwhm=FWHM, rng=0)
    cat = res.catalog
    is_star = np.asarray(cat["decision"]) == "star"
    d_core = np.hypot(cat["x"] - 48.3, cat["y"] - 47.8)
    if sf:
        d_star = np.hypot(cat["x"] - star[0], cat["y"] - star[1])
        assert np.any(is_star & (d_star < 0.5))
        # the core is not removed
        assert not np.any(is_star & (d_core < 1.0) & (d_star > 1.0))
        # what is left is the galaxy: its flux within 2 effective radii kept to 4% of the
        # star's flux, and its core not inpainted
        yy, xx = np.ogrid[0:96, 0:96]
        ap = (xx - 48.3) ** 2 + (yy - 47.8) ** 2 <= 16 ** 2
        left = float(np.sum((res.clean - gal - noise)[ap]))
        assert abs(left) < 0.04 * star[2]
        assert not res.inpainted[48, 48]
    else:
        assert not np.any(is_star & (d_core < 3 * FWHM))
        assert np.allclose(res.clean, img, atol=1e-4)


@pytest.mark.parametrize("kind", ["star", "blob"])
def test_faint_sharp_star_beside_the_core_is_taken_a_wide_blob_is_not(kind):
    # 10-20 sigma in the asymmetry fit: a star (which the PSF fits far better than a wider
    # template) is removed; an extended blob of similar significance (a knot cluster) is not
    from scipy import ndimage

    shape = (96, 96)
    gal = _galaxy(shape, 48.3, 47.8, 300.0, 8.0, bulge=200.0, bulge_sigma=1.0)
    x, y = 51.3, 48.8
    if kind == "star":
        add = _star(shape, x, y, 8.0)  # ~13 sigma in the asymmetry fit
    else:
        yy, xx = np.mgrid[0:96, 0:96]
        b = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.6 ** 2))
        add = ndimage.convolve(16.0 * b / b.sum(), PSF.stamp(15), mode="constant")  # ~16 sigma
    noise = np.random.default_rng(6).normal(0, 0.05, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = remove_stars((gal + noise + add).astype(np.float32), fwhm=FWHM, rng=0)
    cat = res.catalog
    is_star = np.asarray(cat["decision"]) == "star"
    near = np.hypot(cat["x"] - x, cat["y"] - y) < 1.0
    assert bool(np.any(is_star & near)) is (kind == "star")
    # the core stays whatever happens beside it
    assert not np.any(is_star & (np.hypot(cat["x"] - 48.3, cat["y"] - 47.8) < 1.0))
