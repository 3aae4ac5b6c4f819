"""
Compare methods with ``evaluate``
=================================

`~astro_enhance.evaluate.evaluate` runs enhancers through the real pipeline on simulated
scenes of the ``bench`` seed split (never used in training), where the noiseless truth is
known, and measures PSNR, SSIM, the aperture-flux error, the consistency chi^2 and the
high-frequency power ratio of every output (definitions in :doc:`/metrics`).

The enhancer table of :doc:`/enhancers` comes from the same function run on 200 scenes;
here three small scenes keep the tutorial fast, so the numbers are noisy.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from astro_enhance.enhancers import enhancer_names
from astro_enhance.evaluate import evaluate, make_figure, summarize

methods = [m for m in ("bicubic", "bilateral", "unet") if m in enhancer_names()]
table, examples = evaluate(methods, n=3, stamp_arcsec=40.0, keep_examples=3)
print(table["method", "seed", "psnr", "ssim", "flux_error", "chi2"][:8])

###############################################################################
# Medians per method
# ------------------
# ``sdss-input`` (the SDSS image only resampled) and ``decals-like`` (a real DECaLS-depth
# image of the scene) are reference rows: an enhancer should beat the first, and the second
# is what a real deeper survey gives.

summary = summarize(table)
summary["method", "n", "psnr_median", "ssim_median", "abs_flux_error_median",
        "chi2_median"].pprint(max_width=120)

###############################################################################
# The example figure
# ------------------
# `~astro_enhance.evaluate.make_figure` draws the kept scenes: SDSS input, each method, the
# truth and the DECaLS-like image.

png = make_figure(examples, methods, Path(tempfile.mkdtemp()) / "evaluate.png")
img = plt.imread(png)
fig, ax = plt.subplots(figsize=(8, 8 * img.shape[0] / img.shape[1]))
ax.imshow(img)
ax.set_axis_off()
fig.tight_layout()
plt.show()

###############################################################################
# From the command line: ``astro-enhance evaluate --methods bicubic,bilateral,unet -n 200
# -o evaluate_out`` writes the per-image table, the summary (``evaluate_summary.ecsv``, the
# file the docs table is generated from) and the figure.
