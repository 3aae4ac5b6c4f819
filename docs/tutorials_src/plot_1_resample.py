"""
Put an SDSS image on the DECaLS grid
====================================

SDSS frames have 0.396" pixels and are calibrated in nanomaggies *per pixel*; DECaLS has
0.262" pixels. This tutorial resamples the package's built-in SDSS-like sample onto the DECaLS
grid and checks that the total flux and the pixel scale come out right.
"""

import matplotlib.pyplot as plt
import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

from astro_enhance import read_image, resample
from astro_enhance.sample_data import make_sdss_sample

sdss = read_image(make_sdss_sample(seed=3))
decals = resample(sdss, target="decals")

scale_in = proj_plane_pixel_scales(sdss.wcs).mean() * 3600
scale_out = proj_plane_pixel_scales(decals.wcs).mean() * 3600
print(f"pixel scale: {scale_in:.4f}\" -> {scale_out:.6f}\"")
print(f"shape: {sdss.shape} -> {decals.shape}")
print(f"total flux: {np.nansum(sdss.data):.2f} -> {np.nansum(decals.data):.2f} nanomaggies")

###############################################################################
# Per-pixel values drop by the pixel-area ratio, (0.262/0.396)^2 = 0.4377, while the total
# flux stays the same. Pixels outside the input's footprint are NaN.

fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
for ax, img, title in zip(axes, [sdss, decals], ["SDSS 0.396\"/px", "DECaLS grid 0.262\"/px"]):
    ax.imshow(np.arcsinh(img.data / 0.1), origin="lower", cmap="gray")
    ax.set_title(title)
plt.tight_layout()
plt.show()
