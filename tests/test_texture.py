"""DECaLS-depth texture of the generative enhancers (issue 24)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astro_enhance import EnhancerError, enhance_fits  # noqa: E402
from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer, get_enhancer  # noqa: E402
from astro_enhance.enhancers.texture import (DEFAULT_NOISE_RATIO, add_texture,  # noqa: E402
                                             decals_noise_model)
from astro_enhance.io import image_to_hdu  # noqa: E402
from astro_enhance.simulate import simulate_pair  # noqa: E402
from astro_enhance.surveys import SURVEYS  # noqa: E402


def _identity(**opts):
    net = torch.nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    return TorchEnhancer(net, EnhancerInfo("ident", "neural"), device="cpu", **opts)


def test_noise_model_follows_the_survey_table_and_depth():
    s, k = decals_noise_model("r")
    assert s == SURVEYS["decals"].noise["r"] and k > 0
    s2, k2 = decals_noise_model("r", sigma=2 * s)
    assert s2 == 2 * s and k2 == pytest.approx(4 * k)     # same sky: k scales with sigma^2
    with pytest.raises(EnhancerError, match="band 'u'"):
        decals_noise_model("u")
    with pytest.raises(EnhancerError, match="positive"):
        decals_noise_model("r", sigma=0)


def test_add_texture_variance_has_sky_and_source_terms():
    img = np.zeros((2, 300, 300), np.float32)
    img[1] = 100.0
    img[0, :2, :2] = np.nan
    add_texture(img, sigma=[0.5, 0.5], k=[0.0, 0.01], rng=np.random.default_rng(1))
    assert np.isnan(img[0, :2, :2]).all()
    assert np.nanstd(img[0]) == pytest.approx(0.5, rel=0.02)
    assert np.std(img[1]) == pytest.approx(np.sqrt(0.25 + 1.0), rel=0.02)


def test_enhancer_texture_in_nanomaggies_follows_the_band_depth_not_the_input_noise():
    rng = np.random.default_rng(0)
    flat = np.zeros((256, 256), np.float32)
    enh = _identity(texture="decals").set_target(band="r", unit="nanomaggy")
    outs = [enh.enhance(flat + rng.normal(0, s, flat.shape).astype(np.float32), noise=s,
                        rng=1) for s in (0.02, 0.08)]
    base = [_identity().enhance(flat + rng.normal(0, s, flat.shape).astype(np.float32),
                                noise=s) for s in (0.02, 0.08)]
    sig, _ = decals_noise_model("r")
    for out, s in zip(outs, (0.02, 0.08)):
        # identity network: output = input + texture, whatever the input noise
        assert np.var(out) == pytest.approx(s ** 2 + sig ** 2, rel=0.05)
    assert enh.texture_used["sigma"] == [sig] and "r-band" in enh.texture_used["how"]
    assert np.var(base[0]) == pytest.approx(0.02 ** 2, rel=0.05)


def test_texture_without_unit_falls_back_to_the_measured_noise():
    enh = _identity(texture="decals")
    flat = np.zeros((256, 256), np.float32)
    out = enh.enhance(flat, noise=0.1, rng=0)
    assert np.std(out) == pytest.approx(DEFAULT_NOISE_RATIO * 0.1, rel=0.05)
    assert "unknown" in enh.texture_used["how"]
    given = _identity(texture="decals", texture_sigma=0.3).enhance(flat, noise=0.1, rng=0)
    assert np.std(given) == pytest.approx(0.3, rel=0.05)


def test_texture_is_seeded_by_rng():
    enh = _identity(texture="decals")
    img = np.ones((64, 64), np.float32)
    a, b = enh.enhance(img, noise=1.0, rng=3), enh.enhance(img, noise=1.0, rng=3)
    c = enh.enhance(img, noise=1.0, rng=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("opts,match", [({"texture": "hsc"}, "texture must be"),
                                        ({"texture": "decals", "texture_sigma": -1},
                                         "texture_sigma")])
def test_bad_texture_options_are_clear_errors(opts, match):
    with pytest.raises(EnhancerError, match=match):
        _identity(**opts)


def test_pipeline_records_the_texture_and_follows_the_target_depth():
    pair = simulate_pair(20000002, bands="r", stamp_arcsec=24)
    hdu = image_to_hdu(pair.sdss["r"])
    plain = enhance_fits(hdu, method="unet", rng=5)
    tex = enhance_fits(hdu, method="unet", rng=5, options={"texture": "decals"})
    h = tex[0].header
    sig, _ = decals_noise_model("r")
    assert h["AE_TEXSG"] == pytest.approx(sig, rel=1e-3) and "AE_TEXSG" not in plain[0].header
    assert any("noise realisation" in str(c) for c in h["HISTORY"])
    # on the sky the added texture has the DECaLS sky sigma
    diff = (tex[0].data - plain[0].data)
    sky = pair.truth["r"].data < 0.2 * sig
    assert np.std(diff[sky]) == pytest.approx(sig, rel=0.1)
    # the input is not changed
    assert np.array_equal(hdu.data, pair.sdss["r"].data)



def test_shipped_generative_enhancers_add_texture_and_unet_does_not():
    assert get_enhancer("unet", device="cpu").texture is None
    for name in ("gan", "srgan"):
        assert get_enhancer(name, device="cpu").texture == "decals"
    assert get_enhancer("gan", device="cpu", texture=None).texture is None
