"""The domain warning: an input unlike the training scenes is named, not silently enhanced."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astro_enhance import DomainWarning, enhance_fits
from astro_enhance.domain import TRAINING_DOMAIN, check_domain
from astro_enhance.io import read_image
from astro_enhance.sample_data import make_sdss_sample

REAL = Path(__file__).parents[1].parent / "shared" / "data" / "real"


def _sample(**kw):
    return read_image(make_sdss_sample(**kw))


def test_sample_in_domain():
    for band in ("g", "r", "i"):
        assert check_domain(_sample(band=band, seed=1)) == []


def test_noise_level_named():
    img = _sample()
    img.data = img.data * 4.0
    (reason,) = check_domain(img)
    assert "noise level 4.0" in reason and "shallower" in reason
    img = _sample()
    # a 'coadd' five times deeper than SDSS: noise one fifth of the nominal
    img.data = (img.data / 5.0).astype(np.float32)
    (reason,) = check_domain(img)
    assert "noise level 0.2" in reason and "deeper" in reason


def test_pixel_scale_and_band_named():
    img = _sample()
    img.header["FILTER"] = "z"
    reasons = check_domain(img)
    assert "band 'z'" in reasons[0]
    # and its noise is compared with SDSS z's (much larger): an r-band noise level is 'deep'
    assert any("nominal SDSS z noise" in r for r in reasons[1:]), reasons
    hdu = make_sdss_sample()
    hdu.header["CDELT1"] = hdu.header.get("CDELT1", -0.396 / 3600) * 0.262 / 0.396
    hdu.header["CDELT2"] = hdu.header.get("CDELT2", 0.396 / 3600) * 0.262 / 0.396
    for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
        if k in hdu.header:
            hdu.header[k] *= 0.262 / 0.396
    reasons = check_domain(hdu)
    assert any("pixel scale 0.262" in r for r in reasons), reasons


def test_crowded_field_named():
    img = _sample()
    rng = np.random.default_rng(7)
    sigma = 0.035
    # 40% of the pixels bright: a crowded field
    bright = rng.random(img.data.shape) < 0.4
    img.data = np.where(bright, img.data + 50 * sigma, img.data).astype(np.float32)
    reasons = check_domain(img)
    assert any("crowded" in r for r in reasons), reasons


def test_info_overrides_bands():
    from astro_enhance.enhancers import EnhancerInfo

    info = EnhancerInfo("x", "neural", 1, 1, bands=("g",))
    assert "band 'r'" in check_domain(_sample(), info=info)[0]
    assert TRAINING_DOMAIN["bands"] == ("g", "r", "i")


def test_pipeline_warns_and_records():
    from astro_enhance.enhancers import list_enhancers

    if "unet" not in set(list_enhancers()["name"]):
        pytest.fail("the unet weights should ship with the package")
    hdu = make_sdss_sample(shape=(96, 96))
    hdu.data = hdu.data * 4.0
    with pytest.warns(DomainWarning, match=r"noise level 4\."):
        out = enhance_fits(hdu, method="unet", device="cpu")
    assert out[0].header["AE_DOMN"] == 1
    assert "Domain warning: noise level" in str(out[0].header["HISTORY"])
    # a classical method makes no claim learnt from data: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        out = enhance_fits(hdu, method="bicubic")
    assert out[0].header["AE_DOMN"] == 0
    # the input was not changed
    assert np.allclose(hdu.data, make_sdss_sample(shape=(96, 96)).data * 4.0)


@pytest.mark.realdata
def test_real_m2_frame_is_flagged_crowded():
    path = REAL / "sdss" / "frame-r-002583-2-0136.fits.bz2"
    if not path.exists():
        pytest.skip("real SDSS frame absent (../shared/data/real/sdss)")
    img = read_image(path)
    reasons = check_domain(img)
    # the globular cluster M2: the noise is SDSS's, the crowding is not a galaxy field's
    assert len(reasons) == 1 and "crowded" in reasons[0], reasons
    assert not any("noise" in r for r in reasons)
    with fits.open(path) as hl:
        assert hl[0].header["FILTER"].strip() == "r"
