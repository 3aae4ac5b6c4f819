"""Throughput of the paired survey simulator: r-band pairs per second, 1 and 2 workers.

Usage::

    PYTHONPATH=. python benchmarks/bench_simulate.py [--n 60] [--stamp-arcsec 64]

Prints the median time of one ``simulate_pair`` call (after a warm-up), its breakdown
(GalSim rendering vs. the pipeline's resampling), and the end-to-end ``write_shards``
throughput with 1 and 2 worker processes (shards written to a temporary directory).
"""

import argparse
import tempfile
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="scenes per measurement")
    ap.add_argument("--stamp-arcsec", type=float, default=64.0)
    args = ap.parse_args(argv)

    import astro_enhance.simulate as sim

    sim.simulate_pair(20_000_000, bands="r", stamp_arcsec=args.stamp_arcsec)  # warm-up
    times, t_res = [], []
    orig = sim._to_decals_grid

    def timed(*a, **k):
        t0 = time.perf_counter()
        out = orig(*a, **k)
        t_res.append(time.perf_counter() - t0)
        return out

    sim._to_decals_grid = timed
    try:
        for s in range(args.n):
            t0 = time.perf_counter()
            sim.simulate_pair(20_000_001 + s, bands="r", stamp_arcsec=args.stamp_arcsec)
            times.append(time.perf_counter() - t0)
    finally:
        sim._to_decals_grid = orig
    med = float(np.median(times))
    print(f"simulate_pair (r, {args.stamp_arcsec:.0f}\" stamp): median {med * 1e3:.0f} ms "
          f"-> {1 / med:.2f} pairs/s; of which resample to the DECaLS grid "
          f"{np.median(t_res) * 1e3:.0f} ms")
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            sim.write_shards(d, n=args.n, split="bench", bands="r", workers=workers,
                             shard_size=max(1, args.n // 4), stamp_arcsec=args.stamp_arcsec)
            dt = time.perf_counter() - t0
        print(f"write_shards workers={workers}: {args.n} pairs in {dt:.1f} s -> "
              f"{args.n / dt:.2f} pairs/s (incl. process start-up and npz writing)")


if __name__ == "__main__":
    main()
