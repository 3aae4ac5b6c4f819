"""
Enhance an SDSS galaxy
======================

`~astro_enhance.enhance_fits` is the whole pipeline in one call: read the image, put it on
the DECaLS grid (0.262"/px) with flux-aware resampling, run an enhancer, measure how
consistent the result is with the input, and return FITS with provenance.

Here the input is a simulated SDSS r-band frame from the package's simulator (a seed of the
``bench`` split, never used in training), so the noiseless truth is known and the result
can be checked. With a real SDSS ``frame-*.fits.bz2`` the call is the same.
"""

import matplotlib.pyplot as plt
import numpy as np

from astro_enhance import enhance_fits
from astro_enhance.io import image_to_hdu
from astro_enhance.metrics import flux_error, psnr, ssim
from astro_enhance.pipeline import default_method
from astro_enhance.simulate import simulate_pair

pair = simulate_pair(20_000_017, bands=("r",), stamp_arcsec=48, n_stars=0, split="bench")
sdss_hdu = image_to_hdu(pair.sdss["r"])  # what an SDSS frame cutout looks like
print(sdss_hdu.data.shape, sdss_hdu.header["BUNIT"])

###############################################################################
# One call, default method
# ------------------------
# Without ``method=`` the best enhancer available in the installation is used
# (`~astro_enhance.pipeline.default_method`; the shipped U-Net when its weights are
# installed).

method = default_method()
hdul = enhance_fits(sdss_hdu)
enhanced = hdul[0].data
print(method, enhanced.shape, hdul[0].header["BUNIT"])

###############################################################################
# The header says what was done
# -----------------------------
# ``AE_*`` keywords and plain-words HISTORY make an enhanced file recognisable as such.
# ``AE_CHI2`` is the consistency check: the output blurred and resampled back to the SDSS
# grid, compared with the input in units of its noise (about 1 when consistent).
# ``AE_FLUXR`` is the total-flux ratio output / resampled input.

h = hdul[0].header
for key in ("AE_VER", "AE_METH", "AE_TGT", "AE_DEV", "AE_CHI2", "AE_FLUXR"):
    print(f"{key:8s} = {h[key]!r}")
print("\n".join(str(line) for line in h["HISTORY"][-3:]))

###############################################################################
# Input, output and the truth
# ---------------------------
# The truth is the same scene rendered noiselessly with the DECaLS PSF on the same grid.
# Metrics follow :doc:`/metrics` (PSNR and SSIM in the asinh-stretched space, aperture flux
# error within two half-light radii).

truth = pair.truth["r"].data
resampled = pair.input["r"].data
sigma = pair.sigma_decals["r"]
centre = (pair.galaxy["x_decals"], pair.galaxy["y_decals"])
fig, axes = plt.subplots(1, 3, figsize=(11, 4))
for ax, img, label in zip(axes, (resampled, enhanced, truth),
                          ("SDSS on the DECaLS grid", f"enhanced ({method})", "truth")):
    ax.imshow(np.arcsinh(img / (3 * sigma)), origin="lower", cmap="gray", vmin=-1, vmax=7)
    if label != "truth":
        label += (f"\nPSNR {psnr(img, truth, sigma=sigma):.1f} dB, "
                  f"SSIM {ssim(img, truth, sigma=sigma):.2f}, "
                  f"flux {100 * flux_error(img, truth, center=centre):+.1f}%")
    ax.set_title(label, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
fig.subplots_adjust(top=0.84)
plt.show()

###############################################################################
# Writing the result
# ------------------
# ``hdul.writeto("enhanced.fits")`` writes it as it is; `~astro_enhance.write_fits` writes
# atomically (a temporary file renamed into place). On the command line:
# ``astro-enhance enhance frame.fits -o enhanced.fits --preview enhanced.png``.
