"""Peak memory of a tiled neural enhancement: full SDSS frame vs an image of 4x its area.

The full SDSS r frame (2048 x 1489 px, ../shared/data/real/sdss) is resampled to the DECaLS
grid with `astro_enhance.resample.resample` once (in its own subprocess, so reproject's
memory does not count) and saved as a temporary .npy. Each case then runs in a fresh Python
process, loads that array (``frame``) or tiles it 2 x 2 (``4x``: four times the area), and
enhances it with a small random-initialised convolutional `TorchEnhancer` (3 conv layers, 16
channels, tile 256, overlap 32, batch 4, CPU, fp32). The child reports its peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), its RSS before enhancing (after imports,
model creation and loading the input) and the enhancement time.

Because the input and output images of the 4x case are themselves 4x larger, the script
prints both the raw peak growth and the growth of the *working memory* (peak minus the RSS
before enhancing minus the output array), which is what the tiling bounds.

Usage::

    PYTHONPATH=. python benchmarks/bench_tiling_memory.py [--tile-size 256] [--repeats 1]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAME = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "sdss"
         / "frame-r-002583-2-0136.fits.bz2")


def _rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def prepare(out_npy):
    """Resample the real frame to the DECaLS grid and save it (run in a subprocess)."""
    import numpy as np
    from astropy.io import fits

    from astro_enhance.resample import resample

    with fits.open(FRAME) as hdul:
        img = resample(hdul[0], "decals", return_type="image")
    np.save(out_npy, np.asarray(img.data, dtype=np.float32))
    print(json.dumps({"shape": list(img.data.shape), "resampler": "astro_enhance.resample"}))


def run_case(npy, case, tile_size, overlap, batch_size):
    """One measurement (run in a fresh subprocess); prints a JSON line."""
    import numpy as np
    import torch

    from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 1, 3, padding=1))
    enh = TorchEnhancer(net, EnhancerInfo("bench", "neural"), device="cpu",
                        tile_size=tile_size, overlap=overlap, batch_size=batch_size)
    data = np.load(npy)
    if case == "4x":
        data = np.tile(data, (2, 2))
    # warm up torch's kernels on a small piece (not part of the timing)
    enh.enhance(data[:300, :300])
    before = _rss_mb()
    t0 = time.perf_counter()
    out = enh.enhance(data)
    seconds = time.perf_counter() - t0
    print(json.dumps({"case": case, "shape": list(data.shape), "megapixels": data.size / 1e6,
                      "peak_mb": _peak_mb(), "rss_before_mb": before,
                      "input_mb": data.nbytes / 2**20, "output_mb": out.nbytes / 2**20,
                      "seconds": seconds, "torch_threads": torch.get_num_threads()}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile-size", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per case (medians of peak, RSS before and time are reported)")
    p.add_argument("--_prepare", help=argparse.SUPPRESS)
    p.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._prepare:
        return prepare(args._prepare)
    if args._case:
        return run_case(args._case[0], args._case[1], args.tile_size, args.overlap,
                        args.batch_size)
    if not FRAME.is_file():
        print(f"SDSS frame {FRAME} absent: nothing to measure")
        return 1
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    me = [sys.executable, str(Path(__file__).resolve())]
    opts = ["--tile-size", str(args.tile_size), "--overlap", str(args.overlap),
            "--batch-size", str(args.batch_size)]
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "frame_decals.npy")
        prep = subprocess.run(me + ["--_prepare", npy], env=env, capture_output=True,
                              text=True, check=True)
        meta = json.loads(prep.stdout.strip().splitlines()[-1])
        print(f"frame {FRAME.name} resampled to the DECaLS grid with {meta['resampler']}: "
              f"shape {tuple(meta['shape'])}")
        print(f"TorchEnhancer: 3 conv layers x 16 ch, tile {args.tile_size}, overlap "
              f"{args.overlap}, batch {args.batch_size}, CPU fp32")
        results = {}
        for case in ("frame", "4x"):
            runs = []
            for _ in range(args.repeats):
                r = subprocess.run(me + opts + ["--_case", npy, case], env=env,
                                   capture_output=True, text=True, check=True)
                runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
            med = dict(runs[0])
            for key in ("peak_mb", "rss_before_mb", "seconds"):
                med[key] = float(statistics.median(r[key] for r in runs))
            results[case] = med
    for case, r in results.items():
        work = r["peak_mb"] - r["rss_before_mb"] - r["output_mb"]
        print(f"{case:>5}: {r['megapixels']:6.2f} Mpx {str(tuple(r['shape'])):>14}  "
              f"peak RSS {r['peak_mb']:7.1f} MiB  (before enhance {r['rss_before_mb']:6.1f}, "
              f"input {r['input_mb']:5.1f}, output {r['output_mb']:5.1f}, working "
              f"{work:6.1f})  {r['seconds']:6.2f} s  ({r['torch_threads']} torch threads)")
    a, b = results["frame"], results["4x"]
    wa = a["peak_mb"] - a["rss_before_mb"] - a["output_mb"]
    wb = b["peak_mb"] - b["rss_before_mb"] - b["output_mb"]
    print(f"peak RSS growth for 4x the area: {b['peak_mb'] / a['peak_mb']:.3f}x "
          f"({100 * (b['peak_mb'] / a['peak_mb'] - 1):+.1f}%; goal < +20%)")
    print(f"working-memory growth (peak - RSS before - output): {wb / wa:.3f}x "
          f"({wa:.1f} -> {wb:.1f} MiB)")
    print(f"time ratio: {b['seconds'] / a['seconds']:.2f}x for 4x the pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
