"""Uncertainty of ``sr3`` (issue 24): coverage, Spearman, mean vs U-Net, time of N samples.

Runs `astro_enhance.evaluate.evaluate_samples` and prints its figures as one JSON line.

* ``--split val --raw``: the raw spread on validation scenes; ``fitted_factor`` is the
  calibration factor that the ``sr3`` sidecar records (``info.extra.std_calibration``):
  the 95th percentile of |mean - truth| / raw STD on pixels with light, halved, so that
  |mean - truth| < 2 STD on 95% of those pixels.
* ``--split bench`` (and ``--source real-morphology``): the figures reported, with the
  calibration applied as the pipeline does.

Run::

    python benchmarks/sr3_uncertainty.py --split val --n 24 --raw
    python benchmarks/sr3_uncertainty.py --split bench --n 24
    python benchmarks/sr3_uncertainty.py --split bench --n 24 --source real-morphology
"""

import argparse
import json
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="sr3")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--split", default="bench", choices=["val", "bench"])
    p.add_argument("--source", default="simulation", choices=["simulation", "real-morphology"])
    p.add_argument("--raw", action="store_true", help="the raw spread (no calibration)")
    p.add_argument("--real-data", default=None)
    args = p.parse_args(argv)
    from astro_enhance.evaluate import evaluate_samples

    res = evaluate_samples(args.method, samples=args.samples, n=args.n, split=args.split,
                           source=args.source, calibrate=not args.raw,
                           data_dir=args.real_data)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
