"""Gallery figures for the docs: one bench scene through every available enhancer.

Usage::

    PYTHONPATH=. python benchmarks/make_gallery.py [--seed 20000055] [--out docs/_static/gallery]

The scene is a benchmark seed (never used in training or tuning), simulated in g, r and z.
Every enhancer that ``list_enhancers()`` reports as available runs through
`astro_enhance.enhance_fits` on the SDSS r image; single-band enhancers get a figure with the
resampled input, the output, the noiseless truth and the residual (output - truth) at one
shared asinh stretch, and several-band ones (``colorize``) the input band beside Lupton RGB
images of the output and of the g, r, z truth. Classical methods run at their PSNR-best
settings (the ones of the evaluate table). Prints PSNR and SSIM of each output on this scene
and writes ``<name>.png`` per enhancer into ``--out``.
"""

import argparse
import time
from pathlib import Path

import numpy as np

#: options used for the classical methods (PSNR-best on validation scenes; see
#: benchmarks/tune_classical.py)
BEST = {"bilateral": {"sigma_color": 8, "sigma_space": 8},
        "richardson-lucy": {"iterations": 5, "damping": 10}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20_000_055)
    ap.add_argument("--out", default="docs/_static/gallery")
    ap.add_argument("--only", nargs="*", default=None, help="only these enhancers")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astro_enhance import enhance_fits
    from astro_enhance.enhancers import list_enhancers
    from astro_enhance.io import image_to_hdu
    from astro_enhance.metrics import psnr, ssim
    from astro_enhance.simulate import check_seeds, simulate_pair
    from astro_enhance.visualization import (_lupton_stretch, _save_figure, lupton_rgb,
                                             save_preview, shared_asinh_norm)

    check_seeds("bench", start=args.seed, n=1)   # a bench seed, never trained on
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bands = ("g", "r", "z")
    pair = simulate_pair(args.seed, bands=bands)
    truth = pair.truth["r"].data
    sig = float(pair.sigma_decals["r"])
    cube_t = np.stack([pair.truth[b].data for b in bands])
    inp = pair.input["r"].data
    hdu = image_to_hdu(pair.sdss["r"])
    table = list_enhancers()
    names = [str(n) for n, ok in zip(table["name"], table["available"]) if ok]
    if args.only:
        names = [n for n in names if n in args.only]
    print(f"seed {args.seed} (bench), r band in; input PSNR {psnr(inp, truth, sigma=sig):.1f} "
          f"dB, SSIM {ssim(inp, truth, sigma=sig):.3f}")
    for name in names:
        opts = BEST.get(name, {})
        t0 = time.perf_counter()
        hdul = enhance_fits(hdu, method=name, device="cpu", options=opts or None, rng=0)
        dt = time.perf_counter() - t0
        data = np.asarray(hdul[0].data, dtype=np.float64)
        assert data.shape[-2:] == truth.shape, "output grid differs from the truth grid"
        label = name + ("(" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")"
                        if opts else "")
        path = out / f"{name}.png"
        if data.ndim == 3:
            stretch = _lupton_stretch(cube_t[1])   # the truth's, for both RGB panels
            fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
            axes[0].imshow(inp, origin="lower", cmap="gray", norm=shared_asinh_norm(inp),
                           interpolation="nearest")
            axes[0].set_title("SDSS r input (resampled)", fontsize=10)
            axes[1].imshow(lupton_rgb(data, stretch=stretch), origin="lower",
                           interpolation="nearest")
            axes[1].set_title(f"{name}: g, r, z (RGB)", fontsize=10)
            axes[2].imshow(lupton_rgb(cube_t, stretch=stretch), origin="lower",
                           interpolation="nearest")
            axes[2].set_title("truth: g, r, z (RGB)", fontsize=10)
            for ax in axes:
                ax.set_xticks([])
                ax.set_yticks([])
            fig.suptitle(f"{name} on bench seed {args.seed}", fontsize=11)
            fig.tight_layout()
            _save_figure(fig, path, dpi=90)
            scores = " ".join(
                f"{b}: {psnr(data[k], cube_t[k], sigma=float(pair.sigma_decals[b])):.1f} dB"
                for k, b in enumerate(bands))
        else:
            p, s = psnr(data, truth, sigma=sig), ssim(data, truth, sigma=sig)
            save_preview(path, [("SDSS r input (resampled)", inp), (label, data),
                                ("truth (noiseless)", truth),
                                ("residual (output - truth)", data - truth)],
                         title=f"{label} on bench seed {args.seed}: PSNR {p:.1f} dB, "
                               f"SSIM {s:.3f}", unit="nanomaggy", dpi=80)
            scores = f"PSNR {p:.1f} dB, SSIM {s:.3f}"
        print(f"{label:40s} {scores}  ({dt:.1f} s)  -> {path}")


if __name__ == "__main__":
    main()
