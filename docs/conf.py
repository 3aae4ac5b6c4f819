# Sphinx configuration for astro_enhance (sphinx-astropy based).
#
# The build must work with no network: intersphinx is switched off (no inventories are
# fetched), and the tutorials are executed from the package's own sample data.

import datetime
import os
import sys

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403
from sphinx_astropy.conf.v2 import extensions  # noqa: F401

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

import astro_enhance  # noqa: E402

project = "astro_enhance"
author = "astro_enhance developers"
copyright = f"{datetime.datetime.now().year}, {author}"
version = release = astro_enhance.__version__

# No network: never fetch intersphinx inventories.
intersphinx_mapping = {}
extensions = [e for e in extensions
              if e not in ("sphinx.ext.intersphinx", "sphinx_astropy.ext.intersphinx_toggle")]
extensions += ["sphinx_gallery.gen_gallery"]

exclude_patterns = ["_build", "tutorials_src/README.rst", "**.ipynb_checkpoints"]
html_static_path = ["_static"]
html_theme_options = {"use_edit_page_button": False, "icon_links": []}
html_title = f"astro_enhance {release}"
nitpicky = False
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "tutorials_src",
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
}


# -- Command-line help, generated at build time so the page is always true --------------------
def _write_cli_help():
    import argparse
    import io
    from contextlib import redirect_stdout

    from astro_enhance.cli import build_parser

    parser = build_parser()
    out = io.StringIO()
    with redirect_stdout(out):
        parser.print_help()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, sub in action.choices.items():
            out.write(f"\n\n$ astro-enhance {name} --help\n")
            with redirect_stdout(out):
                sub.print_help()
    os.makedirs("_generated", exist_ok=True)
    with open(os.path.join("_generated", "cli_help.txt"), "w") as fh:
        fh.write("$ astro-enhance --help\n" + out.getvalue())


_write_cli_help()


# -- Enhancer comparison table, generated from the latest committed `evaluate` run ------------
#: Later evaluate runs on the same scenes whose new methods join the table, in order.
EXTRA_RUNS = ("evaluate_srresnet", "evaluate_srgan", "evaluate_autoencoder",
              "evaluate_generative")
#: Methods whose rows a later run replaces (retrained weights, same name, same scenes).
REPLACES = {"evaluate_generative": ("gan", "srgan")}

def _write_enhancer_table():
    from astropy.table import Table

    src = os.path.join("_static", "evaluate", "evaluate_summary.ecsv")
    os.makedirs("_generated", exist_ok=True)
    dst = os.path.join("_generated", "enhancer_table.rst")
    if not os.path.exists(src):
        with open(dst, "w") as fh:
            fh.write("*(no evaluate run has been committed yet)*\n")
        return
    t = Table.read(src, format="ascii.ecsv")
    meta = t.meta or {}
    # Networks evaluated later in their own runs on the same bench scenes (same seeds, same
    # baselines): their rows join the table, after checking that the rows the two runs share
    # agree (the same scenes give the same bicubic figures to the last digit).
    extra_cmds = []
    for name in EXTRA_RUNS:
        path = os.path.join("_static", name, "evaluate_summary.ecsv")
        if not os.path.exists(path):
            continue
        e = Table.read(path, format="ascii.ecsv")
        for m in REPLACES.get(name, ()):
            if m in set(map(str, e["method"])):
                t.remove_rows([i for i, v in enumerate(t["method"]) if str(v) == m])
        shared = set(map(str, e["method"])) & set(map(str, t["method"]))
        for m in shared:
            a_, b_ = t[t["method"] == m][0], e[e["method"] == m][0]
            if not (int(a_["n"]) == int(b_["n"])
                    and abs(float(a_["psnr_median"]) - float(b_["psnr_median"])) < 1e-6):
                raise RuntimeError(f"{path} was not run on the scenes of {src} "
                                   f"({m}: {b_['psnr_median']} vs {a_['psnr_median']})")
        new = [r for r in e if str(r["method"]) not in set(map(str, t["method"]))]
        if not shared or not new:
            continue
        refs = [i for i, m in enumerate(t["method"]) if str(m) in ("sdss-input",
                                                                    "decals-like")]
        at = refs[0] if refs else len(t)
        for r in new:
            t.insert_row(at, [r[c] for c in t.colnames])
            at += 1
        extra_cmds.append(e.meta.get("command", name))
    good_for = {
        "bicubic": "the plain resampled input: the reference every method must beat",
        "richardson-lucy": "sharpening bright, high-S/N sources to the target PSF",
        "bilateral": "edge-preserving denoising that keeps stars and knots (default setting)",
        "bilateral(sigma_color=8,sigma_space=8)": "the PSNR-best setting on validation "
                     "scenes: smooth faint disks, but stars and knots smeared and aperture "
                     "flux spread out",
        "richardson-lucy(iterations=5,damping=10)": "the PSNR-best setting on validation "
                     "scenes: barely changes the input",
        "unet": "measurement: faint structure and photometry; the default; smooth (the "
                "restored sky, no noise texture)",
        "gan": "looks: a sample of a DECaLS image (the restored sky plus DECaLS-depth noise); "
               "errs like DECaLS; not for measurements",
        "srresnet": "a smaller, shallower alternative to unet (same-grid SRResNet)",
        "srgan": "looks: as gan, with an SRResNet generator (adversarial, critic feature "
                 "loss); not for measurements",
        "autoencoder": "a fast alternative to unet (skip-connection autoencoder)",
        "gaussian": "the bicubic image smoothed: what a user tries first (sigma in pixels)",
        "sdss-input": "reference row: the input itself",
        "decals-like": "reference row: a real-noise DECaLS-like image of the same scene",
    }
    cols = [("method", "Method"), ("good_for", "Good for"), ("psnr_median", "PSNR median [dB]"),
            ("psnr_p90", "PSNR p90"), ("ssim_median", "SSIM median"),
            ("abs_flux_error_median", "abs flux error median"),
            ("abs_flux_error_p90", "abs flux error p90"), ("chi2_median", "chi2 median"),
            ("hf_power_median", "HF power ratio"), ("seconds_median", "s / image")]
    cols = [(c, h) for c, h in cols if c in t.colnames or c == "good_for"]
    lines = [".. list-table::", "   :header-rows: 1", ""]
    lines.append("   * - " + "\n     - ".join(h for _, h in cols))
    for row in t:
        cells = []
        for c, _ in cols:
            v = row[c] if c in t.colnames else None
            if c == "good_for":
                m = str(row["method"])
                if m.startswith("unet(weights="):
                    cells.append("the previous unet weights (parametric scenes only), for "
                                 "comparison")
                else:
                    cells.append(good_for.get(m, good_for.get(m.split("(")[0], "")))
            elif c == "method":
                cells.append(f"``{row[c]}``")
            elif "flux" in c:
                cells.append(f"{100 * float(v):.2f}%")
            elif c.startswith("seconds"):
                cells.append("" if v != v else f"{float(v):.2f}")
            else:
                cells.append(f"{float(v):.3f}" if "ssim" in c else f"{float(v):.2f}")
        lines.append("   * - " + "\n     - ".join(cells))
    n = int(t["n"][0]) if "n" in t.colnames else "?"
    cmd = meta.get("command", "astro-enhance evaluate")
    lines += ["", f"From ``{cmd}`` ({n} bench-split scenes, seeds never used in training)"
              + ("; further networks from runs on the same scenes: "
                 + "; ".join(f"``{c}``" for c in extra_cmds) if extra_cmds else "") + "."]
    with open(dst, "w") as fh:
        fh.write("\n".join(lines) + "\n")


_write_enhancer_table()
