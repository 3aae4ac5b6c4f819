"""``astro-enhance demo``: the whole main job on a built-in sample, no data of the user's."""

import time

import numpy as np

__all__ = ["NAME", "HELP", "add_arguments", "run", "DEMO_SEED"]

NAME = "demo"
HELP = ("run the main job (resample, enhance, compare with the truth) on a built-in simulated "
        "SDSS galaxy field and write FITS outputs and a comparison PNG")

#: Seed of the demo scene, from the benchmark split (never used for training).
DEMO_SEED = 20_000_055


def add_arguments(parser):
    parser.add_argument("--output", "-o", default="astro_enhance_demo",
                        help="output directory (created; default ./astro_enhance_demo)")
    parser.add_argument("--method", default=None,
                        help="enhancer (default: the best available, see 'astro-enhance list')")
    parser.add_argument("--band", default="r", help="band of the sample (g, r or i)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="scene seed (bench split)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda:N or mps")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args):
    from pathlib import Path

    from astropy.io import fits

    from ..enhancers import get_enhancer
    from ..exceptions import OutputError, OutputExistsError
    from ..io import image_to_hdu, write_fits
    from ..metrics import flux_error, psnr, ssim
    from ..pipeline import default_method, enhance_fits
    from ..simulate import simulate_pair
    from ..visualization import save_preview

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--output {out} exists and is not a directory")
    # Check the method and device before anything is written (unknown names fail here).
    method = args.method or default_method()
    get_enhancer(method, device=args.device)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    names = {k: out / f"demo_{k}.fits" for k in ("sdss", "enhanced", "truth", "decals")}
    png = out / "demo_comparison.png"
    if not args.overwrite:
        for p in list(names.values()) + [png]:
            if p.exists():
                raise OutputExistsError(f"{p} exists; pass --overwrite or another --output")

    band = args.band
    t0 = time.perf_counter()
    written = []
    try:
        pair = simulate_pair(args.seed, bands=(band,), split="bench")
        sdss_hdu = image_to_hdu(pair.sdss[band])
        sdss_hdu.header["COMMENT"] = ("Simulated SDSS-like scene made by astro_enhance.simulate "
                                      f"(seed {args.seed}); not an observation.")
        for key, hdu in (("sdss", sdss_hdu), ("truth", image_to_hdu(pair.truth[band])),
                         ("decals", image_to_hdu(pair.decals[band]))):
            written.append(write_fits(fits.HDUList([hdu]), names[key],
                                      overwrite=args.overwrite))
        hdul = enhance_fits(str(names["sdss"]), method, device=args.device)
        written.append(write_fits(hdul, names["enhanced"], overwrite=args.overwrite))
    except BaseException:
        _discard(written, out if created else None)
        raise
    elapsed = time.perf_counter() - t0

    enhanced = hdul[0].data
    truth = pair.truth[band].data
    resampled = pair.input[band].data
    sigma = pair.sigma_decals[band]
    centre = (pair.galaxy["x_decals"], pair.galaxy["y_decals"])
    rows = []
    for label, img in (("SDSS (resampled)", resampled), (method, enhanced)):
        rows.append((label, psnr(img, truth, sigma=sigma), ssim(img, truth, sigma=sigma),
                     flux_error(img, truth, center=centre)))
    panels = [(f"{lab}\nPSNR {p:.1f} dB  SSIM {s:.3f}  flux err {100 * f:+.1f}%", img)
              for (lab, p, s, f), img in zip(rows, (resampled, enhanced))]
    panels.append(("truth (noiseless, DECaLS PSF)", truth))
    panels.append(("residual (enhanced - truth)", np.asarray(enhanced) - truth))
    try:
        save_preview(png, panels, unit=hdul[0].header.get("BUNIT"),
                     title=(f"astro_enhance demo: simulated SDSS {band}-band galaxy -> DECaLS "
                            f"grid, method '{method}' (consistency chi2 "
                            f"{_fmt(hdul[0].header.get('AE_CHI2'))})"))
    except BaseException:
        _discard(written, out if created else None)
        raise

    print(f"astro_enhance demo ({elapsed:.1f} s), method '{method}', band {band}, "
          f"seed {args.seed}:")
    print(f"  {'image':<20s} {'PSNR [dB]':>10s} {'SSIM':>7s} {'flux err':>9s}")
    for lab, p, s, f in rows:
        print(f"  {lab:<20s} {p:10.2f} {s:7.3f} {100 * f:+8.2f}%")
    for key, path in names.items():
        print(f"  wrote {path}")
    print(f"  wrote {png}")
    return 0


def _discard(paths, directory):
    """A demo that failed half-way (disk full, Ctrl-C...) leaves none of its files."""
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass
    if directory is not None:
        try:
            directory.rmdir()
        except OSError:
            pass


def _fmt(value):
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "n/a"
