"""``astro-enhance enhance IN -o OUT``: the whole pipeline on one file."""

import numpy as np

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "enhance"
HELP = "resample an image to the target survey's grid and enhance it"


def add_arguments(parser):
    parser.add_argument("input", help="input FITS file (any image HDU; .gz/.bz2/.fz too)")
    parser.add_argument("-o", "--output", required=True, help="output FITS file")
    parser.add_argument("--method", default=None,
                        help="enhancer name (see 'astro-enhance list'); default: best available")
    parser.add_argument("--target", default="decals", help="target survey (default decals)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--tile-size", type=int, default=None, help="tile size in pixels")
    parser.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels")
    parser.add_argument("--weights", default=None, help="user weights (.safetensors + .json)")
    parser.add_argument("--samples", type=int, default=1,
                        help="samples for stochastic enhancers (writes an STD extension)")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--hdu", default=None, help="HDU index or name to read")
    parser.add_argument("--remove-stars", action="store_true",
                        help="remove foreground stars before enhancing")
    parser.add_argument("--north-up", action="store_true", help="output grid north up")
    parser.add_argument("--preview", default=None, metavar="PNG",
                        help="also write a PNG: input, output and difference panels")
    parser.add_argument("--rgb", default=None, metavar="PNG",
                        help="for a several-band output (--method colorize): also write a "
                             "colour PNG (astropy make_lupton_rgb)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args):
    from pathlib import Path

    from ..exceptions import InputError, OutputExistsError
    from ..io import _check_output_path, write_fits
    from ..pipeline import _enhance

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it")
    # Fail before the computation when an output cannot be written (and never leave the FITS
    # file behind because the preview could not be written).
    _check_output_path(out, overwrite=args.overwrite)
    if args.preview:
        _check_output_path(args.preview, overwrite=True)
    if args.rgb:
        _check_output_path(args.rgb, overwrite=True)
    hdu = args.hdu
    if hdu is not None and str(hdu).lstrip("-").isdigit():
        hdu = int(hdu)
    hdul, resampled = _enhance(args.input, args.method, target=args.target, device=args.device,
                               remove_stars=args.remove_stars, tile_size=args.tile_size,
                               overlap=args.overlap, weights=args.weights,
                               samples=args.samples, rng=args.seed,
                               progress=not args.no_progress, hdu=hdu, north_up=args.north_up)
    h = hdul[0].header
    cube = hdul[0].data.ndim == 3
    if args.rgb and not (cube and hdul[0].data.shape[0] == 3):
        raise InputError(f"--rgb needs an enhancer with three output bands (e.g. colorize); "
                         f"{h.get('AE_METH')} writes one band")
    write_fits(hdul, out, overwrite=args.overwrite)
    bands = f" (bands {h['AE_BANDS']})" if cube else ""
    print(f"wrote {out}: method {h.get('AE_METH')}, {h['NAXIS1']}x{h['NAXIS2']} px{bands}, "
          f"flux ratio {h.get('AE_FLUXR')}, consistency chi2 {_fmt(h.get('AE_CHI2'))}")
    if args.rgb:
        from ..visualization import save_rgb

        save_rgb(args.rgb, hdul[0].data)
        print(f"wrote colour image {args.rgb} (blue {h['BAND1']}, green {h['BAND2']}, "
              f"red {h['BAND3']})")
    if args.preview:
        from ..visualization import save_preview

        before = resampled.data
        after = hdul[0].data
        if cube:
            panels = [("input (resampled)", before)] + [
                (f"{h.get(f'BAND{k + 1}')} ({h.get('AE_METH')})", plane)
                for k, plane in enumerate(after)]
        else:
            panels = [("input (resampled)", before),
                      (f"enhanced ({h.get('AE_METH')})", after),
                      ("difference (enhanced - input)", np.asarray(after) - before)]
        save_preview(args.preview, panels,
                     title=f"astro-enhance: {h.get('AE_METH')} -> {args.target}",
                     unit=h.get("BUNIT"))
        print(f"wrote preview {args.preview}")
    return 0


def _fmt(value):
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return "n/a"
