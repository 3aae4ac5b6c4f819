"""Benchmark: every enhancer on a full frame, tiling overhead, and the conv-throughput limit.

Three sections, each measured in fresh Python processes so that one measurement's memory
does not hide another's (the parent imports neither torch nor the package's heavy parts):

``conv``
    The convolution throughput this machine reaches with PyTorch: one 3x3 convolution
    64 -> 64 channels on a 1 x 64 x 512 x 512 tensor, and one of the U-Net's own width
    (24 -> 24 channels, 1 x 24 x 512 x 512), each in NCHW and channels-last (NHWC) layout,
    median of ``--repeats`` timed calls after a warm-up, with the thread count inference
    uses. GFLOP/s count 2 x multiply-adds. The *limit* is the best of the 64-channel
    figures.
``frame``
    Each enhancer (``--enhancers``, default every available one in
    `astro_enhance.enhancers.list_enhancers`) with its default settings on the full real
    SDSS r frame resampled to the DECaLS grid (2251 x 3096 = 7.0 Mpx; resampled once in a
    child process and cached as .npy in ``--tmpdir``), or on a synthetic image of that size
    when the frame is absent (``--synthetic`` forces it). Per enhancer, in its own process:
    seconds (median of ``--repeats`` after a warm-up on a 256 x 256 piece), megapixels per
    second, and peak resident memory of that process (``VmHWM`` from /proc/self/status,
    i.e. ``ru_maxrss`` of the child without what it may inherit from its parent; both are
    printed). For neural enhancers: the FLOPs of one tile counted with
    `torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products, 2 x MACs)
    times the number of tiles the tiler runs (overlaps included), the achieved GFLOP/s over
    the whole enhancement and over the time spent inside the network only, and both as a
    fraction of the conv limit.
``tiling``
    Neural enhancers on the central 1024 x 1024 pixels of the frame (an image that fits in
    memory): untiled (``tile_size=0``), default tiling (on the CPU one tile covers it) and
    forced tiling (``--tile-sizes``, default 768 and 512: 2 x 2 tiles of 528 px and 3 x 3
    tiles of 368 px after balancing), interleaved (ABC CBA ...) in one process; medians,
    the median of per-round ratios to untiled, and the largest difference from the untiled
    output: in the stretched space relative to its range (the measure of
    ``tests/test_tiling.py``, bound 1e-4) and in physical units relative to
    ``|value| + softening * sigma``.

Usage::

    PYTHONPATH=. python benchmarks/bench_enhancers.py [--sections conv frame tiling]
        [--enhancers bicubic bilateral unet gan] [--repeats 3] [--threads N]
        [--frame PATH] [--synthetic] [--tile-sizes 768 512] [--tmpdir DIR] [--json OUT]

Options passed to every neural enhancer for experiments: ``--option channels_last=False``,
``--option tile_size=256`` ... (repeatable).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAME = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "sdss"
         / "frame-r-002583-2-0136.fits.bz2")
FRAME_SHAPE = (2251, 3096)


# --------------------------------------------------------------------------------------------
# helpers run in the children
# --------------------------------------------------------------------------------------------

def _peak_mb():
    """(VmHWM, ru_maxrss) of this process in MiB."""
    import resource

    hwm = None
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return (hwm if hwm is not None else maxrss), maxrss


def _threads(n):
    from astro_enhance.device import inference_threads

    return inference_threads(n)


def _child_conv(args):
    import numpy as np
    import torch

    threads = _threads(args["threads"])
    res = {"threads": threads, "cases": []}
    for cin, hw in ((64, 512), (24, 512)):
        conv = torch.nn.Conv2d(cin, cin, 3, padding=1).eval()
        flops = 2.0 * cin * cin * 9 * hw * hw
        for layout in ("nchw", "nhwc"):
            fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
            conv = conv.to(memory_format=fmt)
            x = torch.randn(1, cin, hw, hw).contiguous(memory_format=fmt)
            times = []
            with torch.inference_mode():
                conv(x)
                conv(x)
                for _ in range(max(3, args["repeats"])):
                    t0 = time.perf_counter()
                    conv(x)
                    times.append(time.perf_counter() - t0)
            t = float(np.median(times))
            res["cases"].append({"c": cin, "hw": hw, "layout": layout, "seconds": t,
                                 "gflops": flops / t / 1e9})
    res["limit_gflops"] = max(c["gflops"] for c in res["cases"] if c["c"] == 64)
    return res


def _load_input(path):
    import numpy as np

    return np.load(path, mmap_mode=None)


def _tile_flops(enh, shape):
    """(FLOPs of the whole tiled run, tile shape, number of tiles) for a TorchEnhancer."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from astro_enhance.tiling import plan_tiles

    tile, _ = enh.run_tiling()
    plan = plan_tiles(shape, tile_size=tile, overlap=enh.overlap,
                      size_multiple=enh.info.size_multiple, balance=enh._balance_tiles)
    x = torch.zeros((1, enh.info.channels_in) + plan.padded_shape)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        enh.model(x)
    return float(fc.get_total_flops()) * plan.n_tiles, plan.padded_shape, plan.n_tiles


def _make_enhancer(name, options):
    from astro_enhance.enhancers import get_enhancer

    return get_enhancer(name, device="cpu", **options)


def _child_frame(args):
    import numpy as np

    threads = _threads(args["threads"])
    img = _load_input(args["input"])
    name = args["name"]
    neural = args["neural"]
    enh = _make_enhancer(name, args["options"] if neural else {})
    base_mb = _peak_mb()[0]
    enh.enhance(img[:256, :256].copy())             # warm-up (oneDNN primitives, caches)
    model_time = [0.0]
    if neural:
        predict = enh._predict

        def timed(batch, rng):
            t0 = time.perf_counter()
            try:
                return predict(batch, rng)
            finally:
                model_time[0] += time.perf_counter() - t0
        enh._predict = timed
    times, model_times = [], []
    out = None
    for _ in range(args["repeats"]):
        model_time[0] = 0.0
        del out
        t0 = time.perf_counter()
        out = enh.enhance(img)
        times.append(time.perf_counter() - t0)
        model_times.append(model_time[0])
    peak, maxrss = _peak_mb()
    res = {"name": name, "threads": threads, "shape": list(img.shape),
           "seconds": float(np.median(times)), "all_seconds": times,
           "mpx_per_s": img.size / 1e6 / float(np.median(times)),
           "peak_rss_mb": peak, "ru_maxrss_mb": maxrss, "rss_before_mb": base_mb,
           "finite_sum": float(np.nansum(out, dtype=np.float64))}
    if neural:
        flops, tshape, ntiles = _tile_flops(enh, img.shape)
        tile, batch = enh.run_tiling()
        res.update({"flops": flops, "tile_shape": list(tshape), "n_tiles": ntiles,
                    "tile_size": tile, "batch_size": batch,
                    "channels_last": bool(enh.channels_last),
                    "model_seconds": float(np.median(model_times)),
                    "gflops": flops / float(np.median(times)) / 1e9,
                    "model_gflops": flops / float(np.median(model_times)) / 1e9})
    return res


def _child_tiling(args):
    import numpy as np

    threads = _threads(args["threads"])
    rng = np.random.default_rng(0)
    img = _load_input(args["input"])
    ny, nx = img.shape
    y0, x0 = (ny - 1024) // 2, (nx - 1024) // 2
    img = np.ascontiguousarray(img[y0:y0 + 1024, x0:x0 + 1024])
    if not np.isfinite(img).all():
        img = np.where(np.isfinite(img), img, rng.normal(0, 1, img.shape)).astype(np.float32)
    name = args["name"]
    opts = dict(args["options"])
    variants = {"untiled": dict(opts, tile_size=0), "default": dict(opts)}
    for t in args["tile_sizes"]:
        variants[f"tile{t}"] = dict(opts, tile_size=t)
    enhs = {k: _make_enhancer(name, v) for k, v in variants.items()}
    noise = None
    from astro_enhance.enhancers.base import estimate_noise_bounded
    noise = estimate_noise_bounded(img)
    outs = {}
    for k, e in enhs.items():
        outs[k] = e.enhance(img, noise=noise)       # warm-up and the output to compare
    keys = list(enhs)
    times = {k: [] for k in keys}
    for r in range(args["repeats"]):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            t0 = time.perf_counter()
            enhs[k].enhance(img, noise=noise)
            times[k].append(time.perf_counter() - t0)
    from astro_enhance.normalize import asinh_stretch
    from astro_enhance.tiling import plan_tiles

    ref = outs["untiled"]
    k_soft = enhs["untiled"].softening
    yref = asinh_stretch(ref, noise, softening=k_soft)
    span = float(np.nanmax(yref) - np.nanmin(yref))
    res = {"name": name, "threads": threads, "shape": [1024, 1024], "noise": float(noise),
           "variants": {}}
    for k in keys:
        e = enhs[k]
        tile, batch = e.run_tiling()
        plan = plan_tiles(img.shape, tile_size=tile, overlap=e.overlap,
                          size_multiple=e.info.size_multiple, balance=e._balance_tiles)
        ratios = [a / b for a, b in zip(times[k], times["untiled"])]
        d = np.abs(outs[k] - ref)
        res["variants"][k] = {
            "tile_size": tile, "batch_size": batch, "overlap": e.overlap,
            "tiles": f"{plan.n_tiles} x {plan.tile_shape[0]}x{plan.tile_shape[1]}",
            "seconds": float(np.median(times[k])), "all_seconds": times[k],
            "ratio_to_untiled": float(np.median(ratios)),
            # the tiling test's measure: stretched space, relative to its range
            "max_diff_stretched": float(np.nanmax(np.abs(
                asinh_stretch(outs[k], noise, softening=k_soft) - yref)) / span),
            # physical units, relative to |value| + k sigma
            "max_diff_rel": float(np.nanmax(d / (np.abs(ref) + k_soft * noise)))}
    return res


def _child_prepare(args):
    import numpy as np

    out = args["input"]
    if args["synthetic"] or not Path(args["frame"]).is_file():
        rng = np.random.default_rng(42)
        ny, nx = FRAME_SHAPE
        img = rng.normal(0.0, 0.0096, (ny, nx)).astype(np.float32)
        yy, xx = np.ogrid[:ny, :nx]
        for _ in range(300):                    # stars and small galaxies
            cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
            s, f = rng.uniform(1.2, 6.0), rng.lognormal(1.0, 1.5)
            sl = (slice(max(0, int(cy - 6 * s)), int(cy + 6 * s) + 1),
                  slice(max(0, int(cx - 6 * s)), int(cx + 6 * s) + 1))
            img[sl] += (f / (2 * np.pi * s * s) * np.exp(
                -((yy[sl[0]] - cy) ** 2 + (xx[:, sl[1]] - cx) ** 2) / (2 * s * s))
            ).astype(np.float32)
        source = "synthetic"
    else:
        from astro_enhance import read_image
        from astro_enhance.resample import resample

        img = resample(read_image(args["frame"]), "decals", return_type="image").data
        img = np.ascontiguousarray(img, dtype=np.float32)
        source = str(args["frame"])
    np.save(out, img)
    return {"shape": list(img.shape), "source": source,
            "finite_fraction": float(np.isfinite(img).mean())}


CHILDREN = {"conv": _child_conv, "frame": _child_frame, "tiling": _child_tiling,
            "prepare": _child_prepare}


def _child_main():
    args = json.loads(sys.argv[2])
    res = CHILDREN[args["kind"]](args)
    sys.stdout.write("\n@@RESULT@@" + json.dumps(res) + "\n")


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------

def _run_child(args, timeout=7200):
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                else "")
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0 or "@@RESULT@@" not in proc.stdout:
        raise RuntimeError(f"child {args['kind']} {args.get('name', '')} failed:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])


def _parse_options(items):
    opts = {}
    for item in items or ():
        key, _, value = item.partition("=")
        try:
            opts[key] = json.loads(value.lower() if value in ("True", "False") else value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def _machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "python": sys.version.split()[0]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", default=["conv", "frame", "tiling"],
                   choices=["conv", "frame", "tiling"])
    p.add_argument("--enhancers", nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: inference default, see "
                        "astro_enhance.device.inference_threads)")
    p.add_argument("--frame", default=str(FRAME))
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--tile-sizes", type=int, nargs="+", default=[768, 512],
                   help="forced (largest) tile sizes of the tiling section (default 768 512: "
                        "on 1024 x 1024, 2 x 2 tiles of 528 px and 3 x 3 of 368 px)")
    p.add_argument("--option", action="append", default=[],
                   help="KEY=VALUE passed to the neural enhancers (repeatable)")
    p.add_argument("--tmpdir", default=None)
    p.add_argument("--json", default=None, help="also write all results to this file")
    a = p.parse_args(argv)

    from astro_enhance.enhancers import list_enhancers

    table = list_enhancers()
    kinds = {r["name"]: r["kind"] for r in table if r["available"]}
    names = a.enhancers or list(kinds)
    unknown = [n for n in names if n not in kinds]
    if unknown:
        p.error(f"unknown or unavailable enhancer(s) {unknown}; available: {list(kinds)}")
    options = _parse_options(a.option)
    results = {"machine": _machine(), "options": options, "sections": {}}
    m = results["machine"]
    print(f"# machine: {m['cpu']}, {m['cpus']} CPUs, python {m['python']}, "
          f"load average at start {m['load_avg'][0]:.2f} {m['load_avg'][1]:.2f} "
          f"{m['load_avg'][2]:.2f}")

    with tempfile.TemporaryDirectory(dir=a.tmpdir) as tmp:
        common = {"threads": a.threads, "repeats": a.repeats}
        limit = None
        if "conv" in a.sections or "frame" in a.sections:
            conv = _run_child(dict(common, kind="conv"))
            results["sections"]["conv"] = conv
            limit = conv["limit_gflops"]
            print(f"\n## conv throughput ({conv['threads']} threads, median of "
                  f"{max(3, a.repeats)})")
            for c in conv["cases"]:
                print(f"  3x3 conv {c['c']:>2d}->{c['c']:<2d} on 1x{c['c']}x{c['hw']}x{c['hw']} "
                      f"{c['layout']}: {c['gflops']:7.1f} GFLOP/s ({c['seconds'] * 1e3:.1f} ms)")
            print(f"  limit (best 64-channel): {limit:.1f} GFLOP/s")

        inp = os.path.join(tmp, "frame.npy")
        if "frame" in a.sections or "tiling" in a.sections:
            prep = _run_child({"kind": "prepare", "input": inp, "frame": a.frame,
                               "synthetic": a.synthetic})
            results["input"] = prep
            print(f"\n# input: {prep['source']} -> {prep['shape'][0]} x {prep['shape'][1]} "
                  f"({prep['shape'][0] * prep['shape'][1] / 1e6:.2f} Mpx, "
                  f"{100 * prep['finite_fraction']:.1f}% finite)")

        if "frame" in a.sections:
            print(f"\n## full frame, each enhancer in a fresh process (median of {a.repeats})")
            print(f"  {'enhancer':<16s} {'seconds':>8s} {'Mpx/s':>7s} {'peak RSS MB':>12s} "
                  f"{'GFLOP/s':>8s} {'/limit':>7s} {'model GFLOP/s':>14s} {'/limit':>7s}  "
                  f"tiles")
            rows = []
            for name in names:
                neural = kinds[name] != "classical"
                r = _run_child(dict(common, kind="frame", name=name, input=inp, neural=neural,
                                    options=options))
                rows.append(r)
                line = (f"  {name:<16s} {r['seconds']:8.2f} {r['mpx_per_s']:7.3f} "
                        f"{r['peak_rss_mb']:12.0f}")
                if neural:
                    line += (f" {r['gflops']:8.1f} {r['gflops'] / limit:7.2f} "
                             f"{r['model_gflops']:14.1f} {r['model_gflops'] / limit:7.2f}  "
                             f"{r['n_tiles']} x {r['tile_shape'][0]}x{r['tile_shape'][1]}, "
                             f"batch {r['batch_size']}, {r['flops'] / 1e9:.0f} GFLOP")
                print(line, flush=True)
            results["sections"]["frame"] = rows

        if "tiling" in a.sections:
            tnames = [n for n in names if kinds[n] != "classical"]
            print(f"\n## tiled vs untiled on 1024 x 1024 (interleaved, {a.repeats} rounds)")
            rows = []
            for name in tnames:
                r = _run_child(dict(common, kind="tiling", name=name, input=inp,
                                    options=options, tile_sizes=a.tile_sizes))
                rows.append(r)
                for k, v in r["variants"].items():
                    print(f"  {name:<6s} {k:<9s} tile {str(v['tile_size']):>5s} overlap "
                          f"{v['overlap']:3d} ({v['tiles']}, batch {v['batch_size']}): "
                          f"{v['seconds']:7.2f} s  ratio to untiled "
                          f"{v['ratio_to_untiled']:.3f}  max diff: {v['max_diff_stretched']:.1e}"
                          f" of the stretched range, {v['max_diff_rel']:.1e} relative",
                          flush=True)
            results["sections"]["tiling"] = rows

    results["machine"]["load_avg_end"] = os.getloadavg()
    print(f"\n# load average at end {results['machine']['load_avg_end'][0]:.2f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child_main()
    else:
        sys.exit(main())
