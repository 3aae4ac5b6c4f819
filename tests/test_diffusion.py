"""SR3-style diffusion: schedule, denoiser, training kind, sampling enhancer (issue 6).

All models here are tiny and seeded; nothing depends on the shipped sr3 weights.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astro_enhance import EnhancerError, enhance_fits  # noqa: E402
from astro_enhance.enhancers import EnhancerInfo, register_enhancer, unregister_enhancer  # noqa: E402,E501
from astro_enhance.enhancers.diffusion import DiffusionEnhancer  # noqa: E402
from astro_enhance.models import build_model  # noqa: E402
from astro_enhance.models.diffusion import (DiffusionSampler, SR3Denoiser, gamma_at,  # noqa: E402
                                            noise_embedding, sample_gamma, sampling_gammas)
from astro_enhance.sample_data import make_sdss_sample  # noqa: E402
from astro_enhance.weights import save_weights  # noqa: E402

TINY = {"width": 8, "depth": 2, "emb_dim": 16, "unet": {"width": 4, "depth": 2}}


def _tiny(seed=0, **cfg):
    torch.manual_seed(seed)
    net = SR3Denoiser(**{**TINY, **cfg})
    # the head starts at zero (the sample would be the U-Net's output exactly); give it
    # weights so that samples depend on the noise
    torch.nn.init.normal_(net.head.weight, std=0.1)
    return net.eval()


def _enhancer(net=None, **opts):
    info = EnhancerInfo("sr3-tiny", "diffusion", size_multiple=4, tile_size=64, overlap=16)
    return DiffusionEnhancer(net or _tiny(), info, device="cpu", **{"steps": 4, **opts})


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).normal(0, 1, (48, 40)).astype(np.float32)


# -- schedule and embedding ---------------------------------------------------------------

def test_schedule_shapes_and_monotonic():
    for steps in (1, 2, 10, 1000, 2000):
        g = sampling_gammas(steps)
        assert g.shape == (steps + 1,)
        assert float(g[0]) == 1.0
        assert bool((g[1:] < g[:-1]).all())
        np.testing.assert_allclose(float(g[-1]), float(gamma_at(1.0)))
    # the continuous schedule is DDPM's linear-beta product to first order in beta
    # (exp(-sum beta) vs prod(1 - beta): 7% apart at the very end, 4.3e-5 vs 4.0e-5)
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(float(gamma_at(1.0)), np.prod(1 - betas), rtol=0.1)
    np.testing.assert_allclose(float(gamma_at(0.5)), np.prod(1 - betas[:500]), rtol=0.02)


def test_training_gammas_piecewise_uniform():
    gen = torch.Generator().manual_seed(0)
    g = sample_gamma(20000, generator=gen, T=4).double()
    edges = gamma_at(torch.arange(5, dtype=torch.float64) / 4, T=4)
    # each of the 4 intervals gets about a quarter of the draws, uniform inside it
    counts = [int(((g <= edges[k]) & (g > edges[k + 1])).sum()) for k in range(4)]
    assert min(counts) > 4500 and max(counts) < 5500, counts
    assert float(g.min()) >= float(edges[-1]) and float(g.max()) <= 1.0


def test_noise_embedding_shapes():
    e = noise_embedding(torch.tensor([1e-5, 0.5, 0.99999]), 32)
    assert e.shape == (3, 32) and bool(torch.isfinite(e).all())
    assert not torch.allclose(e[0], e[1])


def test_denoiser_shapes_registry_and_frozen_unet():
    net = build_model("sr3", TINY)
    assert isinstance(net, SR3Denoiser) and net.size_multiple == 4
    assert all(not p.requires_grad for p in net.cond_net.parameters())
    net.train()
    assert not net.cond_net.training       # the frozen U-Net stays in eval mode
    x = torch.randn(2, 1, 16, 12)
    v = net(torch.randn(2, 1, 16, 12), net.condition(x), torch.tensor([0.1, 0.9]))
    assert v.shape == (2, 1, 16, 12)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.randn(1, 1, 10, 12), net.condition(torch.randn(1, 1, 10, 12)),
            torch.tensor([0.5]))


# -- training -----------------------------------------------------------------------------

def test_a_few_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    net = SR3Denoiser(width=8, depth=2, emb_dim=16, unet=None, residual_scale=1.0)
    rng = np.random.default_rng(0)
    # input: a smooth field; target: input plus a fixed pattern the network can learn
    x = torch.from_numpy(rng.normal(0, 1, (8, 1, 16, 16)).astype(np.float32))
    target = x + 0.8 * torch.sin(torch.arange(16.0) / 2)[None, None, None, :]

    def fixed_loss():
        with torch.no_grad():
            return float(np.mean([net.loss(x, target, generator=torch.Generator()
                                           .manual_seed(k)).item() for k in range(8)]))

    before = fixed_loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        loss = net.loss(x, target, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < 0.8 * before, (before, after)


def test_train_kind_sr3_and_export(tmp_path):
    from astro_enhance.enhancers.builtin import neural_factory
    from astro_enhance.training import load_recipe, synthetic_shard, train_unet
    from astro_enhance.training.loops import DIFFUSION_KINDS, export_weights, train_sr3

    assert "sr3" in DIFFUSION_KINDS
    _ = synthetic_shard(tmp_path / "shards", n=2, size=32, rng=np.random.default_rng(0))
    small = dict(steps=3, patch=32, batch_size=2, log_every=1, val_every=3, threads=1,
                 sample_every=100)
    u = load_recipe("unet", overrides=small)
    u["model"]["config"].update(width=4, depth=2)
    train_unet(tmp_path / "shards", tmp_path / "unet", recipe=u, progress=False)
    r = load_recipe("sr3", overrides=dict(small, val_steps=2, default_steps=7))
    r["model"]["config"].update(width=8, depth=2, emb_dim=16, unet=u["model"]["config"])
    res = train_sr3(tmp_path / "shards", tmp_path / "sr3", recipe=r, init=tmp_path / "unet",
                    progress=False)
    assert res["step"] == 3 and res["finished"]
    # the frozen U-Net inside is the trained one, unchanged by the diffusion training
    from safetensors.torch import load_file
    unet_state = load_file(str(tmp_path / "unet" / "model.safetensors"))
    sr3_state = load_file(str(tmp_path / "sr3" / "model.safetensors"))
    for k, v in unet_state.items():
        assert torch.equal(sr3_state["cond_net." + k], v), k
    path = export_weights(tmp_path / "sr3", tmp_path / "export" / "sr3")
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["enhancer_class"] == "astro_enhance.enhancers.diffusion.DiffusionEnhancer"
    assert side["info"]["kind"] == "diffusion" and side["architecture"] == "sr3"
    assert side["info"]["extra"]["default_steps"] == 7
    enh = neural_factory("sr3")(weights=path, device="cpu")
    assert isinstance(enh, DiffusionEnhancer) and enh.steps == 7
    enh = neural_factory("sr3")(weights=path, device="cpu", steps=3, post_filter=True)
    assert enh.steps == 3 and enh.post_filter["diameter"] == 5


# -- sampling -----------------------------------------------------------------------------

def test_same_seed_same_sample_different_seed_different(image):
    enh = _enhancer()
    a = enh.enhance(image, noise=1.0, rng=np.random.default_rng(7))
    b = enh.enhance(image, noise=1.0, rng=np.random.default_rng(7))
    c = enh.enhance(image, noise=1.0, rng=np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    # an int seed works like a generator seeded with it
    assert np.array_equal(enh.enhance(image, noise=1.0, rng=7), a)


@pytest.mark.parametrize("steps", [1, 2, 7, 33])
def test_any_number_of_steps(image, steps):
    out = _enhancer(steps=steps).enhance(image, noise=1.0, rng=0)
    assert out.shape == image.shape and np.isfinite(out).all()


@pytest.mark.parametrize("steps", [0, -3, 2.5, "ten", True, None.__class__])
def test_bad_steps_is_a_clear_error(steps):
    with pytest.raises(EnhancerError, match="steps must be a positive integer"):
        _enhancer(steps=steps)


def test_bad_post_filter_is_a_clear_error():
    with pytest.raises(EnhancerError, match="unknown post_filter option"):
        _enhancer(post_filter={"radius": 3})
    with pytest.raises(EnhancerError, match="post_filter must be"):
        _enhancer(post_filter="yes")


def test_post_filter_smooths_the_sample(image):
    a = _enhancer().enhance(image, noise=1.0, rng=1)
    b = _enhancer(post_filter={"sigma_color": 10.0}).enhance(image, noise=1.0, rng=1)
    hf = lambda z: float(np.abs(np.diff(np.arcsinh(z / 3), axis=1)).mean())  # noqa: E731
    assert hf(b) < hf(a)


def test_look_noise_is_the_same_realisation_every_call(image):
    plain, noisy = _enhancer(), _enhancer(look_noise=True)
    p1, p2 = (plain.enhance(image, noise=2.0, rng=s) for s in (1, 2))
    n1, n2 = (noisy.enhance(image, noise=2.0, rng=s) for s in (1, 2))
    # the noise added is the same for both samples: differences (hence the STD) unchanged
    np.testing.assert_allclose(n1 - n2, p1 - p2, atol=1e-4)
    added = n1 - p1
    assert abs(float(added.std()) - 0.58 * 2.0) < 0.1


def test_nan_pixels_come_back_as_nan(image):
    img = image.copy()
    img[5:9, 10:14] = np.nan
    out = _enhancer().enhance(img, noise=1.0, rng=0)
    assert np.isnan(out[5:9, 10:14]).all() and np.isfinite(out[20:, 20:]).all()


def test_sampler_module_is_reproducible():
    s = DiffusionSampler(_tiny(), steps=3, seed=5)
    x = torch.randn(1, 1, 16, 16)
    assert torch.equal(s(x), s(x))


# -- pipeline -----------------------------------------------------------------------------

@pytest.fixture
def registered(tmp_path):
    net = _tiny()
    path = save_weights(net.state_dict(), tmp_path / "sr3_tiny", architecture="sr3",
                        config=TINY, info={"name": "sr3-test", "kind": "diffusion",
                                           "size_multiple": 4, "default_steps": 3},
                        enhancer_class="astro_enhance.enhancers.diffusion.DiffusionEnhancer")

    def factory(*, device="auto", weights=None, **options):
        return DiffusionEnhancer.from_weights(weights or path, device="cpu", **options)

    register_enhancer("sr3-test", factory)
    yield path
    unregister_enhancer("sr3-test")


def test_samples_give_mean_std_extension_and_header(registered):
    sample = make_sdss_sample(shape=(64, 64), seed=2)
    hdul = enhance_fits(sample, method="sr3-test", samples=3, rng=11, device="cpu")
    h = hdul[0].header
    assert "STD" in hdul and hdul["STD"].data.shape == hdul[0].data.shape
    assert h["AE_NSAMP"] == 3 and h["AE_STEPS"] == 3
    assert any("3 diffusion steps" in str(c) for c in h["HISTORY"])
    std = hdul["STD"].data
    assert np.nanmin(std) >= 0 and np.nanmax(std) > 0
    # the mean is the mean of the individual samples, drawn from one rng in sequence
    again = enhance_fits(sample, method="sr3-test", samples=3, rng=11, device="cpu")
    assert np.array_equal(again[0].data, hdul[0].data, equal_nan=True)
    other = enhance_fits(sample, method="sr3-test", samples=1, rng=11, device="cpu",
                         options={"steps": 5})
    assert "STD" not in other and other[0].header["AE_STEPS"] == 5
    assert other[0].header["AE_NSAMP"] == 1


@pytest.mark.parametrize("modname", ["astro_enhance.models.diffusion",
                                     "astro_enhance.enhancers.diffusion"])
def test_docstring_examples_run(modname):
    import doctest
    import importlib

    mod = importlib.import_module(modname)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          verbose=False)
    assert res.attempted > 5 and res.failed == 0, res


# -- several samples in one pass, calibrated spread (issue 24) ------------------------------

def test_enhance_samples_shape_nan_and_spread(image):
    img = image.copy()
    img[5:9, 10:14] = np.nan
    enh = _enhancer()
    s = enh.enhance_samples(img, 5, noise=1.0, rng=3)
    assert s.shape == (5,) + img.shape and s.dtype == np.float32
    assert np.isnan(s[:, 5:9, 10:14]).all() and np.isfinite(s[:, 20:, 20:]).all()
    # independent draws: they differ, and the same rng gives the same draws
    assert float(np.nanmean(np.nanstd(s[:, 20:, 20:], axis=0))) > 0
    assert np.array_equal(s, enh.enhance_samples(img, 5, noise=1.0, rng=3), equal_nan=True)
    # every draw is a sample of the same distribution as enhance's: same mean level
    one = np.stack([enh.enhance(img, noise=1.0, rng=r) for r in range(5)])
    assert abs(float(np.nanmean(s) - np.nanmean(one))) < 0.2 * float(np.nanstd(one))


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_enhance_samples_bad_count_is_a_clear_error(image, n):
    with pytest.raises(EnhancerError, match="number of samples"):
        _enhancer().enhance_samples(image, n, noise=1.0)


def test_enhance_samples_runs_the_frozen_unet_once_per_tile(image):
    enh = _enhancer()
    calls = []
    unet = enh.model.cond_net
    hook = unet.register_forward_hook(lambda *a: calls.append(a[1][0].shape[0]))
    try:
        enh.enhance_samples(image, 6, noise=1.0, rng=0)
    finally:
        hook.remove()
    assert calls and all(b == 1 for b in calls)   # one tile per call, never 6 copies


def test_std_is_scaled_by_the_calibration_factor(registered, tmp_path):
    import shutil

    from astro_enhance.weights import save_weights
    sample = make_sdss_sample(shape=(64, 64), seed=2)
    raw = enhance_fits(sample, method="sr3-test", samples=3, rng=11, device="cpu")
    assert raw[0].header["AE_STDCF"] == 1.0
    net = _tiny()
    path = save_weights(net.state_dict(), tmp_path / "sr3_cal", architecture="sr3",
                        config=TINY, info={"name": "sr3-cal", "kind": "diffusion",
                                           "size_multiple": 4, "default_steps": 3,
                                           "std_calibration": 2.5},
                        enhancer_class="astro_enhance.enhancers.diffusion.DiffusionEnhancer")
    cal = enhance_fits(sample, method="sr3-test", weights=path, samples=3, rng=11,
                       device="cpu")
    assert cal[0].header["AE_STDCF"] == 2.5
    np.testing.assert_allclose(cal["STD"].data, 2.5 * raw["STD"].data, rtol=1e-5)
    np.testing.assert_array_equal(cal[0].data, raw[0].data)
    assert any("AE_STDCF" in str(c) for c in cal[0].header["HISTORY"])
    off = enhance_fits(sample, method="sr3-test", weights=path, samples=3, rng=11,
                       device="cpu", options={"calibrate_std": False})
    np.testing.assert_allclose(off["STD"].data, raw["STD"].data, rtol=1e-6)
    shutil.rmtree(tmp_path / "sr3_cal", ignore_errors=True)
