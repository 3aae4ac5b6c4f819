"""Neural enhancers end to end on the real SDSS frame (issue 5, acceptance 3).

Runs ``enhance_fits`` on the full SDSS r frame in ``../shared/data/real/sdss/`` (M2 field,
2048 x 1489 px -> about 2251 x 3096 on the DECaLS grid) with each method and prints:

* seconds and the number of DomainWarnings (M2 is a crowded globular cluster);
* NaN pixels inside the footprint (must be 0);
* `astro_enhance.diagnostics.tile_seam_score` at the enhancer's tile stride (no seams: noise
  level, below ~12), and the same score at five periods that are not the tile stride as a
  control (the resampling moire raises the score at some periods);
* aperture flux ratio enhanced / resampled input of 30 isolated stars and galaxies
  (`astro_enhance.diagnostics.compare_aperture_fluxes`): median, worst, number within 3%;

and writes a preview PNG of a 400 x 400 crop (input, each method, difference) plus the
full-frame preview of the first method.

Usage::

    PYTHONPATH=. python benchmarks/check_real_frame.py [--methods unet,gan]
        [--frame PATH] [--png docs/_static/real_frame_preview.png]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "seam_zscores"]


def seam_zscores(output, reference, starts, overlap, axis):
    """Largest robust z-score of the per-line step profile inside each blending zone.

    The enhancer's change ``d = output - reference`` is differentiated across ``axis``; the
    trimmed mean of the squared steps per position, minus its running median, is divided by
    its robust scatter (1.4826 MAD). Returns the largest value inside the overlap zones of
    the tiles starting at ``starts[1:]`` and, for comparison, the 95th percentile of the
    same statistic over windows of the same width everywhere else.
    """
    from scipy.ndimage import median_filter

    from astro_enhance.diagnostics import step_profile

    change = np.asarray(output, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    g = step_profile(change, axis)
    g = g - median_filter(g, size=31, mode="reflect")
    mad = 1.4826 * np.nanmedian(np.abs(g - np.nanmedian(g)))
    z = g / mad
    w = max(int(overlap), 1) + 2
    zones = [(s - 1, s + w) for s in starts[1:]]
    in_zone = max(float(np.nanmax(np.abs(z[a:b]))) for a, b in zones) if zones else 0.0
    free = np.ones(z.size, dtype=bool)
    for a, b in zones:
        free[max(a, 0):b] = False
    vals = [np.nanmax(np.abs(z[i:i + w])) for i in range(0, z.size - w, w)
            if free[i:i + w].all()]
    return in_zone, float(np.percentile(vals, 95))


#: Peak (nanomaggy per DECaLS pixel) above which a source counts as saturated and is not
#: measured: SDSS r saturates near 274 nanomaggy per SDSS pixel (120 on the DECaLS grid),
#: but the frame interpolates over saturated cores and bleed trails, leaving peaks well below
#: that (one such star at x=2559, y=607 has a 91 nanomaggy peak); 50 keeps a margin.
SATURATION = 50.0

FRAME = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "sdss"
         / "frame-r-002583-2-0136.fits.bz2")


def main(argv=None):
    from astro_enhance.diagnostics import compare_aperture_fluxes, tile_seam_score
    from astro_enhance.enhancers import get_enhancer
    from astro_enhance.exceptions import DomainWarning
    from astro_enhance.pipeline import _enhance
    from astro_enhance.visualization import save_preview

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="unet,gan")
    p.add_argument("--frame", default=str(FRAME))
    p.add_argument("--png", default=None, help="preview PNG of a crop")
    p.add_argument("--tile-size", type=int, default=None,
                   help="force a tile size (default: what the enhancer chooses)")
    p.add_argument("--crop", default="1250,1450,400",
                   help="y0,x0,size of the preview crop on the DECaLS grid")
    args = p.parse_args(argv)
    frame = Path(args.frame)
    if not frame.exists():
        print(f"real frame absent: {frame}")
        return 1
    outs, resampled = {}, None
    for m in args.methods.split(","):
        opts = {} if args.tile_size is None else {"tile_size": args.tile_size}
        enh = get_enhancer(m, device="cpu", **opts)
        if getattr(enh, "tile_size", None) is None:
            # classical: a reference for the header diagnostics only
            hdul, _ = _enhance(str(frame), m, device="cpu")
            print(f"{m} (reference, not tiled): AE_CHI2 {hdul[0].header.get('AE_CHI2')}, "
                  f"AE_FLUXR {hdul[0].header['AE_FLUXR']}")
            continue
        tile, _ = enh.run_tiling()
        from astro_enhance.tiling import plan_tiles

        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            hdul, res = _enhance(str(frame), m, device="cpu", options=opts)
        dt = time.perf_counter() - t0
        dom = [str(x.message) for x in w if issubclass(x.category, DomainWarning)]
        out = np.asarray(hdul[0].data, dtype=np.float64)
        ref = np.asarray(res.data, dtype=np.float64)
        resampled = ref
        foot = np.isfinite(ref)
        n_nan = int(np.count_nonzero(~np.isfinite(out) & foot))
        plan = plan_tiles(ref.shape, tile_size=tile, overlap=enh.overlap,
                          size_multiple=enh.info.size_multiple, balance=True)
        stride = plan.tile_shape[1] - enh.overlap
        zx = seam_zscores(out, ref, plan.starts_x, enh.overlap, axis=1)
        zy = seam_zscores(out, ref, plan.starts_y, enh.overlap, axis=0)
        if ref.shape[1] >= 4 * stride:
            seam = tile_seam_score(out, ref, stride)
            controls = [tile_seam_score(out, ref, stride + k) for k in (-53, -41, -23, -11, 7)
                        if max(ref.shape) >= 4 * (stride + k)]
        else:
            seam, controls = None, None
        t = compare_aperture_fluxes(out, ref, n=30, saturation=SATURATION)
        dev = np.abs(np.asarray(t["ratio"]) - 1)
        # the same sources with apertures of 3 FWHM: the SDSS PSF's Moffat wings put more
        # light outside 2 FWHM in the input than in the sharper output
        t3 = compare_aperture_fluxes(out, ref, n=30, saturation=SATURATION, radius=3 * 4.5)
        dev3 = np.abs(np.asarray(t3["ratio"]) - 1)
        print(f"{m}: {dt:.1f} s for {ref.shape[1]}x{ref.shape[0]} px, "
              f"tiles {plan.tile_shape}, overlap {enh.overlap}, starts x {plan.starts_x} "
              f"y {plan.starts_y}; "
              f"domain warnings: {len(dom)}{' (' + dom[0] + ')' if dom else ''}")
        print(f"  NaN inside the footprint: {n_nan} of {int(foot.sum())} px; "
              f"AE_CHI2 {hdul[0].header.get('AE_CHI2')}, AE_FLUXR {hdul[0].header['AE_FLUXR']}")
        if seam is not None:
            print(f"  tile seam score at stride {stride}: {seam:.1f} (at five other periods "
                  f"{stride - 53}..{stride + 7}: median {np.median(controls):.1f}, "
                  f"max {max(controls):.1f})")
        else:
            print(f"  tile seam spectrum: fewer than four tiles per row (stride {stride}), "
                  f"see the local test")
        print(f"  step profile in the blending zones: max |z| {zx[0]:.1f} (x), {zy[0]:.1f} (y); "
              f"95th percentile of the same over other windows: {zx[1]:.1f} (x), "
              f"{zy[1]:.1f} (y)")
        print(f"  aperture flux ratio of {len(t)} isolated sources "
              f"({int(np.sum(t['extended']))} extended): median {np.median(t['ratio']):.4f}, "
              f"worst |ratio-1| {dev.max():.4f}, within 3%: {int(np.sum(dev <= 0.03))}/{len(t)} "
              f"(apertures >= 2 FWHM); with apertures >= 3 FWHM: median "
              f"{np.median(t3['ratio']):.4f}, worst {dev3.max():.4f}, within 3%: "
              f"{int(np.sum(dev3 <= 0.03))}/{len(t3)}")
        # the definitive seam test: the same crop enhanced in one piece and in tiles of the
        # enhancer's overlap (a tile corner inside), difference in units of the noise
        from astro_enhance.normalize import estimate_noise

        y0, x0 = plan.starts_y[1] - 400, plan.starts_x[1] - 400
        crop = np.array(ref[y0:y0 + 1024, x0:x0 + 1024], dtype=np.float32)
        sig = float(estimate_noise(crop))
        whole = get_enhancer(m, device="cpu", tile_size=2048, overlap=0).enhance(crop)
        tiled = get_enhancer(m, device="cpu", tile_size=400,
                             overlap=enh.overlap).enhance(crop)
        diff = np.abs(tiled.astype(np.float64) - whole)
        print(f"  tiled (400 px, overlap {enh.overlap}) vs one piece on a 1024^2 crop at "
              f"x={x0}, y={y0}: max |difference| {diff.max() / sig:.3g} sigma, 99.9th "
              f"percentile {np.percentile(diff, 99.9) / sig:.3g} sigma (sigma = "
              f"{sig:.3g} nanomaggy)")
        w = int(np.argmax(dev3))
        print(f"  worst source (3 FWHM): x={t3['x'][w]:.0f} y={t3['y'][w]:.0f} "
              f"r={t3['radius'][w]:.1f} px extended={bool(t3['extended'][w])} "
              f"flux_in={t3['flux_in'][w]:.3g} ratio={t3['ratio'][w]:.4f}")
        outs[m] = out
    if args.png and outs:
        y0, x0, s = (int(v) for v in args.crop.split(","))
        sl = (slice(y0, y0 + s), slice(x0, x0 + s))
        first = next(iter(outs))
        panels = [("resampled SDSS r", resampled[sl])]
        panels += [(m, o[sl]) for m, o in outs.items()]
        panels.append((f"difference ({first} - input)", outs[first][sl] - resampled[sl]))
        path = save_preview(args.png, panels, title=f"real SDSS r frame (M2 field), crop "
                            f"{s}x{s} px at x={x0}, y={y0}", unit="nanomaggy")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
