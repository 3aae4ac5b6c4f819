"""``astro-enhance resample IN -o OUT``: put an image on a survey's pixel grid, flux-aware."""

import argparse

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "resample"
HELP = "resample an image onto a survey's pixel grid (keeps sky positions and total flux)"


def add_arguments(parser):
    from ..resample import METHODS, ORDERS
    from ..surveys import list_surveys

    parser.add_argument("input", help="input FITS file (any image HDU; .gz/.bz2/.fz too)")
    parser.add_argument("-o", "--output", required=True, help="output FITS file")
    parser.add_argument("--target", default="decals",
                        help=f"target survey: {', '.join(list_surveys())} (default decals)")
    parser.add_argument("--method", default="interp", choices=METHODS,
                        help="reproject algorithm (default interp)")
    parser.add_argument("--order", default="bicubic", choices=ORDERS,
                        help="interpolation order for --method interp (default bicubic)")
    parser.add_argument("--north-up", action="store_true",
                        help="output north up, east left (default: keep the input orientation)")
    parser.add_argument("--conserve-flux", action=argparse.BooleanOptionalAction, default=None,
                        help="multiply by the pixel-area ratio (per-pixel units) or not "
                             "(surface brightness); default: decide from BUNIT")
    parser.add_argument("--pixel-scale", type=float, default=None,
                        help="output pixel scale in arcsec (default: the target survey's)")
    parser.add_argument("--hdu", default=None, help="HDU index or name to read")
    parser.add_argument("--plane", type=int, default=None, help="plane of a 3-D cube")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args):
    from pathlib import Path

    from ..exceptions import OutputExistsError
    from ..io import read_image, write_fits
    from ..resample import resample
    from ..surveys import get_survey
    from .info import parse_hdu

    out = Path(args.output)
    # Fail before any work on what can be checked up front.
    survey = get_survey(args.target)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"output {str(out)!r} exists: pass --overwrite to replace it")
    image = read_image(args.input, hdu=parse_hdu(args.hdu), plane=args.plane)
    result = resample(image, survey, method=args.method, order=args.order,
                      conserve_flux=args.conserve_flux, north_up=args.north_up,
                      pixel_scale=args.pixel_scale, return_type="image")
    write_fits(result, out, overwrite=args.overwrite)
    ny, nx = result.shape
    h = result.header
    print(f"wrote {out}: {nx} x {ny} px at {h['AE_RSCL']:.4f}\"/px ({survey.title} grid), "
          f"values x {h['AE_FLUXF']:.6g}")
    return 0
