"""Tile plans, weight windows and the tiled runner (pure numpy + a tiny torch net)."""

import numpy as np
import pytest
import torch

from astro_enhance.exceptions import (AstroEnhanceWarning, DeviceError, EnhancerError,
                                      InputError)
from astro_enhance.tiling import (EPS, pad_to_multiple, plan_tiles, run_tiled, tile_window)


def _coverage(plan):
    cov = np.zeros(plan.shape, int)
    for _, _, y0, y1, x0, x1 in plan.tiles():
        cov[y0:y1, x0:x1] += 1
    return cov


@pytest.mark.parametrize("shape,tile,overlap", [
    ((1024, 1024), 256, 32), ((300, 257), 64, 16), ((50, 700), 128, 32), ((7, 9), 256, 32),
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
    with pytest.warns(AstroEnhanceWarning), \
            pytest.raises(DeviceError, match="out of memory even with"):
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


# --- strip-by-strip blending, out=, memory-mapped input and output ---------------------------

def _reference_run(img, fn, plan):
    """The plain algorithm: one full-size accumulator, normalised at the end."""
    ty, tx = plan.tile_shape
    acc = None
    for iy, ix, y0, y1, x0, x1 in plan.tiles():
        tile = img[None, :, y0:y1, x0:x1].astype(np.float32)
        ph, pw = plan.padded_shape[0] - ty, plan.padded_shape[1] - tx
        if ph or pw:
            tile = np.pad(tile, [(0, 0), (0, 0), (0, ph), (0, pw)], mode="reflect")
        r = np.asarray(fn(np.ascontiguousarray(tile)))[0]
        if acc is None:
            acc = np.zeros((r.shape[0],) + plan.shape, np.float32)
        w = np.outer(plan.windows_y[iy], plan.windows_x[ix]).astype(np.float32)
        acc[:, y0:y1, x0:x1] += r[:, :ty, :tx] * w
    return acc * (1.0 / np.outer(plan.norm_y, plan.norm_x)).astype(np.float32)


@pytest.mark.parametrize("shape,tile,overlap,mult,batch", [
    ((2, 150, 129), 32, 8, 1, 3), ((1, 200, 72), 64, 16, 8, 5),
    ((2, 60, 200), 24, 8, 1, 7), ((1, 37, 45), None, 0, 16, 1), ((1, 64, 64), 64, 8, 1, 2)])
def test_strips_give_the_full_accumulator_result(shape, tile, overlap, mult, batch):
    """Row strips (batches spanning tile rows included) add the same terms in the same order
    as one full-size accumulator: the results are equal to float32 rounding."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(shape[0], 4, 3, padding=1), torch.nn.GELU(),
                              torch.nn.Conv2d(4, 3, 3, padding=1)).eval()

    def fn(b):
        with torch.inference_mode():
            return net(torch.from_numpy(b)).numpy()

    img = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    ref = _reference_run(img, fn, plan_tiles(shape[1:], tile_size=tile, overlap=overlap,
                                             size_multiple=mult))
    out = run_tiled(img, fn, tile_size=tile, overlap=overlap, size_multiple=mult,
                    batch_size=batch)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_postprocess_sees_each_row_once_in_strips():
    img = np.random.default_rng(8).normal(size=(500, 90)).astype(np.float32)
    seen = []

    def post(block, r0, r1):
        assert block.shape == (1, r1 - r0, 90) and block.dtype == np.float32
        seen.append((r0, r1))
        block *= 10.0

    out = run_tiled(img, lambda b: b, tile_size=64, overlap=16, postprocess=post)
    np.testing.assert_allclose(out, 10 * img, rtol=1e-6, atol=1e-6)
    rows = [r for r0, r1 in seen for r in range(r0, r1)]
    assert rows == list(range(500))                      # every row once, top to bottom
    assert len(seen) > 5 and max(r1 - r0 for r0, r1 in seen) <= 64   # strips, not the image
    # a replacement must keep the block's shape
    with pytest.raises(EnhancerError, match="postprocess returned"):
        run_tiled(img, lambda b: b, tile_size=64, overlap=16,
                  postprocess=lambda block, r0, r1: block[:, :1])


def test_out_memmap_and_errors(tmp_path):
    rng = np.random.default_rng(9)
    img = rng.normal(size=(2, 200, 150)).astype(np.float32)

    def fn(b):                  # 2 -> 3 bands
        return np.concatenate([b, b[:, :1] ** 2], axis=1)
    ref = run_tiled(img, fn, tile_size=64, overlap=16)
    mm = np.memmap(tmp_path / "o.dat", dtype=np.float32, mode="w+", shape=(3, 200, 150))
    assert run_tiled(img, fn, tile_size=64, overlap=16, out=mm) is mm
    np.testing.assert_array_equal(mm, ref)
    del mm
    np.testing.assert_array_equal(
        np.fromfile(tmp_path / "o.dat", np.float32).reshape(3, 200, 150), ref)   # on disk
    # 2-D out for one output band, big-endian float32 (FITS) accepted
    big = np.zeros((200, 150), ">f4")
    assert run_tiled(img[0], lambda b: b * 2, tile_size=64, overlap=16, out=big) is big
    np.testing.assert_allclose(big, 2 * img[0], rtol=1e-6)
    with pytest.raises(ValueError, match="float32"):
        run_tiled(img[0], lambda b: b, tile_size=64, overlap=16, out=np.zeros((200, 150)))
    with pytest.raises(ValueError, match="shape"):
        run_tiled(img[0], lambda b: b, tile_size=64, overlap=16,
                  out=np.zeros((150, 200), np.float32))
    ro = np.zeros((200, 150), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        run_tiled(img[0], lambda b: b, tile_size=64, overlap=16, out=ro)
    with pytest.raises(EnhancerError, match="band"):
        run_tiled(img, fn, tile_size=64, overlap=16, out=np.zeros((2, 200, 150), np.float32))


def test_no_full_size_temporary(tmp_path):
    """With a memory-mapped input and out, numpy allocates only strip-sized arrays: the
    traced peak hardly changes when the image gets 4x taller."""
    import tracemalloc

    nx = 512
    peaks = {}
    for ny in (500, 2000):          # 1 MB and 4 MB images
        src = np.memmap(tmp_path / f"in{ny}.dat", dtype=np.float32, mode="w+", shape=(ny, nx))
        src[:] = np.random.default_rng(10).normal(size=(ny, nx))
        src.flush()
        src = np.memmap(tmp_path / f"in{ny}.dat", dtype=np.float32, mode="r", shape=(ny, nx))
        dst = np.memmap(tmp_path / f"out{ny}.dat", dtype=np.float32, mode="w+",
                        shape=(ny, nx))
        tracemalloc.start()
        try:
            run_tiled(src, lambda b: b * 2, tile_size=32, overlap=8, batch_size=2, out=dst)
            peaks[ny] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        np.testing.assert_allclose(dst, 2 * src, rtol=1e-6)
    image = 2000 * nx * 4
    assert peaks[2000] < 0.25 * image, peaks   # a full-size accumulator alone would be 1.0
    assert peaks[2000] - peaks[500] < 0.05 * (image - 500 * nx * 4), peaks


def _mapped_rss_kib(array):
    """Resident KiB of the mapping that holds ``array`` (Linux /proc/self/smaps)."""
    addr = array.__array_interface__["data"][0]
    rss, inside = None, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                lo, hi = (int(v, 16) for v in head[0].split("-"))
                inside = lo <= addr < hi
            elif inside and head[0] == "Rss:":
                rss = int(head[1])
    return rss


def test_pages_of_memory_maps_are_released(tmp_path):
    import sys as _sys

    if not _sys.platform.startswith("linux"):
        pytest.skip("page release uses Linux madvise and /proc/self/smaps")
    ny, nx = 2048, 1024       # 8 MiB each
    src = np.memmap(tmp_path / "in.dat", dtype=np.float32, mode="w+", shape=(ny, nx))
    src[:] = 1.5
    src.flush()
    del src
    src = np.memmap(tmp_path / "in.dat", dtype=np.float32, mode="r", shape=(ny, nx))
    dst = np.memmap(tmp_path / "out.dat", dtype=np.float32, mode="w+", shape=(ny, nx))
    run_tiled(src, lambda b: b * 2, tile_size=256, overlap=32, out=dst)
    # Both shared mappings were read / written top to bottom, yet almost nothing stays
    # resident (without the release: 8192 KiB each).
    assert _mapped_rss_kib(src) < 1024
    assert _mapped_rss_kib(dst) < 1024
    dst.flush()
    np.testing.assert_allclose(np.fromfile(tmp_path / "out.dat", np.float32), 3.0,
                               rtol=1e-6)                                  # data kept
    assert np.all(np.fromfile(tmp_path / "in.dat", np.float32) == 1.5)    # input untouched


# --- TorchEnhancer streaming -----------------------------------------------------------------

def _enhancer(**kw):
    from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer

    torch.manual_seed(11)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.GELU(),
                              torch.nn.Conv2d(8, 1, 3, padding=1))
    info = EnhancerInfo("stream", "neural", tile_size=64, overlap=16)
    # explicit: on the CPU the default tile would be CPU_TILE_SIZE and cover these images
    kw.setdefault("tile_size", 64)
    return TorchEnhancer(net, info, device="cpu", **kw)


def _image(shape=(300, 220), seed=12):
    rng = np.random.default_rng(seed)
    img = rng.normal(0.0, 0.02, shape).astype(np.float32)
    ny, nx = shape
    img[ny // 3:ny // 3 + 30, nx // 4:nx // 4 + 30] += 3.0
    img[5:9, :40] = np.nan
    img[2 * ny // 3, nx // 2] = np.inf
    return img


def test_torch_enhance_into_memmap_matches_memory(tmp_path):
    enh = _enhancer()
    img = _image()
    ref = enh.enhance(img)
    path = tmp_path / "in.dat"
    img.tofile(path)
    src = np.memmap(path, dtype=np.float32, mode="r", shape=img.shape)
    dst = np.memmap(tmp_path / "out.dat", dtype=np.float32, mode="w+", shape=img.shape)
    assert enh.enhance(src, out=dst) is dst
    np.testing.assert_array_equal(np.asarray(dst), ref)        # same, NaN included
    assert np.isnan(dst[5:9, :40]).all() and np.isnan(dst[200, 110])
    np.testing.assert_array_equal(np.fromfile(path, np.float32).reshape(img.shape), img)
    # copy-on-write mapping (numpy mode "c"): not modified either
    cow = np.memmap(path, dtype=np.float32, mode="c", shape=img.shape)
    before = np.array(cow)
    enh.enhance(cow, out=dst)
    np.testing.assert_array_equal(np.asarray(cow), before)
    np.testing.assert_array_equal(np.asarray(dst), ref)


def test_torch_enhance_fits_memmap_in_and_out(tmp_path):
    import hashlib

    from astropy.io import fits

    enh = _enhancer()
    img = _image((260, 300), seed=13)
    ref = enh.enhance(img)
    fits.PrimaryHDU(img).writeto(tmp_path / "in.fits")
    fits.PrimaryHDU(np.zeros_like(img)).writeto(tmp_path / "out.fits")
    digest = hashlib.sha256((tmp_path / "in.fits").read_bytes()).hexdigest()
    with fits.open(tmp_path / "in.fits", memmap=True) as hin, \
            fits.open(tmp_path / "out.fits", mode="update", memmap=True) as hout:
        assert hin[0].data.dtype == np.dtype(">f4")
        enh.enhance(hin[0].data, out=hout[0].data)
        np.testing.assert_array_equal(hin[0].data, img)
    assert hashlib.sha256((tmp_path / "in.fits").read_bytes()).hexdigest() == digest
    np.testing.assert_array_equal(fits.getdata(tmp_path / "out.fits"), ref)


def test_torch_enhance_out_checks_and_multiband(tmp_path):
    from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer

    enh = _enhancer()
    img = _image((80, 70))
    with pytest.raises(InputError, match="shape"):
        enh.enhance(img, out=np.zeros((70, 80), np.float32))
    with pytest.raises(InputError, match="float32"):
        enh.enhance(img, out=np.zeros((80, 70), np.float64))
    with pytest.raises(InputError, match="shares memory"):
        work = img.copy()
        enh.enhance(work, out=work)
    with pytest.raises(InputError, match="no finite pixel"):
        enh.enhance(np.full((80, 70), np.nan, np.float32), out=np.zeros((80, 70), np.float32))
    # three bands in, three out: (3, ny, nx) out, NaN restored per band
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    e3 = TorchEnhancer(net, EnhancerInfo("c3", "neural", channels_in=3, channels_out=3,
                                         tile_size=32, overlap=8), device="cpu", tile_size=32)
    cube = np.stack([_image((80, 70), seed=s) for s in (1, 2, 3)])
    cube[1, 50, 50] = np.nan
    out = np.zeros((3, 80, 70), np.float32)
    assert e3.enhance(cube, out=out) is out
    np.testing.assert_array_equal(out, e3.enhance(cube))
    assert np.isnan(out[1, 50, 50]) and np.isfinite(out[0, 50, 50])


def test_torch_noise_estimate_matches_normalize():
    """The streaming noise estimate is the one training uses (exact below 1 Mpx) and the
    base class's block-sampled one above."""
    from astro_enhance.enhancers.base import estimate_noise_bounded
    from astro_enhance.normalize import estimate_noise

    enh = _enhancer()
    for shape in ((300, 220), (1100, 1000)):
        img = _image(shape)
        bad = ~np.isfinite(img)
        filled = np.where(bad, np.float32(0), img)
        got = enh._stream_noise(img[None], None)[0]
        expected = estimate_noise_bounded(filled, mask=bad)
        assert got == expected
        if img.size <= 2 ** 20:
            assert got == estimate_noise(filled, mask=bad)


@pytest.mark.parametrize("shape,tile,overlap,mult", [
    ((1024, 1024), 512, 32, 8), ((2251, 3096), 1024, 32, 8), ((2251, 3096), 256, 32, 8),
    ((300, 257), 64, 16, 1), ((50, 700), 128, 32, 4), ((1000, 1000), 100, 8, 16),
    ((7, 9), 256, 32, 8)])
def test_balanced_plan_covers_with_fewer_pixels(shape, tile, overlap, mult):
    plain = plan_tiles(shape, tile_size=tile, overlap=overlap, size_multiple=mult)
    plan = plan_tiles(shape, tile_size=tile, overlap=overlap, size_multiple=mult, balance=True)
    assert (_coverage(plan) >= 1).all()
    assert np.outer(plan.norm_y, plan.norm_x).min() >= 0.999
    assert plan.n_tiles <= plain.n_tiles
    ty, tx = plan.tile_shape
    assert ty <= plain.tile_shape[0] and tx <= plain.tile_shape[1]
    assert all(t % mult == 0 or t == n for t, n in zip(plan.tile_shape, shape))
    for starts, t in ((plan.starts_y, ty), (plan.starts_x, tx)):
        assert all(b - a <= t - overlap for a, b in zip(starts, starts[1:]))


def test_balanced_plan_layouts():
    plan = plan_tiles((1024, 1024), tile_size=512, overlap=32, size_multiple=8, balance=True)
    assert plan.tile_shape == (368, 368) and plan.n_tiles == 9       # not 9 x 512**2
    plan = plan_tiles((2251, 3096), tile_size=1024, overlap=32, size_multiple=8, balance=True)
    assert plan.tile_shape == (776, 800) and plan.n_tiles == 12
    assert plan.n_tiles * 776 * 800 < 1.07 * 2251 * 3096             # < 7% recomputed


def test_balanced_tiles_equal_untiled():
    """The acceptance bound holds for balanced (rectangular) tiles too."""
    fn = _tiny_net()
    rng = np.random.default_rng(3)
    img = rng.normal(size=(1024, 1000)).astype(np.float32)
    img[300:340, 500:560] += 20.0
    full = fn(img[None, None])[0, 0]
    tiled = run_tiled(img, fn, tile_size=512, overlap=32, batch_size=4, balance=True)
    span = float(full.max() - full.min())
    assert np.abs(tiled - full).max() <= 1e-4 * span


def test_float64_results_are_rounded_before_weighting():
    """fn returning float64 gives exactly what its float32 rounding gives."""
    rng = np.random.default_rng(5)
    img = rng.normal(size=(130, 170)).astype(np.float32)
    a = run_tiled(img, lambda b: np.sin(b.astype(np.float64)) / 3.0, tile_size=64, overlap=16)
    b = run_tiled(img, lambda b: (np.sin(b.astype(np.float64)) / 3.0).astype(np.float32),
                  tile_size=64, overlap=16)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
