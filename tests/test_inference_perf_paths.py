"""The fast paths of neural inference give the results of the plain ones.

Channels-last tensors, the in-place fill + stretch of a tile batch, balanced tiles, the CPU
tile/batch defaults and the optional ``torch.compile`` must not change what an enhancer
returns beyond float rounding (1e-5 relative). Speed itself is measured in
``benchmarks/bench_enhancers.py``, not asserted here.
"""

import warnings

import numpy as np
import pytest
import torch

from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer
from astro_enhance.enhancers.torch_enhancer import CPU_BATCH_PIXELS, CPU_TILE_SIZE
from astro_enhance.exceptions import AstroEnhanceWarning, EnhancerError
from astro_enhance.normalize import asinh_stretch, asinh_unstretch

SOFT = 3.0


def _unet(seed=0):
    """A small U-Net with a non-zero head (a fresh one is the identity)."""
    from astro_enhance.models.unet import UNet

    torch.manual_seed(seed)
    net = UNet(width=8, depth=2)
    with torch.no_grad():
        net.head.weight.normal_(0, 0.05)
        net.head.bias.fill_(0.01)
    return net.eval()


def _image(shape=(150, 170), seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = rng.normal(0.0, 0.05, shape)
    img += 30.0 * np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2) / 200.0)
    img += 200.0 * np.exp(-((yy - 20) ** 2 + (xx - 120) ** 2) / 3.0)
    img = img.astype(np.float32)
    img[10:14, 30:40] = np.nan
    return img


def _info(**kw):
    kw.setdefault("tile_size", 64)
    kw.setdefault("overlap", 16)
    kw.setdefault("size_multiple", 4)
    return EnhancerInfo.from_dict(kw, name="perf", kind="neural")


def _close(a, b, sigma):
    """|a - b| <= 1e-5 (|b| + k sigma): 1e-5 relative, with the stretch's linear scale."""
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = np.isfinite(b)
    err = np.abs(a[ok] - b[ok]) / (np.abs(b[ok]) + SOFT * sigma)
    assert err.max() <= 1e-5, err.max()


def test_channels_last_matches_nchw():
    net = _unet()
    img = _image()
    nhwc = TorchEnhancer(net, _info(), device="cpu", channels_last=True, tile_size=64)
    out_cl = nhwc.enhance(img, noise=0.05)
    assert nhwc.channels_last and net.stem.weight.is_contiguous(
        memory_format=torch.channels_last)
    nchw = TorchEnhancer(net, _info(), device="cpu", channels_last=False, tile_size=64)
    assert not nchw.channels_last and net.stem.weight.is_contiguous()
    _close(out_cl, nchw.enhance(img, noise=0.05), 0.05)
    # "auto" on the CPU: on for convolutional networks, off for others
    assert TorchEnhancer(net, _info(), device="cpu").channels_last
    assert not TorchEnhancer(torch.nn.Identity(), _info(), device="cpu").channels_last
    with pytest.raises(EnhancerError, match="channels_last"):
        TorchEnhancer(net, _info(), device="cpu", channels_last="yes")


def test_single_tile_is_exactly_the_reference_pipeline():
    """fill -> asinh_stretch -> model -> asinh_unstretch -> NaN, bit for bit (one tile,
    no blending), for the in-place stretch of the batch."""
    net = _unet(3)
    img = _image((96, 120))
    enh = TorchEnhancer(net, _info(), device="cpu", channels_last=False, tile_size=0)
    got = enh.enhance(img, noise=0.05)
    filled = np.where(np.isfinite(img), img, np.float32(0))
    y = asinh_stretch(filled, 0.05, softening=SOFT)
    with torch.inference_mode():
        r = net(torch.from_numpy(y[None, None].copy())).numpy()[0, 0]
    want = asinh_unstretch(r, 0.05, softening=SOFT)
    want[~np.isfinite(img)] = np.nan
    np.testing.assert_array_equal(got, want)


def test_input_reaches_the_model_without_copies():
    """A single-band batch is handed to the model as a view of the tiler's numpy batch,
    channels-last already, float32."""
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            seen.append((x.dtype, x.is_contiguous(memory_format=torch.channels_last),
                         torch.is_inference_mode_enabled()))
            return self.conv(x)

    enh = TorchEnhancer(Probe(), _info(), device="cpu")
    batch = np.random.default_rng(0).normal(size=(2, 1, 64, 64)).astype(np.float32)
    ptr = batch.__array_interface__["data"][0]
    real = torch.from_numpy
    ptrs = []

    def from_numpy(a):
        t = real(a)
        ptrs.append(t.data_ptr())
        return t
    torch.from_numpy, saved = from_numpy, torch.from_numpy
    try:
        enh._predict(batch, None)
    finally:
        torch.from_numpy = saved
    assert ptrs == [ptr]
    assert seen == [(torch.float32, True, True)]


def test_cpu_tiling_defaults_and_explicit_values():
    net = _unet()
    enh = TorchEnhancer(net, _info(tile_size=256), device="cpu")
    assert enh.tile_size == 256 and enh.batch_size == 4        # the attributes as given
    tile, batch = enh.run_tiling()
    assert tile == CPU_TILE_SIZE and batch == max(1, CPU_BATCH_PIXELS // CPU_TILE_SIZE ** 2)
    assert TorchEnhancer(net, _info(tile_size=2048), device="cpu").run_tiling() == (2048, 1)
    assert TorchEnhancer(net, _info(tile_size=256, cpu_tile_size=512),
                         device="cpu").run_tiling() == (512, 4)
    assert TorchEnhancer(net, _info(), device="cpu", tile_size=128,
                         batch_size=3).run_tiling() == (128, 3)
    assert TorchEnhancer(net, _info(), device="cpu", tile_size=128).run_tiling() == (128, 64)
    assert TorchEnhancer(net, _info(), device="cpu", tile_size=0).run_tiling() == (None, 1)
    enh = TorchEnhancer(net, _info(), device="cpu")
    enh.tile_size = 96                     # set after construction: used as it is
    assert enh.run_tiling()[0] == 96


def test_default_cpu_tiling_matches_small_tiles_within_tiling_tolerance():
    """The large default CPU tile gives the untiled result; small tiles agree with it to the
    tiling tolerance (1e-4 of the range in the stretched space, as in test_tiling)."""
    net = _unet(5)
    img = _image((300, 260))
    default = TorchEnhancer(net, _info(), device="cpu").enhance(img, noise=0.05)
    untiled = TorchEnhancer(net, _info(), device="cpu", tile_size=0).enhance(img, noise=0.05)
    np.testing.assert_array_equal(default, untiled)
    small = TorchEnhancer(net, _info(overlap=32), device="cpu", tile_size=96).enhance(
        img, noise=0.05)
    ys, yu = (asinh_stretch(np.nan_to_num(a), 0.05) for a in (small, untiled))
    assert np.abs(ys - yu).max() <= 1e-4 * float(yu.max() - yu.min())


def test_compile_failure_falls_back(monkeypatch):
    net = _unet()
    img = _image((64, 64))
    ref = TorchEnhancer(net, _info(), device="cpu").enhance(img, noise=0.05)

    def broken_compile(model, **kw):
        raise RuntimeError("no C++ compiler")
    monkeypatch.setattr(torch, "compile", broken_compile)
    enh = TorchEnhancer(net, _info(), device="cpu", compile=True)
    with pytest.warns(AstroEnhanceWarning, match="torch.compile failed.*uncompiled"):
        out = enh.enhance(img, noise=0.05)
    np.testing.assert_array_equal(out, ref)
    assert enh.compile is False

    def compile_fails_at_run(model, **kw):
        def run(x):
            raise RuntimeError("inductor: backend compiler failed")
        return run
    monkeypatch.setattr(torch, "compile", compile_fails_at_run)
    enh = TorchEnhancer(net, _info(), device="cpu", compile=True)
    with pytest.warns(AstroEnhanceWarning, match="uncompiled"):
        out = enh.enhance(img, noise=0.05)
    np.testing.assert_array_equal(out, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(enh.enhance(img, noise=0.05), ref)   # warned once


def test_threads_option_validated_and_applied(monkeypatch):
    net = _unet()
    with pytest.raises(EnhancerError, match="threads"):
        TorchEnhancer(net, _info(), device="cpu", threads=0)
    calls = []
    import astro_enhance.device as dev

    monkeypatch.setattr(dev, "inference_threads", lambda n=None: calls.append(n) or 1)
    TorchEnhancer(net, _info(), device="cpu", threads=1).enhance(_image((40, 40)), noise=0.05)
    TorchEnhancer(net, _info(), device="cpu").enhance(_image((40, 40)), noise=0.05)
    assert calls == [1, None]
