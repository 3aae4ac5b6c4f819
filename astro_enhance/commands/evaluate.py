"""``astro-enhance evaluate``: benchmark enhancers on simulated (or one real) SDSS/DECaLS pair."""

import os

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "evaluate"
HELP = ("benchmark enhancers through the pipeline on simulated bench scenes (PSNR, SSIM, "
        "flux error, consistency chi^2, HF power, time) or on a real SDSS/DECaLS pair")


def add_arguments(parser):
    """Add the ``evaluate`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--methods", default="bicubic,richardson-lucy",
                        help="comma-separated enhancer names, each optionally with options, "
                             "e.g. 'bicubic,bilateral(sigma_color=8,sigma_space=8)' "
                             "(default bicubic,richardson-lucy)")
    parser.add_argument("--n", type=int, default=200, help="number of scenes (default 200)")
    parser.add_argument("--split", default="bench", choices=["train", "val", "bench"],
                        help="seed split (default bench)")
    parser.add_argument("--start", type=int, default=None, help="first seed")
    parser.add_argument("--bands", default="r", help="comma-separated bands (default r)")
    parser.add_argument("--shards", default=None,
                        help="read scenes from this shard directory instead of simulating")
    parser.add_argument("--stamp-arcsec", type=float, default=64.0,
                        help="scene size when simulating (default 64)")
    parser.add_argument("--device", default="cpu", help="device for neural enhancers")
    parser.add_argument("--out", default=None,
                        help="directory for evaluate_images.ecsv, evaluate_summary.ecsv and "
                             "evaluate.png")
    parser.add_argument("--examples", type=int, default=4,
                        help="scenes shown in the figure (default 4)")
    parser.add_argument("--real", nargs=2, metavar=("SDSS.fits", "DECALS.fits"), default=None,
                        help="evaluate one real pair instead (both put on the DECaLS grid)")
    parser.add_argument("--source", default="simulation",
                        choices=["simulation", "real-morphology"],
                        help="bench scenes: the parametric simulator (default) or the "
                             "real-morphology pairs of the split's held-out DECaLS galaxies "
                             "(real galaxy images as truth, the SDSS psField PSF); "
                             "real-morphology also runs the shared DECam frames degraded to "
                             "SDSS (testcase9, testcase6)")
    parser.add_argument("--real-data", default=None, metavar="DIR",
                        help="real-data folder holding decals_cutouts/, sdss/ and decam/ "
                             "(default $ASTRO_ENHANCE_REAL_DATA, else ../shared/data/real "
                             "beside the source checkout)")
    parser.add_argument("--colour", action="store_true",
                        help="several-band enhancers (colorize): colour errors in 2 r50 "
                             "apertures and per-band PSNR against the g, r, z truth, with the "
                             "median-colour baselines")
    parser.add_argument("--paint", default="unet",
                        help="with --colour: single-band enhancers whose output is painted "
                             "with the median colours as extra baselines (default unet; '' "
                             "for none)")
    parser.add_argument("--noise-scale", type=float, default=1.0, metavar="F",
                        help="multiply the SDSS noise by F (0.5: deeper input, 2: "
                             "shallower; not with --shards; default 1)")
    parser.add_argument("--two-sample", action="store_true",
                        help="also run the classifier two-sample test of each method's "
                             "outputs against the DECaLS-like images (texture realism)")
    parser.add_argument("--texture-depth", default="scene", choices=["scene", "nominal"],
                        help="depth of the noise that gan/srgan add: that of each scene's "
                             "DECaLS-like image (default) or the survey's nominal one")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _write_table(table, path, overwrite):
    import os
    from pathlib import Path

    from ..exceptions import OutputExistsError

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; use --overwrite or another --out")
    from ..io import write_table_atomic

    return write_table_atomic(table, path)


def run(args):
    """Run ``astro-enhance evaluate``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        Exit code.
    """
    from pathlib import Path

    from ..evaluate import (best_classical, evaluate, evaluate_colour, evaluate_real,
                            format_summary,
                            make_colour_figure, make_figure, parse_methods, summarize)

    # labels: the specifications without spaces, e.g. bilateral(sigma_color=8,sigma_space=8)
    methods = [label for label, _, _ in parse_methods(args.methods)]
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if args.real:
        table = evaluate_real(args.real[0], args.real[1], methods, device=args.device)
        print(format_summary(summarize(table)))
        if out is not None:
            p = _write_table(table, out / "evaluate_real.ecsv", args.overwrite)
            print(f"wrote {p}")
        return 0
    bands = [b.strip() for b in args.bands.split(",") if b.strip()]
    if args.colour:
        paint = [label for label, _, _ in parse_methods(args.paint)] if args.paint else []
        table, examples = evaluate_colour(methods, n=args.n, split=args.split,
                                          start=args.start, paint=paint,
                                          stamp_arcsec=args.stamp_arcsec, device=args.device,
                                          keep_examples=args.examples if out else 0,
                                          progress=not args.no_progress)
        summary = summarize(table)
        summary.meta.update(table.meta)
        print(f"{args.n} {args.split} scenes, r in, g/r/z out; median / 90th percentile of "
              f"|colour error| (mag, 2 r50 aperture) and per-band PSNR vs truth:")
        print(format_summary(summary))
        print("median truth colours (g-r, r-z) of the scenes: "
              + ", ".join(f"{v:.3f}" for v in table.meta["median_colours"]))
        if out is not None:
            for name, t in (("evaluate_colour_images.ecsv", table),
                            ("evaluate_colour_summary.ecsv", summary)):
                print(f"wrote {_write_table(t, out / name, args.overwrite)}")
            if examples:
                print(f"wrote {make_colour_figure(examples, out / 'evaluate_colour.png')}")
        return 0
    table, examples = evaluate(methods, n=args.n, split=args.split, bands=bands,
                               start=args.start, shards=args.shards,
                               stamp_arcsec=args.stamp_arcsec, device=args.device,
                               keep_examples=args.examples if out is not None else 0,
                               progress=not args.no_progress, source=args.source,
                               data_dir=args.real_data, noise_scale=args.noise_scale,
                               two_sample=args.two_sample,
                               texture_depth=args.texture_depth)
    summary = summarize(table)
    summary.meta["source"] = args.source
    summary.meta["noise_scale"] = args.noise_scale
    import platform
    import shlex
    import sys

    from ..version import __version__

    if sys.argv[0].endswith(("astro-enhance", "cli.py", "__main__.py")):
        argv = sys.argv[1:]
    else:
        argv = ["evaluate", "--methods", ",".join(methods), "--n", str(args.n),
                "--split", args.split]
    summary.meta["command"] = "astro-enhance " + " ".join(shlex.quote(a) for a in argv)
    summary.meta["astro_enhance_version"] = __version__
    summary.meta["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    n_scenes = len(set(int(s) for s in table["seed"]))
    what = ("real-morphology galaxies" if args.source == "real-morphology" else "scenes")
    print(f"{n_scenes} {args.split} {what} x {len(bands)} band(s); median / 90th percentile "
          f"per method (psnr, ssim vs truth; chi2 vs SDSS; hf_power vs DECaLS-like; "
          f"noise_power: error power over DECaLS noise's; anisotropy of the error):")
    print(format_summary(summary))
    if "two_sample" in table.meta:
        summary.meta["two_sample"] = table.meta["two_sample"]
        print("two-sample test vs the DECaLS-like images (held-out accuracy; 0.5 = "
              "indistinguishable): " + ", ".join(
                  f"{m} {v['accuracy']:.3f} (n={v['n_test']})"
                  for m, v in table.meta["two_sample"].items()))
    best = best_classical(summary)
    if best is not None:
        print(f"best classical method (median PSNR): {best['method']} "
              f"({float(best['psnr_median']):.2f} dB, SSIM {float(best['ssim_median']):.3f})")
        summary.meta["best_classical"] = str(best["method"])
    tables = [("evaluate_images.ecsv", table), ("evaluate_summary.ecsv", summary)]
    if args.source == "real-morphology":
        from ..evaluate import evaluate_decam, format_decam
        dtable, dexamples = evaluate_decam(methods, band=bands[0], data_dir=args.real_data,
                                           device=args.device)
        dtable.meta["command"] = summary.meta["command"]
        print("shared DECam frames degraded to SDSS (psnr, ssim vs the PSF-matched DECam "
              "image; chi2 on pixels with light, with the exposure's inverse variance):")
        print(format_decam(dtable))
        tables.append(("evaluate_decam.ecsv", dtable))
    if out is not None:
        for name, t in tables:
            print(f"wrote {_write_table(t, out / name, args.overwrite)}")
        if examples:
            print(f"wrote {make_figure(examples, methods, out / 'evaluate.png')}")
    return 0
