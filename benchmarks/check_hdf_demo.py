"""The demo's Hubble Deep Field scene scored with given U-Net weights, with and without stars.

``astro-enhance demo`` scores its HDF scene after star removal, so its PSNR mixes what the
enhancer does with what star removal takes away (compact galaxies and knots removed as
stars). This prints both, for each weights file:

* ``demo``: as the demo does it (stars added, ``remove_stars=True``, against the star-free
  truth);
* ``no stars``: the same HDF galaxies degraded without the added stars and enhanced without
  star removal, against the same truth -- the enhancer alone;
* the residual's arm pattern: the PSNR inside 1.5 r50 of the spiral's centre.

The HDF demo region is held out of training (`astro_enhance.real_morphology.hdf_regions`);
this script is for the report, not for choosing weights. Run::

    python benchmarks/check_hdf_demo.py unet /path/to/candidate
"""
import argparse
import warnings

import numpy as np


def main(argv=None):
    from astro_enhance.exceptions import AstroEnhanceWarning
    from astro_enhance.metrics import psnr, ssim
    from astro_enhance.pipeline import enhance_fits
    from astro_enhance.sample_data import make_hdf_sample

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--band", default="r")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", AstroEnhanceWarning)
    demo = make_hdf_sample(band=args.band, seed=1)
    clean = make_hdf_sample(band=args.band, seed=1, n_stars=0)
    truth, sig = demo.truth.data, demo.sigma_decals
    yy, xx = np.mgrid[:truth.shape[0], :truth.shape[1]]
    cx, cy = demo.center
    core = np.hypot(xx - cx, yy - cy) < 25
    for w in args.weights:
        kw = dict(weights=None if w == "unet" else w, device="cpu", rng=0)
        a = np.asarray(enhance_fits(demo.sdss, "unet", remove_stars=True, **kw)[0].data)
        b = np.asarray(enhance_fits(clean.sdss, "unet", **kw)[0].data)
        spiral = psnr(np.where(core, b, np.nan), np.where(core, truth, np.nan), sigma=sig)
        print(f"{w}: demo PSNR {psnr(a, truth, sigma=sig):.2f} dB SSIM "
              f"{ssim(a, truth, sigma=sig):.3f}; no stars PSNR {psnr(b, truth, sigma=sig):.2f} "
              f"dB SSIM {ssim(b, truth, sigma=sig):.3f}; spiral (r < 25 px) "
              f"{spiral:.2f} dB")


if __name__ == "__main__":
    main()
