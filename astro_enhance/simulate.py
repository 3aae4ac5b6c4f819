"""Paired SDSS / DECaLS-like survey simulator (training and benchmark data).

One random scene -- a galaxy like those of the SDSS spectroscopic sample (bulge + exponential
disk + star-forming knots, spiral arms, bars and rings in a fraction), a few faint background
galaxies and field stars -- is rendered with GalSim three ways, all with consistent WCS (same
sky position):

* ``sdss``: 0.396"/px, SDSS-like Moffat PSF, sky and source noise, saturation and bleed
  trails, in nanomaggies per pixel (like an SDSS ``frame``);
* ``decals``: 0.262"/px, DECaLS-like PSF and noise (1.7 mag deeper for point sources);
* ``truth``: the same DECaLS-grid image without noise.

``input`` is the ``sdss`` image put on the DECaLS grid by `astro_enhance.resample.resample`
(exactly the pipeline's resampling step), so a model trained on ``input -> truth`` sees at
training time what it sees in production. Every number chosen here, and where it comes from,
is listed in ``docs/simulator.rst``.

PSF sizes (``psf_fwhm_*``) are *effective* FWHMs, as SDSS (psField ``psf_width``) and the
Legacy Surveys (``psfsize``) quote seeing: the FWHM of the Gaussian with the same
noise-equivalent area; the rendered Moffat cores are about 0.8 times narrower
(`moffat_core_fwhm`).

Seeds are split into disjoint ranges (`SPLITS`) so that training and benchmark scenes never
overlap; the same seed always gives the same bytes.
"""

import functools
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .exceptions import InputError, SplitError, SurveyError, UnitError
from .io import Image

__all__ = [
    "SPLITS",
    "BANDS",
    "SDSS_PIXEL_SCALE",
    "DECALS_PIXEL_SCALE",
    "DEPTH_GAIN_MAG",
    "SimulatedPair",
    "simulate_pair",
    "write_shards",
    "read_shard",
    "check_seeds",
    "split_of",
    "degrade",
    "decam_to_nanomaggies",
    "DECAM_NOMINAL_ZEROPOINTS",
    "gaussian_psf_match",
    "psf_image_match",
    "decals_sigma",
    "moffat_core_fwhm",
    "sdss_poisson_k",
]

#: Disjoint seed ranges of the data splits. A seed belongs to exactly one split.
SPLITS = {
    "train": range(0, 10_000_000),
    "val": range(10_000_000, 11_000_000),
    "bench": range(20_000_000, 21_000_000),
}

#: Bands the simulator knows.
BANDS = ("g", "r", "i", "z")

#: SDSS pixel scale, arcsec per pixel.
SDSS_PIXEL_SCALE = 0.396
#: DECaLS (Legacy Surveys) pixel scale, arcsec per pixel.
DECALS_PIXEL_SCALE = 0.262
#: How much deeper (in magnitudes, 5-sigma point source) the DECaLS-like image is than the SDSS
#: one: r 23.9 (DECaLS DR9 typical) against 22.2 (SDSS).
DEPTH_GAIN_MAG = 1.7

#: Moffat beta values of the simulated PSFs (SDSS psField power-law betas are ~3-3.5).
PSF_BETAS = (2.8, 3.0, 3.2, 3.4, 3.6)
#: Truncation radius of the Moffat PSFs in units of the Moffat scale radius (~25" at 1.3").
PSF_TRUNC_R0 = 20.0

_ZP_NMGY = 22.5  # magnitude of 1 nanomaggy

# Per-band SDSS parameters, from the real frame run 2583 camcol 2 field 136 and its psField
# (see docs/simulator.rst): per-pixel sky sigma (nanomaggy), nanomaggies per count, CCD gain
# (electrons per count), saturation level of a frame (nanomaggy per pixel, maximum of the
# saturated cores of the real frame), FWHM scaling with wavelength relative to r.
_SDSS = {
    "g": dict(sigma=0.021, nmgy=0.0042, gain=3.855, sat=262.0, fwhm_factor=1.055),
    "r": dict(sigma=0.034, nmgy=0.0054, gain=4.600, sat=274.0, fwhm_factor=1.000),
    "i": dict(sigma=0.052, nmgy=0.0076, gain=5.195, sat=367.0, fwhm_factor=0.960),
    "z": dict(sigma=0.170, nmgy=0.0320, gain=5.155, sat=1700.0, fwhm_factor=0.926),
}

_GSPARAMS = None


def _gsparams():
    global _GSPARAMS
    if _GSPARAMS is None:
        import galsim
        _GSPARAMS = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3,
                                    kvalue_accuracy=1e-4, maximum_fft_size=8192)
    return _GSPARAMS


# ----------------------------------------------------------------------------- seeds / splits

def split_of(seed):
    """Name of the split a seed belongs to.

    Parameters
    ----------
    seed : int
        Scene seed.

    Returns
    -------
    str or None
        ``"train"``, ``"val"``, ``"bench"``, or None when the seed is in no split.

    Examples
    --------
    >>> split_of(5), split_of(20_000_001)
    ('train', 'bench')
    """
    for name, rng in SPLITS.items():
        if seed in rng:
            return name
    return None


def check_seeds(split, *, start=None, n=1):
    """Validate a seed range against a split and return it.

    Parameters
    ----------
    split : str
        One of the keys of `SPLITS`.
    start : int, optional
        First seed (default: the first seed of the split).
    n : int, optional
        Number of consecutive seeds.

    Returns
    -------
    range
        The seeds ``start, ..., start + n - 1``.

    Raises
    ------
    SplitError
        If the split is unknown or the range leaves the split (and so could overlap
        another split).

    Examples
    --------
    >>> check_seeds("val", n=3)
    range(10000000, 10000003)
    """
    if split not in SPLITS:
        raise SplitError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    allowed = SPLITS[split]
    n = int(n)
    if n < 1:
        raise SplitError(f"n must be at least 1, got {n}")
    start = allowed.start if start is None else int(start)
    seeds = range(start, start + n)
    if seeds.start not in allowed or seeds[-1] not in allowed:
        other = {split_of(s) for s in (seeds.start, seeds[-1])} - {split}
        where = f" (overlaps split {', '.join(sorted(map(str, other)))})" if other else ""
        raise SplitError(
            f"seeds {seeds.start}..{seeds[-1]} leave the {split!r} split "
            f"[{allowed.start}, {allowed.stop}){where}; choose start/n inside it")
    return seeds


def _check_bands(bands):
    if isinstance(bands, str):
        bands = tuple(b for b in bands.replace(",", " ").split() if b)
    bands = tuple(bands)
    if not bands:
        raise SurveyError("no band given; use some of g, r, i, z")
    for b in bands:
        if b not in BANDS:
            raise SurveyError(f"unknown band {b!r}; the simulator knows {', '.join(BANDS)}")
    if len(set(bands)) != len(bands):
        raise SurveyError(f"duplicate band in {bands}")
    return bands


# ----------------------------------------------------------------------------- WCS helpers

def _tan_wcs(ra, dec, scale_arcsec, shape, rot_deg):
    """TAN WCS centred on the image, standard parity (east left when north up), rotated."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    s = scale_arcsec / 3600.0
    t = math.radians(rot_deg)
    c, sn = math.cos(t), math.sin(t)
    # rotation of the standard north-up, east-left matrix diag(-s, s)
    w.wcs.cd = np.array([[-s * c, s * sn], [s * sn, s * c]])
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    w.wcs.set()
    return w


def _decals_grid(sdss_wcs, sdss_shape):
    """The DECaLS grid the pipeline puts an SDSS image on (`astro_enhance.resample.target_wcs`)."""
    from .resample import target_wcs
    w = sdss_wcs.deepcopy()
    w.array_shape = tuple(sdss_shape)
    wcs_out, shape = target_wcs(w, "decals")
    return wcs_out, tuple(int(v) for v in shape)


def _to_decals_grid(image, wcs_out, shape_out):
    """Resample an SDSS `Image` onto the DECaLS grid exactly as the pipeline does."""
    from .resample import resample
    out = resample(image, "decals", wcs_out=wcs_out, shape_out=shape_out, return_type="image")
    return np.asarray(out.data, dtype=np.float32)


def _header(wcs, *, band, survey, unit="nanomaggy", **cards):
    h = wcs.to_header()
    h["BUNIT"] = (unit, "per pixel")
    h["FILTER"] = (band, "band")
    h["SURVEY"] = (survey, "simulated survey")
    h["AE_SIM"] = (True, "simulated by astro_enhance.simulate")
    for k, v in cards.items():
        h[k.upper()] = v
    return h


# ----------------------------------------------------------------------------- scene

def _mag_to_nmgy(m):
    return 10.0 ** (-0.4 * (np.asarray(m, dtype=float) - _ZP_NMGY))


def _draw_counts(rng, n, lo, hi, slope):
    """Magnitudes with dN/dm proportional to 10**(slope*m) on [lo, hi] (inverse CDF)."""
    u = rng.random(n)
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return np.log10(a + u * (b - a)) / slope


def _colour_fluxes(mag_r, colours):
    """Per-band fluxes (nanomaggy) from an r magnitude and (g-r, r-i, i-z) colours."""
    gr, ri, iz = colours
    mags = {"r": mag_r, "g": mag_r + gr, "i": mag_r - ri, "z": mag_r - ri - iz}
    return {b: float(_mag_to_nmgy(m)) for b, m in mags.items()}


def _make_scene(seed, stamp_arcsec, n_stars):
    """Draw every random parameter of a scene (independent of the bands asked for)."""
    rng = np.random.default_rng([int(seed), 0x5CE7E])
    sc = {}
    # sky position and SDSS orientation: half north-up cutouts, half frame-like rotations
    sc["ra"] = float(rng.uniform(0.0, 360.0))
    sc["dec"] = float(np.degrees(np.arcsin(rng.uniform(-0.2, 0.9))))
    sc["rot_deg"] = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 360.0))
    # one generator drawn in this order: PSFs, main galaxy, background galaxies, stars
    sc["psf"] = _draw_psfs(rng)
    sc["galaxy"] = _draw_galaxy(rng)
    half = stamp_arcsec / 2.0
    sc["background"] = _draw_background(rng, half)
    sc["stars"] = _draw_stars(rng, n_stars, half, sc["galaxy"])
    return sc


def _draw_psfs(rng):
    """Per band: SDSS and DECaLS-like effective FWHM, Moffat beta and shear; SDSS sky sigma."""
    # PSFs: one seeing per scene, chromatic scaling FWHM ~ lambda**-0.2, small per-band jitter
    see_sdss = float(np.clip(rng.normal(1.30, 0.15), 1.0, 1.6))
    see_dec = float(np.clip(rng.normal(1.20, 0.07), 1.05, 1.35))
    # Moffat beta from a discrete set: GalSim caches the (beta, truncation) tables, which
    # makes the FFT draws several times faster than a fresh beta per scene.
    beta_s, beta_d = (float(v) for v in rng.choice(PSF_BETAS, 2))
    g_s = rng.normal(0.0, 0.02, 2)
    g_d = rng.normal(0.0, 0.015, 2)
    jit = rng.normal(0.0, 0.03, (len(BANDS), 2))
    noise_jit = np.clip(rng.normal(0.0, 0.08, len(BANDS)), -0.15, 0.15)
    psf = {}
    for k, b in enumerate(BANDS):
        f = _SDSS[b]["fwhm_factor"]
        fs = float(np.clip(see_sdss * f * (1 + jit[k, 0]), 1.0 * f, 1.6 * f))
        fd = float(np.clip(see_dec * f * (1 + jit[k, 1]), 0.95, 1.45))
        fd = min(fd, fs)  # the DECaLS-like image is never blurrier than the SDSS one
        psf[b] = dict(sdss_fwhm=fs, sdss_beta=beta_s, sdss_g=(float(g_s[0]), float(g_s[1])),
                      decals_fwhm=fd, decals_beta=beta_d,
                      decals_g=(float(g_d[0]), float(g_d[1])),
                      sdss_sigma=float(_SDSS[b]["sigma"] * math.exp(noise_jit[k])))
    return psf


def _draw_mag_size(rng):
    """r magnitude and half-light radius (arcsec) of a main galaxy: r 14-17.8 with SDSS
    spectroscopic-like counts, and a magnitude-size relation with 0.12 dex scatter."""
    mag = float(_draw_counts(rng, 1, 14.0, 17.8, 0.4)[0])
    r50 = float(np.clip(10 ** (0.85 - 0.15 * (mag - 14.0) + rng.normal(0, 0.12)), 1.5, 8.0))
    return mag, r50


def _draw_galaxy(rng):
    """The main galaxy (SDSS spectroscopic-like: r 14 - 17.8): profile, structure, colours."""
    gal = {}
    mag, r50 = _draw_mag_size(rng)
    gal["mag_r"] = mag
    gal["r50"] = r50
    early = rng.random() < 0.3
    gal["type"] = "early" if early else "late"
    gal["x"], gal["y"] = (float(v) for v in rng.normal(0.0, 1.0, 2))  # arcsec offsets (xi, eta)
    cosi = rng.uniform(0.0, 1.0)
    q0 = 0.15
    gal["disk_q"] = float(math.sqrt(cosi ** 2 * (1 - q0 ** 2) + q0 ** 2))
    gal["beta"] = float(rng.uniform(0.0, 180.0))  # galsim angle, from +xi (east) to +eta
    gal["pa_deg"] = float((90.0 - gal["beta"]) % 180.0)  # east of north
    if early:
        gal["bulge_frac"] = float(rng.uniform(0.6, 1.0))
        gal["bulge_r50"] = r50 * float(rng.uniform(0.8, 1.0))
        gal["disk_r50"] = r50 * float(rng.uniform(1.2, 1.8))
        gal["bulge_q"] = float(rng.uniform(0.45, 1.0))
        gal["bulge_n"] = 4.0
    else:
        gal["bulge_frac"] = float(rng.uniform(0.0, 0.45))
        gal["bulge_r50"] = r50 * float(rng.uniform(0.15, 0.45))
        gal["disk_r50"] = r50 * float(rng.uniform(0.95, 1.2))
        gal["bulge_q"] = float(rng.uniform(0.6, 1.0))
        gal["bulge_n"] = float(rng.choice([2.0, 4.0]))
    gal["bulge_beta"] = gal["beta"] + float(rng.normal(0, 10.0))
    late = not early
    gal["spiral"] = bool(late and rng.random() < 0.6)
    gal["bar"] = bool(late and rng.random() < 0.3)
    gal["ring"] = bool(late and rng.random() < 0.12)
    gal["arm_m"] = int(rng.choice([2, 2, 2, 3, 4]))
    gal["arm_pitch_deg"] = float(rng.uniform(10.0, 30.0))
    gal["arm_phase"] = float(rng.uniform(0, 2 * math.pi))
    gal["arm_sharp"] = float(rng.uniform(2.0, 6.0))
    gal["arm_frac"] = float(rng.uniform(0.10, 0.35)) if gal["spiral"] else 0.0
    gal["knot_frac"] = float(rng.uniform(0.03, 0.15)) if late else 0.0
    gal["n_knots"] = int(rng.integers(10, 61)) if late else 0
    gal["bar_frac"] = float(rng.uniform(0.05, 0.15)) if gal["bar"] else 0.0
    gal["bar_len"] = float(rng.uniform(0.8, 1.5))
    gal["bar_q"] = float(rng.uniform(0.25, 0.4))
    gal["bar_angle"] = float(rng.uniform(0, 180.0))
    gal["ring_frac"] = float(rng.uniform(0.03, 0.10)) if gal["ring"] else 0.0
    gal["ring_radius"] = float(rng.uniform(1.5, 3.0))
    gal["knot_seed"] = int(rng.integers(0, 2 ** 31 - 1))
    # colours (g-r, r-i, i-z): red bulges, bluer disks, blue star-forming structure
    gal["colour_bulge"] = tuple(float(v) for v in rng.normal((0.78, 0.40, 0.30), 0.04))
    gal["colour_disk"] = tuple(float(v) for v in rng.normal((0.50, 0.25, 0.15), 0.08))
    gal["colour_sf"] = tuple(float(v) for v in rng.normal((0.25, 0.08, 0.02), 0.08))
    gal["colour_bar"] = tuple(float(v) for v in rng.normal((0.70, 0.35, 0.25), 0.05))
    return gal


def _draw_background(rng, half):
    """Faint background galaxies (SDSS-faint, visible at DECaLS depth)."""
    nbg = int(rng.poisson(2.0))
    bgs = []
    for _ in range(nbg):
        m = float(_draw_counts(rng, 1, 19.0, 23.0, 0.4)[0])
        bgs.append(dict(mag_r=m, x=float(rng.uniform(-half, half)),
                        y=float(rng.uniform(-half, half)),
                        r50=float(np.clip(10 ** (0.1 - 0.12 * (m - 19) + rng.normal(0, 0.1)),
                                          0.3, 2.0)),
                        n=float(rng.choice([1.0, 1.0, 4.0])),
                        q=float(rng.uniform(0.3, 1.0)), beta=float(rng.uniform(0, 180)),
                        colour=tuple(float(v) for v in rng.normal((0.9, 0.4, 0.3), 0.2))))
    return bgs


def _draw_stars(rng, n_stars, half, gal):
    """Field stars: number counts dN/dm ~ 10**(0.25 m) over r 14-22, plus with some
    probability a bright saturated star and a star on the galaxy."""
    if n_stars is None:
        ns = int(rng.poisson(4.0))
    else:
        ns = int(n_stars)
    mags = list(_draw_counts(rng, ns, 14.0, 22.0, 0.25))
    pos = [tuple(rng.uniform(-1.05 * half, 1.05 * half, 2)) for _ in range(ns)]
    kinds = ["field"] * ns
    if n_stars is None:
        if rng.random() < 0.15:  # a bright, saturated star somewhere
            mags.append(float(rng.uniform(11.5, 14.2)))
            pos.append(tuple(rng.uniform(-0.9 * half, 0.9 * half, 2)))
            kinds.append("bright")
        if rng.random() < 0.3:  # a star superposed on the galaxy
            rr = rng.uniform(0.2, 1.5) * gal["r50"]
            t = rng.uniform(0, 2 * math.pi)
            mags.append(float(rng.uniform(16.0, 21.0)))
            pos.append((gal["x"] + rr * math.cos(t), gal["y"] + rr * math.sin(t)))
            kinds.append("on_galaxy")
    stars = []
    for m, (x, y), kind in zip(mags, pos, kinds):
        gr = float(np.clip(rng.normal(0.75, 0.35), 0.2, 1.5))
        ri = 0.35 * gr - 0.05 + max(0.0, gr - 1.2) * 3.0 + float(rng.normal(0, 0.03))
        iz = 0.5 * ri + float(rng.normal(0, 0.03))
        stars.append(dict(mag_r=float(m), x=float(x), y=float(y), kind=kind,
                          colour=(gr, ri, iz)))
    return stars


def _structure_image(gal, band_fluxes, ds):
    """Fine-grid image (galaxy frame, before inclination) of arms, knots, bar and ring.

    Returns one array per band, each summing to that band's structured flux, or None.
    """
    h = gal["disk_r50"] / 1.678  # exponential scale length
    comps = []
    half = min(4.5 * h, 30.0)
    n = int(2 * math.ceil(half / ds) + 1)
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n]
    x = (xx - c) * ds
    y = (yy - c) * ds
    r = np.hypot(x, y)
    theta = np.arctan2(y, x)
    disk = np.exp(-r / h)
    if gal["arm_frac"] > 0:
        rs = np.maximum(r, 0.05 * h)
        tan_pitch = math.tan(math.radians(gal["arm_pitch_deg"]))
        phase = gal["arm_m"] * (theta - np.log(rs / h) / tan_pitch + gal["arm_phase"])
        pattern = (0.5 * (1 + np.cos(phase))) ** gal["arm_sharp"]
        taper = 1.0 - np.exp(-(r / (0.6 * h)) ** 2)
        arms = disk * pattern * taper
        comps.append(("sf", gal["arm_frac"], arms))
    else:
        arms = None
    if gal["knot_frac"] > 0 and gal["n_knots"] > 0:
        krng = np.random.default_rng(gal["knot_seed"])
        weight = disk * (1 - np.exp(-(r / (0.5 * h)) ** 2))
        if arms is not None:
            weight = 0.3 * weight / weight.sum() + 0.7 * arms / arms.sum()
        p = (weight / weight.sum()).ravel()
        idx = krng.choice(p.size, size=gal["n_knots"], p=p)
        kx = (idx % n - c) * ds + krng.uniform(-0.5, 0.5, gal["n_knots"]) * ds
        ky = (idx // n - c) * ds + krng.uniform(-0.5, 0.5, gal["n_knots"]) * ds
        kf = krng.lognormal(0.0, 0.7, gal["n_knots"])
        ksig = krng.uniform(0.12, 0.35, gal["n_knots"])
        knots = np.zeros_like(disk)
        for xk, yk, fk, sk in zip(kx, ky, kf, ksig):
            i0, i1 = (max(0, int((yk - 3 * sk) / ds + c)), min(n, int((yk + 3 * sk) / ds + c) + 2))
            j0, j1 = (max(0, int((xk - 3 * sk) / ds + c)), min(n, int((xk + 3 * sk) / ds + c) + 2))
            if i1 <= i0 or j1 <= j0:
                continue
            g = np.exp(-((x[i0:i1, j0:j1] - xk) ** 2 + (y[i0:i1, j0:j1] - yk) ** 2)
                       / (2 * sk * sk))
            s = g.sum()
            if s > 0:
                knots[i0:i1, j0:j1] += fk * g / s
        comps.append(("sf", gal["knot_frac"], knots))
    if gal["bar_frac"] > 0:
        t = math.radians(gal["bar_angle"])
        xb = x * math.cos(t) + y * math.sin(t)
        yb = -x * math.sin(t) + y * math.cos(t)
        a = gal["bar_len"] * h
        rb = np.sqrt((xb / a) ** 2 + (yb / (gal["bar_q"] * a)) ** 2)
        bar = np.clip(1 - rb ** 2, 0, None) ** 1.5  # Ferrers-like
        comps.append(("bar", gal["bar_frac"], bar))
    if gal["ring_frac"] > 0:
        R = gal["ring_radius"] * h
        ring = np.exp(-0.5 * ((r - R) / (0.12 * R)) ** 2)
        comps.append(("disk", gal["ring_frac"], ring))
    if not comps:
        return None
    out = {}
    for b, fl in band_fluxes.items():
        img = np.zeros_like(disk)
        for kind, frac, arr in comps:
            s = arr.sum()
            if s > 0:
                img += arr * (frac * fl[kind] / s)
        out[b] = img
    return out


def _band_component_fluxes(gal, band):
    """Flux (nanomaggy) of each component class in a band, so that r totals gal['mag_r']."""
    ftot = float(_mag_to_nmgy(gal["mag_r"]))
    fb = gal["bulge_frac"]
    fsf = gal["arm_frac"] + gal["knot_frac"]
    fbar = gal["bar_frac"]
    fring = gal["ring_frac"]
    fdisk = max(0.0, 1.0 - fb - fsf - fbar - fring)
    # per unit r flux, the band flux of each colour class
    def per(col):
        return _colour_fluxes(_ZP_NMGY, col)[band]  # r = 22.5 -> 1 nmgy
    return {
        "bulge": ftot * fb * per(gal["colour_bulge"]),
        "disk_smooth": ftot * fdisk * per(gal["colour_disk"]),
        # per-unit-fraction fluxes for the structure image
        "sf": ftot * per(gal["colour_sf"]),
        "bar": ftot * per(gal["colour_bar"]),
        "disk": ftot * per(gal["colour_disk"]),
    }


def _galaxy_object(gal, band, struct_img, ds):
    import galsim
    gsp = _gsparams()
    fl = _band_component_fluxes(gal, band)
    parts = []
    disk_parts = []
    if fl["disk_smooth"] > 0:
        disk_parts.append(galsim.Exponential(half_light_radius=gal["disk_r50"],
                                             flux=fl["disk_smooth"], gsparams=gsp))
    if struct_img is not None:
        s = float(struct_img.sum())
        if s > 0:
            disk_parts.append(galsim.InterpolatedImage(
                galsim.Image(struct_img, scale=ds), flux=s, pad_factor=2, gsparams=gsp,
                calculate_stepk=False, calculate_maxk=False))
    if disk_parts:
        d = disk_parts[0] if len(disk_parts) == 1 else galsim.Add(disk_parts, gsparams=gsp)
        parts.append(d.shear(q=gal["disk_q"], beta=gal["beta"] * galsim.degrees))
    if fl["bulge"] > 0:
        b = galsim.Sersic(n=gal["bulge_n"], half_light_radius=gal["bulge_r50"],
                          flux=fl["bulge"], trunc=10 * gal["bulge_r50"], gsparams=gsp)
        parts.append(b.shear(q=gal["bulge_q"], beta=gal["bulge_beta"] * galsim.degrees))
    return parts[0] if len(parts) == 1 else galsim.Add(parts, gsparams=gsp)


def _psf_object(p, survey):
    import galsim
    pre = "sdss" if survey == "sdss" else "decals"
    beta = p[pre + "_beta"]
    fwhm = moffat_core_fwhm(p[pre + "_fwhm"], beta)
    r0 = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    g1, g2 = p[pre + "_g"]
    return _unit_moffat(float(beta)).dilate(r0).shear(g1=g1, g2=g2)


@functools.lru_cache(maxsize=None)
def _unit_moffat(beta):
    """Truncated Moffat of unit scale radius; kept so GalSim computes its tables only once."""
    import galsim
    m = galsim.Moffat(beta=beta, scale_radius=1.0, trunc=PSF_TRUNC_R0, gsparams=_gsparams())
    m.maxk, m.stepk  # noqa: B018 - computed once and cached on the object
    return m


def moffat_core_fwhm(fwhm_eff, beta):
    """Core FWHM of a Moffat profile whose effective (noise-equivalent) FWHM is ``fwhm_eff``.

    Surveys quote the PSF size as an *effective* FWHM: that of the Gaussian with the same
    noise-equivalent area ``NEA = 1 / integral(psf**2)`` (SDSS psField ``psf_width``, Legacy
    Surveys ``psfsize``). For a Moffat of core FWHM ``F`` and index ``beta``,
    ``NEA = pi alpha**2 (2 beta - 1) / (beta - 1)**2`` with
    ``alpha = F / (2 sqrt(2**(1/beta) - 1))``, and ``fwhm_eff = 2.3548 sqrt(NEA / (4 pi))``; the
    wings make ``fwhm_eff`` about 1.22-1.32 times ``F`` for beta 3.6-2.8.

    Parameters
    ----------
    fwhm_eff : float
        Effective FWHM, arcsec.
    beta : float
        Moffat index.

    Returns
    -------
    float
        Core FWHM of the Moffat, arcsec.

    Examples
    --------
    >>> round(moffat_core_fwhm(1.05, 3.2), 2)  # SDSS psField r psf_width of the real frame
    0.83
    """
    ratio = (math.sqrt(2.0 * math.log(2.0)) * math.sqrt(2 * beta - 1) / (beta - 1)
             / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0)))
    return float(fwhm_eff) / ratio


def decals_sigma(sdss_sigma, *, sdss_fwhm, decals_fwhm, depth_gain=DEPTH_GAIN_MAG):
    """Per-pixel noise of the DECaLS-like image from the SDSS one and the depth difference.

    The 5-sigma point-source depth of a background-limited image with per-pixel noise
    ``sigma`` and PSF noise-equivalent area ``NEA`` (pixels) is ``5 sigma sqrt(NEA)``, with
    ``NEA = 4 pi (fwhm_eff / 2.3548 / pixel_scale)**2`` for an effective FWHM ``fwhm_eff``.
    Asking the DECaLS-like depth to be ``depth_gain`` magnitudes deeper gives::

        sigma_dec = sigma_sdss * 10**(-0.4 depth_gain) * (fwhm_sdss / 0.396) / (fwhm_dec / 0.262)

    Parameters
    ----------
    sdss_sigma : float
        Per-pixel noise of the SDSS image (nanomaggy per 0.396" pixel).
    sdss_fwhm, decals_fwhm : float
        Effective PSF FWHM of each survey, arcsec.
    depth_gain : float, optional
        Depth difference in magnitudes (default `DEPTH_GAIN_MAG`).

    Returns
    -------
    float
        Per-pixel noise of the DECaLS-like image, nanomaggy per 0.262" pixel.

    Examples
    --------
    >>> round(decals_sigma(0.034, sdss_fwhm=1.3, decals_fwhm=1.2), 4)
    0.0051
    """
    ratio = (sdss_fwhm / SDSS_PIXEL_SCALE) / (decals_fwhm / DECALS_PIXEL_SCALE)
    return float(sdss_sigma * 10 ** (-0.4 * depth_gain) * ratio)


def _jacobian(wcs):
    m = wcs.pixel_scale_matrix * 3600.0
    import galsim
    return galsim.JacobianWCS(m[0, 0], m[0, 1], m[1, 0], m[1, 1])


def _sky_to_pix(wcs, ref, x, y):
    """Tangent-plane offsets (arcsec) around ref -> 0-based pixel positions on wcs."""
    ra, dec = ref.wcs_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)
    px, py = wcs.wcs_world2pix(ra, dec, 0)
    return np.asarray(px, dtype=float), np.asarray(py, dtype=float)


def _ref_wcs(sc):
    """TAN WCS whose pixel coordinates are tangent-plane offsets (xi, eta) in arcsec."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [sc["ra"], sc["dec"]]
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cd = np.eye(2) / 3600.0
    w.wcs.set()
    return w


def _draw_point(full, psf, fwhm, beta, flux, px, py, jac, sigma_pix, os_=5):
    """Add a PSF of given flux at 0-based pixel (px, py) into ``full`` (numpy array).

    The PSF is evaluated without pixel convolution on an ``os_``-times finer grid and binned,
    which integrates it over the pixels (midpoint rule, os_**2 samples per pixel).
    """
    import galsim
    ny, nx = full.shape
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    scale = math.sqrt(abs(jac.pixelArea()))
    # radius (arcsec) where the profile falls to 0.02 sigma per pixel
    i0 = flux * (beta - 1) / (math.pi * alpha ** 2) * scale ** 2
    ratio = max(i0 / (0.02 * sigma_pix), 1.0)
    rad = alpha * math.sqrt(max(ratio ** (1.0 / beta) - 1.0, 0.0))
    rad = min(max(rad, 3.0 * fwhm), 40.0)
    hw = int(math.ceil(rad / scale))
    cx, cy = int(round(px)), int(round(py))
    x0, x1, y0, y1 = cx - hw, cx + hw + 1, cy - hw, cy + hw + 1
    if x1 <= 0 or y1 <= 0 or x0 >= nx or y0 >= ny:
        return
    m = (x1 - x0)
    fine = galsim.Image(m * os_, m * os_, wcs=galsim.JacobianWCS(
        jac.dudx / os_, jac.dudy / os_, jac.dvdx / os_, jac.dvdy / os_))
    # 0-based fine coordinate of the star: fine pixel centres k -> coarse (k+0.5)/os - 0.5
    fx = (px - x0 + 0.5) * os_ - 0.5
    fy = (py - y0 + 0.5) * os_ - 0.5
    psf.withFlux(flux).drawImage(image=fine, method="no_pixel",
                                 center=galsim.PositionD(fx + 1, fy + 1))
    stamp = fine.array.reshape(m, os_, m, os_).sum(axis=(1, 3))
    sx0, sy0 = max(0, -x0), max(0, -y0)
    ex, ey = min(m, nx - x0), min(m, ny - y0)
    full[y0 + sy0:y0 + ey, x0 + sx0:x0 + ex] += stamp[sy0:ey, sx0:ex]


def _render(sc, band, wcs, shape, survey, struct, ds, sigma_pix):
    """Noiseless rendering of a scene in one band on one grid (float64 array)."""
    import galsim
    ref = _ref_wcs(sc)
    jac = _jacobian(wcs)
    ny, nx = shape
    p = sc["psf"][band]
    pre = "sdss" if survey == "sdss" else "decals"
    psf = _psf_object(p, survey)
    out = galsim.Image(nx, ny, wcs=jac, dtype=np.float64)
    gal = sc["galaxy"]
    gsp = _gsparams()
    # The main galaxy and the background galaxies form one profile (one FFT): offsets in the
    # tangent plane are linear in pixels on both grids, which share the tangent point.
    objs = [_galaxy_object(gal, band, None if struct is None else struct[band], ds)]
    for bg in sc["background"]:
        f = _colour_fluxes(bg["mag_r"], bg["colour"])[band]
        prof = (galsim.Exponential(half_light_radius=bg["r50"], flux=f, gsparams=gsp)
                if bg["n"] == 1.0 else
                galsim.DeVaucouleurs(half_light_radius=bg["r50"], flux=f,
                                     trunc=8 * bg["r50"], gsparams=gsp))
        objs.append(prof.shear(q=bg["q"], beta=bg["beta"] * galsim.degrees)
                    .shift(bg["x"] - gal["x"], bg["y"] - gal["y"]))
    gobj = objs[0] if len(objs) == 1 else galsim.Add(objs, gsparams=gsp)
    gx, gy = _sky_to_pix(wcs, ref, gal["x"], gal["y"])
    galsim.Convolve(gobj, psf, gsparams=gsp).drawImage(
        image=out, center=galsim.PositionD(gx[0] + 1, gy[0] + 1), add_to_image=True)
    arr = out.array
    if sc["stars"]:
        sx = np.array([s["x"] for s in sc["stars"]])
        sy = np.array([s["y"] for s in sc["stars"]])
        px, py = _sky_to_pix(wcs, ref, sx, sy)
        for s, x, y in zip(sc["stars"], px, py):
            f = _colour_fluxes(s["mag_r"], s["colour"])[band]
            _draw_point(arr, psf, moffat_core_fwhm(p[pre + "_fwhm"], p[pre + "_beta"]),
                        p[pre + "_beta"], f, x, y, jac, sigma_pix)
    return arr


def _bleed(img, sat):
    """Clip at the saturation level and spread the excess charge along columns (axis 0)."""
    over = img > sat
    if not over.any():
        return img, np.zeros(img.shape, bool)
    mask = np.zeros(img.shape, bool)
    ny = img.shape[0]
    for j in np.nonzero(over.any(axis=0))[0]:
        col = img[:, j]
        o = col > sat
        idx = np.nonzero(o)[0]
        # contiguous runs
        splits = np.nonzero(np.diff(idx) > 1)[0] + 1
        for run in np.split(idx, splits):
            lo, hi = run[0], run[-1]
            excess = float((col[lo:hi + 1] - sat).sum())
            extra = excess / sat / 2.0
            n_ext = int(extra)
            frac = extra - n_ext
            a, b = max(0, lo - n_ext), min(ny, hi + n_ext + 1)
            col[a:b] = sat
            mask[a:b, j] = True
            for k in (a - 1, b):
                if 0 <= k < ny and frac > 0:
                    col[k] = min(sat, col[k] + frac * sat)
        img[:, j] = col
    return img, mask


@dataclass
class SimulatedPair:
    """One simulated scene rendered as SDSS and DECaLS would see it.

    All images are `~astro_enhance.io.Image` records in nanomaggies per pixel with their WCS.

    Attributes
    ----------
    seed : int
        Scene seed.
    bands : tuple of str
        Bands rendered.
    sdss, input, decals, truth : dict of str -> `~astro_enhance.io.Image`
        Per band: native SDSS image (0.396"/px); SDSS image resampled onto the DECaLS grid by
        the pipeline's resampling; noisy DECaLS-like image; noiseless DECaLS-PSF truth.
    sigma_sdss, sigma_decals : dict of str -> float
        Per-pixel background noise of the native SDSS and of the DECaLS-like images.
    psf_fwhm_sdss, psf_fwhm_decals : dict of str -> float
        Effective PSF FWHM (arcsec) of each survey: the FWHM of the Gaussian with the same
        noise-equivalent area, as SDSS psField ``psf_width`` and Legacy Surveys ``psfsize``
        quote it. The rendered PSF is a Moffat of index ``psf_beta_*`` and core FWHM
        ``moffat_core_fwhm(psf_fwhm, beta)`` (about 0.8 times smaller).
    psf_beta_sdss, psf_beta_decals : dict of str -> float
        Moffat index of each PSF.
    saturated : dict of str -> ndarray of bool
        Saturated and bleed-trail pixels of the SDSS image.
    variance_sdss : dict of str -> ndarray
        Per-pixel noise variance of the native SDSS image (sky + source Poisson).
    stars : `~astropy.table.Table`
        Star catalogue: sky position, SDSS and DECaLS pixel positions, r magnitude,
        fluxes per band, kind (field, bright, on_galaxy), saturated flag.
    galaxy : dict
        Parameters of the main galaxy (r magnitude, half-light radius, morphology, colours,
        sky position and pixel positions).
    sdss_wcs, decals_wcs : `~astropy.wcs.WCS`
        The two grids.

    Examples
    --------
    >>> from astro_enhance.simulate import simulate_pair
    >>> pair = simulate_pair(20_000_001, bands="r", stamp_arcsec=16)
    >>> pair.sdss["r"].shape, pair.truth["r"].shape, pair.bands
    ((40, 40), (61, 61), ('r',))
    """

    seed: int
    bands: tuple
    sdss: dict = field(default_factory=dict)
    input: dict = field(default_factory=dict)
    decals: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    sigma_sdss: dict = field(default_factory=dict)
    sigma_decals: dict = field(default_factory=dict)
    psf_fwhm_sdss: dict = field(default_factory=dict)
    psf_fwhm_decals: dict = field(default_factory=dict)
    psf_beta_sdss: dict = field(default_factory=dict)
    psf_beta_decals: dict = field(default_factory=dict)
    saturated: dict = field(default_factory=dict)
    variance_sdss: dict = field(default_factory=dict)
    stars: object = None
    galaxy: dict = field(default_factory=dict)
    sdss_wcs: WCS = None
    decals_wcs: WCS = None


def simulate_pair(seed, *, bands=("r",), stamp_arcsec=64.0, n_stars=None, split=None,
                  sdss_noise_scale=1.0):
    """Simulate one scene as seen by SDSS and by a DECaLS-like survey.

    Parameters
    ----------
    seed : int
        Scene seed; the same seed gives identical bytes, whatever the bands asked for (each
        band's images do not depend on the other bands requested).
    bands : sequence of str or str, optional
        Bands among g, r, i, z (``"g,r,i"`` is accepted).
    stamp_arcsec : float, optional
        Side of the square scene, arcsec (the SDSS stamp has ``round(stamp / 0.396)`` pixels).
    n_stars : int, optional
        Number of field stars; default: Poisson(4) with r 14-22 number counts, plus with
        some probability a bright saturated star and a star on top of the galaxy.
    split : str, optional
        When given, the seed must belong to this split of `SPLITS`.
    sdss_noise_scale : float, optional
        Multiply the SDSS image's noise (sky and source terms) by this factor, 0.1 to 10:
        a shallower (> 1) or deeper (< 1) SDSS image of the same scene, from the same random
        draws (1, the default, gives the nominal image). The DECaLS-like image and the truth
        do not change.

    Returns
    -------
    SimulatedPair

    Raises
    ------
    SplitError
        If ``split`` is given and the seed is not in it.
    SurveyError
        If a band is unknown.

    Examples
    --------
    >>> pair = simulate_pair(3, bands="r", stamp_arcsec=20)
    >>> pair.sdss["r"].shape, pair.truth["r"].shape
    ((51, 51), (78, 78))
    """
    import galsim  # noqa: F401 - fail early with a clear ImportError

    seed = int(seed)
    if seed < 0:
        raise SplitError(f"seed must be non-negative, got {seed}")
    if split is not None:
        check_seeds(split, start=seed, n=1)
    bands = _check_bands(bands)
    stamp_arcsec = float(stamp_arcsec)
    if not 5.0 <= stamp_arcsec <= 1000.0:
        raise InputError(f"stamp_arcsec={stamp_arcsec} is out of range; use 5 to 1000 arcsec")
    f_noise = float(sdss_noise_scale)
    if not 0.1 <= f_noise <= 10.0:
        raise InputError(f"sdss_noise_scale={sdss_noise_scale} is out of range; use 0.1 to 10")
    sc = _make_scene(seed, stamp_arcsec, n_stars)
    ns = int(round(stamp_arcsec / SDSS_PIXEL_SCALE))
    sdss_shape = (ns, ns)
    sdss_wcs = _tan_wcs(sc["ra"], sc["dec"], SDSS_PIXEL_SCALE, sdss_shape, sc["rot_deg"])
    dec_wcs, dec_shape = _decals_grid(sdss_wcs, sdss_shape)

    gal = sc["galaxy"]
    ds = 0.2
    struct = None
    need_struct = gal["arm_frac"] + gal["knot_frac"] + gal["bar_frac"] + gal["ring_frac"] > 0
    if need_struct:
        struct = _structure_image(gal, {b: _band_component_fluxes(gal, b) for b in bands}, ds)

    pair = SimulatedPair(seed=seed, bands=bands, sdss_wcs=sdss_wcs, decals_wcs=dec_wcs)
    sat_flags = np.zeros(len(sc["stars"]), bool)
    for b in bands:
        p = sc["psf"][b]
        sig_s = p["sdss_sigma"]
        sig_d = decals_sigma(sig_s, sdss_fwhm=p["sdss_fwhm"], decals_fwhm=p["decals_fwhm"])
        k_s, k_d = _poisson_per_nmgy(b, sig_s, sig_d)
        model_s = _render(sc, b, sdss_wcs, sdss_shape, "sdss", struct, ds, sig_s)
        model_d = _render(sc, b, dec_wcs, dec_shape, "decals", struct, ds, sig_d)
        nrng = np.random.default_rng([seed, 0xB00 + BANDS.index(b)])
        sdss, var_s = _with_noise(model_s, sig_s * f_noise, k_s * f_noise ** 2, nrng)
        sdss, satmask = _bleed(sdss, _SDSS[b]["sat"])
        decals, _ = _with_noise(model_d, sig_d, k_d, nrng)
        _record_band(pair, b, sdss=sdss, decals=decals, truth=model_d, psf=p,
                     sig_s=sig_s * f_noise,
                     sig_d=sig_d, var_s=var_s, saturated=satmask)
        if sc["stars"]:
            sx = np.array([s["x"] for s in sc["stars"]])
            sy = np.array([s["y"] for s in sc["stars"]])
            px, py = _sky_to_pix(sdss_wcs, _ref_wcs(sc), sx, sy)
            ix = np.clip(np.round(px).astype(int), 0, ns - 1)
            iy = np.clip(np.round(py).astype(int), 0, ns - 1)
            inside = (px > -0.5) & (px < ns - 0.5) & (py > -0.5) & (py < ns - 0.5)
            sat_flags |= inside & satmask[iy, ix]
    pair.stars, pair.galaxy = _catalogues(sc, sdss_wcs, dec_wcs, sat_flags)
    return pair


def sdss_poisson_k(band):
    """Source Poisson variance per nanomaggy of an SDSS image (from nmgy/count and gain).

    Parameters
    ----------
    band : str
        ``g``, ``r``, ``i`` or ``z``.

    Returns
    -------
    float
        ``k`` such that a pixel of ``f`` nanomaggies has source variance ``k * f``.

    Examples
    --------
    >>> round(sdss_poisson_k("r"), 6)
    0.001174
    """
    return _SDSS[band]["nmgy"] / _SDSS[band]["gain"]


def _poisson_per_nmgy(band, sig_s, sig_d):
    """Source Poisson variance per nanomaggy of the SDSS image and of the DECaLS-like one
    (scaled like the sky variance per unit area: same sky brightness)."""
    k_s = sdss_poisson_k(band)
    k_d = k_s * (sig_d ** 2 / sig_s ** 2) * (SDSS_PIXEL_SCALE / DECALS_PIXEL_SCALE) ** 2
    return k_s, k_d


def _with_noise(model, sigma, k, rng):
    """The simulator's noise model: sky ``sigma`` plus source Poisson ``k * model``.
    Returns the noisy image and its variance."""
    var = sigma ** 2 + k * np.clip(model, 0, None)
    return model + rng.standard_normal(model.shape) * np.sqrt(var), var


def _record_band(pair, band, *, sdss, decals, truth, psf, sig_s, sig_d, var_s, saturated,
                 beta_sdss=None, **sdss_cards):
    """Store one band's images (SDSS, its resampled input, DECaLS-like, truth, with their
    headers) and figures in a `SimulatedPair`. ``psf`` is the scene's PSF record of the band;
    ``sdss_cards`` go into the SDSS header."""
    seed = pair.seed
    sh = _header(pair.sdss_wcs, band=band, survey="SDSS", NMGY=_SDSS[band]["nmgy"],
                 SKYSIG=sig_s, SATURATE=_SDSS[band]["sat"], AE_SEED=seed,
                 PSFFWHM=psf["sdss_fwhm"])
    sh["ORIGIN"] = "SDSS"
    sh["TELESCOP"] = "2.5m"
    for key, value in sdss_cards.items():
        sh[key] = value
    wcs, shape = pair.decals_wcs, np.shape(truth)
    dh = _header(wcs, band=band, survey="DECaLS", SKYSIG=sig_d, AE_SEED=seed,
                 PSFFWHM=psf["decals_fwhm"])
    sdss_img = Image(data=np.asarray(sdss).astype(np.float32), wcs=pair.sdss_wcs,
                     unit=_nmgy_unit(), mask=None, header=sh)
    pair.sdss[band] = sdss_img
    pair.input[band] = Image(data=_to_decals_grid(sdss_img, wcs, shape), wcs=wcs,
                             unit=_nmgy_unit(), header=dh.copy())
    pair.decals[band] = Image(data=np.asarray(decals).astype(np.float32), wcs=wcs,
                              unit=_nmgy_unit(), header=dh)
    th = dh.copy()
    th["SKYSIG"] = 0.0
    pair.truth[band] = Image(data=np.asarray(truth).astype(np.float32), wcs=wcs,
                             unit=_nmgy_unit(), header=th)
    pair.sigma_sdss[band] = float(sig_s)
    pair.sigma_decals[band] = float(sig_d)
    pair.psf_fwhm_sdss[band] = psf["sdss_fwhm"]
    pair.psf_fwhm_decals[band] = psf["decals_fwhm"]
    pair.psf_beta_sdss[band] = psf["sdss_beta"] if beta_sdss is None else beta_sdss
    pair.psf_beta_decals[band] = psf["decals_beta"]
    pair.saturated[band] = saturated
    pair.variance_sdss[band] = var_s.astype(np.float32)


# Columns of a scene's star table.
_STAR_COLUMNS = ("ra", "dec", "x_sdss", "y_sdss", "x_decals", "y_decals", "mag_r", "flux_g",
                 "flux_r", "flux_i", "flux_z", "kind", "saturated")


def _star_table(rows=()):
    from astropy.table import Table
    if rows:
        return Table(rows=rows, names=_STAR_COLUMNS)
    return Table(names=_STAR_COLUMNS, dtype=[float] * 11 + [str, bool])


def _catalogues(sc, sdss_wcs, dec_wcs, sat_flags):
    """The star table and the galaxy record (with sky and pixel positions) of a scene."""
    ref = _ref_wcs(sc)
    rows = []
    for s, flag in zip(sc["stars"], sat_flags):
        ra, dec = ref.wcs_pix2world([[s["x"], s["y"]]], 0)[0]
        xs, ys = _sky_to_pix(sdss_wcs, ref, s["x"], s["y"])
        xd, yd = _sky_to_pix(dec_wcs, ref, s["x"], s["y"])
        fl = _colour_fluxes(s["mag_r"], s["colour"])
        rows.append((ra, dec, xs[0], ys[0], xd[0], yd[0], s["mag_r"], fl["g"], fl["r"],
                     fl["i"], fl["z"], s["kind"], bool(flag)))
    gal = sc["galaxy"]
    g = dict(gal)
    ra, dec = ref.wcs_pix2world([[gal["x"], gal["y"]]], 0)[0]
    g["ra"], g["dec"] = float(ra), float(dec)
    xs, ys = _sky_to_pix(sdss_wcs, ref, gal["x"], gal["y"])
    xd, yd = _sky_to_pix(dec_wcs, ref, gal["x"], gal["y"])
    g["x_sdss"], g["y_sdss"] = float(xs[0]), float(ys[0])
    g["x_decals"], g["y_decals"] = float(xd[0]), float(yd[0])
    g["n_background"] = len(sc["background"])
    return _star_table(rows), g


def _nmgy_unit():
    import astropy.units as u
    return u.nanomaggy


# ----------------------------------------------------------------------------- shards

_MANIFEST_GAL_KEYS = ("type", "mag_r", "r50", "bulge_frac", "bulge_n", "disk_q", "pa_deg",
                      "spiral", "bar", "ring", "n_knots", "n_background")


def _atomic_savez(path, arrays):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _pack_shard(items):
    """The npz arrays of a shard from ``(pair, band)`` items, one row each.

    Images of different sizes are padded with NaN to the largest (the loaders mask NaN);
    pairs are `SimulatedPair` records (simulated or real-morphology).
    """
    out = {}
    for k in ("input", "decals", "truth", "sdss"):
        imgs = [getattr(p, k)[b].data for p, b in items]
        ny, nx = max(a.shape[0] for a in imgs), max(a.shape[1] for a in imgs)
        stack = np.full((len(imgs), ny, nx), np.nan, np.float32)
        for i, a in enumerate(imgs):
            stack[i, :a.shape[0], :a.shape[1]] = a
        out[k] = stack
    out["band"] = np.array([b for _, b in items], dtype="U1")
    out["seed"] = np.array([p.seed for p, _ in items], dtype=np.int64)
    for k in ("sigma_sdss", "sigma_decals", "psf_fwhm_sdss", "psf_fwhm_decals"):
        out[k] = np.array([getattr(p, k)[b] for p, b in items], dtype=np.float64)
    out["sdss_header"] = np.array([p.sdss[b].header.tostring() for p, b in items])
    out["decals_header"] = np.array([p.decals[b].header.tostring() for p, b in items])
    return out


def _simulate_shard(task):
    """Worker: simulate one shard and write it. Returns manifest rows."""
    out_dir, split, seeds, bands, stamp_arcsec = task
    items, rows = [], []
    fname = f"{split}-{seeds[0]:08d}.npz"
    for seed in seeds:
        pair = simulate_pair(seed, bands=bands, stamp_arcsec=stamp_arcsec)
        for b in bands:
            items.append((pair, b))
            row = dict(seed=seed, split=split, band=b, file=fname, index=len(items) - 1,
                       sigma_sdss=pair.sigma_sdss[b], sigma_decals=pair.sigma_decals[b],
                       psf_fwhm_sdss=pair.psf_fwhm_sdss[b],
                       psf_fwhm_decals=pair.psf_fwhm_decals[b],
                       psf_beta_sdss=pair.psf_beta_sdss[b],
                       psf_beta_decals=pair.psf_beta_decals[b],
                       n_stars=len(pair.stars),
                       n_saturated=int(np.sum(pair.stars["saturated"])) if len(pair.stars)
                       else 0)
            for gk in _MANIFEST_GAL_KEYS:
                row["gal_" + gk] = pair.galaxy[gk]
            rows.append(row)
    _atomic_savez(Path(out_dir) / fname, _pack_shard(items))
    return rows


def _write_manifest(out_dir, rows):
    from astropy.table import Table, vstack
    path = Path(out_dir) / "manifest.ecsv"
    new = Table(rows=rows)
    if path.exists():
        old = Table.read(path, format="ascii.ecsv")
        files = set(new["file"])
        keep = [f not in files for f in old["file"]]
        old = old[np.array(keep, dtype=bool)]
        if len(old):
            new = vstack([old, new], metadata_conflicts="silent")
    new.sort(["seed", "band"])
    new.meta["description"] = ("astro_enhance.simulate shards: one row per (seed, band); "
                               "file/index locate the row in its npz shard")
    new.meta["splits"] = {k: [v.start, v.stop] for k, v in SPLITS.items()}
    from .io import write_table_atomic

    return write_table_atomic(new, path)


def write_shards(out_dir, *, n, split, bands=("g", "r", "i"), workers=1, shard_size=64,
                 start=None, stamp_arcsec=64.0, progress=False):
    """Simulate ``n`` scenes of a split and write them as npz shards plus a manifest.

    Shards are ``out_dir/<split>-<first_seed:08d>.npz`` with, per row (one row per scene
    and band): ``input``, ``decals``, ``truth`` (DECaLS grid), ``sdss`` (native grid), ``band``,
    ``seed``, ``sigma_sdss``, ``sigma_decals``, ``psf_fwhm_sdss``, ``psf_fwhm_decals``,
    ``sdss_header``, ``decals_header``. ``out_dir/manifest.ecsv`` gets one row per (seed, band)
    with the shard file, the row index and the galaxy parameters; rows of shards written
    earlier to the same directory are kept. Each file is written atomically.

    The content depends only on the seeds, never on ``workers``: shard boundaries are
    ``start + k * shard_size``.

    Parameters
    ----------
    out_dir : str or path-like
        Output directory (created if missing).
    n : int
        Number of scenes (seeds).
    split : {"train", "val", "bench"}
        Data split; seeds are ``start .. start + n - 1``, all inside ``SPLITS[split]``.
    bands : sequence of str or str, optional
        Bands rendered for every scene.
    workers : int, optional
        Worker processes (multiprocessing, spawn context).
    shard_size : int, optional
        Scenes per shard.
    start : int, optional
        First seed (default: the first seed of the split).
    stamp_arcsec : float, optional
        Scene size, arcsec.
    progress : bool, optional
        Show a tqdm progress bar.

    Returns
    -------
    `~astropy.table.Table`
        The manifest rows written by this call.

    Raises
    ------
    SplitError
        If the seeds leave the split.
    OutputError
        If ``out_dir`` cannot be created or written.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> t = write_shards(d, n=2, split="val", bands="r", stamp_arcsec=16, shard_size=1)
    >>> sorted(set(map(str, t["file"])))
    ['val-10000000.npz', 'val-10000001.npz']
    """
    from astropy.table import Table
    from .exceptions import OutputError

    seeds = check_seeds(split, start=start, n=n)
    bands = _check_bands(bands)
    shard_size = int(shard_size)
    if shard_size < 1:
        raise InputError(f"shard_size must be at least 1, got {shard_size}")
    workers = max(1, int(workers))
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory {out_dir}: {exc}; "
                          "choose a writable path") from exc
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"output directory {out_dir} is not writable; choose another")
    tasks = [(str(out_dir), split, list(seeds[i:i + shard_size]), bands, float(stamp_arcsec))
             for i in range(0, len(seeds), shard_size)]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), unit="shard")
    rows = []
    if workers == 1 or len(tasks) == 1:
        for t in tasks:
            rows.extend(_simulate_shard(t))
            if bar is not None:
                bar.update(1)
    else:
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        with ctx.Pool(min(workers, len(tasks))) as pool:
            for r in pool.imap(_simulate_shard, tasks):
                rows.extend(r)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    _write_manifest(out_dir, rows)
    return Table(rows=rows)


def read_shard(path):
    """Read a shard written by `write_shards` (no pickle involved).

    Parameters
    ----------
    path : str or path-like
        ``.npz`` shard.

    Returns
    -------
    dict of str -> ndarray
        The shard's arrays.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = tempfile.mkdtemp()
    >>> _ = write_shards(d, n=1, split="val", bands="r", stamp_arcsec=16)
    >>> read_shard(pathlib.Path(d) / "val-10000000.npz")["input"].shape
    (1, 61, 61)
    """
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ----------------------------------------------------------------------------- degrade

_FWHM_KEYS = ("PSFFWHM", "SEEING", "FWHM")


def _band_from_header(header, default="r"):
    f = str(header.get("FILTER", "") or header.get("BAND", "")).strip()
    return f[0] if f and f[0] in "ugrizY" else default


def _header_fwhm_arcsec(header, pixel_scale):
    """PSF FWHM (arcsec) recorded in a header, or None. DECam's FWHM card is in pixels."""
    if "PSFFWHM" in header:
        return float(header["PSFFWHM"])
    if "SEEING" in header:
        return float(header["SEEING"])
    if "FWHM" in header:
        v = float(header["FWHM"])
        return v * pixel_scale if v > 2.0 else v  # CP headers give pixels
    return None


def gaussian_psf_match(data, fwhm_in, fwhm_out, pixel_scale):
    """Convolve an image with the Gaussian kernel taking PSF FWHM ``fwhm_in`` to ``fwhm_out``.

    The kernel's FWHM is the quadrature difference ``sqrt(fwhm_out**2 - fwhm_in**2)`` (exact
    for Gaussian PSFs, a good approximation for Moffat-like ones). NaNs are ignored
    (normalised convolution) and kept as NaN.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image.
    fwhm_in, fwhm_out : float
        PSF FWHM before and after, arcsec.
    pixel_scale : float
        Pixel scale of ``data``, arcsec per pixel.

    Returns
    -------
    ndarray, float32
        Convolved image (a copy; ``data`` itself when no blurring is needed).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((41, 41), np.float32); img[20, 20] = 1
    >>> out = gaussian_psf_match(img, 1.0, 2.0, 0.25)
    >>> round(float(out.sum()), 4)
    1.0
    """
    from scipy.ndimage import gaussian_filter

    arr = np.asarray(data, dtype=np.float64)
    if not fwhm_out > fwhm_in:
        return np.asarray(data, dtype=np.float32)
    sig = math.sqrt(fwhm_out ** 2 - fwhm_in ** 2) / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    sig_pix = sig / pixel_scale
    bad = ~np.isfinite(arr)
    if bad.any():
        filled = np.where(bad, 0.0, arr)
        w = gaussian_filter((~bad).astype(np.float64), sig_pix, mode="constant")
        out = gaussian_filter(filled, sig_pix, mode="constant")
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out / w
        out[bad] = np.nan
    else:
        out = gaussian_filter(arr, sig_pix, mode="nearest")
    return out.astype(np.float32)


def psf_image_match(data, psf, psf_scale, fwhm_in, pixel_scale):
    """Convolve an image so that its PSF becomes (about) a given PSF image.

    The PSF image ``psf`` is shrunk about its centre, resampled onto the image's pixels and
    used as the kernel. The shrink factor starts at ``sqrt(F**2 - fwhm_in**2) / F``, where
    ``F`` is its effective FWHM (`astro_enhance.real_morphology.psf_effective_fwhm`), and
    is corrected (a few iterations) until the kernel convolved with a Gaussian of
    ``fwhm_in`` has effective FWHM ``F``; the shape of the wings is that of ``psf``. With
    ``fwhm_in`` small next to ``F`` (a sharp image) the kernel is ``psf`` itself. NaNs are
    ignored (normalised convolution) and kept as NaN.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image.
    psf : ndarray, shape (my, mx)
        Target PSF image, centred on its central pixel.
    psf_scale : float
        Pixel scale of ``psf``, arcsec per pixel.
    fwhm_in : float
        Effective PSF FWHM of ``data``, arcsec.
    pixel_scale : float
        Pixel scale of ``data``, arcsec per pixel.

    Returns
    -------
    ndarray, float32
        Convolved image.

    Raises
    ------
    astro_enhance.InputError
        If ``fwhm_in`` is not smaller than the PSF image's FWHM, or the PSF has no flux.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[-15:16, -15:16]
    >>> psf = np.exp(-0.5 * (x ** 2 + y ** 2) / 2.0 ** 2)
    >>> img = np.zeros((41, 41), np.float32); img[20, 20] = 1
    >>> round(float(psf_image_match(img, psf, 0.4, 0.5, 0.2).sum()), 4)
    1.0
    """
    from scipy.ndimage import map_coordinates
    from scipy.signal import fftconvolve

    from .real_morphology import psf_effective_fwhm

    p = np.asarray(psf, dtype=np.float64)
    if p.ndim != 2 or not np.isfinite(p).all() or not p.sum() > 0:
        raise InputError("the PSF image must be a finite 2-D array with positive sum")
    f = psf_effective_fwhm(p, psf_scale)
    if not f > fwhm_in:
        raise InputError(f"the PSF image (effective FWHM {f:.3f}\") is not broader than the "
                         f"image's own PSF ({fwhm_in:.3f}\"): nothing to degrade")
    cy, cx = (p.shape[0] - 1) / 2.0, (p.shape[1] - 1) / 2.0

    def kernel(q):
        # kernel pixel u (u * pixel_scale arcsec) samples psf at u * pixel_scale / q arcsec
        step = pixel_scale / (q * psf_scale)
        half = int(math.ceil(max(cy, cx) / step))
        u = np.arange(-half, half + 1, dtype=np.float64) * step
        yy, xx = np.meshgrid(u + cy, u + cx, indexing="ij")
        k = np.clip(map_coordinates(p, [yy, xx], order=1, mode="constant", cval=0.0), 0, None)
        return k / k.sum()

    # quadrature is exact for Gaussians only: correct the shrink factor until the kernel
    # convolved with the image's own (Gaussian) PSF has the PSF image's effective FWHM
    q = math.sqrt(f ** 2 - fwhm_in ** 2) / f
    sig_in = fwhm_in / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_scale
    for _ in range(4):
        k = kernel(q)
        if sig_in < 0.3:
            break
        h = int(math.ceil(4 * sig_in))
        g = np.exp(-0.5 * (np.arange(-h, h + 1) / sig_in) ** 2)
        eff = psf_effective_fwhm(fftconvolve(k, np.outer(g, g) / g.sum() ** 2), pixel_scale)
        if abs(eff / f - 1.0) < 0.002:
            break
        q *= math.sqrt(max(f ** 2 - fwhm_in ** 2, 1e-6)
                       / max(eff ** 2 - fwhm_in ** 2, 1e-6))
    arr = np.asarray(data, dtype=np.float64)
    bad = ~np.isfinite(arr)
    filled = np.where(bad, 0.0, arr)
    out = fftconvolve(filled, k, mode="same")
    if bad.any():
        w = fftconvolve((~bad).astype(np.float64), k, mode="same")
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out / w
        out[bad] = np.nan
    return out.astype(np.float32)


def degrade(image, *, to="sdss", psf_fwhm=None, psf_fwhm_in=None, noise=None, band=None,
            wcs_out=None, shape_out=None, rng=None, return_type="image", psf=None,
            psf_scale=None):
    """Turn a DECaLS-scale image into what SDSS (or another survey) would see.

    Steps: PSF matching with a Gaussian kernel of the quadrature difference of the FWHMs (or,
    with ``psf``, with a real PSF image such as an SDSS psField KL model, see
    `psf_image_match`);
    flux-conserving resampling onto the target grid with `astro_enhance.resample.resample`
    (per-pixel units are multiplied by the pixel-area ratio); Gaussian noise added so that the
    background noise reaches the target survey's per-pixel sigma (the noise already in the
    image, measured after smoothing and resampling, is taken into account), plus for SDSS the
    source Poisson term.

    The input must be calibrated and sky-subtracted, in flux per pixel (e.g. nanomaggies per
    pixel, like Legacy Surveys coadds and this package's simulations). Raw DECam community
    pipeline images (ADU with sky) must first go through `decam_to_nanomaggies`.

    Parameters
    ----------
    image : `~astro_enhance.io.Image`, HDU, ``(array, WCS)`` or path
        The sharp image (anything `~astro_enhance.io.read_image` accepts).
    to : str, optional
        Target survey (``"sdss"`` by default).
    psf_fwhm : float, optional
        Target PSF FWHM, arcsec (default: the target survey's typical value for the band).
    psf_fwhm_in : float, optional
        PSF FWHM of the input, arcsec (default: header ``PSFFWHM``/``SEEING``/``FWHM``, else
        the DECaLS typical value for the band).
    noise : None, float or False, optional
        None: reach the target survey's typical per-pixel noise; a float: reach this per-pixel
        sigma (target units); False or 0: add no noise.
    band : str, optional
        Band (default: from the header FILTER, else ``"r"``).
    wcs_out : `~astropy.wcs.WCS`, optional
        Exact output grid (with ``shape_out``); default: the target survey's grid covering the
        input (`astro_enhance.resample.target_wcs`).
    shape_out : tuple of int, optional
        Shape of ``wcs_out``.
    rng : int or `numpy.random.Generator`, optional
        Random generator for the noise.
    return_type : {"image", "hdu"}, optional
        Return an `~astro_enhance.io.Image` or a `~astropy.io.fits.PrimaryHDU`.
    psf : ndarray, optional
        Target PSF as an image (e.g. `astro_enhance.real_morphology.sdss_kl_psf`) instead of
        a Gaussian of ``psf_fwhm``; ``psf_fwhm`` is then its effective FWHM.
    psf_scale : float, optional
        Pixel scale of ``psf``, arcsec (default the target survey's).

    Returns
    -------
    `~astro_enhance.io.Image` or `~astropy.io.fits.PrimaryHDU`
        Degraded image on the target grid, header noting the steps (``PSFFWHM``, ``SKYSIG``).

    Raises
    ------
    astro_enhance.SurveyError
        Unknown target survey or band.
    astro_enhance.InputError
        Unreadable input (see `~astro_enhance.io.read_image`).

    Examples
    --------
    >>> pair = simulate_pair(20_000_000, bands="r", stamp_arcsec=20)
    >>> sd = degrade(pair.truth["r"], psf_fwhm=pair.psf_fwhm_sdss["r"], noise=False,
    ...              wcs_out=pair.sdss_wcs, shape_out=pair.sdss["r"].shape)
    >>> sd.shape == pair.sdss["r"].shape
    True
    """
    from .io import image_to_hdu, read_image
    from .resample import resample
    from .surveys import get_survey

    img = read_image(image)
    survey = get_survey(to)
    header = img.header.copy()
    band = band or _band_from_header(header)
    survey.check_band(band)
    w = img.wcs
    scale_in = float(np.sqrt(abs(np.linalg.det(w.pixel_scale_matrix))) * 3600.0)
    if psf_fwhm_in is None:
        psf_fwhm_in = _header_fwhm_arcsec(header, scale_in)
    if psf_fwhm_in is None:
        psf_fwhm_in = get_survey("decals").psf_fwhm.get(band, 1.2)
    blurred, psf_fwhm = _degrade_psf(img.data, psf, psf_scale, psf_fwhm, psf_fwhm_in,
                                     scale_in, survey, band)
    work = Image(data=blurred, wcs=w, unit=img.unit, mask=img.mask, header=header)
    if wcs_out is None:
        out = resample(work, survey.name, return_type="image")
    else:
        out = resample(work, survey.name, wcs_out=wcs_out, shape_out=shape_out,
                       return_type="image")
    data = np.array(out.data, dtype=np.float64)
    added = have = 0.0
    if noise is None or (noise is not False and float(noise) > 0):
        target = survey.noise[band] if noise is None else float(noise)
        data, added, have = _noise_to_reach(data, target, survey, band,
                                            np.random.default_rng(rng))
    oh = out.header.copy()
    oh["PSFFWHM"] = (psf_fwhm, "PSF FWHM after degrade, arcsec")
    oh["FILTER"] = band
    if added:
        oh["SKYSIG"] = (float(math.sqrt(added ** 2 + have ** 2)),
                        "per-pixel noise after degrade")
    kind = "Gaussian" if psf is None else "PSF-image"
    oh["HISTORY"] = (f"astro_enhance degrade: {kind} PSF match {psf_fwhm_in:.3f}\" -> "
                     f"{psf_fwhm:.3f}\", resampled to {survey.title}")
    if added:
        oh["HISTORY"] = f"astro_enhance degrade: added Gaussian noise sigma {added:.4g}"
    res = Image(data=data.astype(np.float32), wcs=out.wcs, unit=out.unit, mask=out.mask,
                header=oh, filename=None)
    if return_type == "hdu":
        return image_to_hdu(res)
    if return_type != "image":
        raise InputError(f"return_type must be 'image' or 'hdu', got {return_type!r}")
    return res


def _degrade_psf(data, psf, psf_scale, psf_fwhm, psf_fwhm_in, scale_in, survey, band):
    """`degrade`'s PSF step: match to a PSF image or to a Gaussian of ``psf_fwhm`` (the
    survey's when None). Returns the blurred image and the target's effective FWHM."""
    if psf is not None:
        from .real_morphology import psf_effective_fwhm
        psf_scale = float(survey.pixel_scale if psf_scale is None else psf_scale)
        psf_fwhm = psf_effective_fwhm(psf, psf_scale)
    if psf_fwhm is None:
        psf_fwhm = survey.psf_fwhm[band]
    psf_fwhm, psf_fwhm_in = float(psf_fwhm), float(psf_fwhm_in)
    if not (psf_fwhm > 0 and psf_fwhm_in > 0):
        raise InputError("PSF FWHMs must be positive (arcsec)")
    if psf is not None:
        return psf_image_match(data, psf, psf_scale, psf_fwhm_in, scale_in), psf_fwhm
    return gaussian_psf_match(data, psf_fwhm_in, psf_fwhm, scale_in), psf_fwhm


def _noise_to_reach(data, target, survey, band, rng):
    """`degrade`'s noise step: Gaussian noise bringing the background to ``target`` (the noise
    already there, measured, is taken into account), plus the SDSS source Poisson term.
    Returns the noisy image, the sigma added and the sigma measured before."""
    from .normalize import estimate_noise
    good = np.isfinite(data)
    have = estimate_noise(data, mask=~good) if good.sum() > 10 else 0.0
    added = math.sqrt(max(target ** 2 - have ** 2, 0.0))
    k = sdss_poisson_k(band) if survey.name == "sdss" and band in _SDSS else 0.0
    noisy, _ = _with_noise(data, added, k, rng)
    return noisy, added, have


#: Nominal DECam zero points (AB mag for 1 ADU/s), used when a header has none
#: (legacypipe's nominal values; real CCDs differ by a few hundredths).
DECAM_NOMINAL_ZEROPOINTS = {"g": 25.08, "r": 25.29, "i": 25.23, "z": 24.92, "Y": 23.61}


def decam_to_nanomaggies(image, *, zeropoint=None, exptime=None, sky="median", band=None):
    """Convert a DECam community-pipeline image (ADU, sky included) to sky-subtracted nanomaggies.

    ``nmgy = (ADU - sky) * 10**(-0.4 * (zeropoint + 2.5 log10(exptime) - 22.5))`` where
    ``zeropoint`` is the magnitude of 1 ADU per second (header ``MAGZERO`` or ``MAGZPT``; the
    nominal DECam value of the band when absent, see `DECAM_NOMINAL_ZEROPOINTS`).

    Parameters
    ----------
    image : path, HDU, `~astro_enhance.io.Image` or ``(array, WCS)``
        DECam image (``*_ooi_*`` HDU with TPV WCS).
    zeropoint : float, optional
        Zero point for 1 ADU/s; default from the header, else nominal.
    exptime : float, optional
        Exposure time, s; default header ``EXPTIME``.
    sky : {"median", "header"} or float, optional
        Sky level to subtract in ADU: a sigma-clipped median of the image, the header
        ``AVSKY``/``SKYLEVEL``, or a number.
    band : str, optional
        Band for the nominal zero point (default from header ``FILTER``).

    Returns
    -------
    `~astro_enhance.io.Image`
        Same grid and WCS, float32 nanomaggies per pixel, BUNIT ``nanomaggy``, ``MAGZERO`` and
        the sky level subtracted recorded in the header; saturation levels (``SATURATE``,
        ``SATURATA``, ``SATURATB``) converted to nanomaggies too.

    Raises
    ------
    astro_enhance.UnitError
        No exposure time is known.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]; w.wcs.cdelt = [-7.3e-5, 7.3e-5]
    >>> img = decam_to_nanomaggies((np.full((8, 8), 110.0), w), zeropoint=22.5, exptime=10.0,
    ...                            sky=100.0)
    >>> round(float(img.data[0, 0]), 4)
    1.0
    """
    import astropy.units as u

    from .io import read_image

    img = read_image(image)
    h = img.header.copy()
    if isinstance(image, (str, os.PathLike)):
        # DECam CP files keep EXPTIME, FILTER and zero points in the primary header
        try:
            primary = fits.getheader(image, 0)
        except OSError:
            primary = fits.Header()
        for k in ("EXPTIME", "FILTER", "MAGZERO", "MAGZPT", "CCDZPT"):
            if k not in h and k in primary:
                h[k] = primary[k]
    band = band or _band_from_header(h, default="r")
    if zeropoint is None:
        for k in ("MAGZERO", "MAGZPT", "CCDZPT"):
            if k in h:
                zeropoint = float(h[k])
                break
    if zeropoint is None:
        zeropoint = DECAM_NOMINAL_ZEROPOINTS.get(band, 25.0)
    if exptime is None:
        if "EXPTIME" not in h:
            raise UnitError("no EXPTIME in the header: pass exptime= (seconds) to convert "
                            "ADU to nanomaggies")
        exptime = float(h["EXPTIME"])
    data = np.asarray(img.data, dtype=np.float64)
    if isinstance(sky, str):
        if sky == "header":
            key = next((k for k in ("AVSKY", "SKYLEVEL", "SKYBRITE") if k in h), None)
            if key is None:
                raise UnitError("no sky level (AVSKY/SKYLEVEL) in the header; use sky='median'")
            sky_val = float(h[key])
        elif sky == "median":
            from astropy.stats import sigma_clipped_stats
            sky_val = float(sigma_clipped_stats(data[np.isfinite(data)], sigma=3.0)[1])
        else:
            raise InputError(f"sky must be 'median', 'header' or a number, got {sky!r}")
    else:
        sky_val = float(sky)
    scale = 10 ** (-0.4 * (zeropoint + 2.5 * math.log10(exptime) - _ZP_NMGY))
    out = ((data - sky_val) * scale).astype(np.float32)
    oh = h.copy()
    oh["BUNIT"] = "nanomaggy"
    oh["MAGZERO"] = (zeropoint, "AB mag of 1 ADU/s used for the conversion")
    oh["AE_SKY"] = (sky_val, "sky level subtracted, ADU")
    # saturation levels describe the data: converted with them (left in ADU, star removal
    # would read a level the nanomaggy data never reach, and miss saturated stars)
    for key in ("SATURATE", "SATURATA", "SATURATB"):
        try:
            level = float(h[key])
        except (KeyError, TypeError, ValueError):
            continue
        oh[key] = ((level - sky_val) * scale, "saturation level, nanomaggy")
    oh["HISTORY"] = (f"astro_enhance decam_to_nanomaggies: (ADU - {sky_val:.4g}) * {scale:.4g}")
    return Image(data=out, wcs=img.wcs, unit=u.nanomaggy, mask=img.mask, header=oh,
                 filename=img.filename)
