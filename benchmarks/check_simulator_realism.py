"""Realism check of the survey simulator (acceptance 1).

For ``--n`` simulated r-band scenes (bench seeds) this measures

* the background noise of the SDSS and DECaLS-like images (`estimate_noise`), and
* the FWHM of unsaturated, isolated stars (Moffat fit of the pixel data),

and compares them with the values the simulator was asked to produce (each scene's drawn
targets, and the chosen medians: SDSS r sigma 0.034 nmgy, FWHM 1.3"), reporting PASS when the
median ratio measured / target is within 10%. The same measurements are made on the real SDSS
frame run 2583 camcol 2 field 136 (r) for reference, and a figure compares simulated SDSS scenes
with real cutouts of that frame at the same asinh stretch.

Usage::

    PYTHONPATH=. python benchmarks/check_simulator_realism.py [--n 200]
        [--figure docs/_static/simulated_vs_real_sdss.png]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "sdss"


def moffat_fwhm(data, x, y, *, half=7, pixel_scale, effective=True):
    """FWHM (arcsec) of a Moffat profile fitted to the star at pixel (x, y), or None.

    With ``effective`` (default) the effective FWHM (that of the Gaussian with the fitted
    profile's noise-equivalent area, as SDSS psf_width / Legacy Surveys psfsize) is returned,
    otherwise the Moffat core FWHM.
    """
    from astropy.modeling import fitting, models

    ix, iy = int(round(x)), int(round(y))
    ny, nx = data.shape
    if not (half <= ix < nx - half and half <= iy < ny - half):
        return None
    cut = data[iy - half:iy + half + 1, ix - half:ix + half + 1].astype(float)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    m0 = models.Moffat2D(amplitude=cut.max(), x_0=x - ix, y_0=y - iy, gamma=3.0, alpha=3.0) + \
        models.Const2D(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fitting.LevMarLSQFitter()(m0, xx, yy, cut, maxiter=200)
    g, a = abs(fit.gamma_0.value), fit.alpha_0.value
    fwhm = 2 * g * np.sqrt(2 ** (1 / a) - 1) * pixel_scale
    if not (1.1 < a < 20):
        return None
    if effective:
        from astro_enhance.simulate import moffat_core_fwhm
        fwhm = fwhm * fwhm / moffat_core_fwhm(fwhm, a)
    return float(fwhm) if np.isfinite(fwhm) and 0.3 < fwhm < 5 else None


def isolated_stars(p, *, mag_max=19.5, min_sep=8.0):
    st = p.stars
    keep = []
    g = p.galaxy
    for i, s in enumerate(st):
        if s["saturated"] or s["mag_r"] > mag_max or s["kind"] == "on_galaxy":
            continue
        d = np.hypot((st["ra"] - s["ra"]) * np.cos(np.radians(s["dec"])),
                     st["dec"] - s["dec"]) * 3600
        d[i] = np.inf
        if d.min() < min_sep:
            continue
        dg = np.hypot((g["ra"] - s["ra"]) * np.cos(np.radians(s["dec"])), g["dec"] - s["dec"])
        if dg * 3600 < 4 * g["r50"] + 6:
            continue
        keep.append(s)
    return keep


def measure_simulations(n, stamp):
    from astro_enhance.normalize import estimate_noise
    from astro_enhance.simulate import simulate_pair

    rows = {k: [] for k in ("noise_s", "noise_d", "fwhm_s", "fwhm_d")}
    abs_rows = {k: [] for k in ("noise_s", "fwhm_s")}
    for k in range(n):
        p = simulate_pair(20_000_000 + k, bands="r", stamp_arcsec=stamp)
        mask = p.saturated["r"]
        ns = estimate_noise(p.sdss["r"].data, mask=mask)
        nd = estimate_noise(p.decals["r"].data)
        rows["noise_s"].append(ns / p.sigma_sdss["r"])
        rows["noise_d"].append(nd / p.sigma_decals["r"])
        abs_rows["noise_s"].append(ns)
        for s in isolated_stars(p):
            fs = moffat_fwhm(p.sdss["r"].data, s["x_sdss"], s["y_sdss"], pixel_scale=0.396)
            fd = moffat_fwhm(p.decals["r"].data, s["x_decals"], s["y_decals"], half=10,
                             pixel_scale=0.262)
            if fs is not None:
                rows["fwhm_s"].append(fs / p.psf_fwhm_sdss["r"])
                abs_rows["fwhm_s"].append(fs)
            if fd is not None:
                rows["fwhm_d"].append(fd / p.psf_fwhm_decals["r"])
    return {k: np.array(v) for k, v in rows.items()}, {k: np.array(v) for k, v in
                                                        abs_rows.items()}


def measure_real():
    from astropy.io import fits
    from astropy.stats import sigma_clipped_stats
    from photutils.detection import DAOStarFinder

    from astro_enhance.normalize import estimate_noise

    f = REAL / "frame-r-002583-2-0136.fits.bz2"
    if not f.exists():
        return None
    d = fits.getdata(f).astype(float)
    sub = d[900:1489, 1300:2048]  # upper right: field, faint galaxies, away from M2's core
    noise = estimate_noise(sub)
    _, med, std = sigma_clipped_stats(sub, sigma=3)
    src = DAOStarFinder(fwhm=3.0, threshold=30 * std)(sub - med)
    fwhms = []
    if src is not None:
        xy = np.c_[src["xcentroid"], src["ycentroid"]]
        peak = np.asarray(src["peak"])
        for (x, y), pk in zip(xy, peak):
            dd = np.hypot(*(xy - (x, y)).T)
            if np.sort(dd)[1] < 20 or pk > 150:  # isolated, far from saturation
                continue
            fw = moffat_fwhm(sub - med, x, y, pixel_scale=0.396)
            if fw is not None:
                fwhms.append(fw)
    psf_width = float(fits.getdata(REAL / "psField-002583-2-0136.fits", 6)["psf_width"][0][2]) \
        if (REAL / "psField-002583-2-0136.fits").exists() else float("nan")
    return dict(noise=noise, fwhm=np.array(fwhms), psf_width=psf_width, data=d)


def make_figure(path, real, stamp=64.0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astro_enhance.simulate import _make_scene, simulate_pair

    n = int(round(stamp / 0.396))
    # the first bench scenes whose galaxy is brighter than r = 16.5 (like the real ones shown)
    seeds = [s for s in range(20_000_000, 20_000_200)
             if _make_scene(s, stamp, None)["galaxy"]["mag_r"] < 16.5][:3]
    pairs = [simulate_pair(s, bands="r", stamp_arcsec=stamp) for s in seeds]
    sims = [p.sdss["r"].data for p in pairs]
    sim_titles = [f"simulated SDSS r, seed {p.seed}\n{p.galaxy['type']} r={p.galaxy['mag_r']:.1f}"
                  for p in pairs]
    cuts = []
    if real is not None:
        for cx, cy in ((1850, 1400), (1500, 1085), (1760, 1240)):
            cuts.append(real["data"][cy - n // 2:cy - n // 2 + n, cx - n // 2:cx - n // 2 + n])
    soft = 3 * 0.034  # the same asinh stretch for every panel, nanomaggies
    lo, hi = np.arcsinh(-2 * 0.034 / soft), np.arcsinh(3.0 / soft)
    ncol = 3
    fig, axes = plt.subplots(2, ncol, figsize=(3.1 * ncol, 7.0))
    real_titles = ["real SDSS r frame 2583-2-136\n(upper right)"] * ncol
    for j in range(ncol):
        for i, (imgs, titles) in enumerate(((sims, sim_titles), (cuts, real_titles))):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(np.arcsinh(imgs[j] / soft), origin="lower", cmap="gray", vmin=lo,
                          vmax=hi)
                ax.set_title(titles[j], fontsize=8)
    fig.suptitle(f"{stamp:.0f}\" x {stamp:.0f}\" at 0.396\"/px, y = asinh(x / 0.102 nmgy), "
                 "same limits", fontsize=9)
    fig.tight_layout()
    fig.subplots_adjust(hspace=0.25)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--stamp-arcsec", type=float, default=64.0)
    ap.add_argument("--figure", default=str(ROOT / "docs" / "_static" /
                                            "simulated_vs_real_sdss.png"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ratios, absolute = measure_simulations(args.n, args.stamp_arcsec)
    print(f"{args.n} simulated r scenes in {time.perf_counter() - t0:.0f} s")
    ok = True
    labels = {"noise_s": "SDSS background noise", "noise_d": "DECaLS-like background noise",
              "fwhm_s": "SDSS isolated-star FWHM", "fwhm_d": "DECaLS-like isolated-star FWHM"}
    print(f"{'quantity':32s} {'N':>5s} {'median meas/target':>19s} {'16-84%':>14s}  verdict")
    for k, lab in labels.items():
        r = ratios[k]
        med = float(np.median(r))
        p16, p84 = np.percentile(r, [16, 84])
        good = abs(med - 1) < 0.10
        ok &= good
        print(f"{lab:32s} {len(r):5d} {med:19.3f} {p16:6.3f}-{p84:6.3f}  "
              f"{'PASS' if good else 'FAIL'}")
    ns, fs = np.median(absolute["noise_s"]), np.median(absolute["fwhm_s"])
    print(f"simulated SDSS r medians: noise {ns:.4f} nmgy (chosen 0.034; "
          f"{'PASS' if abs(ns / 0.034 - 1) < 0.1 else 'FAIL'}), star FWHM {fs:.2f}\" "
          f"(chosen median 1.30\"; {'PASS' if abs(fs / 1.30 - 1) < 0.1 else 'FAIL'}), "
          f"FWHM 5-95%: {np.percentile(absolute['fwhm_s'], 5):.2f}-"
          f"{np.percentile(absolute['fwhm_s'], 95):.2f}\"")
    real = measure_real()
    if real is None:
        print("real SDSS frame absent: no comparison with real data")
    else:
        print(f"real SDSS frame r (upper right): noise {real['noise']:.4f} nmgy, "
              f"{len(real['fwhm'])} isolated stars, median Moffat FWHM "
              f"{np.median(real['fwhm']):.2f}\" (psField psf_width {real['psf_width']:.2f}\")")
    make_figure(args.figure, real, args.stamp_arcsec)
    print(f"figure: {args.figure}")
    print("overall:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
