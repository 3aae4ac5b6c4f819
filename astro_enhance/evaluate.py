"""Benchmark enhancers on simulated SDSS / DECaLS pairs (or on one real pair).

Every method runs through the production pipeline, `astro_enhance.pipeline.enhance_fits`, on
SDSS images of the bench split (simulated on the fly from their seeds, or read back from
shards written by `astro_enhance.simulate.write_shards`). Each output is compared with the
noiseless truth and the DECaLS-like image of the same scene using `astro_enhance.metrics`:

* ``psnr``, ``ssim``: against the truth, in the stretch ``asinh(x / (3 sigma_decals))``;
* ``flux_error``: relative aperture flux within 2 half-light radii of the truth's galaxy;
* ``chi2``: `~astro_enhance.metrics.consistency_chi2` against the SDSS image (true PSFs of the
  scene, per-pixel SDSS noise including the source term, saturated pixels left out);
* ``hf_power``: `~astro_enhance.metrics.hf_power_ratio` against the DECaLS-like image;
* ``noise_power``: `~astro_enhance.metrics.noise_power_ratio` above 0.15 cycles/px, the
  power of the output's error over that of the DECaLS-like image's (1: errs like DECaLS);
* ``anisotropy``: `~astro_enhance.metrics.anisotropy_score` of the output's error (about 1.2
  for isotropic noise; hatching and checkerboards score high);
* ``seconds``: wall time of the ``enhance_fits`` call.

With ``two_sample=True`` the table's ``meta["two_sample"]`` also holds, per method, the
held-out accuracy of a classifier trained to tell the method's outputs from the DECaLS-like
images (`~astro_enhance.metrics.two_sample_accuracy`, in the metrics' stretch; 0.5 = cannot
tell them apart).

Two reference rows are added: ``sdss-input`` (the SDSS image on the DECaLS grid, no
enhancement) and ``decals-like`` (the noisy DECaLS-like image itself).
"""

import math
import time
from pathlib import Path

import numpy as np

from .exceptions import InputError

__all__ = ["evaluate", "evaluate_samples", "evaluate_real", "evaluate_decam", "format_decam", "best_classical",
           "evaluate_colour", "make_colour_figure", "summarize", "format_summary", "make_figure",
           "parse_methods", "METRICS", "COLOUR_METRICS", "REFERENCE_ROWS", "DECAM_FRAMES"]

#: Metric columns of the per-image table.
METRICS = ("psnr", "ssim", "flux_error", "chi2", "hf_power", "noise_power", "anisotropy",
           "seconds")

#: Metric columns of the per-scene table of `evaluate_colour` (for bands g, r, z).
COLOUR_METRICS = ("colour_error", "g-r_error", "r-z_error", "psnr_g", "psnr_r", "psnr_z",
                  "seconds")

#: Reference rows added to every benchmark (not enhancers).
REFERENCE_ROWS = ("sdss-input", "decals-like")


def _split_top(text, sep):
    """Split on ``sep`` outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InputError(f"unbalanced ')' in method list {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise InputError(f"unbalanced '(' in method list {text!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_methods(methods):
    """Method specifications -> list of ``(label, name, options)``.

    A specification is an enhancer name, optionally followed by its options in parentheses,
    ``name(key=value, ...)``: values are Python literals (numbers, strings, booleans). The
    label, used in the tables, is the specification with spaces removed.

    Parameters
    ----------
    methods : str or sequence of str
        Comma-separated string (commas inside parentheses belong to the options) or list.

    Returns
    -------
    list of tuple

    Raises
    ------
    astro_enhance.InputError
        If the list is empty or a specification cannot be parsed.

    Examples
    --------
    ``weights=PATH`` is not an enhancer option: it names a weights file to use instead of
    the shipped one (e.g. ``unet(weights=runs/old/unet)``), so that two sets of weights of
    one architecture can be compared in one run.

    >>> for spec in parse_methods("bicubic, bilateral(sigma_color=8, sigma_space=8)"):
    ...     print(spec)
    ('bicubic', 'bicubic', {})
    ('bilateral(sigma_color=8,sigma_space=8)', 'bilateral', {'sigma_color': 8, 'sigma_space': 8})
    """
    import ast

    specs = _split_top(methods, ",") if isinstance(methods, str) else [
        str(m).strip() for m in methods if str(m).strip()]
    if not specs:
        raise InputError("no method given; e.g. --methods bicubic,richardson-lucy")
    out = []
    for spec in specs:
        name, opts = spec, {}
        if "(" in spec:
            if not spec.endswith(")"):
                raise InputError(f"cannot parse method {spec!r}: write name(key=value, ...)")
            name, inner = spec[:-1].split("(", 1)
            name = name.strip()
            for item in _split_top(inner, ","):
                key, eq, val = item.partition("=")
                key = key.strip()
                if not eq or not key.isidentifier():
                    raise InputError(f"cannot parse option {item!r} of method {spec!r}: "
                                     "write key=value")
                try:
                    opts[key] = ast.literal_eval(val.strip())
                except (ValueError, SyntaxError):
                    opts[key] = val.strip()
        if not name:
            raise InputError(f"method {spec!r} has no name")
        out.append(("".join(spec.split()), name, opts))
    return out


def _method_kwargs(opts):
    """`enhance_fits` keywords of a parsed method: ``weights=PATH`` (a user weights file, e.g.
    ``unet(weights=runs/unet/model)``) goes to ``weights``, the rest to ``options``."""
    opts = dict(opts)
    return dict(weights=opts.pop("weights", None), options=opts)


def _check_methods(parsed, n_bands, device, hint):
    """Build each enhancer once before any work: unknown names and enhancers writing another
    number of bands than ``n_bands`` fail here, with ``hint`` saying what to do."""
    from .enhancers import get_enhancer

    textured = set()
    for label, name, opts in parsed:
        enh = get_enhancer(name, device=device, **opts)
        if enh.info.channels_out != n_bands:
            raise InputError(f"{name} writes {enh.info.channels_out} band(s); {hint}")
        if getattr(enh, "texture", None) is not None and "texture_sigma" not in opts:
            textured.add(label)
    return textured


def _scene_dicts(pair, **extra):
    """The per-band scene records `evaluate` measures, from a simulated or real pair."""
    for b in pair.bands:
        yield dict(seed=pair.seed, band=b, sdss=pair.sdss[b], truth=pair.truth[b].data,
                   decals=pair.decals[b].data, input=pair.input[b].data,
                   decals_wcs=pair.decals_wcs, sdss_wcs=pair.sdss_wcs,
                   sigma_sdss=np.sqrt(pair.variance_sdss[b]),
                   sigma_decals=pair.sigma_decals[b], mask=pair.saturated[b],
                   psf_sdss=pair.psf_fwhm_sdss[b], psf_decals=pair.psf_fwhm_decals[b],
                   center=(pair.galaxy["x_decals"], pair.galaxy["y_decals"]), **extra)


def _scenes_from_simulation(seeds, bands, stamp_arcsec, noise_scale=1.0):
    from .simulate import simulate_pair

    for seed in seeds:
        yield from _scene_dicts(simulate_pair(seed, bands=bands, stamp_arcsec=stamp_arcsec,
                                              sdss_noise_scale=noise_scale))


def _scenes_from_real_morphology(split, n, bands, data_dir, noise_scale=1.0):
    from .real_morphology import REAL_SPLIT_SEEDS, galaxy_names, real_morphology_pair

    names = galaxy_names(split)[:n]
    first = REAL_SPLIT_SEEDS[split]
    for i, name in enumerate(names):
        pair = real_morphology_pair(name, first + 10 * i, bands=bands, data_dir=data_dir,
                                    sdss_noise_scale=noise_scale)
        yield from _scene_dicts(pair, name=name)


def _scenes_from_shards(path, split, seeds, bands):
    import astropy.units as u
    from astropy.io import fits
    from astropy.wcs import WCS

    from .io import Image
    from .simulate import _SDSS, sdss_poisson_k, read_shard

    path = Path(path)
    files = sorted(path.glob(f"{split}-*.npz")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"no {split} shard in {path}; write some with 'astro-enhance simulate "
                         f"--split {split} --out {path}'")
    wanted = set(seeds)
    for f in files:
        z = read_shard(f)
        for i in range(len(z["seed"])):
            seed, b = int(z["seed"][i]), str(z["band"][i])
            if seed not in wanted or b not in bands:
                continue
            sh = fits.Header.fromstring(str(z["sdss_header"][i]))
            dh = fits.Header.fromstring(str(z["decals_header"][i]))
            sw, dw = WCS(sh).celestial, WCS(dh).celestial
            sd = z["sdss"][i]
            # shards keep the sky sigma only: add the SDSS source term from the data
            k = sdss_poisson_k(b)
            var = z["sigma_sdss"][i] ** 2 + k * np.clip(sd, 0, None)
            yield dict(seed=seed, band=b, sdss=Image(data=sd, wcs=sw, unit=u.nanomaggy,
                                                     header=sh),
                       truth=z["truth"][i], decals=z["decals"][i], input=z["input"][i],
                       decals_wcs=dw, sdss_wcs=sw, sigma_sdss=np.sqrt(var),
                       sigma_decals=float(z["sigma_decals"][i]),
                       mask=sd >= _SDSS[b]["sat"] - 1e-3,
                       psf_sdss=float(z["psf_fwhm_sdss"][i]),
                       psf_decals=float(z["psf_fwhm_decals"][i]), center=None)


def _scene_source(source, *, split, n, start, shards, bands, stamp_arcsec, data_dir,
                  noise_scale=1.0):
    """The seeds (a range: simulated seeds, or galaxy numbers) and the scene records of an
    `evaluate` run."""
    from .simulate import check_seeds

    if noise_scale != 1.0 and shards is not None:
        raise InputError("noise_scale applies to scenes made on the fly, not to shards")

    if source == "real-morphology":
        from .real_morphology import galaxy_names
        n_scenes = min(int(n), len(galaxy_names(split)))
        return range(n_scenes), _scenes_from_real_morphology(split, n_scenes, bands, data_dir,
                                                             noise_scale)
    if source == "simulation":
        seeds = check_seeds(split, start=start, n=n)
        return seeds, (_scenes_from_shards(shards, split, seeds, bands) if shards is not None
                       else _scenes_from_simulation(seeds, bands, stamp_arcsec, noise_scale))
    raise InputError(f"unknown source {source!r}; use 'simulation' or 'real-morphology'")


def _metrics(out, sc, seconds):
    from .metrics import (anisotropy_score, consistency_chi2, flux_error, hf_power_ratio,
                          noise_power_ratio, psnr, ssim)

    t, s = sc["truth"], sc["sigma_decals"]
    row = dict(psnr=psnr(out, t, sigma=s), ssim=ssim(out, t, sigma=s))
    try:
        row["flux_error"] = flux_error(out, t, center=sc["center"])
    except InputError:
        row["flux_error"] = math.nan
    row["chi2"] = consistency_chi2(out, sc["sdss"].data, sdss_wcs=sc["sdss_wcs"],
                                   enhanced_wcs=sc["decals_wcs"], psf_sdss_fwhm=sc["psf_sdss"],
                                   psf_out_fwhm=sc["psf_decals"], sigma_sdss=sc["sigma_sdss"],
                                   mask=sc["mask"])
    row["hf_power"] = hf_power_ratio(np.nan_to_num(out), sc["decals"])
    err = np.nan_to_num(out) - t
    row["noise_power"] = float(noise_power_ratio(np.nan_to_num(out), t, sc["decals"],
                                                 bands=((0.15, 0.75),))[0])
    row["anisotropy"] = anisotropy_score(err)
    row["seconds"] = seconds
    return row


def _as_grid(out_hdu, sc):
    """Enhanced data on the scene's DECaLS grid (resampled only if the grids differ)."""
    from astropy.wcs import WCS

    data = np.asarray(out_hdu.data, dtype=np.float32)
    w = WCS(out_hdu.header).celestial
    ref = sc["decals_wcs"]
    same = (data.shape == sc["truth"].shape
            and np.allclose(w.wcs.crval, ref.wcs.crval, rtol=0, atol=1e-9)
            and np.allclose(w.wcs.crpix, ref.wcs.crpix, rtol=0, atol=1e-6)
            and np.allclose(w.pixel_scale_matrix, ref.pixel_scale_matrix, rtol=1e-9, atol=0))
    if same:
        return data
    from .io import Image
    from .resample import resample
    img = Image(data=data, wcs=w, unit=None, header=out_hdu.header)
    return resample(img, "decals", wcs_out=ref, shape_out=sc["truth"].shape,
                    conserve_flux=False, return_type="image").data


def evaluate(methods, *, n=200, split="bench", bands=("r",), start=None, shards=None,
             stamp_arcsec=64.0, device="cpu", references=True, keep_examples=4,
             progress=False, source="simulation", data_dir=None, noise_scale=1.0,
             two_sample=False, texture_depth="scene"):
    """Run enhancers through the pipeline on simulated scenes and measure them.

    Parameters
    ----------
    methods : str or sequence of str
        Enhancer names (see ``astro-enhance list``), each optionally with options,
        ``"bilateral(sigma_color=8, sigma_space=8)"`` (see `parse_methods`); the tables label
        each method by its specification.
    n : int, optional
        Number of scenes (seeds ``start .. start + n - 1`` of the split).
    split : str, optional
        Seed split, ``"bench"`` by default (see `astro_enhance.simulate.SPLITS`).
    bands : sequence of str, optional
        Bands evaluated for every scene.
    start : int, optional
        First seed (default: the split's first seed).
    shards : str or path, optional
        Read the scenes from shards in this directory instead of simulating them.
    stamp_arcsec : float, optional
        Scene size when simulating.
    device : str, optional
        Device for neural enhancers.
    references : bool, optional
        Add the ``sdss-input`` and ``decals-like`` reference rows.
    keep_examples : int, optional
        Keep the images of the first scenes for `make_figure`.
    progress : bool, optional
        Show a progress bar.
    source : {"simulation", "real-morphology"}, optional
        ``"real-morphology"``: the first ``n`` galaxies of the split's real-morphology pairs
        (`astro_enhance.real_morphology`: real DECaLS galaxy images as truth, the SDSS
        psField PSF), one pair per galaxy with the split's fixed seeds; ``start``, ``shards``
        and ``stamp_arcsec`` do not apply.
    data_dir : path-like, optional
        Real-data folder for ``source="real-morphology"`` (see
        `astro_enhance.real_morphology.real_data_dir`).
    noise_scale : float, optional
        Multiply the SDSS images' noise by this factor (``0.5``: a deeper input, ``2``: a
        shallower one; see `astro_enhance.simulate.simulate_pair`); not with ``shards``.
        The truth and the DECaLS-like images do not change.
    two_sample : bool, optional
        Run the classifier two-sample test of every method's outputs against the DECaLS-like
        images (``table.meta["two_sample"]``: method -> held-out accuracy and number of test
        patches; needs at least 4 images).
    texture_depth : {"scene", "nominal"}, optional
        Enhancers that add a DECaLS-depth texture (``gan``, ``srgan``) draw it at the depth
        of each scene's DECaLS-like image, the image they are compared with (``"scene"``,
        the default: the depth is a choice of target, told to the enhancer as
        ``texture_sigma``), or at the survey table's nominal depth (``"nominal"``). A
        ``texture_sigma`` in the method's options wins.

    Returns
    -------
    table : `~astropy.table.Table`
        One row per (method, seed, band) with the columns of `METRICS` (and ``name``, the
        galaxy, for real-morphology scenes).
    examples : list of dict
        Images of the first ``keep_examples`` scenes: ``truth``, ``decals``, ``input`` and one
        entry per method, plus ``seed``, ``band`` and ``sigma_decals``.

    Raises
    ------
    astro_enhance.SplitError
        If the seeds leave the split.
    astro_enhance.EnhancerError
        If a method is unknown.

    Examples
    --------
    >>> t, ex = evaluate(["bicubic"], n=1, stamp_arcsec=16, keep_examples=0)
    >>> sorted(set(map(str, t["method"])))
    ['bicubic', 'decals-like', 'sdss-input']
    """
    from .simulate import _check_bands

    parsed = parse_methods(methods)
    textured = _check_methods(parsed, 1, device, "evaluate it with evaluate_colour "
                              "(astro-enhance evaluate --colour)")
    if texture_depth not in ("scene", "nominal"):
        raise InputError(f"texture_depth must be 'scene' or 'nominal', got {texture_depth!r}")
    if texture_depth == "nominal":
        textured = set()
    bands = _check_bands(bands)
    seeds, scenes = _scene_source(source, split=split, n=n, start=start, shards=shards,
                                  bands=bands, stamp_arcsec=stamp_arcsec, data_dir=data_dir,
                                  noise_scale=float(noise_scale))
    stretched = {} if two_sample else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(seeds) * len(bands), unit="image")
    rows, examples = [], []
    for sc in scenes:
        outs = _run_methods(parsed, sc, textured, device, rows)
        if references:
            for name, arr in (("sdss-input", sc["input"]), ("decals-like", sc["decals"])):
                rows.append(dict(method=name, seed=sc["seed"], band=sc["band"],
                                 **_metrics(arr, sc, math.nan), **_name(sc)))
        if len(examples) < keep_examples:
            examples.append(dict(seed=sc["seed"], band=sc["band"], truth=sc["truth"],
                                 decals=sc["decals"], input=sc["input"],
                                 sigma_decals=sc["sigma_decals"], outputs=outs))
        if stretched is not None:
            _keep_stretched(stretched, outs, sc)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return _results_table(rows, split=split, source=source, noise_scale=noise_scale,
                          seeds=seeds, stretched=stretched), examples


def _results_table(rows, *, split, source, noise_scale, seeds, stretched):
    """The per-image table of `evaluate` with its run description (and two-sample test)."""
    from astropy.table import Table

    if not rows:
        raise InputError("no scene found for these seeds and bands")
    table = Table(rows=rows)
    table.meta["split"] = split
    table.meta["source"] = source
    table.meta["noise_scale"] = float(noise_scale)
    if source == "simulation":
        table.meta["seeds"] = [seeds.start, seeds.stop]
    if stretched is not None:
        table.meta["two_sample"] = _two_sample(stretched)
    return table


def _run_methods(parsed, sc, textured, device, rows):
    """Every method on one scene through the pipeline: appends their metric rows to ``rows``
    and returns their outputs on the scene's DECaLS grid (label -> image)."""
    from .io import image_to_hdu
    from .pipeline import enhance_fits

    outs = {}
    hdu = image_to_hdu(sc["sdss"])
    for m, name, opts in parsed:
        t0 = time.perf_counter()
        if m in textured:
            # noise of the depth of the DECaLS-like image it is compared with
            opts = dict(opts, texture_sigma=float(sc["sigma_decals"]))
        # seeded per scene: stochastic enhancers (sr3) give the same table every run
        hdul = enhance_fits(hdu, method=name, target="decals", device=device,
                            **_method_kwargs(opts), rng=int(sc["seed"]))
        dt = time.perf_counter() - t0
        outs[m] = _as_grid(hdul[0], sc)
        rows.append(dict(method=m, seed=sc["seed"], band=sc["band"],
                         **_metrics(outs[m], sc, dt), **_name(sc)))
    return outs


def _keep_stretched(store, outs, sc):
    """Keep every method's output and the DECaLS-like image in the metrics' stretch."""
    from .metrics import stretch

    s = sc["sigma_decals"]
    store.setdefault("decals-like", []).append(stretch(sc["decals"], s).astype(np.float32))
    for m, out in outs.items():
        store.setdefault(m, []).append(stretch(np.nan_to_num(out), s).astype(np.float32))


def _two_sample(store):
    """Classifier two-sample accuracy of every method against the DECaLS-like images."""
    from .metrics import two_sample_accuracy

    ref = store["decals-like"]
    res = {}
    for m, imgs in store.items():
        if m == "decals-like":
            continue
        acc, n_test = two_sample_accuracy(imgs, ref, seed=0)
        res[m] = {"accuracy": round(acc, 4), "n_test": n_test}
    return res


def evaluate_samples(method="sr3", *, samples=8, n=24, split="bench", source="simulation",
                     reference="unet", light=3.0, calibrate=True, data_dir=None,
                     device="cpu", progress=False):
    """Measure the uncertainty map of a stochastic enhancer (``sr3``) against the truth.

    Each scene's SDSS image goes through `astro_enhance.pipeline.enhance_fits` with
    ``samples`` samples (their mean is the image, the ``STD`` extension their spread times
    the enhancer's calibration factor) and once with one sample, both timed; ``reference``
    (the ``unet``) runs on the same scenes. On pixels with light (truth above ``light`` times
    the DECaLS-like noise), the STD is compared with the error of the mean.

    Parameters
    ----------
    method : str, optional
        Stochastic enhancer (specification as in `parse_methods`).
    samples : int, optional
        Samples per image (at least 2).
    n : int, optional
        Scenes (galaxies for ``source="real-morphology"``).
    split : str, optional
        Seed split; ``"val"`` to fit a calibration, ``"bench"`` to report.
    source : {"simulation", "real-morphology"}, optional
        Where the scenes come from (see `evaluate`).
    reference : str, optional
        Deterministic enhancer the mean is compared with.
    light : float, optional
        Pixels with light: truth > ``light`` x the DECaLS-like sigma.
    calibrate : bool, optional
        Apply the enhancer's calibration factor (False: the raw spread; the figures then
        give the factor to fit, ``fitted_factor``).
    data_dir : path-like, optional
        Real-data folder for ``source="real-morphology"``.
    device : str, optional
        Device.
    progress : bool, optional
        Progress bar.

    Returns
    -------
    dict
        ``coverage_2std`` (fraction of light pixels with ``|mean - truth| < 2 STD``),
        ``coverage_1std``, ``spearman`` (pooled Spearman correlation of STD and ``|mean -
        truth|``), ``fitted_factor`` (the factor that would give a 2-STD coverage of 0.95:
        the 95th percentile of ``|mean - truth| / STD``, halved), ``psnr_mean``,
        ``psnr_single``, ``psnr_reference`` (medians over scenes), ``seconds_single``,
        ``seconds_samples`` and ``time_ratio`` (medians and the ratio of the medians),
        ``std_factor`` (the factor applied), ``n_scenes``, ``n_pixels`` and the arguments.

    Raises
    ------
    astro_enhance.InputError
        If ``samples`` is below 2 or no pixel has light.

    Examples
    --------
    The figures of the docs (``benchmarks/sr3_uncertainty.py`` runs this; about 30 s per
    scene on a 2-core CPU):

    >>> res = evaluate_samples("sr3", samples=8, n=24, split="val")  # doctest: +SKIP
    >>> round(res["coverage_2std"], 2), round(res["fitted_factor"], 2)  # doctest: +SKIP
    """
    from scipy.stats import spearmanr

    from .io import image_to_hdu
    from .metrics import psnr
    from .pipeline import enhance_fits

    samples = int(samples)
    if samples < 2:
        raise InputError(f"evaluate_samples needs at least 2 samples, got {samples}")
    (label, name, opts), = parse_methods([method])
    opts = dict(opts)
    if not calibrate:
        opts["calibrate_std"] = False
    seeds, scenes = _scene_source(source, split=split, n=n, start=None, shards=None,
                                  bands=("r",), stamp_arcsec=64.0, data_dir=data_dir)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(seeds), unit="scene")
    errs, stds, rows, factor = [], [], [], 1.0
    for sc in scenes:
        hdu, seed, s_d = image_to_hdu(sc["sdss"]), int(sc["seed"]), sc["sigma_decals"]
        t0 = time.perf_counter()
        one = enhance_fits(hdu, method=name, device=device, rng=seed, **_method_kwargs(opts))
        t1 = time.perf_counter()
        many = enhance_fits(hdu, method=name, device=device, rng=seed, samples=samples,
                            **_method_kwargs(opts))
        t2 = time.perf_counter()
        ref = enhance_fits(hdu, method=reference, device=device)
        factor = float(many[0].header.get("AE_STDCF", 1.0))
        mean, std = _as_grid(many[0], sc), _as_grid(many["STD"], sc)
        truth = sc["truth"]
        sel = (truth > light * s_d) & np.isfinite(mean) & np.isfinite(std)
        errs.append(np.abs(mean - truth)[sel])
        stds.append(std[sel])
        rows.append(dict(psnr_mean=psnr(mean, truth, sigma=s_d),
                         psnr_single=psnr(_as_grid(one[0], sc), truth, sigma=s_d),
                         psnr_reference=psnr(_as_grid(ref[0], sc), truth, sigma=s_d),
                         seconds_single=t1 - t0, seconds_samples=t2 - t1))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    err, std = np.concatenate(errs), np.concatenate(stds)
    if not err.size:
        raise InputError("no pixel with light in these scenes; lower `light`")
    ratio = err / np.maximum(std, np.finfo(np.float32).tiny)
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    return dict(method=label, samples=samples, split=split, source=source, light=light,
                n_scenes=len(rows), n_pixels=int(err.size), std_factor=factor,
                coverage_2std=float(np.mean(err < 2 * std)),
                coverage_1std=float(np.mean(err < std)),
                spearman=float(spearmanr(std, err)[0]),
                fitted_factor=float(np.percentile(ratio, 95) / 2.0) * factor,
                time_ratio=med["seconds_samples"] / med["seconds_single"], **med)


def _name(sc):
    return {"name": sc["name"]} if "name" in sc else {}


def evaluate_colour(methods=("colorize",), *, n=200, split="bench", start=None,
                    input_band="r", bands=("g", "r", "z"), paint=("unet",),
                    stamp_arcsec=64.0, device="cpu", keep_examples=4, progress=False):
    """Benchmark several-band enhancers (``colorize``): colours and per-band PSNR.

    For every bench scene (simulated with ``bands``), the SDSS image of ``input_band`` goes
    through `astro_enhance.pipeline.enhance_fits`; the output cube is compared with the
    noiseless truth of each band:

    * colour errors: output minus truth colours of consecutive bands (``g-r``, ``r-z``) in a
      circular aperture of 2 half-light radii of the truth's ``input_band`` image
      (`astro_enhance.metrics.colour_error`); ``colour_error`` is the larger of the two in
      absolute value;
    * ``psnr_<band>``: `astro_enhance.metrics.psnr` of each plane against that band's truth
      (stretch with that band's DECaLS noise).

    Baselines, in the same run: ``median-colour(input)`` paints the input band (resampled,
    not enhanced) with the median truth colours of the evaluated scenes (a baseline that
    knows the sample's colours but nothing about each galaxy), and ``median-colour(NAME)``
    paints the output of each single-band enhancer in ``paint`` the same way (same colour
    errors, better per-band PSNR).

    Parameters
    ----------
    methods : sequence of str, optional
        Several-band enhancers to evaluate (specifications as in `parse_methods`).
    n : int, optional
        Number of scenes.
    split : str, optional
        Seed split (default ``"bench"``, never used in training).
    start : int, optional
        First seed.
    input_band : str, optional
        Band given to the enhancers.
    bands : sequence of str, optional
        Bands of the output planes, in order.
    paint : sequence of str, optional
        Single-band enhancers painted with the median colours as extra baselines.
    stamp_arcsec : float, optional
        Scene size.
    device : str, optional
        Device for neural enhancers.
    keep_examples : int, optional
        Keep the cubes of the first scenes for `make_colour_figure`.
    progress : bool, optional
        Progress bar.

    Returns
    -------
    table : `~astropy.table.Table`
        One row per (method, seed) with the columns of `COLOUR_METRICS`.
    examples : list of dict
        ``seed``, ``input``, ``truth`` (cube) and ``outputs`` (label -> cube).

    Examples
    --------
    Only the baselines (painting the resampled input and the bicubic output):

    >>> t, _ = evaluate_colour([], n=2, paint=("bicubic",), stamp_arcsec=24, keep_examples=0)
    >>> sorted(set(map(str, t["method"])))
    ['median-colour(bicubic)', 'median-colour(input)']
    """
    from astropy.table import Table

    from .simulate import _check_bands, check_seeds, simulate_pair

    parsed = parse_methods(list(methods)) if len(methods) else []
    painted = parse_methods(list(paint)) if len(paint) else []
    bands = _check_bands(bands)
    _check_methods(parsed, len(bands), device, f"methods needs {len(bands)}")
    _check_methods(painted, 1, device, "paint needs 1")
    if input_band not in bands:
        raise InputError(f"input band {input_band!r} must be one of the output bands {bands}")
    seeds = check_seeds(split, start=start, n=n)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(seeds), unit="scene")
    rows, kept, examples = [], [], []
    for seed in seeds:
        pair = simulate_pair(seed, bands=bands, stamp_arcsec=stamp_arcsec)
        outs, scene = _colour_scene(pair, parsed, painted, input_band, device, rows)
        kept.append(scene)
        if len(examples) < keep_examples:
            examples.append(dict(seed=seed, input=scene["singles"]["input"],
                                 truth=scene["truth"], outputs=outs))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    med = _median_colour_rows(kept, bands, input_band, examples, rows)
    table = Table(rows=rows)
    table.meta.update(split=split, seeds=[seeds.start, seeds.stop], input_band=input_band,
                      bands=list(bands), median_colours=[float(v) for v in med])
    return table, examples


def _colour_row(label, seed, cube, truth, sig, seconds, bands):
    """One row of `evaluate_colour`: colour errors in the aperture and per-band PSNR."""
    from .metrics import colour_error, psnr

    row = dict(method=label, seed=seed)
    try:
        err = colour_error(cube, truth, bands)
    except InputError:
        err = {f"{a}-{b}": math.nan for a, b in zip(bands[:-1], bands[1:])}
    for k, v in err.items():
        row[f"{k}_error"] = v
    row["colour_error"] = float(np.nanmax(np.abs(list(err.values()))))
    for k, b in enumerate(bands):
        row[f"psnr_{b}"] = psnr(cube[k], truth[k], sigma=sig[k])
    row["seconds"] = seconds
    return row


def _colour_scene(pair, parsed, painted, input_band, device, rows):
    """Run the several-band methods on one scene (their rows appended to ``rows``) and the
    single-band ones to be painted later. Returns the cubes and the scene's record."""
    from astropy.io import fits

    from .io import image_to_hdu
    from .metrics import aperture_colours
    from .pipeline import enhance_fits

    bands, seed = pair.bands, pair.seed
    truth = np.stack([pair.truth[b].data for b in bands]).astype(np.float32)
    sig = [float(pair.sigma_decals[b]) for b in bands]
    sc = dict(truth=truth[0], decals_wcs=pair.decals_wcs)
    hdu = image_to_hdu(pair.sdss[input_band])
    outs = {}
    for m, name, opts in parsed:
        t0 = time.perf_counter()
        hdul = enhance_fits(hdu, method=name, device=device, rng=int(seed),
                            **_method_kwargs(opts))
        dt = time.perf_counter() - t0
        h = hdul[0].header
        if hdul[0].data.ndim != 3 or [h.get(f"BAND{k + 1}") for k in range(len(bands))] \
                != list(bands):
            raise InputError(f"{m} does not write the bands {bands} (got "
                             f"{h.get('AE_BANDS', 'one band')})")
        cube = np.stack([_as_grid(fits.ImageHDU(p, header=h), sc) for p in hdul[0].data])
        outs[m] = cube
        rows.append(_colour_row(m, seed, cube, truth, sig, dt, bands))
    singles = {"input": pair.input[input_band].data.astype(np.float32)}
    for m, name, opts in painted:
        hdul = enhance_fits(hdu, method=name, device=device, rng=int(seed),
                            **_method_kwargs(opts))
        singles[m] = _as_grid(hdul[0], sc)
    try:
        colours = aperture_colours(truth, bands)
    except InputError:
        colours = None
    return outs, dict(seed=seed, sig=sig, truth=truth, singles=singles, colours=colours)


def _median_colour_rows(kept, bands, input_band, examples, rows):
    """The median-colour baselines: each single-band output painted with the sample's median
    colours (rows appended to ``rows``, cubes added to ``examples``). Returns the colours."""
    cols = np.array([list(k["colours"].values()) for k in kept if k["colours"] is not None])
    med = np.nanmedian(cols, axis=0)
    iband = bands.index(input_band)
    # flux of each band relative to the input band, from the median colours
    mags = np.concatenate([[0.0], -np.cumsum(med)])   # m_b - m_first: m_r = m_g - (g-r)...
    ratio = 10.0 ** (-0.4 * (mags - mags[iband]))
    for k in kept:
        for m, single in k["singles"].items():
            cube = np.stack([single * np.float32(r) for r in ratio])
            rows.append(_colour_row(f"median-colour({m})", k["seed"], cube, k["truth"],
                                    k["sig"], math.nan, bands))
            for e in examples:
                if e["seed"] == k["seed"]:
                    e["outputs"][f"median-colour({m})"] = cube
    return med


def make_colour_figure(examples, path, *, methods=None):
    """Figure of several-band results: input band, then RGB of each output and the truth.

    Parameters
    ----------
    examples : list of dict
        From `evaluate_colour`.
    path : str or path
        PNG to write (atomically).
    methods : sequence of str, optional
        Output labels shown, in order (default all).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os, tempfile
    >>> _, ex = evaluate_colour([], n=1, paint=(), stamp_arcsec=24, keep_examples=1)
    >>> make_colour_figure(ex, os.path.join(tempfile.mkdtemp(), "c.png")).suffix
    '.png'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .visualization import _lupton_stretch, _save_figure, lupton_rgb, shared_asinh_norm

    if not examples:
        raise InputError("no example scenes to show")
    labels = list(methods) if methods is not None else list(examples[0]["outputs"])
    cols = ["input"] + labels + ["truth"]
    fig, axes = plt.subplots(len(examples), len(cols),
                             figsize=(2.6 * len(cols), 2.7 * len(examples)), squeeze=False)
    for r, ex in enumerate(examples):
        t = ex["truth"]
        stretch = _lupton_stretch(t[len(t) // 2])   # one stretch per row: the truth's
        for c, label in enumerate(cols):
            ax = axes[r, c]
            if label == "input":
                ax.imshow(ex["input"], origin="lower", cmap="gray",
                          norm=shared_asinh_norm(ex["input"]), interpolation="nearest")
            else:
                cube = t if label == "truth" else ex["outputs"][label]
                ax.imshow(lupton_rgb(cube, stretch=stretch), origin="lower",
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("SDSS input (1 band)" if label == "input" else
                             "truth (g, r, z)" if label == "truth" else label, fontsize=9)
        axes[r, 0].set_ylabel(f"seed {ex['seed']}", fontsize=8)
    fig.tight_layout()
    return _save_figure(fig, Path(path), dpi=90)


def summarize(table):
    """Median and 90th percentile of every metric per method.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Per-image table from `evaluate` or `evaluate_real`.

    Returns
    -------
    `~astropy.table.Table`
        One row per method (in order of first appearance): ``n`` and, for each metric ``m``,
        ``m_median`` and ``m_p90`` (NaNs ignored; ``flux_error`` is summarised as its absolute
        value, ``abs_flux_error``).

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table(rows=[dict(method="a", psnr=30.0), dict(method="a", psnr=40.0)])
    >>> float(summarize(t)["psnr_median"][0])
    35.0
    """
    from astropy.table import Table

    names = list(dict.fromkeys(str(m) for m in table["method"]))
    metrics = [m for m in METRICS + COLOUR_METRICS if m in table.colnames and m != "seconds"]
    if "seconds" in table.colnames:
        metrics.append("seconds")
    out = []
    for name in names:
        sub = table[table["method"] == name]
        row = dict(method=name, n=len(sub))
        for m in metrics:
            v = np.asarray(sub[m], dtype=float)
            key = m
            if m == "flux_error":
                v, key = np.abs(v), "abs_flux_error"
            elif m.endswith("_error") and m != "flux_error":   # colour errors: |mag|
                v, key = np.abs(v), f"abs_{m}"
            v = v[~np.isnan(v)]
            med = float(np.median(v)) if v.size else math.nan
            p90 = float(np.percentile(v, 90)) if v.size else math.nan
            row[f"{key}_median"] = med
            row[f"{key}_p90"] = p90
        out.append(row)
    return Table(rows=out)


def format_summary(summary):
    """The summary table as text: one line per method, ``median / p90`` per metric.

    Parameters
    ----------
    summary : `~astropy.table.Table`
        Output of `summarize`.

    Returns
    -------
    str

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table(rows=[dict(method="a", psnr=30.0), dict(method="a", psnr=40.0)])
    >>> print(format_summary(summarize(t)))  # doctest: +NORMALIZE_WHITESPACE
    method        n        psnr
    a             2   35 / 39
    """
    keys = [c[:-len("_median")] for c in summary.colnames if c.endswith("_median")]
    short = {"abs_flux_error": "|flux_err|", "seconds": "s/image"}

    def fmt(v):
        v = float(v)
        return f"{v:.3g}" if np.isfinite(v) else "-"

    head = f"{'method':16s}{'n':>4s} " + "".join(f"{short.get(k, k):>19s}" for k in keys)
    lines = [head]
    for r in summary:
        cells = "".join(f"{fmt(r[k + '_median']) + ' / ' + fmt(r[k + '_p90']):>19s}"
                        for k in keys)
        lines.append(f"{str(r['method']):16s}{int(r['n']):4d} " + cells)
    return "\n".join(lines)


def make_figure(examples, methods, path):
    """Figure: rows SDSS input, each method, truth, DECaLS-like; columns example scenes.

    Parameters
    ----------
    examples : list of dict
        From `evaluate`.
    methods : sequence of str
        Method rows, in order.
    path : str or path
        PNG to write.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os, tempfile
    >>> t, ex = evaluate(["bicubic"], n=1, stamp_arcsec=16, keep_examples=1)
    >>> make_figure(ex, ["bicubic"], os.path.join(tempfile.mkdtemp(), "f.png")).exists()
    True
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["input"] + list(methods) + ["truth", "decals"]
    labels = {"input": "SDSS input (resampled)", "truth": "truth (noiseless)",
              "decals": "DECaLS-like"}
    ncol = max(1, len(examples))
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.4 * ncol + 1.2, 2.4 * len(rows)),
                             squeeze=False)
    for j, ex in enumerate(examples):
        soft = 3.0 * ex["sigma_decals"]
        hi = np.arcsinh(np.nanpercentile(ex["truth"], 99.8) / soft)
        for i, r in enumerate(rows):
            arr = ex["outputs"][r] if r in ex["outputs"] else ex[r]
            ax = axes[i, j]
            ax.imshow(np.arcsinh(arr / soft), origin="lower", cmap="gray", vmin=-1.0, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(labels.get(r, r), fontsize=9)
            if i == 0:
                ax.set_title(f"seed {ex['seed']} {ex['band']}", fontsize=9)
    fig.suptitle("asinh(x / 3 sigma_DECaLS), same limits per column", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .visualization import _save_figure

    _save_figure(fig, path, dpi=80)
    return path


def evaluate_real(sdss, decals, methods, *, device="cpu", band=None):
    """Evaluate enhancers on a real SDSS image against a real DECaLS image of the same sky.

    Each method's output (and the unenhanced SDSS input) lies on the DECaLS grid that the
    pipeline derives from the SDSS WCS; the DECaLS image is resampled onto that grid by WCS.
    Because the two surveys' calibrations, backgrounds and PSFs differ, every output is first
    matched to the DECaLS image in scale and offset (least squares ``a * out + b``) before
    PSNR/SSIM/HF power, which use the DECaLS image as the reference and its measured noise in
    the stretch. ``flux_error`` is measured on the unmatched output against the DECaLS image
    (aperture around the brightest central source); ``chi2`` against the SDSS image with the
    surveys' typical PSFs and the SDSS image's measured noise.

    Parameters
    ----------
    sdss, decals : path, HDU or `~astro_enhance.io.Image`
        The SDSS image (nanomaggies per pixel) and an overlapping calibrated, sky-subtracted
        DECaLS image (e.g. a Legacy Surveys coadd cutout).
    methods : sequence of str
        Enhancer names.
    device : str, optional
        Device for neural enhancers.
    band : str, optional
        Band (default from the SDSS header).

    Returns
    -------
    `~astropy.table.Table`
        One row per method plus ``sdss-input``: psnr, ssim, flux_error, chi2, hf_power,
        seconds, and the matching coefficients ``scale`` and ``offset``.

    Raises
    ------
    astro_enhance.InputError
        If the two images do not overlap.

    Examples
    --------
    A simulated pair stands in for real images here (use real SDSS and DECaLS files):

    >>> from astro_enhance.io import image_to_hdu
    >>> from astro_enhance.simulate import simulate_pair
    >>> pair = simulate_pair(20_000_001, stamp_arcsec=24)
    >>> t = evaluate_real(image_to_hdu(pair.sdss["r"]), image_to_hdu(pair.decals["r"]),
    ...                   ["bicubic"])
    >>> [str(m) for m in t["method"]]
    ['bicubic', 'sdss-input']
    """
    from astropy.table import Table

    from .io import read_image
    from .metrics import consistency_chi2, flux_error, hf_power_ratio, psnr, ssim
    from .normalize import estimate_noise
    from .pipeline import enhance_fits
    from .resample import resample
    from .surveys import get_survey

    s_img = read_image(sdss)
    d_img = read_image(decals)
    band = band or str(s_img.header.get("FILTER", "r")).strip()[:1] or "r"
    runs = {}
    grid = None
    for m, name, opts in parse_methods(methods):
        t0 = time.perf_counter()
        hdul = enhance_fits(s_img, method=name, target="decals", device=device,
                            **_method_kwargs(opts))
        runs[m] = (np.asarray(hdul[0].data, dtype=np.float64), time.perf_counter() - t0)
        grid = hdul[0].header
    base = resample(s_img, "decals", return_type="image")
    if grid is None:
        grid = base.wcs.to_header()
    from astropy.wcs import WCS
    gw = WCS(grid).celestial
    shape = base.shape
    ref = resample(d_img, "decals", wcs_out=gw, shape_out=shape, return_type="image").data
    ref = np.asarray(ref, dtype=np.float64)
    if not np.isfinite(ref).any():
        raise InputError("the SDSS and DECaLS images do not overlap on the sky; check the WCSs")
    sig_ref = estimate_noise(ref, mask=~np.isfinite(ref))
    sig_s = estimate_noise(s_img.data, mask=s_img.mask)
    s_sv, d_sv = get_survey("sdss"), get_survey("decals")
    runs["sdss-input"] = (np.asarray(base.data, dtype=np.float64), math.nan)
    rows = []
    for name, (out, dt) in runs.items():
        good = np.isfinite(out) & np.isfinite(ref)
        a_mat = np.c_[out[good], np.ones(good.sum())]
        (a, b), *_ = np.linalg.lstsq(a_mat, ref[good], rcond=None)
        matched = np.where(good, a * out + b, np.nan)
        r_f = np.where(good, ref, np.nan)
        row = dict(method=name, psnr=psnr(matched, r_f, sigma=sig_ref),
                   ssim=ssim(matched, r_f, sigma=sig_ref))
        try:
            row["flux_error"] = flux_error(np.where(good, out, 0), np.where(good, ref, 0))
        except InputError:
            row["flux_error"] = math.nan
        row["chi2"] = consistency_chi2(
            out, s_img.data, sdss_wcs=s_img.wcs, enhanced_wcs=gw,
            psf_sdss_fwhm=s_sv.psf_fwhm.get(band, 1.32),
            psf_out_fwhm=d_sv.psf_fwhm.get(band, 1.18), sigma_sdss=sig_s, mask=s_img.mask)
        row["hf_power"] = hf_power_ratio(np.nan_to_num(matched), np.nan_to_num(r_f))
        row["seconds"] = dt
        row["scale"], row["offset"] = float(a), float(b)
        rows.append(row)
    return Table(rows=rows)


#: The shared DECam frames of ``evaluate_decam``: the Siena Galaxy Atlas galaxy (testcase9)
#: and the saturated star with a bleed trail (testcase6).
DECAM_FRAMES = ("testcase9", "testcase6")


def _decam_frame(case, band, data_dir):
    """One shared DECam exposure in nanomaggies, with what it is measured against.

    Returns a dict: ``image`` (`~astro_enhance.io.Image`), ``ivar`` (nanomaggy**-2), ``bad``
    (``ood`` flags or no weight), ``fwhm`` (arcsec), ``sigma`` (its noise), ``target`` (the
    image convolved to the DECaLS PSF of the band), ``near_bad`` (``bad`` grown by 3 SDSS
    FWHMs: light that the degraded image spreads from masked pixels is not in the DECam
    image) and ``light`` (target above 3 of its sigmas, away from ``near_bad``).
    """
    from astropy.io import fits
    from scipy.ndimage import binary_dilation

    from .normalize import estimate_noise
    from .real_morphology import real_data_dir
    from .simulate import _ZP_NMGY, DECALS_PIXEL_SCALE, decam_to_nanomaggies, gaussian_psf_match
    from .surveys import get_survey

    d = real_data_dir(data_dir) / "decam" / case / "images"
    ooi = sorted(d.glob(f"*_ooi_{band}_*.fits*"))
    if not ooi:
        raise InputError(f"no {band}-band DECam image (*_ooi_{band}_*) in {d}")
    ooi = ooi[0]
    oow = Path(str(ooi).replace("_ooi_", "_oow_"))
    ood = Path(str(ooi).replace("_ooi_", "_ood_"))
    img = decam_to_nanomaggies(ooi)
    h = img.header
    scale = 10 ** (-0.4 * (float(h["MAGZERO"]) + 2.5 * math.log10(float(h["EXPTIME"]))
                           - _ZP_NMGY))
    ivar = np.asarray(fits.getdata(oow, 1), dtype=np.float64) / scale ** 2
    bad = np.asarray(fits.getdata(ood, 1)) != 0
    bad |= ~(ivar > 0) | ~np.isfinite(img.data)
    fwhm = float(h["FWHM"]) * DECALS_PIXEL_SCALE if "FWHM" in h else 1.2
    dec = np.asarray(img.data, dtype=np.float64)
    target = gaussian_psf_match(np.where(bad, np.nan, dec), fwhm,
                                get_survey("decals").psf_fwhm[band],
                                DECALS_PIXEL_SCALE).astype(np.float64)
    grow = int(math.ceil(3.0 * get_survey("sdss").psf_fwhm[band] / DECALS_PIXEL_SCALE))
    near_bad = binary_dilation(bad, iterations=grow) if bad.any() else bad
    return dict(case=case, file=ooi.name, image=img, data=dec, ivar=ivar, bad=bad, fwhm=fwhm,
                sigma=estimate_noise(np.where(bad, np.nan, dec)), target=target,
                near_bad=near_bad,
                light=(target > 3.0 * estimate_noise(target)) & ~near_bad)


def _decam_as_sdss(fr, kl, psf_scale, band, seed):
    """A DECam frame degraded to SDSS (KL PSF, SDSS noise), and as the FITS HDU the pipeline
    reads: an SDSS frame of the band, without the DECam instrument cards."""
    from .io import image_to_hdu
    from .simulate import degrade
    from .surveys import get_survey

    sd = degrade(fr["image"], to="sdss", psf=kl, psf_scale=psf_scale, psf_fwhm_in=fr["fwhm"],
                 band=band, rng=seed)
    hdu = image_to_hdu(sd)
    for key in ("TELESCOP", "INSTRUME", "OBSERVAT", "DETECTOR", "ORIGIN"):
        hdu.header.remove(key, ignore_missing=True, remove_all=True)
    hdu.header["FILTER"] = band
    hdu.header["TELESCOP"] = "2.5m"
    hdu.header["ORIGIN"] = "SDSS"
    hdu.header["PSFFWHM"] = get_survey("sdss").psf_fwhm[band]
    return sd, hdu


def _decam_ceiling(fr, band, seed):
    """The PSF-matched DECam image plus a second realisation of its own noise, PSF-matched:
    what a perfect answer scores against the (noisy) DECam target."""
    from .simulate import DECALS_PIXEL_SCALE, gaussian_psf_match
    from .surveys import get_survey

    rng = np.random.default_rng([seed, 0xCE1])
    ivar = fr["ivar"]
    noise_var = np.where(ivar > 0, 1.0 / np.where(ivar > 0, ivar, 1), 0)
    extra = gaussian_psf_match(rng.standard_normal(ivar.shape) * np.sqrt(noise_var),
                               fr["fwhm"], get_survey("decals").psf_fwhm[band],
                               DECALS_PIXEL_SCALE)
    return fr["target"] + extra


def _decam_metrics(out, fr):
    """PSNR, SSIM, chi-square on pixels with light and flux error of one output on a frame."""
    from .metrics import psnr, ssim

    near_bad, light, dec = fr["near_bad"], fr["light"], fr["data"]
    o = np.where(near_bad, np.nan, np.asarray(out, dtype=np.float64))
    t = np.where(near_bad, np.nan, fr["target"])
    resid = (o - dec)[light]
    f_t = float(np.nansum(dec[light]))
    # SSIM needs whole windows: masked pixels are 0 in both images
    return dict(psnr=psnr(o, t, sigma=fr["sigma"]),
                ssim=ssim(np.nan_to_num(o), np.nan_to_num(t), sigma=fr["sigma"]),
                chi2_light=float(np.nanmean(resid ** 2 * fr["ivar"][light])),
                flux_error=(float(np.nansum(o[light])) - f_t) / f_t)


def evaluate_decam(methods, *, frames=DECAM_FRAMES, band="r", data_dir=None, device="cpu",
                   seed=0, keep_examples=True):
    """Benchmark enhancers on real DECam exposures degraded to SDSS.

    Each frame (a ``*_ooi_*`` DECam community-pipeline image of the shared real data) is
    converted to nanomaggies (`~astro_enhance.simulate.decam_to_nanomaggies`), degraded to
    SDSS with `~astro_enhance.simulate.degrade` using the shared psField's KL PSF (centre
    of the field, stretched to the SDSS survey's typical seeing of the band) and SDSS noise,
    and enhanced by each method through the pipeline; the output is put back on the DECam
    grid. Metrics:

    * ``psnr``, ``ssim``: against the DECam image convolved to the enhancer's target PSF
      (the DECaLS survey's FWHM of the band, when the exposure is sharper), in the asinh
      space of the DECam image's noise; masked pixels (``*_ood_*`` flags) and those within
      3 SDSS FWHMs of them (where the degraded image spreads light the DECam image lacks)
      are left out;
    * ``chi2_light``: reduced chi-square of output minus DECam image with the exposure's
      inverse variance (``*_oow_*``), on pixels with light (the PSF-matched DECam image
      above 3 of its noise sigmas, unmasked);
    * ``flux_error``: (sum of output - sum of DECam image) / sum of DECam image over the
      same pixels.

    Parameters
    ----------
    methods : str or sequence of str
        Enhancer specifications (see `parse_methods`).
    frames : sequence of str, optional
        Folders under ``decam/`` of the real-data folder.
    band : str, optional
    data_dir : path-like, optional
        Real-data folder (see `astro_enhance.real_morphology.real_data_dir`).
    device : str, optional
    seed : int, optional
        Seed of the SDSS noise.
    keep_examples : bool, optional
        Also return the images.

    Returns
    -------
    table : `~astropy.table.Table`
        One row per (frame, method), plus two reference rows: ``sdss-input`` (the degraded
        image on the DECam grid) and ``target+noise`` (the PSF-matched DECam image plus a
        second realisation of its own noise, PSF-matched: what an answer as good as the
        DECam image itself scores, the ceiling of these metrics).
    examples : list of dict
        Per frame: ``target``, ``sigma`` and ``outputs`` (each method's output and the
        reference rows' images on the DECam grid).

    Examples
    --------
    With the shared real data (``../shared/data/real``):

    >>> t, _ = evaluate_decam(["gaussian(sigma=2.5)", "unet"])         # doctest: +SKIP
    >>> print(format_decam(t))                                          # doctest: +SKIP
    """
    from astropy.table import Table

    from .pipeline import enhance_fits
    from .real_morphology import _psfield_path, psf_effective_fwhm, sdss_kl_psf
    from .simulate import SDSS_PIXEL_SCALE, _to_decals_grid
    from .surveys import get_survey

    parsed = parse_methods(methods)
    _check_methods(parsed, 1, device, "evaluate_decam takes single-band enhancers")
    seeing = get_survey("sdss").psf_fwhm[band]
    psfield = _psfield_path(data_dir)
    kl = sdss_kl_psf(psfield, band, 744.0, 1024.0)
    psf_scale = SDSS_PIXEL_SCALE * seeing / psf_effective_fwhm(kl, SDSS_PIXEL_SCALE)
    rows, examples = [], []
    for case in frames:
        fr = _decam_frame(case, band, data_dir)
        img = fr["image"]
        sd, hdu = _decam_as_sdss(fr, kl, psf_scale, band, seed)
        sc = dict(decals_wcs=img.wcs, truth=fr["data"])
        outs = {"sdss-input": _to_decals_grid(sd, img.wcs, fr["data"].shape)}
        times = {"sdss-input": math.nan}
        for m, name, opts in parsed:
            t0 = time.perf_counter()
            hdul = enhance_fits(hdu, method=name, target="decals", device=device,
                                **_method_kwargs(opts), rng=seed)
            times[m] = time.perf_counter() - t0
            outs[m] = _as_grid(hdul[0], sc)
        outs["target+noise"] = _decam_ceiling(fr, band, seed)
        times["target+noise"] = math.nan
        for m, out in outs.items():
            rows.append(dict(frame=case, file=fr["file"], method=m, band=band,
                             **_decam_metrics(out, fr), seconds=times[m]))
        if keep_examples:
            examples.append(dict(frame=case, target=fr["target"], sigma=fr["sigma"],
                                 outputs=outs))
    table = Table(rows=rows)
    table.meta["band"] = band
    table.meta["psf"] = (f"SDSS psField KL PSF ({psfield.name}, row 744, col "
                         f"1024) stretched to {seeing}\" effective FWHM")
    return table, examples


def best_classical(summary, *, key="psnr_median", exclude=REFERENCE_ROWS):
    """The classical method (at its best listed setting) with the highest ``key``.

    Parameters
    ----------
    summary : `~astropy.table.Table`
        Output of `summarize` (or any table with ``method`` and ``key`` columns).
    key : str, optional
    exclude : sequence of str, optional
        Rows that are references, not methods.

    Returns
    -------
    row : `~astropy.table.Row` or None

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table(rows=[dict(method="unet", psnr_median=40.0),
    ...                 dict(method="gaussian(sigma=1)", psnr_median=33.0),
    ...                 dict(method="bicubic", psnr_median=30.0)])
    >>> str(best_classical(t)["method"])
    'gaussian(sigma=1)'
    """
    from .enhancers import list_enhancers

    kinds = {str(r["name"]): str(r["kind"]) for r in list_enhancers()}
    best = None
    for r in summary:
        m = str(r["method"])
        if m in exclude or kinds.get(m.split("(")[0]) != "classical":
            continue
        if best is None or float(r[key]) > float(best[key]):
            best = r
    return best


def format_decam(table):
    """The `evaluate_decam` table as text, one line per frame and method, with the tuned blur.

    For each frame the ``gaussian(...)`` row with the highest PSNR is marked ``*`` (the blur
    tuned on that frame) and every method's PSNR difference to it is shown.

    Parameters
    ----------
    table : `~astropy.table.Table`

    Returns
    -------
    str

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table(rows=[dict(frame="f", method="gaussian(sigma=2)", psnr=30.0, ssim=0.7,
    ...                      chi2_light=9.0, flux_error=-0.01),
    ...                 dict(frame="f", method="unet", psnr=31.5, ssim=0.8, chi2_light=3.0,
    ...                      flux_error=-0.02)])
    >>> print(format_decam(t).splitlines()[2])
    f          unet                       31.50   +1.50  0.800       3.00   -0.0200
    """
    lines = [f"{'frame':10s} {'method':24s} {'psnr':>7s} {'d_blur':>7s} {'ssim':>6s} "
             f"{'chi2_light':>10s} {'flux_err':>9s}"]
    for frame in dict.fromkeys(str(f) for f in table["frame"]):
        sub = table[table["frame"] == frame]
        blurs = [r for r in sub if str(r["method"]).startswith("gaussian")]
        best = max(blurs, key=lambda r: float(r["psnr"])) if blurs else None
        for r in sub:
            d = float(r["psnr"]) - float(best["psnr"]) if best is not None else math.nan
            mark = "*" if best is not None and r["method"] == best["method"] else " "
            lines.append(f"{frame:10s} {str(r['method']) + mark:24s} {float(r['psnr']):7.2f} "
                         f"{d:+7.2f} {float(r['ssim']):6.3f} {float(r['chi2_light']):10.2f} "
                         f"{float(r['flux_error']):+9.4f}")
    return "\n".join(lines)
