"""Peak memory of a tiled neural enhancement: full SDSS frame vs an image of 4x its area.

The full SDSS r frame (2048 x 1489 px, ../shared/data/real/sdss) is resampled to the DECaLS
grid with `astro_enhance.resample.resample` once (in its own subprocess, so reproject's
memory does not count) and saved as a temporary .npy and as a float32 FITS file, together
with a FITS file of the 2 x 2 mosaic of it (four times the area). Each case then runs in a
fresh Python process and enhances the image with a small random-initialised convolutional
`TorchEnhancer` (3 conv layers, 16 channels, tile 256, overlap 32, batch 4, CPU, fp32), in
one of two modes:

``memory``
    the input is an in-memory array (``np.load``, tiled 2 x 2 for 4x) and the output a new
    in-memory array: both grow with the image, by construction;
``stream``
    the input is the FITS file opened with ``fits.open(..., memmap=True)`` (read-only,
    copy-on-write mapping: the astropy default) and the output is written with ``out=`` into
    the data of an output FITS file created beforehand at its full size and opened with
    ``mode="update"`` (shared mapping). Nothing full-size lives in memory.

The child reports its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``;
it counts resident pages of mapped files too), its RSS before enhancing (after imports, model
creation, a warm-up on a 300 x 300 piece and opening/loading the input) and the enhancement
time (medians over ``--repeats`` runs; each run's peak is listed too, as the baseline
varies by tens of MiB from process to process); and, after the measurement, the float64 sum
of the finite output pixels so that the two modes can be checked to give the same result.

Measured on the 2-core machine, sharing the CPU with a training run (``--repeats 3``):
memory mode 391 -> 578 MiB (+48%; the input and output arrays alone grow by 160 MiB), stream
mode 361 -> 368 MiB (+1.9%), same output in both modes.

Usage::

    PYTHONPATH=. python benchmarks/bench_tiling_memory.py [--tile-size 256] [--repeats 1]
        [--modes memory stream] [--tmpdir DIR]

``--tmpdir`` should be on a disk file system (pages of a private mapping of a tmpfs file
cannot be reclaimed without swap).
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
CASES = ("frame", "4x")


def _rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def _paths(tmp):
    return {"npy": os.path.join(tmp, "frame_decals.npy"),
            "frame": os.path.join(tmp, "frame_decals.fits"),
            "4x": os.path.join(tmp, "mosaic4_decals.fits")}


def prepare(tmp):
    """Resample the real frame to the DECaLS grid; save .npy, FITS and 2x2-mosaic FITS."""
    import numpy as np
    from astropy.io import fits

    from astro_enhance.resample import resample

    paths = _paths(tmp)
    with fits.open(FRAME) as hdul:
        img = resample(hdul[0], "decals", return_type="image")
    data = np.asarray(img.data, dtype=np.float32)
    np.save(paths["npy"], data)
    fits.PrimaryHDU(data).writeto(paths["frame"])
    fits.PrimaryHDU(np.tile(data, (2, 2))).writeto(paths["4x"])
    print(json.dumps({"shape": list(data.shape), "resampler": "astro_enhance.resample"}))


def _create_fits(path, shape):
    """An empty float32 FITS image of ``shape`` on disk, without allocating it in memory."""
    import numpy as np
    from astropy.io import fits

    header = fits.PrimaryHDU(np.zeros((1, 1), np.float32)).header
    header["NAXIS1"], header["NAXIS2"] = shape[1], shape[0]
    text = header.tostring()
    nbytes = shape[0] * shape[1] * 4
    with open(path, "wb") as f:
        f.write(text.encode("ascii"))
        f.seek(len(text) + -(-nbytes // 2880) * 2880 - 1)
        f.write(b"\0")


def _finite_sum(a, rows=256):
    import numpy as np

    total = 0.0
    for r0 in range(0, a.shape[0], rows):
        block = np.asarray(a[r0:r0 + rows], dtype=np.float64)
        total += float(block[np.isfinite(block)].sum())
    return total


def run_case(tmp, mode, case, tile_size, overlap, batch_size):
    """One measurement (run in a fresh subprocess); prints a JSON line."""
    import numpy as np
    import torch
    from astropy.io import fits

    from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer

    paths = _paths(tmp)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 1, 3, padding=1))
    enh = TorchEnhancer(net, EnhancerInfo("bench", "neural"), device="cpu",
                        tile_size=tile_size, overlap=overlap, batch_size=batch_size)
    hin = hout = None
    if mode == "memory":
        data = np.load(paths["npy"])
        if case == "4x":
            data = np.tile(data, (2, 2))
        out = None
    else:
        hin = fits.open(paths[case], memmap=True)
        data = hin[0].data
        out_path = os.path.join(tmp, f"out_{case}.fits")
        _create_fits(out_path, data.shape)
        hout = fits.open(out_path, mode="update", memmap=True)
        out = hout[0].data
    # warm up torch's kernels on a small piece (not part of the timing)
    enh.enhance(np.array(data[:300, :300]))
    before = _rss_mb()
    t0 = time.perf_counter()
    res = enh.enhance(data, out=out)
    seconds = time.perf_counter() - t0
    peak = _peak_mb()
    result = {"mode": mode, "case": case, "shape": list(data.shape),
              "megapixels": data.size / 1e6, "peak_mb": peak, "rss_before_mb": before,
              "image_mb": data.size * 4 / 2**20, "seconds": seconds,
              "torch_threads": torch.get_num_threads(), "out_is_given": res is out,
              "finite_sum": _finite_sum(res)}
    for h in (hin, hout):
        if h is not None:
            h.close()
    print(json.dumps(result))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile-size", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per case (medians of peak, RSS before and time are reported)")
    p.add_argument("--modes", nargs="+", default=["memory", "stream"],
                   choices=["memory", "stream"])
    p.add_argument("--tmpdir", default=None, help="where the temporary files go")
    p.add_argument("--_prepare", help=argparse.SUPPRESS)
    p.add_argument("--_case", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._prepare:
        return prepare(args._prepare)
    if args._case:
        return run_case(args._case[0], args._case[1], args._case[2], args.tile_size,
                        args.overlap, args.batch_size)
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
    results = {}
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        prep = subprocess.run(me + ["--_prepare", tmp], env=env, capture_output=True,
                              text=True, check=True)
        meta = json.loads(prep.stdout.strip().splitlines()[-1])
        print(f"frame {FRAME.name} resampled to the DECaLS grid with {meta['resampler']}: "
              f"shape {tuple(meta['shape'])}")
        print(f"TorchEnhancer: 3 conv layers x 16 ch, tile {args.tile_size}, overlap "
              f"{args.overlap}, batch {args.batch_size}, CPU fp32; {args.repeats} run(s) per "
              f"case, each in a fresh process")
        for mode in args.modes:
            for case in CASES:
                runs = []
                for _ in range(args.repeats):
                    r = subprocess.run(me + opts + ["--_case", tmp, mode, case], env=env,
                                       capture_output=True, text=True)
                    if r.returncode:
                        sys.stderr.write(r.stderr)
                        raise SystemExit(f"case {mode}/{case} failed")
                    runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
                med = dict(runs[0])
                for r in runs:
                    r["work_mb"] = r["peak_mb"] - r["rss_before_mb"]
                for key in ("peak_mb", "rss_before_mb", "work_mb", "seconds"):
                    med[key] = float(statistics.median(r[key] for r in runs))
                med["all_peaks"] = [round(r["peak_mb"], 1) for r in runs]
                results[mode, case] = med
    for mode in args.modes:
        print(f"\nmode {mode!r}: " + {
            "memory": "in-memory input array, new in-memory output",
            "stream": "input memory-mapped from FITS, out= data of a FITS opened for update"
        }[mode])
        for case in CASES:
            r = results[mode, case]
            print(f"  {case:>5}: {r['megapixels']:6.2f} Mpx {str(tuple(r['shape'])):>14}  "
                  f"peak RSS {r['peak_mb']:7.1f} MiB  (before enhance {r['rss_before_mb']:6.1f};"
                  f" image {r['image_mb']:5.1f} MiB)  {r['seconds']:6.2f} s  "
                  f"({r['torch_threads']} torch threads)")
            if len(r["all_peaks"]) > 1:
                print(f"         peak RSS of each run: {r['all_peaks']} MiB")
        a, b = results[mode, "frame"], results[mode, "4x"]
        print(f"  peak RSS growth for 4x the area: {b['peak_mb'] / a['peak_mb']:.3f}x "
              f"({100 * (b['peak_mb'] / a['peak_mb'] - 1):+.1f}%; goal < +20%)")
        print(f"  peak - RSS before enhance (median over runs): {a['work_mb']:.1f} -> "
              f"{b['work_mb']:.1f} MiB")
        if mode == "memory":
            print(f"  of which the input and output arrays themselves grow by "
                  f"{2 * (b['image_mb'] - a['image_mb']):.1f} MiB")
        print(f"  time ratio: {b['seconds'] / a['seconds']:.2f}x for 4x the pixels")
    if len(args.modes) == 2:
        for case in CASES:
            sa, sb = results["memory", case]["finite_sum"], results["stream", case]["finite_sum"]
            print(f"output check {case}: sum of finite pixels memory {sa:.6g}, stream {sb:.6g} "
                  f"({'identical' if sa == sb else f'differ by {abs(sa - sb):.3g}'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
