"""Figures of the SR3 diffusion enhancer (issue 6): steps table, sample mean vs U-Net, uncertainty.

Every image goes through `astro_enhance.enhance_fits` (resample -> enhance -> FITS), on scenes
simulated on the fly from the seeds of one split (``bench`` by default, band r, 64" stamps =
244 x 244 DECaLS pixels), scored against the noiseless truth with the metrics of
``astro-enhance evaluate`` (`astro_enhance.evaluate._metrics`: PSNR and SSIM with the
DECaLS-like sigma, ``hf_power_ratio`` against the DECaLS-like image).

1. Steps table: one sample (``rng`` = the scene seed) per step count, median PSNR, SSIM and
   hf_power over the scenes; seconds per 256 x 256 tile timed separately (the enhancer on a
   256 x 256 stretched-noise image, one thread, best of ``--repeat``). ``--limit`` runs the
   large step counts on the first scenes only (default 100 and 250 on 10, 1000 on 3); the
   default-step choice compares the step counts on the scenes they all ran on. Rows with the bilateral post-filter for
   ``--filter-steps``.
2. The mean of ``--samples`` samples (``enhance_fits(samples=8)``) against the U-Net on the
   same scenes; the single sample's and the DECaLS-like image's scores; a single sample and
   the mean with the optional DECaLS-like ``look_noise``.
3. On galaxy light (truth > ``--light`` DECaLS sigma): Spearman correlation between the STD
   map and |mean - truth| (pooled pixels, and the median of per-scene values), and the
   fraction of pixels with |mean - truth| < 2 STD.

Run (one thread; ~30-40 min of CPU for 20 scenes)::

    OMP_NUM_THREADS=1 python benchmarks/bench_sr3.py --n 20
    OMP_NUM_THREADS=1 python benchmarks/bench_sr3.py --split val --n 8 --table-only

``--split val`` is what chooses the default step count (bench seeds are for reporting only).
"""

import argparse
import json
import math
import sys
import time

import numpy as np


def _tile_seconds(method, steps, repeat, post_filter=False):
    from astro_enhance.enhancers import get_enhancer

    enh = get_enhancer(method, device="cpu", steps=steps, post_filter=post_filter)
    img = np.random.default_rng(0).normal(0, 1, (256, 256)).astype(np.float32)
    best = math.inf
    for r in range(repeat):
        t0 = time.perf_counter()
        enh.enhance(img, noise=1.0, rng=r)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="bench")
    p.add_argument("--n", type=int, default=20, help="scenes (band r)")
    p.add_argument("--steps", default="10,25,50,100,250,1000")
    p.add_argument("--limit", default="100:10,250:10,1000:3",
                   help="steps:scenes -- run these step counts on the first scenes only")
    p.add_argument("--filter-steps", default="50", help="step counts also run with the "
                                                        "bilateral post-filter ('' for none)")
    p.add_argument("--default-steps", type=int, default=None,
                   help="steps for items 2-3 (default: the weights' default)")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--light", type=float, default=3.0,
                   help="galaxy light: truth > this many DECaLS sigma")
    p.add_argument("--repeat", type=int, default=2, help="timing repeats per tile")
    p.add_argument("--table-only", action="store_true", help="item 1 only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--weights", default=None,
                   help="diffusion weights to use instead of the shipped sr3 (for trying a "
                        "run's export; registered as 'sr3-bench')")
    args = p.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    torch.set_num_threads(args.threads)
    from astro_enhance import enhance_fits
    from astro_enhance.enhancers import get_enhancer
    from astro_enhance.evaluate import _as_grid, _metrics, _scenes_from_simulation
    from astro_enhance.io import image_to_hdu
    from astro_enhance.simulate import check_seeds

    method = "sr3"
    if args.weights:
        from astro_enhance.enhancers import register_enhancer
        from astro_enhance.enhancers.diffusion import DiffusionEnhancer

        def factory(*, device="auto", weights=None, **options):
            return DiffusionEnhancer.from_weights(args.weights, device=device, **options)

        register_enhancer("sr3-bench", factory)
        method = "sr3-bench"
    steps_list = [int(s) for s in args.steps.split(",") if s]
    limit = {int(a): int(b) for a, b in (x.split(":") for x in args.limit.split(",") if x)}
    filt_list = [int(s) for s in args.filter_steps.split(",") if s]
    default = args.default_steps or get_enhancer(method, device="cpu").steps
    seeds = check_seeds(args.split, n=args.n)
    print(f"# bench_sr3: split {args.split}, seeds {seeds.start}..{seeds.stop - 1} ({args.n} "
          f"scenes, band r), {args.threads} thread(s), default steps {default}, "
          f"torch {torch.__version__}", flush=True)

    def run(hdu, sc, method=method, **kw):
        t0 = time.perf_counter()
        hdul = enhance_fits(hdu, method=method, target="decals", device="cpu", **kw)
        dt = time.perf_counter() - t0
        return hdul, _as_grid(hdul[0], sc), dt

    rows = {}           # label -> list of metric dicts
    unc = {"std": [], "err": [], "rho_scene": []}
    t_all = time.perf_counter()
    for i, sc in enumerate(_scenes_from_simulation(seeds, ("r",), 64.0)):
        hdu = image_to_hdu(sc["sdss"])
        seed = int(sc["seed"])

        def add(label, out, dt):
            rows.setdefault(label, []).append(dict(_metrics(out, sc, dt), seed=seed))

        add("decals-like", sc["decals"], math.nan)
        for s in steps_list:
            if i >= limit.get(s, args.n):
                continue
            _, out, dt = run(hdu, sc, rng=seed, options={"steps": s})
            add(f"sr3 steps={s}", out, dt)
        for s in filt_list:
            _, out, dt = run(hdu, sc, rng=seed, options={"steps": s, "post_filter": True})
            add(f"sr3 steps={s} post_filter", out, dt)
        if not args.table_only:
            _, out, dt = run(hdu, sc, method="unet")
            add("unet", out, dt)
            if default not in steps_list:
                _, single, dt = run(hdu, sc, rng=seed, options={"steps": default})
                add(f"sr3 steps={default}", single, dt)
            else:
                single = None
            hdul, mean, dt = run(hdu, sc, rng=seed, samples=args.samples,
                                 options={"steps": default})
            add(f"sr3 mean of {args.samples} (steps={default})", mean, dt)
            std = _as_grid(hdul["STD"], sc)
            _, look, dt = run(hdu, sc, rng=seed, options={"steps": default,
                                                          "look_noise": True})
            add(f"sr3 steps={default} look_noise", look, dt)
            # the same seed without look noise is the first sample: their difference is the
            # fixed look-noise realisation, which the pipeline adds once to the mean too
            _, plain, _ = run(hdu, sc, rng=seed, options={"steps": default}) \
                if single is None else (None, single, 0)
            add(f"sr3 mean of {args.samples} + look_noise", mean + (look - plain), math.nan)
            light = sc["truth"] > args.light * sc["sigma_decals"]
            light &= np.isfinite(mean) & np.isfinite(std)
            err = np.abs(mean - sc["truth"])[light]
            s_ = std[light]
            unc["std"].append(s_)
            unc["err"].append(err)
            if light.sum() >= 20:
                unc["rho_scene"].append(float(spearmanr(s_, err)[0]))
        print(f"scene {i + 1}/{args.n} seed {seed} done, {time.perf_counter() - t_all:.0f} s",
              file=sys.stderr, flush=True)

    def med(label, key):
        v = np.array([r[key] for r in rows[label]], dtype=float)
        return float(np.nanmedian(v)), len(v)

    out = {"split": args.split, "n": args.n, "default_steps": default, "rows": {}}
    print("\n## 1. Steps table (one sample per scene; median over scenes)")
    print(f"{'method':38s} {'n':>3s} {'PSNR':>7s} {'SSIM':>7s} {'hf_pow':>7s} "
          f"{'s/scene':>8s} {'s/256^2 tile':>12s}")
    tile_s = {}
    for label in rows:
        ps, n = med(label, "psnr")
        ss, _ = med(label, "ssim")
        hf, _ = med(label, "hf_power")
        sec, _ = med(label, "seconds")
        ts = ""
        if label.startswith("sr3 steps=") and "look" not in label:
            s = int(label.split("=")[1].split()[0])
            pf = "post_filter" in label
            key = (s, pf)
            if key not in tile_s:
                tile_s[key] = _tile_seconds(method, s, args.repeat if s <= 250 else 1, post_filter=pf)
            ts = f"{tile_s[key]:12.2f}"
        out["rows"][label] = dict(n=n, psnr=ps, ssim=ss, hf_power=hf, seconds=sec,
                                  tile_seconds=float(ts) if ts else None)
        print(f"{label:38s} {n:3d} {ps:7.2f} {ss:7.4f} {hf:7.3f} {sec:8.2f} {ts:>12s}")
    # the step counts compared on the scenes they all ran on
    table = {int(lab.split("=")[1]): rows[lab] for lab in rows
             if lab.startswith("sr3 steps=") and lab.split("=")[1].isdigit()
             and int(lab.split("=")[1]) in steps_list}
    if table:
        common = set.intersection(*({r["seed"] for r in v} for v in table.values()))
        ssim = {s: float(np.median([r["ssim"] for r in v if r["seed"] in common]))
                for s, v in table.items()}
        psnr_c = {s: float(np.median([r["psnr"] for r in v if r["seed"] in common]))
                  for s, v in table.items()}
        best = max(ssim.values())
        ok = sorted(s for s, v in ssim.items() if v >= best - 0.01)
        print(f"on the {len(common)} scenes every step count ran on: " + ", ".join(
            f"{s} steps PSNR {psnr_c[s]:.2f} SSIM {ssim[s]:.4f}" for s in sorted(ssim)))
        print(f"best SSIM {best:.4f}; within 0.01 of it: {ok}; default {default} "
              f"{'is' if default in ok else 'is NOT'} among them")
        out.update(ssim_best=best, steps_within_001=ok, common_scenes=len(common),
                   ssim_common=ssim, psnr_common=psnr_c)

    if not args.table_only:
        print(f"\n## 2. Mean of {args.samples} samples vs the U-Net (same scenes)")
        u, _ = med("unet", "psnr")
        m, _ = med(f"sr3 mean of {args.samples} (steps={default})", "psnr")
        s1, _ = med(f"sr3 steps={default}", "psnr")
        d, _ = med("decals-like", "psnr")
        per = [a["psnr"] - b["psnr"] for a, b in
               zip(rows[f"sr3 mean of {args.samples} (steps={default})"], rows["unet"])]
        print(f"PSNR: unet {u:.2f}, mean of {args.samples} {m:.2f} (median per-scene "
              f"difference {np.median(per):+.2f} dB), single sample {s1:.2f}, "
              f"DECaLS-like image {d:.2f}")
        for lab in (f"sr3 steps={default}", f"sr3 steps={default} look_noise", "unet",
                    "decals-like", f"sr3 mean of {args.samples} + look_noise"):
            print(f"hf_power_ratio (vs DECaLS-like) {lab}: {med(lab, 'hf_power')[0]:.3f}; "
                  f"PSNR {med(lab, 'psnr')[0]:.2f}")
        print(f"\n## 3. Uncertainty on galaxy light (truth > {args.light:g} DECaLS sigma)")
        s_all, e_all = np.concatenate(unc["std"]), np.concatenate(unc["err"])
        rho = float(spearmanr(s_all, e_all)[0])
        cover = float(np.mean(e_all < 2 * s_all))
        print(f"pixels {s_all.size}; Spearman(STD, |mean - truth|) pooled {rho:.3f}, median "
              f"per scene {np.median(unc['rho_scene']):.3f}; fraction |mean - truth| < 2 STD "
              f"{cover:.3f} (< 1 STD {np.mean(e_all < s_all):.3f}, < 3 STD "
              f"{np.mean(e_all < 3 * s_all):.3f})")
        out.update(psnr_unet=u, psnr_mean=m, psnr_single=s1, psnr_decals=d, spearman=rho,
                   spearman_scene_median=float(np.median(unc["rho_scene"])),
                   coverage_2std=cover, n_pixels=int(s_all.size))
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
