"""Tile plans, weight windows and the tiled runner (pure numpy + a tiny torch net)."""

import numpy as np
import pytest
import torch

from astro_enhance.exceptions import AstroEnhanceWarning, DeviceError, EnhancerError
from astro_enhance.tiling import (EPS, pad_to_multiple, plan_tiles, run_tiled, tile_window)


def _coverage(plan):
    cov = np.zeros(plan.shape, int)
    for _, _, y0, y1, x0, x1 in plan.tiles():
        cov[y0:y1, x0:x1] += 1
    return cov


@pytest.mark.parametrize("shape,tile,overlap", [((1024, 1024), 256, 32), ((300, 257), 64, 16),
                                                 ((50, 700), 128, 32), ((7, 9), 256, 32),
                                                 ((129, 129), 128, 0)])
def test_plan_covers_every_pixel_with_positive_weight(shape, tile, overlap):
    plan = plan_tiles(shape, tile_size=tile, overlap=overlap)
    assert (_coverage(plan) >= 1).all()
    norm = np.outer(plan.norm_y, plan.norm_x)
    assert norm.min() >= 0.999  # at least one tile with full weight (or complementary ramps)
    ty, tx = plan.tile_shape
    for _, _, y0, y1, x0, x1 in plan.tiles():
        assert 0 <= y0 and y1 <= shape[0] and 0 <= x0 and x1 <= shape[1]
        assert (y1 - y0, x1 - x0) == (ty, tx)
    # neighbours overlap by at least `overlap`
    for starts in (plan.starts_y, plan.starts_x):
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_plan_starts_and_edges():
    plan = plan_tiles((1024, 1024), tile_size=256, overlap=32)
    assert plan.starts_x == [0, 224, 448, 672, 768]
    assert plan.n_tiles == 25
    # first tile is flat at the image border, ramps at its shared side
    w = plan.windows_x[0]
    assert w[0] == 1.0 and w[-1] == EPS
    assert plan.windows_x[-1][-1] == 1.0 and plan.windows_x[-1][0] == EPS


def test_window_shape():
    w = tile_window(64, overlap=32)
    assert w.min() > 0 and w.max() == 1.0
    assert np.all(w[:8] == EPS) and np.all(w[-8:] == EPS)       # margin = overlap // 4
    assert np.all(np.diff(w[:32]) >= 0) and np.all(np.diff(w[-32:]) <= 0)
    assert np.all(w[32 - 8:64 - 24] == 1.0)
    # complementary ramps: two neighbours overlapping by exactly `overlap` sum to ~1
    a = tile_window(64, overlap=32, at_start=True)
    b = tile_window(64, overlap=32, at_end=True)
    s = a[32:] + b[:32]
    assert np.allclose(s, 1.0, atol=1e-6)
    assert np.array_equal(tile_window(10, overlap=4, at_start=True, at_end=True), np.ones(10))


def test_plan_rejects_bad_sizes():
    with pytest.raises(ValueError, match="larger than overlap"):
        plan_tiles((500, 500), tile_size=32, overlap=32)
    with pytest.raises(ValueError, match="size multiple"):
        plan_tiles((500, 500), tile_size=4, overlap=0, size_multiple=8)
    # tile rounded down to the size multiple
    assert plan_tiles((500, 500), tile_size=100, overlap=8, size_multiple=16).tile_shape == \
        (96, 96)


def test_pad_to_multiple_reflects():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    p, pads = pad_to_multiple(a, 4)
    assert p.shape == (4, 4) and pads == (1, 0)
    assert np.array_equal(p[3], a[1])          # reflection, not zeros
    same, pads = pad_to_multiple(a[:, :4], 1)
    assert same is not None and pads == (0, 0)
    tiny, _ = pad_to_multiple(np.ones((1, 1)), 8)   # larger pad than the data still works
    assert tiny.shape == (8, 8)


def test_identity_and_pointwise_functions_are_exact():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(300, 257)).astype(np.float32)
    before = img.copy()
    out = run_tiled(img, lambda b: b, tile_size=64, overlap=16)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_allclose(out, img, rtol=1e-6, atol=1e-6)
    out = run_tiled(img, lambda b: b ** 2 + 1, tile_size=64, overlap=16, batch_size=3)
    np.testing.assert_allclose(out, img ** 2 + 1, rtol=1e-5)
    np.testing.assert_array_equal(img, before)   # input untouched


def test_size_multiple_padding_and_channels():
    rng = np.random.default_rng(2)
    img = rng.normal(size=(2, 37, 45)).astype(np.float32)
    shapes = []

    def fn(b):
        shapes.append(b.shape)
        assert b.shape[2] % 16 == 0 and b.shape[3] % 16 == 0
        return np.concatenate([b, b[:, :1] * 3], axis=1)   # 2 -> 3 channels

    out = run_tiled(img, fn, tile_size=None, size_multiple=16)
    assert shapes == [(1, 2, 48, 48)]
    assert out.shape == (3, 37, 45)
    np.testing.assert_allclose(out[:2], img, rtol=1e-6)
    np.testing.assert_allclose(out[2], 3 * img[0], rtol=1e-6)
    # 2-D input with one output channel comes back 2-D
    assert run_tiled(img[0], lambda b: b, tile_size=32, overlap=8, size_multiple=8).shape == \
        (37, 45)


def test_wrong_output_shape_is_reported():
    with pytest.raises(EnhancerError, match="same-grid models"):
        run_tiled(np.zeros((40, 40), np.float32), lambda b: b[:, :, ::2, ::2], tile_size=32,
                  overlap=8)


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    # Receptive field 7 px (radius 3) < overlap // 4 = 8.
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.GELU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.GELU(),
                              torch.nn.Conv2d(8, 1, 3, padding=1)).eval()

    def fn(b):
        with torch.inference_mode():
            return net(torch.from_numpy(b)).numpy()
    return fn


def test_tiled_equals_untiled_acceptance():
    """Tile 256 / overlap 32 on 1024x1024 agrees with the untiled run to 1e-4 of the range."""
    fn = _tiny_net()
    rng = np.random.default_rng(3)
    img = rng.normal(size=(1024, 1024)).astype(np.float32)
    img[300:340, 500:560] += 20.0      # some structure across tile boundaries
    full = fn(img[None, None])[0, 0]
    tiled = run_tiled(img, fn, tile_size=256, overlap=32, batch_size=4)
    span = float(full.max() - full.min())
    assert np.abs(tiled - full).max() <= 1e-4 * span


def test_no_seams_without_margin_would_fail():
    """Control: plain cropping-free averaging with no margin would show the tile edges."""
    fn = _tiny_net()
    rng = np.random.default_rng(4)
    img = rng.normal(size=(256, 256)).astype(np.float32)
    full = fn(img[None, None])[0, 0]
    tiled = run_tiled(img, fn, tile_size=64, overlap=4)   # margin 1 px < radius 3
    span = float(full.max() - full.min())
    assert np.abs(tiled - full).max() > 1e-4 * span       # the test above can fail
    tiled = run_tiled(img, fn, tile_size=64, overlap=32)
    assert np.abs(tiled - full).max() <= 1e-4 * span


class _FakeOOM:
    """Callable raising torch.cuda.OutOfMemoryError for tiles larger than ``limit``."""

    def __init__(self, limit):
        self.limit = limit
        self.sizes = []

    def __call__(self, b):
        self.sizes.append(b.shape[-1])
        if b.shape[-1] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return b * 2


def test_oom_retries_with_halved_tiles():
    img = np.random.default_rng(5).normal(size=(300, 300)).astype(np.float32)
    fn = _FakeOOM(limit=128)
    with pytest.warns(AstroEnhanceWarning, match="out of memory with tiles of 256 px; "
                                                 "retrying with 128 px"):
        out = run_tiled(img, fn, tile_size=256, overlap=16)
    np.testing.assert_allclose(out, 2 * img, rtol=1e-6)
    assert fn.sizes[0] == 256 and set(fn.sizes[1:]) == {128}


def test_oom_untiled_falls_back_to_tiles():
    img = np.ones((200, 120), np.float32)
    fn = _FakeOOM(limit=64)
    with pytest.warns(AstroEnhanceWarning, match="out of memory"):
        out = run_tiled(img, fn, tile_size=None, overlap=8)
    np.testing.assert_allclose(out, 2.0, rtol=1e-6)
    assert fn.sizes[0] == 120 and fn.sizes[-1] <= 64


def test_oom_gives_up_with_a_clear_error():
    fn = _FakeOOM(limit=0)
    with pytest.warns(AstroEnhanceWarning), pytest.raises(DeviceError, match="out of memory "
                                                                               "even with"):
        run_tiled(np.ones((256, 256), np.float32), fn, tile_size=256, overlap=16,
                  batch_size=2)


def test_other_errors_propagate():
    def boom(b):
        raise KeyError("not an OOM")
    with pytest.raises(KeyError):
        run_tiled(np.ones((64, 64), np.float32), boom, tile_size=32, overlap=8)


def test_progress_bar(capsys):
    out = run_tiled(np.ones((64, 64), np.float32), lambda b: b, tile_size=32, overlap=8,
                    progress=True)
    assert np.allclose(out, 1.0)
    assert "tiles" in capsys.readouterr().err
