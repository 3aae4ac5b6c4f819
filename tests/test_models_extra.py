"""Tests of the SRResNet, the skip autoencoder, their losses and training kinds (issue 7)."""

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astro_enhance.exceptions import WeightsError  # noqa: E402
from astro_enhance.models import (ARCHITECTURES, PatchCritic, SRResNet,  # noqa: E402
                                  SkipAutoencoder, build_model)
from astro_enhance.training import load_recipe, synthetic_shard  # noqa: E402
from astro_enhance.training.losses import (feature_loss, gradient_loss,  # noqa: E402
                                           ssim_loss, structure_loss)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    synthetic_shard(d, n=6, size=48, rng=np.random.default_rng(0))
    return d


# ---------------------------------------------------------------- architectures

@pytest.mark.parametrize("cls, cfg", [(SRResNet, {"width": 8, "n_blocks": 2}),
                                      (SkipAutoencoder, {"width": 8, "depth_convs": 1})])
def test_identity_at_init_and_shapes(cls, cfg):
    torch.manual_seed(0)
    net = cls(**cfg)
    m = net.size_multiple
    for shape in [(2 * m, 6 * m), (17 * m, 5 * m), (24, 40)]:
        x = torch.randn(2, 1, *shape)
        y = net(x)
        assert y.shape == x.shape
        assert torch.equal(y, x)       # zero-initialised tail + residual output
    # the zeroed tail is the only reason: perturb it and the output changes
    with torch.no_grad():
        net.tail.bias.fill_(0.5)
    x = torch.randn(1, 1, 2 * m, 2 * m)
    assert torch.allclose(net(x), x + 0.5)


def test_size_multiples_and_odd_sizes():
    sr = SRResNet(width=4, n_blocks=1)
    ae = SkipAutoencoder(width=4)
    assert sr.size_multiple == 1 and ae.size_multiple == 2
    assert sr(torch.zeros(1, 1, 13, 7)).shape[-2:] == (13, 7)      # any size
    assert ae(torch.zeros(1, 1, 14, 6)).shape[-2:] == (14, 6)
    with pytest.raises(ValueError, match="multiples of 2"):
        ae(torch.zeros(1, 1, 13, 6))


def test_fully_convolutional_translation():
    # away from the borders, shifting the input shifts the output (no global layer)
    torch.manual_seed(1)
    for net in (SRResNet(width=4, n_blocks=2), SkipAutoencoder(width=4, pool="avg")):
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.2)
        x = torch.randn(1, 1, 64, 64)
        y = net(x)
        ys = net(torch.roll(x, shifts=(8, 8), dims=(-2, -1)))
        torch.testing.assert_close(ys[..., 28:40, 28:40], y[..., 20:32, 20:32])


def test_autoencoder_skip_is_additive_and_single_pooling():
    ae = SkipAutoencoder(width=6, depth_convs=2)
    # decoder input channels = width (added, not concatenated)
    assert ae.dec[0].in_channels == 6
    assert ae.up[0].out_channels == 6 and ae.bottleneck[0].out_channels == 12
    pools = [n for n, _ in ae.named_modules() if "pool" in type(_).__name__.lower()]
    assert pools == []          # pooling is functional, one level in forward
    feats = {}

    def hook(module, inputs, output):
        feats["b"] = output.shape

    ae.bottleneck.register_forward_hook(hook)
    ae(torch.zeros(1, 1, 20, 12))
    assert feats["b"][-2:] == (10, 6)           # exactly one 2x reduction


def test_multichannel_out():
    for net in (SRResNet(1, 3, width=4, n_blocks=1), SkipAutoencoder(1, 3, width=4)):
        x = torch.randn(1, 1, 8, 8)
        y = net(x)
        assert y.shape == (1, 3, 8, 8)
        assert torch.equal(y[:, :1], x)


def test_build_model_roundtrip_and_size():
    assert ARCHITECTURES["srresnet"] is SRResNet
    assert ARCHITECTURES["skip_autoencoder"] is SkipAutoencoder
    for arch, cfg in [("srresnet", {"width": 8, "n_blocks": 2}),
                      ("skip_autoencoder", {"width": 8, "depth_convs": 2, "pool": "avg"})]:
        torch.manual_seed(0)
        a = build_model(arch, cfg)
        for p in a.parameters():
            torch.nn.init.normal_(p, std=0.1)
        b = build_model(arch, json.loads(json.dumps(cfg)))
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(1, 1, 16, 16)
        torch.testing.assert_close(a(x), b(x))
    with pytest.raises(WeightsError, match="does not fit"):
        build_model("srresnet", {"depth": 3})
    # the shipped recipes' networks stay small (weights < 10 MB, under ~1M parameters)
    for name in ("srresnet", "srgan", "autoencoder"):
        m = load_recipe(name)["model"]
        n = sum(p.numel() for p in build_model(m["architecture"], m["config"]).parameters())
        assert n < 1_000_000 and 4 * n < 10e6
    # the constructor defaults too
    assert sum(p.numel() for p in SRResNet().parameters()) < 1_000_000


def test_critic_features_do_not_change_forward():
    torch.manual_seed(0)
    critic = PatchCritic(width=8, n_layers=2)
    keys = list(critic.state_dict())
    x, y = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)
    critic.eval()
    ref = critic(x, y)
    feats = critic.features(x, y)
    assert isinstance(feats, list) and len(feats) == 2 + 2
    assert all(isinstance(f, torch.Tensor) for f in feats)
    assert feats[0].shape == (2, 8, 32, 32) and feats[-1].shape == (2, 32, 8, 8)
    feats2, logits = critic.features(x, y, with_logits=True)
    torch.testing.assert_close(logits, ref)
    torch.testing.assert_close(critic(x, y), ref)
    assert list(critic.state_dict()) == keys
    # gradients flow through the features to the candidate
    yg = y.clone().requires_grad_(True)
    feature_loss(critic.features(x, yg), [f.detach() + 1 for f in feats]).backward()
    assert yg.grad is not None and yg.grad.abs().sum() > 0


# ---------------------------------------------------------------- losses

def test_ssim_loss_matches_skimage():
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 40))
    b = a + 0.4 * rng.normal(size=a.shape)
    ref = structural_similarity(a, b, data_range=a.max() - a.min(), win_size=7)
    got = 1 - ssim_loss(torch.tensor(b)[None, None], torch.tensor(a)[None, None],
                        min_range=0).item()
    assert got == pytest.approx(ref, rel=1e-6)
    t = torch.tensor(a)[None, None]
    assert ssim_loss(t, t).item() == pytest.approx(0.0, abs=1e-7)
    # flat target (empty sky): without the range floor the loss is ~1 whatever the residual
    # noise; with it, less noise gives a lower loss (the term still carries information)
    flat = torch.zeros(1, 1, 16, 16)
    noise = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    raw = [ssim_loss(a * noise, flat, min_range=0).item() for a in (0.05, 0.005)]
    assert raw == pytest.approx([1.0, 1.0], abs=1e-3)
    floored = [ssim_loss(a * noise, flat).item() for a in (0.05, 0.005)]
    assert 0 < floored[1] < 0.5 * floored[0] < 0.5
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        ssim_loss(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 5, 5))


def test_gradient_and_structure_losses():
    t = torch.zeros(1, 1, 12, 12)
    t[..., 4:8, 4:8] = 1.0
    blurred = torch.nn.functional.avg_pool2d(t, 3, stride=1, padding=1)
    assert gradient_loss(t + 2.0, t).item() == pytest.approx(0.0)
    assert gradient_loss(blurred, t).item() > 0.05
    assert structure_loss(blurred, t, kind="gradient").item() == gradient_loss(blurred, t).item()
    assert structure_loss(blurred, t, kind="ssim").item() == ssim_loss(blurred, t).item()
    with pytest.raises(ValueError, match="unknown structure loss"):
        structure_loss(t, t, kind="vgg")
    with pytest.raises(ValueError, match="equal length"):
        feature_loss([t], [t, t])


# ---------------------------------------------------------------- training

def _tiny(name, **kw):
    r = load_recipe(name, overrides=dict(steps=5, patch=32, batch_size=2, log_every=1,
                                         val_every=5, sample_every=1000, checkpoint_every=5,
                                         warmup=1, threads=1))
    r.update(kw)
    return r


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _check_export(run, dest, arch):
    from astro_enhance.enhancers import TorchEnhancer
    from astro_enhance.training import export_weights
    path = export_weights(run, dest)
    e = TorchEnhancer.from_weights(path, device="cpu")
    assert e.sidecar["architecture"] == arch
    assert e.info.size_multiple == e.model.size_multiple
    img = np.random.default_rng(0).normal(0, 1, (37, 41)).astype(np.float32)
    img[10:14, 10:14] += 50.0
    out = e.enhance(img)
    assert out.shape == img.shape and out.dtype == np.float32 and np.isfinite(out).all()
    return path, e


def test_smoke_train_srresnet_autoencoder_srgan(shard_dir, tmp_path):
    from astro_enhance.training.loops import (train_autoencoder, train_srgan,
                                              train_srresnet)
    small_sr = {"architecture": "srresnet", "config": {"width": 8, "n_blocks": 2}}
    # srresnet: L1 + flux against the truth
    r = _tiny("srresnet", model=small_sr)
    res = train_srresnet(shard_dir, tmp_path / "sr", recipe=r, progress=False)
    assert res["finished"] and res["step"] == 5 and "psnr_gain" in res["val"]
    path, e = _check_export(tmp_path / "sr", tmp_path / "w" / "srresnet", "srresnet")
    assert e.info.size_multiple == 1 and e.sidecar["training"]["kind"] == "srresnet"

    # autoencoder: MSE + SSIM structure term (logged) + flux
    r = _tiny("autoencoder", model={"architecture": "skip_autoencoder",
                                    "config": {"width": 8, "depth_convs": 1}})
    res = train_autoencoder(shard_dir, tmp_path / "ae", recipe=r, progress=False)
    assert res["step"] == 5
    rows = _rows(tmp_path / "ae" / "loss_log.csv")
    assert len(rows) == 5 and all(float(row["structure"]) > 0 for row in rows)
    _, e = _check_export(tmp_path / "ae", tmp_path / "w" / "autoencoder", "skip_autoencoder")
    assert e.info.size_multiple == 2

    # srgan: generator from the srresnet run, critic feature loss on generator steps
    g = _tiny("srgan", model=small_sr, critic_pretrain=2,
              critic={"architecture": "patch_critic", "config": {"width": 8, "n_layers": 2}})
    res = train_srgan(shard_dir, tmp_path / "sg", recipe=g, init=tmp_path / "sr",
                      progress=False)
    assert res["step"] == 5 and "hf_ratio" in res["val"]
    rows = _rows(tmp_path / "sg" / "loss_log.csv")
    gen = [row for row in rows if row["side"] == "generator"]
    assert gen and all(float(row["feature"]) > 0 for row in gen)
    assert {row["side"] for row in rows[:2]} == {"critic"}       # pre-training
    side = json.loads((tmp_path / "sg" / "recipe.json").read_text())
    assert side["init_weights"].endswith("model.safetensors")
    _check_export(tmp_path / "sg", tmp_path / "w" / "srgan", "srresnet")


def test_srgan_init_must_fit_and_exist(shard_dir, tmp_path):
    from astro_enhance.training.loops import train_srgan, train_supervised
    g = _tiny("srgan", model={"architecture": "srresnet",
                              "config": {"width": 8, "n_blocks": 2}},
              critic={"architecture": "patch_critic", "config": {"width": 8, "n_layers": 2}})
    with pytest.raises(FileNotFoundError, match="train the supervised model first"):
        train_srgan(shard_dir, tmp_path / "x", recipe=g, init=tmp_path / "missing",
                    progress=False)
    with pytest.raises(ValueError, match="not supervised"):
        train_supervised(shard_dir, tmp_path / "y", kind="srgan")


def test_cli_train_srresnet_and_export(shard_dir, tmp_path, capsys):
    from astro_enhance.cli import main
    r = _tiny("srresnet", model={"architecture": "srresnet",
                                 "config": {"width": 4, "n_blocks": 1}}, steps=3, val_every=3)
    rp = tmp_path / "r.json"
    rp.write_text(json.dumps(r))
    code = main(["train", "srresnet", "--data", str(shard_dir), "--out", str(tmp_path / "run"),
                 "--recipe", str(rp), "--no-progress", "--export", str(tmp_path / "w" / "sr")])
    assert code == 0
    out = capsys.readouterr().out
    assert "srresnet: finished at step 3" in out and "exported" in out
    assert (tmp_path / "w" / "sr.safetensors").exists() and (tmp_path / "w" / "sr.json").exists()
