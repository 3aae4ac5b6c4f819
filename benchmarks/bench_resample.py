"""Benchmark: `astro_enhance.resample` against a direct `reproject_interp` call.

On the full real SDSS r frame (2048 x 1489 px, M2 field) both put the image on the same DECaLS
grid (0.262"/px, 3096 x 2251 px) with bicubic interpolation. `resample` adds the unit logic,
the pixel-area factor, the NaN/mask handling and the header; the goal is that it costs at most
10% more than the bare reproject call. Calls are interleaved (ABBA order) to cancel drift on a
shared machine; medians and the median ratio are printed, then the peak resident memory of
each call measured alone in a fresh process.

Usage::

    PYTHONPATH=. python benchmarks/bench_resample.py [--repeats 7] [--frame PATH]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_FRAME = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
                 / "sdss" / "frame-r-002583-2-0136.fits.bz2")


def _load(frame):
    from astro_enhance import read_image
    from astro_enhance.resample import target_wcs

    img = read_image(frame)
    w, shape = target_wcs(img, "decals")
    return img, w, shape


def _run_resample(img, w, shape):
    from astro_enhance import resample

    return resample(img, "decals").data


def _run_reproject(img, w, shape):
    from reproject import reproject_interp

    return reproject_interp((img.data, img.wcs), w, shape_out=shape, order="bicubic",
                            return_footprint=False)


def _status_mb(field):
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def _peak_rss_mb():
    """Peak resident memory of this process (VmHWM; ru_maxrss would include the parent's)."""
    peak = _status_mb("VmHWM")
    if peak is None:  # pragma: no cover - not Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return peak


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); harmless elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # pragma: no cover
        pass


def _single(which, frame):
    """Child process: one call, then report its peak RSS and the RSS before it."""
    img, w, shape = _load(frame)
    _reset_peak()
    base = _status_mb("VmRSS") or _peak_rss_mb()
    t = time.perf_counter()
    (_run_resample if which == "resample" else _run_reproject)(img, w, shape)
    dt = time.perf_counter() - t
    print(json.dumps({"which": which, "seconds": dt, "peak_rss_mb": _peak_rss_mb(),
                      "rss_before_mb": base}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="pairs of calls (>= 5)")
    parser.add_argument("--frame", default=str(DEFAULT_FRAME), help="SDSS frame to use")
    parser.add_argument("--single", choices=["resample", "reproject"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if not Path(args.frame).is_file():
        print(f"real SDSS frame {args.frame} absent: nothing to benchmark")
        return 2
    if args.single:
        _single(args.single, args.frame)
        return 0

    t = time.perf_counter()
    img, w, shape = _load(args.frame)
    t_read = time.perf_counter() - t
    print(f"frame: {args.frame}")
    print(f"input {img.shape[1]} x {img.shape[0]} px -> DECaLS grid {shape[1]} x {shape[0]} px "
          f"(read_image + target_wcs {t_read:.2f} s)")

    # Warm-up (imports, caches), and a check that both give the same pixels.
    from astro_enhance import resample

    out = resample(img, "decals")
    a, factor = out.data, float(out.header["AE_FLUXF"])
    b = _run_reproject(img, w, shape)
    diff = np.nanmax(np.abs(a - factor * b))
    print(f"check: max |resample - {factor:.6f} * reproject| = {diff:.3g} nanomaggy; "
          f"NaN counts {int(np.isnan(a).sum())} / {int(np.isnan(b).sum())}")
    del a, b, out

    times = {"resample": [], "reproject": []}
    for i in range(max(5, args.repeats)):
        order = ("resample", "reproject") if i % 2 == 0 else ("reproject", "resample")
        for which in order:
            fn = _run_resample if which == "resample" else _run_reproject
            t = time.perf_counter()
            fn(img, w, shape)
            times[which].append(time.perf_counter() - t)
        print(f"  repeat {i + 1}: resample {times['resample'][-1]:.3f} s, "
              f"reproject_interp {times['reproject'][-1]:.3f} s")
    ra = np.array(times["resample"])
    rb = np.array(times["reproject"])
    print(f"median resample:         {np.median(ra):.3f} s  (min {ra.min():.3f})")
    print(f"median reproject_interp: {np.median(rb):.3f} s  (min {rb.min():.3f})")
    print(f"ratio of medians:        {np.median(ra) / np.median(rb):.3f}  (goal <= 1.10)")
    print(f"median of pair ratios:   {np.median(ra / rb):.3f}")

    for which in ("resample", "reproject"):
        res = subprocess.run([sys.executable, __file__, "--single", which, "--frame", args.frame],
                             capture_output=True, text=True)
        line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        try:
            info = json.loads(line)
            print(f"peak RSS, {which} alone: {info['peak_rss_mb']:.0f} MB "
                  f"(RSS before the call, frame loaded: {info['rss_before_mb']:.0f} MB; "
                  f"{info['seconds']:.2f} s)")
        except ValueError:
            print(f"peak RSS, {which}: measurement failed: {res.stderr.strip()[-300:]}")
    print(f"peak RSS, this process: {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
