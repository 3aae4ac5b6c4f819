"""``astro-enhance demo``: the whole main job on built-in samples, no data of the user's.

Two scenes go through the same pipeline as a user's file (`astro_enhance.enhance_fits` with
star removal and the default enhancer):

* ``sim``: an SDSS-like galaxy field made by the package's simulator
  (`astro_enhance.simulate.simulate_pair`, a bench-split seed never used in training), with
  field stars;
* ``hdf``: real galaxy morphology, a cutout of the Hubble eXtreme Deep Field image that
  scikit-image ships, turned into a DECaLS-grid truth and degraded to SDSS by the package's
  simulator (`astro_enhance.sample_data.make_hdf_sample`).

Each is compared with its noiseless, star-free truth in one PNG (one row per scene).
"""

import time

import numpy as np

__all__ = ["NAME", "HELP", "add_arguments", "run", "DEMO_SEED"]

NAME = "demo"
HELP = ("run the main job (resample, remove stars, enhance, compare with the truth) on two "
        "built-in samples -- a simulated SDSS galaxy field and real Hubble Deep Field galaxies "
        "degraded to SDSS -- and write FITS outputs and a comparison PNG")

#: Seed of the simulated scene, from the benchmark split (never used for training).
DEMO_SEED = 20_000_055


def add_arguments(parser):
    parser.add_argument("--output", "-o", default="astro_enhance_demo",
                        help="output directory (created; default ./astro_enhance_demo)")
    parser.add_argument("--method", default=None,
                        help="enhancer (default: the best available, see 'astro-enhance list')")
    parser.add_argument("--band", default="r", help="band of the samples (g, r or i)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED,
                        help="seed of the simulated scene (bench split)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda:N or mps")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _outputs(out):
    """Output paths: the simulated scene keeps the historical ``demo_*.fits`` names."""
    names = {("sim", k): out / f"demo_{k}.fits" for k in ("sdss", "enhanced", "truth", "decals")}
    names.update({("hdf", k): out / f"demo_hdf_{k}.fits" for k in ("sdss", "enhanced", "truth")})
    return names


def run(args):
    import warnings
    from pathlib import Path

    from astropy.io import fits

    from ..enhancers import get_enhancer
    from ..exceptions import DomainWarning, NoStarsWarning, OutputError, OutputExistsError
    from ..io import image_to_hdu, write_fits
    from ..pipeline import default_method, enhance_fits
    from ..sample_data import make_hdf_sample
    from ..simulate import check_seeds, simulate_pair
    from ..surveys import get_survey

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--output {out} exists and is not a directory")
    # Check every option before anything is written (unknown names fail here).
    method = args.method or default_method()
    get_enhancer(method, device=args.device)
    band = get_survey("sdss").check_band(args.band)
    check_seeds("bench", start=args.seed, n=1)
    names = _outputs(out)
    png = out / "demo_comparison.png"
    if not args.overwrite:
        for p in list(names.values()) + [png]:
            if p.exists():
                raise OutputExistsError(f"{p} exists; pass --overwrite or another --output")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    written = []
    scenes = []
    try:
        # Scene 1: the simulator's galaxy field with stars; the truth has no stars (same seed
        # with n_stars=0 draws the same galaxy, PSF and noise: stars are drawn last).
        pair = simulate_pair(args.seed, bands=(band,), split="bench")
        clean = simulate_pair(args.seed, bands=(band,), n_stars=0)
        sdss_hdu = image_to_hdu(pair.sdss[band])
        sdss_hdu.header["COMMENT"] = ("Simulated SDSS-like scene made by astro_enhance.simulate "
                                      f"(seed {args.seed}); not an observation.")
        truth_hdu = image_to_hdu(clean.truth[band])
        truth_hdu.header["COMMENT"] = "Noiseless DECaLS-PSF truth without the field stars."
        for key, hdu in (("sdss", sdss_hdu), ("truth", truth_hdu),
                         ("decals", image_to_hdu(pair.decals[band]))):
            written.append(write_fits(fits.HDUList([hdu]), names["sim", key],
                                      overwrite=args.overwrite))
        scenes.append(dict(
            key="sim", title=f"simulated SDSS {band}-band galaxy field (seed {args.seed})",
            truth=clean.truth[band].data, sigma=pair.sigma_decals[band],
            center=(pair.galaxy["x_decals"], pair.galaxy["y_decals"]),
            n_stars=len(pair.stars)))

        # Scene 2: real morphology (Hubble eXtreme Deep Field) degraded to SDSS.
        hdf = make_hdf_sample(band=band, seed=1)
        truth_hdu = image_to_hdu(hdf.truth)
        for key, hdu in (("sdss", hdf.sdss), ("truth", truth_hdu)):
            written.append(write_fits(fits.HDUList([hdu]), names["hdf", key],
                                      overwrite=args.overwrite))
        scenes.append(dict(
            key="hdf", title=f"Hubble Deep Field galaxies degraded to SDSS {band}",
            truth=hdf.truth.data, sigma=hdf.sigma_decals, center=hdf.center,
            n_stars=len(hdf.stars)))

        for scene in scenes:
            key = scene["key"]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                hdul, resampled = _run_pipeline(names[key, "sdss"], method, args.device,
                                                enhance_fits)
            scene["warnings"] = [str(w.message) for w in caught
                                 if issubclass(w.category, (DomainWarning, NoStarsWarning))]
            written.append(write_fits(hdul, names[key, "enhanced"], overwrite=args.overwrite))
            scene.update(hdul=hdul, input=resampled)
    except BaseException:
        _discard(written, out if created else None)
        raise

    for scene in scenes:
        _score(scene, method)
    try:
        written.append(_figure(png, scenes, method, band))
    except BaseException:
        _discard(written, out if created else None)
        raise
    elapsed = time.perf_counter() - t0

    print(f"astro_enhance demo ({elapsed:.1f} s), method '{method}', band {band}:")
    for scene in scenes:
        h = scene["hdul"][0].header
        n_removed = None
        if "STARS" in scene["hdul"]:
            n_removed = int(np.count_nonzero(
                np.char.strip(scene["hdul"]["STARS"].data["decision"].astype(str)) == "star"))
        print(f"  {scene['title']}: consistency chi2 {_fmt(h.get('AE_CHI2'))}, flux ratio "
              f"{_fmt(h.get('AE_FLUXR'), 4)}, stars added {scene['n_stars']}"
              + (f", removed {n_removed}" if n_removed is not None else ""))
        print(f"    {'image':<22s} {'PSNR [dB]':>10s} {'SSIM':>7s} {'flux err':>9s}")
        for lab, p, s, f in scene["rows"]:
            print(f"    {lab:<22s} {p:10.2f} {s:7.3f} {100 * f:+8.2f}%")
        for msg in scene["warnings"]:
            print(f"    note: {msg}")
    for path in names.values():
        print(f"  wrote {path}")
    print(f"  wrote {png}")
    return 0


def _run_pipeline(path, method, device, enhance_fits):
    """The public pipeline on a file, plus the resampled input for the comparison panel."""
    from ..io import read_image
    from ..resample import resample

    hdul = enhance_fits(str(path), method, device=device, remove_stars=True, rng=0)
    resampled = resample(read_image(path), "decals", return_type="image").data
    return hdul, resampled


def _score(scene, method):
    from ..metrics import flux_error, psnr, ssim

    truth, sigma, centre = scene["truth"], scene["sigma"], scene["center"]
    enhanced = np.asarray(scene["hdul"][0].data, dtype=np.float32)
    rows = []
    for label, img in (("SDSS (resampled)", scene["input"]), (method, enhanced)):
        rows.append((label, psnr(img, truth, sigma=sigma), ssim(img, truth, sigma=sigma),
                     flux_error(img, truth, center=centre)))
    scene["rows"] = rows
    scene["enhanced"] = enhanced


def _figure(png, scenes, method, band):
    """One row per scene: SDSS input, enhanced, truth, residual; metrics in the titles."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from astropy.visualization import ImageNormalize, LinearStretch

    from ..visualization import _save_figure

    fig, axes = plt.subplots(len(scenes), 4, figsize=(16.5, 4.6 * len(scenes)), squeeze=False)
    for row, scene in zip(axes, scenes):
        (lab_in, p_in, s_in, f_in), (_, p_out, s_out, f_out) = scene["rows"]
        truth = scene["truth"]
        resid = scene["enhanced"] - truth
        chi2 = _fmt(scene["hdul"][0].header.get("AE_CHI2"))
        norm = _norm(scene["input"], truth, scene["sigma"])
        panels = [
            (f"SDSS input (on the DECaLS grid)\nPSNR {p_in:.1f} dB  SSIM {s_in:.3f}  "
             f"flux {100 * f_in:+.1f}%", scene["input"], norm, "gray"),
            (f"{method} + star removal\nPSNR {p_out:.1f} dB  SSIM {s_out:.3f}  "
             f"flux {100 * f_out:+.1f}%  chi2 {chi2}", scene["enhanced"], norm, "gray"),
            ("truth (noiseless, DECaLS PSF, no stars)", truth, norm, "gray"),
        ]
        lim = float(np.nanpercentile(np.abs(resid), 99.5)) or 1.0
        panels.append(("residual (enhanced - truth)", resid,
                       ImageNormalize(vmin=-lim, vmax=lim, stretch=LinearStretch()), "RdBu_r"))
        for ax, (title, img, nm, cmap) in zip(row, panels):
            art = ax.imshow(img, origin="lower", cmap=cmap, norm=nm, interpolation="nearest")
            ax.set_title(title, fontsize=9.5)
            ax.set_xticks([])
            ax.set_yticks([])
            cb = fig.colorbar(art, ax=ax, fraction=0.046, pad=0.02)
            if cmap == "gray":  # a few readable ticks on the asinh scale
                cb.set_ticks([float(f"{v:.2g}") for v in
                              (nm.vmin, 0.0, 0.03 * nm.vmax, 0.2 * nm.vmax, nm.vmax)])
            cb.set_label("nanomaggy / pixel", fontsize=8)
            cb.ax.tick_params(labelsize=7)
        row[0].set_ylabel(scene["title"], fontsize=10)
    fig.suptitle(f"astro_enhance demo: SDSS {band} -> DECaLS grid (0.262\"/px), method "
                 f"'{method}' with star removal; metrics against the truth", fontsize=12)
    fig.tight_layout()
    return _save_figure(fig, png, dpi=90)


def _norm(inp, truth, sigma):
    """One asinh stretch for the input, output and truth of a scene: black just below the
    input's noise, softening at 3 sigma of a DECaLS image, white at the truth's bright end."""
    from astropy.visualization import AsinhStretch, ImageNormalize

    from ..normalize import estimate_noise

    sig_in = estimate_noise(inp, mask=~np.isfinite(inp))
    vmin = -1.5 * sig_in
    vmax = float(np.nanmax(truth))
    vmax = vmax if vmax > vmin else vmin + 1.0
    a = float(np.clip(3.0 * sigma / (vmax - vmin), 1e-4, 1.0))
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(a=a), clip=True)


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


def _fmt(value, digits=2):
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "n/a"
