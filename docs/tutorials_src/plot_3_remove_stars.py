"""
Remove stars from a frame
=========================

`~astro_enhance.stars.remove_stars` finds point sources, decides which are foreground stars
and which belong to the galaxy (its core and star-forming knots are protected), subtracts
fitted PSFs from unsaturated stars and masks and inpaints saturated ones. It returns the
clean image, the stars-only image, the mask and a catalogue.

The input here is the package's built-in SDSS-like sample, two galaxies and a few stars
(`~astro_enhance.sample_data.make_sdss_sample`).
"""

import matplotlib.pyplot as plt
import numpy as np

from astro_enhance.sample_data import make_sdss_sample
from astro_enhance.stars import remove_stars

hdu = make_sdss_sample(seed=3)
result = remove_stars(hdu, rng=0)
print(f"{result.n_removed} stars removed, {int(result.mask.sum())} pixels changed")

###############################################################################
# The catalogue
# -------------
# One row per candidate: position, flux, template-match score, the decision (``star``,
# ``knot``, ``core`` or ``galaxy``), the reason in words and how it was removed.

cat = result.catalog
print(cat["x", "y", "snr", "decision", "removal", "reason"])

###############################################################################
# Image, clean image, stars and mask
# ----------------------------------

sigma = float(hdu.header["SKYSIG"])
fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
panels = [(hdu.data, "SDSS-like sample"), (result.clean, "clean"),
          (result.stars, "removed (input - clean)")]
for ax, (img, title) in zip(axes, panels):
    ax.imshow(np.arcsinh(img / (3 * sigma)), origin="lower", cmap="gray", vmin=-1, vmax=6)
    ax.set_title(title)
axes[3].imshow(result.mask, origin="lower", cmap="gray_r")
axes[3].set_title("mask")
stars = cat[np.asarray(cat["decision"]) == "star"]
axes[0].plot(stars["x"], stars["y"], "o", mfc="none", mec="tab:red", ms=12)
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
plt.show()

###############################################################################
# In the pipeline
# ---------------
# ``enhance_fits(..., remove_stars=True)`` runs the same removal on the resampled image
# before the enhancer and stores the mask (``MASK``) and the catalogue (``STARS``) as
# extensions; ``astro-enhance remove-stars IN -o OUT`` writes the clean image, the stars,
# the mask and the catalogue. With several bands (``bands=``) a colour test separates
# stars from galaxy knots far better than one band can: see :doc:`/star_removal`.
