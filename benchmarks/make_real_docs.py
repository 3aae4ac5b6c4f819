"""Generate the tables and the gallery of docs/real_data.rst from one real-data evaluate run.

Reads the output directory of::

    astro-enhance evaluate --source real-morphology --split bench --n 64 --methods ... --out DIR

(``evaluate_summary.ecsv`` and ``evaluate_decam.ecsv``), and optionally the summary of a
parametric ``evaluate`` run, and writes

* ``docs/_static/real_bench/tables.rst``: the real-morphology bench table, the DECam frames
  table (with the tuned blur of each frame marked) and the parametric table, with the command
  of each run -- included by ``docs/real_data.rst``, never typed by hand;
* ``docs/_static/real_bench/gallery.png``: a spiral, a barred galaxy, an edge-on disk and a
  merger of the held-out bench, and the SGA galaxy of DECam testcase9: input, each method's
  output, target and the residual of the first neural method.

Run::

    python benchmarks/make_real_docs.py --real DIR [--param DIR2] --gallery-methods \
        'bicubic,gaussian(sigma=2.5),unet,gan'
"""
import argparse
import math
import warnings
from pathlib import Path

import numpy as np

#: Gallery galaxies of the held-out bench, picked by eye from a contact sheet of the bench
#: cutouts (display only; no figure of merit was looked at).
GALLERY = (("spiral", "J024242.53-084618.2"), ("barred", "J124657.13+170831.2"),
           ("edge-on disk", "J102911.37+064304.2"), ("merger", "J110133.28+045706.2"))

OUT = Path(__file__).resolve().parents[1] / "docs" / "_static" / "real_bench"


def _fmt(v, nd=2):
    v = float(v)
    return "--" if not math.isfinite(v) else f"{v:.{nd}f}"


def _table(header, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join("=" * w for w in widths)
    out = [line, "  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    out.append(line)
    return out


def summary_rst(summary, title):
    from astro_enhance.evaluate import best_classical
    best = best_classical(summary)
    rows = []
    for r in summary:
        m = str(r["method"])
        mark = " (best classical)" if best is not None and m == str(best["method"]) else ""
        rows.append([f"``{m}``{mark}", str(int(r["n"])), _fmt(r["psnr_median"]),
                     _fmt(r["ssim_median"], 3), _fmt(100 * r["abs_flux_error_median"], 2)])
    out = [f"**{title}** (median over images; ``{summary.meta.get('command', '')}``)", ""]
    out += _table(["method", "n", "PSNR (dB)", "SSIM", "abs flux error (%)"], rows)
    return out + [""]


def decam_rst(table):
    out = [f"**Shared DECam frames degraded to SDSS** (r band; "
           f"``{table.meta.get('command', '')}``; {table.meta.get('psf', '')})", ""]
    rows = []
    for frame in dict.fromkeys(str(f) for f in table["frame"]):
        sub = table[table["frame"] == frame]
        blurs = [r for r in sub if str(r["method"]).startswith("gaussian")]
        best = max(blurs, key=lambda r: float(r["psnr"])) if blurs else None
        for r in sub:
            m = str(r["method"])
            mark = " (tuned blur)" if best is not None and m == str(best["method"]) else ""
            d = float(r["psnr"]) - float(best["psnr"]) if best is not None else math.nan
            rows.append([frame, f"``{m}``{mark}", _fmt(r["psnr"]), _fmt(d),
                         _fmt(r["ssim"], 3), _fmt(r["chi2_light"]),
                         _fmt(100 * r["flux_error"], 2)])
    out += _table(["frame", "method", "PSNR (dB)", "vs blur", "SSIM", "chi2 (light)",
                   "flux error (%)"], rows)
    return out + [""]


def _show(ax, img, k, vmax, resid=False):
    v = np.arcsinh(np.nan_to_num(np.asarray(img, dtype=float)) / k)
    if resid:
        ax.imshow(v, origin="lower", cmap="RdBu_r", vmin=-3, vmax=3)
    else:
        ax.imshow(v, origin="lower", cmap="gray", vmin=-1, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])


def gallery(methods, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astro_enhance.evaluate import _as_grid, evaluate_decam
    from astro_enhance.exceptions import DomainWarning
    from astro_enhance.io import image_to_hdu
    from astro_enhance.pipeline import enhance_fits
    from astro_enhance.real_morphology import (REAL_SPLIT_SEEDS, galaxy_names,
                                               real_morphology_pair)

    warnings.simplefilter("ignore", DomainWarning)
    bench = galaxy_names("bench")
    panels = []
    for label, name in GALLERY:
        i = bench.index(name)
        pair = real_morphology_pair(name, REAL_SPLIT_SEEDS["bench"] + 10 * i, bands="r")
        sc = dict(decals_wcs=pair.decals_wcs, truth=pair.truth["r"].data)
        outs = {}
        for m in methods:
            from astro_enhance.evaluate import parse_methods
            (_, nm, opts), = parse_methods([m])
            hdul = enhance_fits(image_to_hdu(pair.sdss["r"]), method=nm, options=opts,
                                target="decals", device="cpu", rng=0)
            outs[m] = _as_grid(hdul[0], sc)
        panels.append((f"{label}\n{name[:10]}", pair.input["r"].data, outs,
                       pair.truth["r"].data, pair.sigma_decals["r"]))
    t, ex = evaluate_decam(methods, frames=("testcase9",))
    e = ex[0]
    panels.append(("SGA galaxy\nDECam testcase9", e["outputs"]["sdss-input"],
                   {m: e["outputs"][m] for m in methods}, e["target"], e["sigma"]))
    classical = ("bicubic", "gaussian", "bilateral", "richardson-lucy")
    neural = [m for m in methods if m.split("(")[0] not in classical]
    ref = neural[0] if neural else methods[-1]
    cols = ["input (resampled SDSS)"] + list(methods) + ["target", f"target - {ref}"]
    fig, axes = plt.subplots(len(panels), len(cols),
                             figsize=(1.9 * len(cols), 2.0 * len(panels)))
    for row, (label, inp, outs, target, sig) in zip(axes, panels):
        k = 3.0 * sig
        vmax = max(float(np.nanpercentile(np.arcsinh(np.asarray(target) / k), 99.8)), 1.0)
        _show(row[0], inp, k, vmax)
        for j, m in enumerate(methods):
            _show(row[1 + j], outs[m], k, vmax)
        _show(row[-2], target, k, vmax)
        _show(row[-1], np.asarray(target) - np.asarray(outs[ref]), k, vmax, resid=True)
        row[0].set_ylabel(label, fontsize=9)
    for ax, c in zip(axes[0], cols):
        ax.set_title(c.replace("(", "\n(").replace(",", ",\n"), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return path


def main(argv=None):
    from astropy.table import Table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True, help="evaluate --source real-morphology --out DIR")
    ap.add_argument("--param", default=None, help="a parametric evaluate --out DIR")
    ap.add_argument("--gallery-methods", default=None,
                    help="comma-separated methods for the gallery (default: no gallery)")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    real = Path(args.real)
    lines = [".. This file is generated by benchmarks/make_real_docs.py; do not edit.", ""]
    lines += summary_rst(Table.read(real / "evaluate_summary.ecsv"),
                         "Held-out real-morphology bench")
    lines += decam_rst(Table.read(real / "evaluate_decam.ecsv"))
    if args.param:
        lines += summary_rst(Table.read(Path(args.param) / "evaluate_summary.ecsv"),
                             "Parametric bench")
    (OUT / "tables.rst").write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT / 'tables.rst'}")
    if args.gallery_methods:
        from astro_enhance.evaluate import parse_methods
        methods = [label for label, _, _ in parse_methods(args.gallery_methods)]
        print(f"wrote {gallery(methods, OUT / 'gallery.png')}")


if __name__ == "__main__":
    main()
