"""Enhancer API: classical methods, TorchEnhancer, registry, shipped-weights discovery."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

import astro_enhance.models
from astro_enhance import cli
from astro_enhance.enhancers import (Bicubic, Bilateral, Enhancer, EnhancerInfo,
                                     RichardsonLucy, TorchEnhancer, get_enhancer,
                                     list_enhancers, psf_matching_sigma, register_enhancer,
                                     unregister_enhancer)
from astro_enhance.enhancers import registry as registry_mod
from astro_enhance.exceptions import (AstroEnhanceWarning, ChecksumError, DeviceError,
                                      EnhancerError, InputError, WeightsError)
from astro_enhance.weights import save_weights

REPO = Path(__file__).parents[1]


@pytest.fixture
def fresh_registry():
    registry_mod._reset_registry()
    yield
    registry_mod._reset_registry()


def _scene(seed=0, n=96, sigma=0.01):
    """Point sources at the DECaLS PSF (truth) and the same blurred to SDSS + noise."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, n), np.float32)
    for y, x, f in [(30, 30, 50.0), (60, 70, 20.0), (48, 20, 5.0)]:
        truth[y, x] = f
    truth = gaussian_filter(truth, 1.9)
    obs = gaussian_filter(truth, psf_matching_sigma())
    noisy = (obs + rng.normal(0, sigma, obs.shape)).astype(np.float32)
    return truth, noisy


# --- EnhancerInfo ----------------------------------------------------------------------------

def test_info_validation_and_dict_round_trip():
    info = EnhancerInfo("x", "neural", channels_out=3, bands=["r"], tile_size=128, overlap=16,
                        weights_sha256="ab" * 32)
    assert info.survey_pair == ("sdss", "decals") and info.bands == ("r",)
    assert info.trained_for == "sdss->decals r"
    d = info.to_dict()
    json.dumps(d)
    assert EnhancerInfo.from_dict(d) == info
    extra = EnhancerInfo.from_dict({"name": "y", "kind": "neural", "epochs": 3})
    assert extra.extra == {"epochs": 3}
    with pytest.raises(EnhancerError, match="kind"):
        EnhancerInfo("x", "magic")
    with pytest.raises(EnhancerError, match="larger than overlap"):
        EnhancerInfo("x", tile_size=32, overlap=32)
    with pytest.raises(EnhancerError, match="channels_in"):
        EnhancerInfo("x", channels_in=0)
    assert EnhancerInfo("b", bands=()).trained_for == "sdss->decals any band"


# --- classical -------------------------------------------------------------------------------

def test_bicubic_is_identity_and_restores_nan():
    img = np.random.default_rng(1).normal(size=(40, 50)).astype(np.float64)
    img[3, 4] = np.nan
    img[10, :5] = np.inf
    before = img.copy()
    out = get_enhancer("bicubic").enhance(img)
    assert out.dtype == np.float32 and out.shape == img.shape
    good = np.isfinite(img)
    np.testing.assert_array_equal(out[good], img[good].astype(np.float32))
    assert np.isnan(out[~good]).all()
    np.testing.assert_array_equal(img, before)          # input not modified
    cube = np.stack([img, img])
    assert get_enhancer("bicubic").enhance(cube).shape == (2, 40, 50)


def test_richardson_lucy_sharpens_toward_truth_and_keeps_flux():
    truth, noisy = _scene()
    enh = get_enhancer("richardson-lucy")
    out = enh.enhance(noisy, noise=0.01)

    def rms(a):
        return float(np.sqrt(np.mean((a - truth) ** 2)))
    assert rms(out) < 0.8 * rms(noisy)
    assert abs(out[30, 30] - truth[30, 30]) < 0.25 * abs(noisy[30, 30] - truth[30, 30])
    assert abs(out.sum() / noisy.sum() - 1) < 0.01
    # estimated noise gives the same kind of result
    assert rms(enh.enhance(noisy)) < 0.8 * rms(noisy)


def test_richardson_lucy_damping_limits_noise():
    _, noisy = _scene(seed=2)
    sky = (slice(75, 96), slice(0, 20))
    raw = get_enhancer("richardson-lucy", iterations=40, damping=0).enhance(noisy, noise=0.01)
    damped = get_enhancer("richardson-lucy", iterations=40, damping=3).enhance(noisy,
                                                                                noise=0.01)
    assert raw[sky].std() > 1.5 * noisy[sky].std()            # RL amplifies noise ...
    assert damped[sky].std() < 1.15 * noisy[sky].std()        # ... damping stops that
    assert abs(damped.sum() / noisy.sum() - 1) < 0.01         # without biasing the flux
    # faint extended galaxy: damping must not move flux between wings and core
    y, x = np.mgrid[:96, :96]
    gal = 0.05 * np.exp(-np.hypot(x - 48, y - 48) / 6.0)
    img = (gaussian_filter(gal, 2.0) + np.random.default_rng(12).normal(0, 0.01, gal.shape)
           ).astype(np.float32)
    plain = get_enhancer("richardson-lucy", damping=0).enhance(img, noise=0.01)
    damped = get_enhancer("richardson-lucy", damping=3).enhance(img, noise=0.01)
    assert abs(plain.sum() / img.sum() - 1) < 0.01
    assert abs(damped.sum() - plain.sum()) < 2e-3 * img.sum()


def test_richardson_lucy_negative_background_and_nan():
    _, noisy = _scene(seed=3)
    img = noisy - 0.5                 # negative pedestal: RL needs the offset
    img[5:8, 5:40] = np.nan
    out = RichardsonLucy(iterations=10).enhance(img, noise=0.01)
    assert np.isnan(out[5:8, 5:40]).all()
    finite = np.isfinite(img)
    assert np.isfinite(out[finite]).all()
    assert abs(np.median(out[finite]) - np.median(img[finite])) < 0.01


def test_richardson_lucy_options():
    from astro_enhance.surveys import get_survey

    sd, dc = get_survey("sdss"), get_survey("decals")
    f = 2 * np.sqrt(2 * np.log(2))
    expect = np.sqrt((sd.psf_fwhm["g"] / f) ** 2 - (dc.psf_fwhm["g"] / f) ** 2) / dc.pixel_scale
    assert get_enhancer("richardson-lucy", band="g").psf_sigma == pytest.approx(expect)
    assert RichardsonLucy(psf_sigma=2.0).kernel.shape == (17, 17)
    assert RichardsonLucy(fwhm_in=2.0, fwhm_target=1.0, pixel_scale=0.5).psf_sigma == \
        pytest.approx(np.sqrt(3) / f / 0.5)
    with pytest.raises(EnhancerError, match="not sharper"):
        RichardsonLucy(fwhm_in=1.0, fwhm_target=1.2)
    with pytest.raises(EnhancerError, match="does not take option.*iterations"):
        get_enhancer("richardson-lucy", sigma_color=3)
    with pytest.raises(EnhancerError, match="iterations"):
        RichardsonLucy(iterations=0)


def test_bilateral_denoises_flat_areas_and_keeps_edges():
    rng = np.random.default_rng(4)
    step = np.zeros((64, 64), np.float32)
    step[:, 32:] = 1.0
    noisy = step + rng.normal(0, 0.05, step.shape).astype(np.float32)
    out = get_enhancer("bilateral").enhance(noisy, noise=0.05)
    assert out[:, 5:25].std() < 0.6 * noisy[:, 5:25].std()
    contrast = out[:, 34:40].mean() - out[:, 24:30].mean()
    assert contrast > 0.95
    assert np.abs(out[:, 31] - 0.0).mean() < 0.1 and np.abs(out[:, 32] - 1.0).mean() < 0.1


def test_bilateral_works_in_float_not_8bit():
    """Scaling the data scales the result: no hidden quantisation to 8 or 16 bit."""
    rng = np.random.default_rng(5)
    img = rng.normal(0, 1, (48, 48)).astype(np.float32)
    img[20:28, 20:28] += 30
    enh = Bilateral(sigma_color=2.0)
    a = enh.enhance(img, noise=1.0)
    for scale in (1e-17, 1e-9, 1e4):
        b = enh.enhance(img * np.float32(scale), noise=scale)
        np.testing.assert_allclose(b / scale, a, rtol=1e-3, atol=1e-3)
    tiny = enh.enhance(img * np.float32(1e-17), noise=1e-17)
    assert len(np.unique(tiny)) > 1000


def test_classical_accepts_runtime_options_and_refuses_weights():
    enh = get_enhancer("bilateral", tile_size=128, overlap=16, progress=True, device="cuda")
    assert enh.device == "cpu"               # classical methods compute with numpy/OpenCV
    with pytest.raises(EnhancerError, match="uses no weights"):
        get_enhancer("bicubic", weights="x.safetensors")


def test_input_checks():
    enh = get_enhancer("bicubic")
    with pytest.raises(InputError, match="shape"):
        enh.enhance(np.ones(10))
    with pytest.raises(InputError, match="no finite pixel"):
        enh.enhance(np.full((4, 4), np.nan))
    with pytest.raises(InputError, match="real-valued"):
        enh.enhance(np.ones((4, 4), complex))
    with pytest.raises(InputError, match="noise must be"):
        get_enhancer("bilateral").enhance(np.ones((8, 8)), noise=-1)


def test_noise_estimate_bounded():
    from astro_enhance.enhancers.base import estimate_noise_bounded
    from astro_enhance.normalize import estimate_noise

    rng = np.random.default_rng(11)
    small = rng.normal(0, 0.5, (300, 400)).astype(np.float32)
    assert estimate_noise_bounded(small) == estimate_noise(small)      # exact below the limit
    big = rng.normal(0, 0.5, (1500, 2100)).astype(np.float32)
    big[100:300, :] += 50.0                                             # a bright band
    mask = np.zeros(big.shape, bool)
    mask[:, :700] = True
    full = estimate_noise(big, mask=mask)
    est = estimate_noise_bounded(big, mask=mask)
    assert est == pytest.approx(full, rel=0.01) and est == pytest.approx(0.5, rel=0.02)
    # a sample that falls entirely in a masked region falls back to the full image
    mask[:] = True
    mask[5:10, 5:10] = False
    assert estimate_noise_bounded(big, mask=mask) == estimate_noise(big, mask=mask)


# --- TorchEnhancer ---------------------------------------------------------------------------

class _Identity(torch.nn.Module):
    def forward(self, x):
        return x


class _Colorize(torch.nn.Module):
    size_multiple = 8

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1))

    def forward(self, x):
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
        return x * self.scale


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(),
                               torch.nn.Conv2d(4, 1, 3, padding=1))


def test_torch_identity_model_round_trips_physical_units():
    _, noisy = _scene(seed=6)
    noisy[10:12, 10:40] = np.nan
    before = noisy.copy()
    enh = TorchEnhancer(_Identity(), EnhancerInfo("id", "neural", tile_size=64, overlap=16),
                        device="cpu")
    out = enh.enhance(noisy)
    finite = np.isfinite(noisy)
    np.testing.assert_allclose(out[finite], noisy[finite], rtol=1e-4, atol=1e-6)
    assert np.isnan(out[~finite]).all() and out.dtype == np.float32
    np.testing.assert_array_equal(noisy, before)
    assert enh.device == torch.device("cpu") and enh.precision is torch.float32


def test_torch_enhancer_odd_inputs():
    enh = TorchEnhancer(_Identity(), EnhancerInfo("id", "neural", tile_size=32, overlap=8),
                        device="cpu")
    ints = np.arange(40 * 50).reshape(40, 50) % 7
    np.testing.assert_allclose(enh.enhance(ints, noise=1.0), ints, rtol=1e-5, atol=1e-5)
    img = np.ones((40, 50), np.float64)
    img[3, 3], img[4, 4] = np.inf, -np.inf
    out = enh.enhance(img, noise=0.1)
    assert np.isnan(out[3, 3]) and np.isnan(out[4, 4]) and np.isinf(img[3, 3])
    with pytest.raises(InputError, match="no finite pixel"):
        enh.enhance(np.full((8, 8), np.nan))


def test_torch_model_sees_stretched_space():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen["x"] = x.clone()
            return x

    img = np.array([[0.0, 3.0], [30.0, -3.0]], np.float32)
    TorchEnhancer(Spy(), EnhancerInfo("spy", "neural", tile_size=None), device="cpu"
                  ).enhance(img, noise=1.0)
    np.testing.assert_allclose(seen["x"].numpy()[0, 0], np.arcsinh(img / 3.0), rtol=1e-6)


def test_torch_tiled_equals_untiled_and_channel_mapping():
    rng = np.random.default_rng(7)
    img = rng.normal(0, 1, (150, 170)).astype(np.float32)
    net = _tiny_net()
    tiled = TorchEnhancer(net, EnhancerInfo("t", "neural"), device="cpu", tile_size=64,
                          overlap=32, batch_size=3).enhance(img, noise=1.0)
    whole = TorchEnhancer(net, EnhancerInfo("t", "neural"), device="cpu",
                          tile_size=0).enhance(img, noise=1.0)
    np.testing.assert_allclose(tiled, whole, atol=1e-4 * np.ptp(whole))
    img[0, 0] = np.nan
    col = TorchEnhancer(_Colorize(), EnhancerInfo("c", "neural", channels_out=3,
                                                  size_multiple=8, tile_size=None),
                        device="cpu").enhance(img, noise=1.0)
    assert col.shape == (3, 150, 170) and np.isnan(col[:, 0, 0]).all()
    np.testing.assert_allclose(col[0][np.isfinite(img)], img[np.isfinite(img)], rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(InputError, match="expects 1 band"):
        TorchEnhancer(net, EnhancerInfo("t", "neural"), device="cpu").enhance(
            np.ones((2, 8, 8), np.float32))


def test_torch_device_handling(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    enh = TorchEnhancer(_tiny_net(), EnhancerInfo("t", "neural"), device="cpu")
    assert enh.to("cpu") is enh
    with pytest.raises(DeviceError, match="CUDA is not available"):
        enh.to("cuda")
    with pytest.raises(DeviceError, match="fp16"):
        TorchEnhancer(_tiny_net(), EnhancerInfo("t", "neural"), device="cpu",
                      precision="fp16")
    bf = TorchEnhancer(_tiny_net(), EnhancerInfo("t", "neural"), device="cpu",
                       precision="bf16")
    img = np.random.default_rng(8).normal(size=(64, 64)).astype(np.float32)
    ref = TorchEnhancer(_tiny_net(), EnhancerInfo("t", "neural"), device="cpu").enhance(
        img, noise=1.0)
    out = bf.enhance(img, noise=1.0)
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() < 0.05 * np.ptp(ref)      # bf16 autocast, close to fp32


@pytest.fixture
def fake_models(monkeypatch):
    """build_model that knows a tiny test architecture (independent of real models)."""
    def build_model(architecture, config=None):
        if architecture != "tiny-test":
            raise WeightsError(f"unknown architecture {architecture!r}")
        return _tiny_net(**(config or {}))
    monkeypatch.setattr(astro_enhance.models, "build_model", build_model)
    return build_model


def _save_tiny(path, **meta):
    return save_weights(_tiny_net(seed=1).state_dict(), path, architecture="tiny-test",
                        config={"seed": 1}, **meta)


def test_from_weights(tmp_path, fake_models):
    p = _save_tiny(tmp_path / "tiny", info={"kind": "neural", "tile_size": 64, "overlap": 16,
                                            "bands": ["r"], "description": "a test net"})
    enh = TorchEnhancer.from_weights(p, device="cpu", batch_size=2)
    assert enh.info.name == "tiny" and enh.info.tile_size == 64 and enh.info.bands == ("r",)
    assert enh.info.weights_sha256 == enh.sidecar["sha256"] and len(enh.info.weights_sha256) == 64
    assert enh.batch_size == 2
    img = np.random.default_rng(9).normal(size=(80, 80)).astype(np.float32)
    ref = TorchEnhancer(_tiny_net(seed=1), EnhancerInfo("x", "neural", tile_size=64,
                                                        overlap=16), device="cpu")
    np.testing.assert_allclose(enh.enhance(img, noise=1.0), ref.enhance(img, noise=1.0),
                               rtol=1e-6, atol=1e-6)
    # weights that do not fit the architecture
    save_weights({"bogus": torch.ones(2)}, tmp_path / "bad", architecture="tiny-test",
                 config={})
    with pytest.raises(WeightsError, match="do not fit"):
        TorchEnhancer.from_weights(tmp_path / "bad", device="cpu")
    with pytest.raises(EnhancerError, match="bad option"):
        TorchEnhancer.from_weights(p, device="cpu", colour="blue")


# --- registry --------------------------------------------------------------------------------

def test_unknown_name_lists_available(fresh_registry):
    with pytest.raises(EnhancerError, match=r"unknown enhancer 'richardson'; available: "
                                            r"bicubic, .*bilateral.*Did you mean "
                                            r"'richardson-lucy'"):
        get_enhancer("richardson")


def test_names_are_normalised(fresh_registry):
    assert isinstance(get_enhancer("Richardson_Lucy", iterations=3), RichardsonLucy)
    assert isinstance(get_enhancer(" BICUBIC "), Bicubic)


def test_register_decorator_duplicates_and_overwrite(fresh_registry):
    @register_enhancer("double")
    class Double(Enhancer):
        info = EnhancerInfo("double", "classical", bands=())
        needs_noise = False

        def __init__(self, factor=2.0):
            self.factor = factor

        def _enhance(self, filled, *, mask, noise, rng):
            return filled * self.factor

    assert get_enhancer("double", factor=3.0).enhance(np.ones((4, 4)))[0, 0] == 3.0
    with pytest.raises(EnhancerError, match="already registered"):
        register_enhancer("double", Double)
    with pytest.raises(EnhancerError, match="already registered.*built-in"):
        register_enhancer("bicubic", lambda **kw: Bicubic())
    register_enhancer("double", lambda device, weights, **kw: Bicubic(), overwrite=True)
    assert isinstance(get_enhancer("double"), Bicubic)
    t = list_enhancers()
    row = t[list(t["name"]).index("double")]
    assert row["source"] == "user"
    unregister_enhancer("double")
    assert "double" not in list_enhancers()["name"]
    with pytest.raises(EnhancerError, match="no enhancer named"):
        unregister_enhancer("double")


def test_bad_factories(fresh_registry):
    register_enhancer("not-an-enhancer", lambda **kw: 42)
    with pytest.raises(EnhancerError, match="returned int, not an Enhancer"):
        get_enhancer("not-an-enhancer")
    with pytest.raises(EnhancerError, match="callable"):
        register_enhancer("x", 42)
    with pytest.raises(EnhancerError, match="non-empty"):
        register_enhancer("  ", lambda **kw: None)


def test_list_enhancers_table(fresh_registry):
    t = list_enhancers()
    assert t.colnames == ["name", "kind", "description", "trained_for", "weights_sha256",
                          "available", "source"]
    names = list(t["name"])
    assert names[:4] == ["bicubic", "bilateral", "gaussian", "richardson-lucy"]
    assert all(t["available"]) and t["available"].dtype == bool
    assert set(t["kind"][:3]) == {"classical"}


def test_shipped_weights_are_discovered(tmp_path, monkeypatch, fake_models, fresh_registry):
    import astro_enhance.weights as weights_mod

    monkeypatch.setattr(weights_mod, "weights_dir", lambda: tmp_path)
    _save_tiny(tmp_path / "unet", info={"description": "test U-Net", "tile_size": 64,
                                        "overlap": 16})
    _save_tiny(tmp_path / "srresnet", enhancer_class="astro_enhance.enhancers.torch_enhancer."
                                                     "TorchEnhancer")
    _save_tiny(tmp_path / "autoencoder", enhancer_class="os.path.join")
    _save_tiny(tmp_path / "not-a-builtin")                     # ignored: unknown name
    (tmp_path / "gan.safetensors").write_bytes(b"x")           # no sidecar: ignored
    (tmp_path / "colorize.safetensors").write_bytes(b"x")
    (tmp_path / "colorize.json").write_text("{broken")
    with pytest.warns(AstroEnhanceWarning, match="'colorize' have an unreadable sidecar"):
        t = list_enhancers()
    names = list(t["name"])
    assert {"unet", "srresnet", "autoencoder"} <= set(names)
    assert not {"gan", "colorize", "not-a-builtin"} & set(names)
    row = t[names.index("unet")]
    sha = json.loads((tmp_path / "unet.json").read_text())["sha256"]
    assert row["kind"] == "neural" and row["weights_sha256"] == sha[:12]
    assert row["description"] == "test U-Net" and row["source"] == "built-in"
    enh = get_enhancer("unet", device="cpu")
    assert isinstance(enh, TorchEnhancer) and enh.info.name == "unet"
    assert enh.info.weights_sha256 == sha and enh.tile_size == 64
    assert type(get_enhancer("srresnet", device="cpu")) is TorchEnhancer
    with pytest.raises(WeightsError, match="does not exist in this astro_enhance"):
        get_enhancer("autoencoder", device="cpu")
    # tampering with shipped weights is caught on creation
    blob = bytearray((tmp_path / "unet.safetensors").read_bytes())
    blob[-2] ^= 0xFF
    (tmp_path / "unet.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ChecksumError):
        get_enhancer("unet", device="cpu")


def test_neural_name_with_user_weights(tmp_path, fake_models, fresh_registry, monkeypatch):
    p = _save_tiny(tmp_path / "mine")
    # a built-in neural name whose weights do not ship still works with user weights (every
    # built-in ships now: an installation without shipped weights stands in)
    import astro_enhance.weights as weights_mod

    empty = tmp_path / "no_shipped_weights"
    empty.mkdir()
    monkeypatch.setattr(weights_mod, "weights_dir", lambda: empty)
    registry_mod._reset_registry()
    name = "srresnet"
    assert name not in list_enhancers()["name"]
    enh = get_enhancer(name, weights=p, device="cpu", tile_size=32, overlap=8)
    assert enh.info.name == name and enh.tile_size == 32
    with pytest.raises(EnhancerError, match="unknown enhancer 'nope'"):
        get_enhancer("nope", weights=p)


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_enhancer_runs_with_sockets_blocked(tmp_path, fake_models, fresh_registry):
    import socket

    import pytest_socket

    p = _save_tiny(tmp_path / "net")
    pytest_socket.disable_socket()
    try:
        with pytest.raises(pytest_socket.SocketBlockedError):
            socket.socket()
        _, noisy = _scene(seed=10)
        for name, kw in [("gan", {"weights": p, "device": "cpu"}), ("richardson-lucy", {}),
                         ("bilateral", {}), ("bicubic", {})]:
            out = get_enhancer(name, **kw).enhance(noisy)
            assert out.shape == noisy.shape and np.isfinite(out).all()
    finally:
        pytest_socket.enable_socket()


def test_import_stays_light():
    code = ("import sys, numpy as np\n"
            "import astro_enhance.enhancers as e\n"
            "t = e.list_enhancers()\n"
            "e.get_enhancer('richardson-lucy').enhance(np.ones((16, 16)) + "
            "np.random.default_rng(0).normal(0, .1, (16, 16)))\n"
            "heavy = [m for m in ('torch', 'dask', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "print(len(t))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) >= 3


def test_cli_list(capsys, fresh_registry):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "bicubic" in out and "richardson-lucy" in out and "trained_for" in out
    assert cli.main(["list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"bicubic", "bilateral", "richardson-lucy"}
    assert all(isinstance(r["available"], bool) for r in rows)
    assert cli.main(["list", "--format", "csv", "--available"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("name,kind")
