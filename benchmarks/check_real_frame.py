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

__all__ = ["main"]

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
    p.add_argument("--crop", default="1250,1450,400",
                   help="y0,x0,size of the preview crop on the DECaLS grid")
    args = p.parse_args(argv)
    frame = Path(args.frame)
    if not frame.exists():
        print(f"real frame absent: {frame}")
        return 1
    outs, resampled = {}, None
    for m in args.methods.split(","):
        enh = get_enhancer(m, device="cpu")
        if getattr(enh, "tile_size", None) is None:
            print(f"{m}: not tiled (classical); skipped")
            continue
        stride = int(enh.tile_size) - int(enh.overlap)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            hdul, res = _enhance(str(frame), m, device="cpu")
        dt = time.perf_counter() - t0
        dom = [str(x.message) for x in w if issubclass(x.category, DomainWarning)]
        out = np.asarray(hdul[0].data, dtype=np.float64)
        ref = np.asarray(res.data, dtype=np.float64)
        resampled = ref
        foot = np.isfinite(ref)
        n_nan = int(np.count_nonzero(~np.isfinite(out) & foot))
        seam = tile_seam_score(out, ref, stride)
        controls = [tile_seam_score(out, ref, stride + k) for k in (-41, -23, 17, 37, 53)]
        t = compare_aperture_fluxes(out, ref, n=30, saturation=100.0)
        dev = np.abs(np.asarray(t["ratio"]) - 1)
        print(f"{m}: {dt:.1f} s for {ref.shape[1]}x{ref.shape[0]} px, "
              f"tile {enh.tile_size}/overlap {enh.overlap} (stride {stride}); "
              f"domain warnings: {len(dom)}{' (' + dom[0] + ')' if dom else ''}")
        print(f"  NaN inside the footprint: {n_nan} of {int(foot.sum())} px; "
              f"AE_CHI2 {hdul[0].header.get('AE_CHI2')}, AE_FLUXR {hdul[0].header['AE_FLUXR']}")
        print(f"  tile seam score at stride {stride}: {seam:.1f} (at five other periods "
              f"{stride - 41}..{stride + 53}: median {np.median(controls):.1f}, "
              f"max {max(controls):.1f})")
        print(f"  aperture flux ratio of {len(t)} isolated sources "
              f"({int(np.sum(t['extended']))} extended): median {np.median(t['ratio']):.4f}, "
              f"worst |ratio-1| {dev.max():.4f}, within 3%: {int(np.sum(dev <= 0.03))}/{len(t)}")
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
