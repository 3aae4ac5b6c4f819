"""``astro-enhance remove-stars IN [MORE_BANDS...] -o OUT``: remove foreground stars.

Writes a FITS file with the clean image (primary), what was removed (``STARS``), the
changed pixels (``MASK``) and the catalogue of every candidate with its decision
(``CATALOG``), plus the catalogue as ECSV beside it (``OUT`` with the suffix ``.ecsv``).
"""

__all__ = ["NAME", "HELP", "add_arguments", "run", "catalog_path"]

NAME = "remove-stars"
HELP = ("remove foreground stars (PSF subtraction, inpainting of saturated stars, spikes and "
        "bleed trails), protecting the target galaxy")


def add_arguments(parser):
    from ..stars import INPAINT_METHODS, METHODS

    parser.add_argument("input", help="image: FITS (any image HDU; .gz/.bz2/.fz too) or an RGB "
                                      "PNG/JPEG cutout")
    parser.add_argument("more_bands", nargs="*", metavar="MORE_BANDS",
                        help="other bands of the same field (FITS), for detection and the "
                             "colour test; resampled onto the first image's grid if needed")
    parser.add_argument("-o", "--output", required=True, help="output FITS file")
    parser.add_argument("--psf", action="append", default=None, metavar="FILE",
                        help="PSF file: FITS PSF image, SDSS psField or PsfEx .psf (give it once "
                             "for all bands, or once per band in order)")
    parser.add_argument("--fwhm", default=None,
                        help="seeing FWHM: pixels (e.g. 3.2) or an angle (e.g. 1.3arcsec); "
                             "default: measured on the image's own stars")
    parser.add_argument("--threshold", type=float, default=5.0,
                        help="detection threshold in noise sigmas (default 5)")
    parser.add_argument("--method", default="auto", choices=METHODS,
                        help="auto: subtract unsaturated stars, inpaint saturated/bright ones "
                             "(default); subtract or inpaint every star")
    parser.add_argument("--inpaint", default="telea", choices=INPAINT_METHODS,
                        help="inpainting algorithm (default telea)")
    parser.add_argument("--protect", default=None, metavar="X,Y",
                        help="pixel position (0-based x,y) of the galaxy to protect; default "
                             "the object at the image centre; 'none' protects nothing")
    parser.add_argument("--hdu", default=None, help="HDU index or name to read")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the noise added to inpainted pixels (default 0)")
    parser.add_argument("--preview", default=None, metavar="PNG",
                        help="also write a PNG: input, clean image and mask")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def catalog_path(output):
    """The ECSV catalogue path written beside ``output`` (``x.fits[.gz]`` -> ``x.ecsv``).

    Parameters
    ----------
    output : str or path
        The FITS output.

    Returns
    -------
    `pathlib.Path`

    Examples
    --------
    >>> catalog_path("out/clean.fits.gz").name
    'clean.ecsv'
    """
    from pathlib import Path

    p = Path(output)
    name = p.name
    for suffix in (".gz", ".bz2", ".fz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for suffix in (".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return p.with_name(name + ".ecsv")


def _parse_fwhm(text):
    if text is None:
        return None
    import astropy.units as u

    from ..exceptions import InputError

    try:
        return float(text)
    except ValueError:
        pass
    try:
        q = u.Quantity(text)
    except (TypeError, ValueError):
        raise InputError(f"--fwhm {text!r}: give pixels (3.2) or an angle (1.3arcsec)") from None
    if q.unit.physical_type != "angle":
        raise InputError(f"--fwhm {text!r}: give pixels (3.2) or an angle (1.3arcsec)")
    return q


def _parse_protect(text):
    if text is None:
        return None
    from ..exceptions import InputError

    if text.strip().lower() in ("none", "no", "false", "off"):
        return False
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--protect {text!r}: give the pixel position as X,Y (e.g. 120,85) or "
                         "'none'") from None
    return (x, y)


def _temporary_beside(path):
    """A fresh hidden temporary name in ``path``'s directory that keeps its suffixes (FITS
    compression and the preview format are chosen by suffix)."""
    import secrets

    return path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")


def run(args):
    import os
    from pathlib import Path

    import numpy as np

    from ..exceptions import OutputError
    from ..io import _check_output_path, write_fits, write_table_atomic
    from ..stars import plain_catalog, remove_stars
    from .info import parse_hdu

    out = Path(args.output)
    cat_out = catalog_path(out)
    preview = Path(args.preview) if args.preview else None
    # every output path is checked before any work
    for p in (out, cat_out) + ((preview,) if preview is not None else ()):
        _check_output_path(p, overwrite=args.overwrite)
    fwhm = _parse_fwhm(args.fwhm)
    protect = _parse_protect(args.protect)
    psf = None
    if args.psf:
        psf = args.psf[0] if len(args.psf) == 1 else list(args.psf)
    image = args.input
    if args.hdu is not None and not str(args.input).lower().endswith(
            (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")):
        from ..io import read_image
        image = read_image(args.input, hdu=parse_hdu(args.hdu))
    result = remove_stars(image, bands=list(args.more_bands) or None, psf=psf, fwhm=fwhm,
                          threshold=args.threshold, method=args.method, inpaint=args.inpaint,
                          protect=protect, rng=args.seed)
    hdul = result.to_hdulist(history=[f"Input: {Path(args.input).name}"
                                      + (f" (+ {len(args.more_bands)} band(s))"
                                         if args.more_bands else "")])
    # All or nothing: every output goes to a temporary beside it; only when all of them are
    # written are they renamed into place. On any failure the temporaries are removed and
    # nothing (new) is left behind.
    tmps = {}
    try:
        tmps[out] = _temporary_beside(out)
        write_fits(hdul, tmps[out], overwrite=True)
        tmps[cat_out] = _temporary_beside(cat_out)
        try:
            write_table_atomic(plain_catalog(result.catalog), tmps[cat_out])
        except OSError as exc:
            raise OutputError(f"cannot write catalogue {str(cat_out)!r}: "
                              f"{exc.strerror or exc}") from exc
        if preview is not None:
            from ..stars.preview import save_star_preview
            first = result.clean
            orig = first + result.stars
            if first.ndim == 3:
                if result.layout == "rgb":
                    first, orig = first.mean(axis=-1), orig.mean(axis=-1)
                else:
                    first, orig = first[0], orig[0]
            tmps[preview] = _temporary_beside(preview)
            try:
                save_star_preview(tmps[preview], orig, first, result.mask,
                                  inpainted=result.inpainted,
                                  title=f"remove-stars {Path(args.input).name}: "
                                        f"{result.n_removed} star(s) removed")
            except OSError as exc:
                raise OutputError(f"cannot write preview {str(preview)!r}: "
                                  f"{exc.strerror or exc}") from exc
        for final, tmp in tmps.items():
            os.replace(tmp, final)
    except BaseException:
        for tmp in tmps.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    n_inp = int(np.sum(np.asarray(result.catalog["removal"]) == "inpaint")) \
        if len(result.catalog) else 0
    print(f"wrote {out}: {result.n_removed} star(s) removed ({n_inp} masked and inpainted), "
          f"{len(result.catalog) - result.n_removed} other source(s) kept; catalogue {cat_out}"
          + (f"; preview {preview}" if preview is not None else ""))
    return 0
