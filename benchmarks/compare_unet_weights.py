"""Compare U-Net weight files on the validation splits only (never the bench).

Used to choose between training runs and snapshots for issue 23: median PSNR / SSIM /
|flux error| of each weights file through the pipeline on

* the real-morphology validation galaxies (``astro_enhance.real_morphology``, split ``val``),
* parametric validation scenes (``astro_enhance.simulate`` split ``val``),

plus the tuned Gaussian blur on the same scenes. The bench galaxies and bench seeds are not
read. Run::

    python benchmarks/compare_unet_weights.py unet /work/runs/cand/step_1800 --n-param 60

A bare name is the shipped weights; a path is a safetensors file with its JSON sidecar (as
``astro-enhance train --export PATH`` writes).
"""
import argparse
import warnings

import numpy as np


def main(argv=None):
    from astro_enhance.evaluate import (_as_grid, _metrics, _scenes_from_real_morphology,
                                        _scenes_from_simulation)
    from astro_enhance.exceptions import DomainWarning
    from astro_enhance.io import image_to_hdu
    from astro_enhance.pipeline import enhance_fits
    from astro_enhance.simulate import SPLITS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+", help="'unet' (shipped) or weights paths")
    ap.add_argument("--n-real", type=int, default=44)
    ap.add_argument("--n-param", type=int, default=60)
    ap.add_argument("--blur", default="1,1.5,2,2.5,3")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", DomainWarning)
    sets = {
        "real-val": list(_scenes_from_real_morphology("val", args.n_real, ("r",), None)),
        "param-val": list(_scenes_from_simulation(
            range(SPLITS["val"].start, SPLITS["val"].start + args.n_param), ("r",), 64.0)),
    }
    methods = [("unet", dict(weights=None if w == "unet" else w), w) for w in args.weights]
    methods += [("gaussian", dict(options=dict(sigma=float(s))), f"gaussian({s})")
                for s in args.blur.split(",")]
    for name, scenes in sets.items():
        print(f"{name}: {len(scenes)} scenes, r band")
        for meth, kw, label in methods:
            rows = []
            for sc in scenes:
                hdul = enhance_fits(image_to_hdu(sc["sdss"]), method=meth, target="decals",
                                    device="cpu", rng=int(sc["seed"]), **kw)
                rows.append(_metrics(_as_grid(hdul[0], sc), sc, 0.0))
            med = {k: float(np.nanmedian([abs(r[k]) if k == "flux_error" else r[k]
                                          for r in rows]))
                   for k in ("psnr", "ssim", "flux_error")}
            print(f"  {label:60s} psnr {med['psnr']:6.2f}  ssim {med['ssim']:.3f}  "
                  f"|flux| {med['flux_error']:.4f}")


if __name__ == "__main__":
    main()
