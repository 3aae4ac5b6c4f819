"""Quick check of a training run on validation shards (not the acceptance evaluation).

Prints, for the run's current weights (``RUN/model.safetensors``): median PSNR of the model
and of the input (bicubic-resampled SDSS) against the target in the stretched space, the
gain, the relative flux error inside the >2-sigma aperture (median and 90th percentile),
and the high-frequency power ratio against the target.

Usage::

    python benchmarks/quick_eval_training.py RUN_DIR --val runs/shards_val [--target truth]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--val", required=True)
    ap.add_argument("--target", default=None)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    from safetensors.torch import load_file
    from astro_enhance.models import build_model
    from astro_enhance.training import ShardDataset
    from astro_enhance.training.loops import _hf_ratio, evaluate_quick

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    recipe = json.loads((run / "recipe.json").read_text())
    target = args.target or recipe.get("data", {}).get("target", "truth")
    net = build_model(recipe["model"]["architecture"], recipe["model"]["config"])
    net.load_state_dict(load_file(str(run / "model.safetensors")))
    ds = ShardDataset(args.val, targets=tuple({target, "truth", "decals"}))
    t0 = time.perf_counter()
    res = evaluate_quick(net, ds, target=target, n=args.n)
    res["hf_ratio_vs_decals"] = _hf_ratio(net, ds, target="decals", n=min(args.n, 16))
    res["seconds"] = time.perf_counter() - t0
    for k, v in res.items():
        print(f"{k:28s} {v:.4f}")


if __name__ == "__main__":
    main()
