"""Where the small-scale structure of an enhancer's error sits: frequency, angle, frame.

Issue 24 asked why ``srgan`` showed a diagonal hatching. For each bench scene (band r) this
prints the strongest peak of the error's power spectrum (output - truth; Hann window,
5 x 5 smoothing, frequencies of 0.15 cycles/px and above), its position angle in the output
pixel frame, the rotation of the SDSS frame the scene was simulated with, and the
`~astro_enhance.metrics.anisotropy_score` of the error. A pattern that stays at one angle in
the output frame while the SDSS frame turns comes from the network, not from the input
(the resampling of the SDSS grid would turn with it).

Run::

    python benchmarks/texture_peaks.py --methods srgan,unet --n 10
    python benchmarks/texture_peaks.py --methods "srgan(weights=OLD/srgan)" --n 10
"""

import argparse
import sys

import numpy as np


def peak(err, fmin=0.15):
    """(fy, fx, contrast) of the strongest smoothed power-spectrum peak at |f| >= fmin."""
    from scipy.ndimage import uniform_filter

    a = err - err.mean()
    ny, nx = a.shape
    p = np.abs(np.fft.fft2(a * np.outer(np.hanning(ny), np.hanning(nx)))) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij")
    fr = np.hypot(fy, fx)
    p[fr < fmin] = 0
    ps = uniform_filter(p, 5, mode="wrap")
    ps[fr < fmin] = 0
    i = np.unravel_index(np.argmax(ps), p.shape)
    return float(fy[i]), float(fx[i]), float(ps[i] / np.median(ps[fr >= fmin]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="srgan")
    ap.add_argument("--n", type=int, default=10)
    args = ap.parse_args(argv)

    from astro_enhance import enhance_fits
    from astro_enhance.evaluate import _method_kwargs, parse_methods
    from astro_enhance.io import image_to_hdu
    from astro_enhance.metrics import anisotropy_score
    from astro_enhance.simulate import check_seeds, simulate_pair

    methods = parse_methods(args.methods)
    for seed in check_seeds("bench", n=args.n):
        pair = simulate_pair(seed, bands="r")
        m = pair.sdss_wcs.pixel_scale_matrix
        rot = np.degrees(np.arctan2(m[1, 0], -m[0, 0])) % 360   # SDSS columns vs east
        truth = pair.truth["r"].data
        cells = []
        for label, name, opts in methods:
            out = enhance_fits(image_to_hdu(pair.sdss["r"]), method=name, rng=seed,
                               **_method_kwargs(opts))[0].data
            fy, fx, c = peak(out - truth)
            ang = np.degrees(np.arctan2(fy, fx)) % 180
            cells.append(f"{label}: A {anisotropy_score(out - truth):.2f}, peak |f| "
                         f"{np.hypot(fy, fx):.3f} at {ang:3.0f} deg (x{c:.0f})")
        print(f"{seed} SDSS frame rotation {rot:5.1f} deg | " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
