"""Tests of astro_enhance.training: data normalisation, losses, a tiny run, resume, export."""

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astro_enhance.normalize import asinh_stretch, estimate_noise  # noqa: E402
from astro_enhance.training import (AdaptiveSwitcher, ShardDataset, augment,  # noqa: E402
                                    load_recipe, synthetic_shard, train_gan, train_unet)
from astro_enhance.training.losses import (adversarial_loss, critic_loss,  # noqa: E402
                                           flux_loss, pixel_loss)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    synthetic_shard(d, n=8, size=64, rng=np.random.default_rng(0))
    return d


def tiny_recipe(**kw):
    r = load_recipe("unet", overrides=dict(steps=120, patch=32, batch_size=8, log_every=10,
                                           val_every=60, sample_every=120, checkpoint_every=40,
                                           warmup=5, lr=3e-3, threads=1, ema=0.9,
                                           flux_weight=0.1))
    r["model"] = {"architecture": "unet", "config": {"width": 8, "depth": 2}}
    r.update(kw)
    return r


def test_normalisation_matches_inference(shard_dir):
    ds = ShardDataset(shard_dir, targets=("truth",))
    with np.load(next(shard_dir.glob("*.npz"))) as z:
        raw, truth = z["input"][3], z["truth"][3]
    sigma = estimate_noise(raw)   # on the whole input image, as TorchEnhancer does
    assert ds.sigma[3] == pytest.approx(sigma)
    np.testing.assert_array_equal(ds.x[3], asinh_stretch(raw, sigma))
    np.testing.assert_array_equal(ds.y["truth"][3], asinh_stretch(truth, sigma))


def test_sample_shapes_and_seeded(shard_dir):
    ds = ShardDataset(shard_dir)
    a = ds.sample(5, 24, np.random.default_rng(1))
    b = ds.sample(5, 24, np.random.default_rng(1))
    assert a["input"].shape == a["truth"].shape == a["decals"].shape == (5, 1, 24, 24)
    np.testing.assert_array_equal(a["input"], b["input"])
    assert a["input"].dtype == np.float32


def test_augment_same_transform_on_all():
    rng = np.random.default_rng(3)
    a = np.arange(16.0).reshape(4, 4)
    for _ in range(8):
        x, y = augment([a, a.copy()], rng)
        np.testing.assert_array_equal(x, y)
        assert sorted(x.ravel()) == sorted(a.ravel())


def test_nan_input_is_filled(tmp_path):
    f = synthetic_shard(tmp_path, n=2, size=32, rng=np.random.default_rng(1))
    with np.load(f) as z:
        d = dict(z)
    d["input"][0, :4] = np.nan
    np.savez(f, **d)
    ds = ShardDataset(tmp_path)
    assert np.isfinite(ds.x[0]).all()
    assert not ds.valid[0][:4].any() and ds.valid[0][4:].all()


def test_losses():
    t = torch.zeros(2, 1, 16, 16)
    t[:, :, 6:10, 6:10] = 2.0
    assert pixel_loss(t, t).item() == 0
    assert pixel_loss(t + 1, t, kind="l2").item() == pytest.approx(1.0)
    # flux loss: zero for equal images, grows when flux is lost
    assert flux_loss(t, t).item() == pytest.approx(0.0, abs=1e-7)
    less = t.clone()
    less[:, :, 6:10, 6:10] = 1.9
    more = t.clone()
    more[:, :, 6:10, 6:10] = 1.5
    assert 0 < flux_loss(less, t).item() < flux_loss(more, t).item()
    lg = torch.full((2, 1, 4, 4), 3.0)
    assert adversarial_loss(lg, real=True).item() < adversarial_loss(-lg, real=True).item()
    assert critic_loss(lg, -lg).item() < critic_loss(-lg, lg).item()
    assert critic_loss(lg, -lg, kind="hinge").item() == 0.0
    with pytest.raises(ValueError):
        pixel_loss(t, t, kind="l3")


def test_switcher():
    s = AdaptiveSwitcher(critic_thresh=0.5, gen_thresh=0.8, max_run=3, smooth=0.0)
    assert s.side == "critic"
    assert s.update(0.9) == "critic"
    assert s.update(0.4) == "generator"
    assert s.update(1.0) == "generator"
    assert s.update(1.0) == "generator"
    assert s.update(1.0) == "critic"        # max_run reached
    s2 = AdaptiveSwitcher()
    s2.load_state_dict(s.state_dict())
    assert s2.side == "critic"


def _loss_rows(path):
    with open(path, newline="") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


def test_tiny_unet_run_reduces_loss(shard_dir, tmp_path):
    r = tiny_recipe()
    out = tmp_path / "run"
    res = train_unet(shard_dir, out, recipe=r, progress=False)
    assert res["finished"] and res["step"] == 120
    losses = _loss_rows(out / "loss_log.csv")
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:2])
    assert res["val"]["psnr_gain"] > 0.5          # better than the input itself
    assert (out / "samples" / "step_000120.png").exists()
    assert (out / "model.safetensors").exists()


def test_budget_stop_and_resume_is_deterministic(shard_dir, tmp_path):
    from safetensors.torch import load_file
    r = tiny_recipe(steps=40, checkpoint_every=20, val_every=1000, sample_every=1000)
    train_unet(shard_dir, tmp_path / "full", recipe=r, progress=False)
    part = tmp_path / "part"
    zero = train_unet(shard_dir, part, recipe=r, minutes=0.0, progress=False)
    assert zero["step"] == 0 and not zero["finished"]
    half = train_unet(shard_dir, part, recipe=r, max_steps=20, resume=True, progress=False)
    assert half["step"] == 20 and not half["finished"]
    res = train_unet(shard_dir, part, recipe=r, resume=True, progress=False)
    assert res["step"] == 40 and res["finished"]
    with open(part / "loss_log.csv") as fh:
        assert sum(1 for _ in fh) == 1 + 4     # header + 4 logged rows, appended on resume
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(part / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_resume_without_checkpoint_errors(shard_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="--resume"):
        train_unet(shard_dir, tmp_path / "none", recipe=tiny_recipe(), resume=True,
                   progress=False)


def test_tiny_gan_run_and_export_roundtrip(shard_dir, tmp_path):
    r = tiny_recipe(steps=30)
    train_unet(shard_dir, tmp_path / "u", recipe=r, progress=False)
    g = load_recipe("gan", overrides=dict(steps=30, patch=32, batch_size=4, critic_pretrain=10,
                                          log_every=10, val_every=30, sample_every=30,
                                          checkpoint_every=10, threads=1))
    g["model"] = r["model"]
    g["critic"] = {"architecture": "patch_critic", "config": {"width": 8, "n_layers": 2}}
    g["switch"] = dict(g["switch"], max_run=5)
    res = train_gan(shard_dir, tmp_path / "g", recipe=g, init=tmp_path / "u", progress=False)
    assert res["step"] == 30 and "hf_ratio" in res["val"]
    with open(tmp_path / "g" / "loss_log.csv", newline="") as fh:
        sides = {row["side"] for row in csv.DictReader(fh)}
    assert "critic" in sides and "generator" in sides

    from astro_enhance import weights
    from astro_enhance.enhancers import TorchEnhancer
    from astro_enhance.training import export_weights
    path = export_weights(tmp_path / "g", tmp_path / "export" / "gan")
    state, side = weights.load_weights(path)
    assert side["architecture"] == "unet" and side["training"]["steps"] == 30
    assert side["data"]["seeds"] == [0, 7]
    assert len(side["training"]["loss_log"]) >= 2
    assert side["info"]["size_multiple"] == 4
    p30 = export_weights(tmp_path / "g", tmp_path / "export" / "gan30", step=30)
    assert weights.load_weights(p30)[1]["training"]["steps"] == 30
    with pytest.raises(FileNotFoundError, match="no snapshot"):
        export_weights(tmp_path / "g", tmp_path / "export" / "x", step=7)
    e = TorchEnhancer.from_weights(path, device="cpu")
    assert e.info.name == "gan" and e.info.weights_sha256 == side["sha256"]
    img = np.random.default_rng(0).normal(0, 1, (40, 40)).astype(np.float32)
    out = e.enhance(img)
    assert out.shape == img.shape and np.isfinite(out).all()


def _hdu(data, scale):
    from astropy.io import fits
    from astropy.wcs import WCS
    n = data.shape[0]
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [(n + 1) / 2] * 2
    w.wcs.cdelt = [-scale / 3600, scale / 3600]
    h = fits.PrimaryHDU(data, header=w.to_header())
    h.header["BUNIT"] = "nanomaggy"
    return h


def test_fits_pair_dataset_aligns_by_wcs():
    from astro_enhance.training import FitsPairDataset
    rng = np.random.default_rng(0)
    inp = rng.normal(0, 1, (48, 48)).astype(np.float32)
    inp[22:26, 22:26] += 50                      # source at the centre of both images
    tgt = rng.normal(0, 0.3, (72, 72)).astype(np.float32)
    tgt[33:39, 33:39] += 20
    h_in, h_t = _hdu(inp, 0.396), _hdu(tgt, 0.262)
    before = h_in.data.copy()
    ds = FitsPairDataset([(h_in, h_t)])
    np.testing.assert_array_equal(h_in.data, before)     # input not modified
    x, t = ds.x[0], ds.y["target"][0]
    assert x.shape == t.shape and x.shape[0] > 48         # on the DECaLS grid
    # the source lands on the same pixel in input and target
    def centroid(a):
        yy, xx = np.nonzero(a > 0.5 * a.max())
        return yy.mean(), xx.mean()
    assert centroid(x) == pytest.approx(centroid(t), abs=0.5)
    b = ds.sample(2, 32, np.random.default_rng(0))
    assert b["target"].shape == (2, 1, 32, 32)


def test_gan_content_target_changes_the_generator_update(shard_dir, tmp_path):
    """data.content_target gives the content term its own target (the noiseless truth)
    while the critic still sees the noisy DECaLS-like images as 'real'."""
    r = tiny_recipe(steps=10)
    train_unet(shard_dir, tmp_path / "u", recipe=r, progress=False)

    def run(name, **data):
        g = load_recipe("gan", overrides=dict(steps=8, patch=32, batch_size=4,
                                              critic_pretrain=2, log_every=4, val_every=8,
                                              sample_every=8, checkpoint_every=8, threads=1))
        g["model"] = r["model"]
        g["critic"] = {"architecture": "patch_critic", "config": {"width": 8, "n_layers": 2}}
        g["data"] = dict(g["data"], **data)
        train_gan(shard_dir, tmp_path / name, recipe=g, init=tmp_path / "u", progress=False)
        return weights.load_weights(export_weights(tmp_path / name, tmp_path / "x" / name))[0]

    from astro_enhance import weights
    from astro_enhance.training import export_weights

    a = run("same")
    b = run("truth", content_target="truth")
    c = run("same2")
    assert all(np.array_equal(a[k], c[k]) for k in a)        # seeded: reproducible
    assert any(not np.array_equal(a[k], b[k]) for k in a)    # the option took effect


def test_texture_gan_trains_with_noise_of_a_random_depth_and_exports_it(shard_dir, tmp_path):
    """recipe["texture"]: critic real = truth + DECaLS noise, fake = output + noise of the
    same depth; the chi term is logged; the sidecar tells the enhancer to add texture."""
    r = tiny_recipe(steps=10)
    train_unet(shard_dir, tmp_path / "u", recipe=r, progress=False)
    g = load_recipe("gan_texture", overrides=dict(steps=8, patch=32, batch_size=4,
                                                  critic_pretrain=2, log_every=4, val_every=8,
                                                  sample_every=8, checkpoint_every=8,
                                                  threads=1))
    g["model"] = r["model"]
    g["critic"] = {"architecture": "patch_critic", "config": {"width": 8, "n_layers": 2}}
    g["switch"] = dict(g["switch"], max_run=2)
    train_gan(shard_dir, tmp_path / "g", recipe=g, init=tmp_path / "u", progress=False)
    with open(tmp_path / "g" / "loss_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert "chi" in rows[0] and any(row["chi"] for row in rows)

    from astro_enhance import weights
    from astro_enhance.enhancers import TorchEnhancer
    from astro_enhance.training import export_weights
    path = export_weights(tmp_path / "g", tmp_path / "export" / "gtex")
    side = weights.load_weights(path)[1]
    assert side["info"]["extra"]["texture"] == "decals"
    enh = TorchEnhancer.from_weights(path, device="cpu")
    assert enh.texture == "decals"


def test_texture_batch_noise_has_the_drawn_depth():
    from astro_enhance.enhancers.texture import decals_noise_model
    from astro_enhance.training.loops import _add_texture_t, _texture_batch

    class _DS:
        meta = {"band": np.array(["r", "g"])}
        softening = 3.0

    batch = {"index": np.array([0, 1]), "sigma": np.array([0.02, 0.02]),
             "input": np.zeros((2, 1, 128, 128), np.float32)}
    tex = _texture_batch(batch, _DS(), {"depth_range": [2.0, 2.0]}, np.random.default_rng(0))
    out = _add_texture_t(torch.zeros(2, 1, 128, 128), tex)
    lin = (3.0 * 0.02 * torch.sinh(out)).numpy()
    for i, band in enumerate("rg"):
        sig, _ = decals_noise_model(band)
        assert np.std(lin[i]) == pytest.approx(2 * sig, rel=0.05)
    # the second draw (a fake) differs from the first (the real image)
    again = _add_texture_t(torch.zeros(2, 1, 128, 128), tex)
    assert not torch.equal(out, again)
