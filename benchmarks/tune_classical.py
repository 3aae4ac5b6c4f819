"""Find the classical baselines' best settings on validation scenes (issue 5).

For every classical enhancer (``bicubic`` has no setting; ``richardson-lucy``: iterations and
damping; ``bilateral``: sigma_color and sigma_space) runs a small grid of settings on the first
``--n`` scenes of the *validation* split (seeds 10,000,000+, never used for training nor for the
bench figures) and prints median PSNR and SSIM against the noiseless truth, the same metrics
`astro_enhance.evaluate` uses. The best setting by median PSNR is what the package's defaults
should be, so that ``evaluate`` on the bench split compares the networks with each baseline at
its best.

Usage::

    PYTHONPATH=. python benchmarks/tune_classical.py --shards runs/shards_val_v2 [--n 40]

(or without ``--shards``: the scenes are simulated on the fly, slower).
"""

import argparse
import itertools
import time

import numpy as np

__all__ = ["main", "GRIDS"]

#: Settings tried per method (the product of the value lists).
GRIDS = {
    "bicubic": {},
    "richardson-lucy": {"iterations": [5, 10, 20], "damping": [1.0, 3.0, 10.0]},
    "bilateral": {"sigma_color": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
                  "sigma_space": [1.0, 1.5, 2.5, 4.0, 6.0, 8.0, 12.0]},
}


def _settings(grid):
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values))


def main(argv=None):
    from astro_enhance.enhancers import get_enhancer
    from astro_enhance.evaluate import _scenes_from_shards, _scenes_from_simulation
    from astro_enhance.metrics import psnr, ssim
    from astro_enhance.simulate import check_seeds

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", default=None, help="directory of val shards")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--bands", default="r")
    p.add_argument("--methods", default=",".join(GRIDS))
    args = p.parse_args(argv)
    bands = tuple(args.bands.split(","))
    seeds = check_seeds("val", n=args.n)
    scenes = list(_scenes_from_shards(args.shards, "val", seeds, bands) if args.shards
                  else _scenes_from_simulation(seeds, bands, 64.0))
    print(f"tune_classical: {len(scenes)} val images (seeds {seeds.start}..{seeds.stop - 1}, "
          f"bands {','.join(bands)})")
    print(f"{'method':16s} {'setting':40s} {'psnr':>7s} {'ssim':>7s} {'s/img':>6s}")
    best = {}
    for m in args.methods.split(","):
        for opts in _settings(GRIDS[m]):
            enh = get_enhancer(m, device="cpu", **opts)
            ps, ss, ts = [], [], []
            for sc in scenes:
                t0 = time.perf_counter()
                out = enh.enhance(np.array(sc["input"], dtype=np.float32))
                ts.append(time.perf_counter() - t0)
                ps.append(psnr(out, sc["truth"], sigma=sc["sigma_decals"]))
                ss.append(ssim(out, sc["truth"], sigma=sc["sigma_decals"]))
            row = (float(np.median(ps)), float(np.median(ss)), float(np.median(ts)))
            setting = ", ".join(f"{k}={v}" for k, v in opts.items()) or "-"
            print(f"{m:16s} {setting:40s} {row[0]:7.2f} {row[1]:7.3f} {row[2]:6.2f}", flush=True)
            if m not in best or row[0] > best[m][1][0]:
                best[m] = (setting, row)
    print("best by median PSNR:")
    for m, (setting, row) in best.items():
        print(f"  {m:16s} {setting:40s} psnr {row[0]:.2f}  ssim {row[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
