"""Quick check of trained weights on validation shards (not the acceptance evaluation).

For each weights file (a run directory's ``model.safetensors`` or a shipped weights stem)
and for the input itself (the bicubic-resampled SDSS image), prints medians over the
validation images of: PSNR against the noiseless truth in the stretched space, the
relative aperture flux error (`astro_enhance.metrics.flux_error`, 2 half-light radii of the
truth) and the high-frequency power ratio against the DECaLS-like image
(`astro_enhance.metrics.hf_power_ratio`), all on the un-stretched images.

Usage::

    PYTHONPATH=. python benchmarks/quick_eval_training.py runs/unet astro_enhance/weights/gan \
        --val runs/shards_val_v2 --n 60
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _load(spec):
    from safetensors.torch import load_file
    from astro_enhance.models import build_model
    p = Path(spec)
    if p.is_dir():
        recipe = json.loads((p / "recipe.json").read_text())
        net = build_model(recipe["model"]["architecture"], recipe["model"]["config"])
        net.load_state_dict(load_file(str(p / "model.safetensors")))
    else:
        from astro_enhance.weights import load_weights
        state, side = load_weights(p)
        net = build_model(side["architecture"], side["config"])
        net.load_state_dict(state)
    return net.eval()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--val", required=True)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    from astro_enhance.metrics import flux_error, hf_power_ratio
    from astro_enhance.normalize import asinh_unstretch
    from astro_enhance.training import ShardDataset

    torch.set_num_threads(args.threads)
    ds = ShardDataset(args.val, targets=("truth", "decals"), max_samples=args.n)
    nets = {str(w): _load(w) for w in args.weights}
    res = {k: {"psnr": [], "flux": [], "hf": []} for k in ["input"] + list(nets)}
    t0 = time.perf_counter()
    for i in range(len(ds)):
        x = ds.x[i][:240, :240]
        t = ds.y["truth"][i][:240, :240]
        d = ds.y["decals"][i][:240, :240]
        s = ds.sigma[i]
        T, D = asinh_unstretch(t, s), asinh_unstretch(d, s)
        outs = {"input": x}
        with torch.no_grad():
            for k, net in nets.items():
                outs[k] = net(torch.from_numpy(np.ascontiguousarray(x))[None, None])[0, 0].numpy()
        rng_ = float(t.max() - t.min())
        for k, o in outs.items():
            res[k]["psnr"].append(10 * np.log10(rng_ ** 2 / np.mean((o - t) ** 2)))
            O = asinh_unstretch(o, s)
            try:
                res[k]["flux"].append(abs(flux_error(O, T)))
            except Exception:  # noqa: BLE001 - no flux in the aperture: skip the image
                pass
            res[k]["hf"].append(hf_power_ratio(O, D))
    print(f"{len(ds)} validation images from {args.val}, {time.perf_counter() - t0:.0f} s")
    print(f"{'':40s} {'PSNR':>7s} {'dPSNR':>7s} {'|flux| med':>10s} {'p90':>7s} {'hf':>6s}")
    base = np.median(res["input"]["psnr"])
    for k, r in res.items():
        f = np.asarray(r["flux"])
        print(f"{k:40s} {np.median(r['psnr']):7.2f} {np.median(r['psnr']) - base:7.2f} "
              f"{100 * np.median(f):9.2f}% {100 * np.percentile(f, 90):6.2f}% "
              f"{np.median(r['hf']):6.3f}")


if __name__ == "__main__":
    main()
