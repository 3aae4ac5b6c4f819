"""Compare U-Net weight files on the validation splits only (never the bench).

Used to choose between training runs and snapshots for issue 23: `astro_enhance.evaluate`
on

* the real-morphology validation galaxies (``astro_enhance.real_morphology``, split ``val``),
* parametric validation scenes (``astro_enhance.simulate`` split ``val``),

with each weights file as ``unet(weights=PATH)`` and Gaussian blurs of several widths, in one
run; the medians of PSNR, SSIM and |flux error| are printed. The bench galaxies and bench seeds
are not read. Run::

    python benchmarks/compare_unet_weights.py unet /work/runs/cand/final --n-param 60

A bare ``unet`` is the shipped weights; a path is a safetensors file with its JSON sidecar (as
``astro-enhance train --export PATH`` writes).
"""
import argparse
import warnings


def main(argv=None):
    from astro_enhance.evaluate import evaluate, summarize
    from astro_enhance.exceptions import DomainWarning

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+", help="'unet' (shipped) or weights paths")
    ap.add_argument("--n-real", type=int, default=44)
    ap.add_argument("--n-param", type=int, default=60)
    ap.add_argument("--blur", default="1,1.5,2,2.5,3")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", DomainWarning)
    methods = [w if w == "unet" else f"unet(weights={w})" for w in args.weights]
    methods += [f"gaussian(sigma={s})" for s in args.blur.split(",")]
    runs = {"real-val": dict(source="real-morphology", n=args.n_real),
            "param-val": dict(source="simulation", n=args.n_param)}
    for name, kw in runs.items():
        table, _ = evaluate(methods, split="val", references=False, keep_examples=0, **kw)
        print(f"{name}: {len(set(table['seed']))} scenes, r band")
        for r in summarize(table):
            print(f"  {str(r['method']):60s} psnr {r['psnr_median']:6.2f}  ssim "
                  f"{r['ssim_median']:.3f}  |flux| {r['abs_flux_error_median']:.4f}")


if __name__ == "__main__":
    main()
