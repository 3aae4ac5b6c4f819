"""Star removal on a full SDSS frame: time, peak memory, stars removed (issue 12, item 4).

Usage::

    PYTHONPATH=. python benchmarks/bench_stars_frame.py [--repeats 3] [--frame PATH]
        [--profile out.prof] [--crop Y0:Y1,X0:X1] [--preview PNG]

Runs `astro_enhance.stars.remove_stars` on the r-band frame of the globular cluster M2
(``../shared/data/real/sdss/frame-r-002583-2-0136.fits.bz2``, 2048 x 1489 pixels, about ten
thousand stars) ``--repeats`` times in one process, after one untimed warm-up run (imports,
OpenCV and photutils initialisation), and prints the median and each time, the peak resident
memory (``resource.getrusage``: the process's high-water mark, so it includes reading the
frame), the number of stars removed and inpainted, and the 1-minute load average before and
after (the figure is only comparable between runs on an equally loaded machine). Target:
at most 60 s on the 2-core development machine.
"""

import argparse
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
FRAME = REAL / "sdss" / "frame-r-002583-2-0136.fits.bz2"


def _peak_rss_mb():
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2 ** 20


def _crop(text):
    ys, xs = text.split(",")
    y0, y1 = (int(v) for v in ys.split(":"))
    x0, x1 = (int(v) for v in xs.split(":"))
    return slice(y0, y1), slice(x0, x1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame", default=str(FRAME), help="SDSS frame (default: the M2 r frame)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed first run")
    ap.add_argument("--crop", default=None, help="Y0:Y1,X0:X1 sub-image (profiling)")
    ap.add_argument("--profile", default=None, help="write cProfile stats of one run here")
    ap.add_argument("--preview", default=None, help="write a preview PNG of the last run")
    args = ap.parse_args(argv)

    from astro_enhance.io import read_image
    from astro_enhance.stars import remove_stars

    path = Path(args.frame)
    if not path.is_file():
        print(f"frame {path} absent: nothing to measure")
        return 1
    img = read_image(path)
    if args.crop:
        sl = _crop(args.crop)
        from astro_enhance.io import Image
        img = Image(data=img.data[sl].copy(), wcs=img.wcs[sl], unit=img.unit,
                    header=img.header, filename=img.filename)
    ny, nx = img.data.shape
    load0 = os.getloadavg()[0]

    def once():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return remove_stars(img, rng=0)

    if not args.no_warmup:
        once()
    if args.profile:
        import cProfile
        import pstats
        pr = cProfile.Profile()
        pr.enable()
        once()
        pr.disable()
        pr.dump_stats(args.profile)
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    times = []
    res = None
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        res = once()
        times.append(time.perf_counter() - t0)
    load1 = os.getloadavg()[0]
    n_inp = int(np.sum(np.asarray(res.catalog["removal"]) == "inpaint"))
    print(f"frame {path.name} ({nx} x {ny} px{', crop ' + args.crop if args.crop else ''}), "
          f"{os.cpu_count()} CPUs")
    print(f"remove_stars: median {statistics.median(times):.1f} s over {len(times)} run(s) "
          f"({', '.join(f'{t:.1f}' for t in times)} s) [target <= 60 s]")
    print(f"peak RSS {_peak_rss_mb():.0f} MB; {res.n_removed} stars removed "
          f"({n_inp} masked and inpainted), {len(res.catalog)} candidates, "
          f"{res.inpainted.mean():.2%} of the pixels inpainted; PSF {res.catalog.meta['psf']}")
    print(f"load average (1 min) {load0:.2f} before, {load1:.2f} after")
    if args.preview:
        from astro_enhance.stars.preview import save_star_preview
        save_star_preview(args.preview, img.data, res.clean, res.mask,
                          inpainted=res.inpainted, dpi=80,
                          title=f"{path.name}: {res.n_removed} stars removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
