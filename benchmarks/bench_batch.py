"""Throughput of ``run_batch`` with 1 and 2 local workers (issue 9, acceptance 4).

Writes N realistic-size SDSS-like inputs (default 20 frames of 512 x 512, from
``astro_enhance.sample_data.make_sdss_sample``) to a temporary directory and runs the same
batch with a LocalCluster of 1 and then 2 worker processes (one thread each). Prints, for each:

* wall time of ``run_batch`` (cluster start-up included) and files/min from it;
* processing span (first file started -> last file finished, from the manifest) and
  files/min from it, i.e. throughput once the workers are up;

and the 2-worker / 1-worker ratios (goal >= 1.6 on a 2-core machine). "cores used" is the
workers' total CPU time divided by the processing span: 1.0 (one worker) and 2.0 (two) when
the machine is otherwise idle. Other processes competing for the cores lower it, and the
ratio with it; the load average before each run is printed for that reason.

Usage::

    PYTHONPATH=. python benchmarks/bench_batch.py [--n-files 20] [--size 512]
        [--method richardson-lucy|unet|...] [--workers 1 2] [--keep DIR]

The default method is ``unet`` when its weights ship with the package, else
``richardson-lucy`` (a classical enhancer that does real work per pixel).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

__all__ = ["main"]


def _default_method():
    from astro_enhance.enhancers import list_enhancers

    names = set(list_enhancers()["name"])
    return "unet" if "unet" in names else "richardson-lucy"


def _span(result):
    """Seconds from the first file's start to the last file's end (from the records)."""
    starts, ends = [], []
    for r in result.records:
        if r.get("status") != "ok" or not r.get("finished"):
            continue
        end = datetime.fromisoformat(r["finished"]).timestamp()
        starts.append(end - float(r["seconds"]))
        ends.append(end)
    return max(ends) - min(starts) if ends else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-files", type=int, default=20)
    parser.add_argument("--size", type=int, default=512, help="input side in SDSS pixels")
    parser.add_argument("--method", default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", default=None, help="keep inputs/outputs in this directory")
    args = parser.parse_args(argv)

    from astro_enhance.batch import run_batch
    from astro_enhance.sample_data import make_sdss_sample

    method = args.method or _default_method()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_batch_"))
    inputs = root / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for i in range(args.n_files):
        p = inputs / f"bench_{i:03d}.fits"
        if not p.exists():
            make_sdss_sample(shape=(args.size, args.size), seed=1000 + i).writeto(p)
    print(f"bench_batch: {args.n_files} inputs of {args.size}x{args.size} px, method "
          f"{method!r}, {os.cpu_count()} CPU(s), python {sys.version.split()[0]}")

    rows = {}
    try:
        for n in args.workers:
            out = root / f"out_{n}"
            shutil.rmtree(out, ignore_errors=True)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            result = run_batch(str(inputs / "*.fits"), out, method=method, n_workers=n)
            wall = time.perf_counter() - t0
            if result.n_ok != args.n_files:
                print(result.summary())
                raise SystemExit(f"{result.n_failed} file(s) failed with {n} worker(s)")
            span = _span(result)
            per_file = statistics.median(float(r["seconds"]) for r in result.records)
            cpu = sum(float(r["cpu_seconds"]) for r in result.records)
            rows[n] = (wall, span)
            print(f"  {n} worker(s): wall {wall:7.1f} s -> {60 * args.n_files / wall:6.1f} "
                  f"files/min | processing span {span:7.1f} s -> "
                  f"{60 * args.n_files / span:6.1f} files/min | median {per_file:.2f} s/file"
                  f" | cores used {cpu / span:.2f} of {n} | load average before {load:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if 1 in rows and 2 in rows:
        r_wall = rows[1][0] / rows[2][0]
        r_span = rows[1][1] / rows[2][1]
        print(f"  ratio 2/1 workers: {r_wall:.2f}x (wall, start-up included), "
              f"{r_span:.2f}x (processing span); goal >= 1.6x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
