"""Real-morphology training and benchmark pairs: real galaxy images as truth, real SDSS PSFs.

The parametric simulator (`astro_enhance.simulate`) draws Sersic bulges, disks and knots
through Moffat PSFs. A network trained only on those learns to restore that world. This
module makes pairs whose truth is a *real* galaxy image and whose SDSS input is blurred by a
*real* SDSS PSF:

* **Truths.** The DECaLS colour cutouts of Galaxy Zoo DECaLS (``decals_cutouts/*.jpg`` in
  the shared real-data folder: g, r, z under the ``dr2_style_rgb`` arcsinh stretch, 8 bit),
  and, for training only, crops of the Hubble eXtreme Deep Field image that scikit-image
  ships (sRGB decoded; blue, green, red taken as g, r, z; the demo's region left out).
  `invert_decals_stretch` undoes the stretch per channel with that documented model
  (an approximation: the desaturation step and the JPEG are not undone). Each image is
  background-subtracted, averaged 2 x 2 (which halves the DECaLS noise it carries), tapered
  to zero at its edge, and given an r magnitude and a half-light radius drawn from the
  simulator's own magnitude-size relation (so it declares a pixel scale of 0.10-0.25"); its
  g, r, z colours are the galaxy's own (i is the geometric mean of r and z).
* **PSFs.** The SDSS input is made by `astro_enhance.simulate.degrade` with the KL-basis
  PSF of the shared SDSS ``psField`` (`sdss_kl_psf`), reconstructed at a random position of
  the field in the band's own model, and stretched to a seeing drawn from the simulator's
  seeing distribution (the shape and its variation are real; the width follows the seeing
  of the survey, not of that one night). The truth is the same image through a DECaLS-like
  Moffat PSF on the DECaLS grid, with ``degrade`` too.
* **Noise in the truth.** The cutouts carry DECaLS noise. The truths are denoised and
  downsampled first: the 2 x 2 average, a noise-adaptive smoothing of the faint parts
  (`_denoise`) and the resampling to the coarser 0.262" grid leave a residual that is
  measured for every pair (``truth_noise``, in units of the DECaLS-like sigma) and
  recorded. What is left is independent of the input's noise and symmetric, so the L1 loss
  against it stays unbiased (its median is the truth). See ``docs/real_data.rst``.

The galaxies are split once, in the package (`split_table`): ``train``, ``val`` (40 or more)
and ``bench`` (60 or more, held out from every choice).

Nothing here is downloaded: the cutouts and the psField are read from a folder given by
``data_dir``, the environment variable ``ASTRO_ENHANCE_REAL_DATA``, or ``../shared/data/real``
beside the source checkout.
"""

import functools
import hashlib
import math
import os
from pathlib import Path

import numpy as np

from .exceptions import InputError

__all__ = [
    "REAL_SPLIT_SEEDS",
    "real_data_dir",
    "split_table",
    "galaxy_names",
    "make_split",
    "hdf_regions",
    "invert_decals_stretch",
    "sdss_kl_psf",
    "psf_effective_fwhm",
    "real_morphology_pair",
    "write_real_shards",
]

#: First scene seed of the real-morphology pairs of each split (inside that split's range of
#: `astro_enhance.simulate.SPLITS`, far from the parametric seeds in use): pair ``k`` of galaxy
#: number ``i`` of the split has seed ``first + 10 * i + k``.
REAL_SPLIT_SEEDS = {"train": 9_000_000, "val": 10_900_000, "bench": 20_900_000}

#: ``dr2_style_rgb`` stretch of the Galaxy Zoo DECaLS images (band: (RGB plane, scale)),
#: ``mnmx=(-0.5, 300)``, ``arcsinh=1``.
DR2_SCALES = {"g": (2, 0.008), "r": (1, 0.014), "z": (0, 0.019)}
DR2_MNMX = (-0.5, 300.0)

_SPLIT_FILE = Path(__file__).parent / "data" / "real_morphology_split.ecsv"
_DOWNSAMPLE = 2
_SCALE_RANGE = (0.10, 0.25)      # declared arcsec per (2x2-averaged) pixel
_DECALS_PSF_ARCSEC = 1.2         # seeing of the cutouts (DECaLS r psfsize, typical)
_CUTOUT_SCALE = 0.262            # finest possible cutout scale (worst case for the residual)
_MIN_STAMP = 32.0                # arcsec


def real_data_dir(data_dir=None):
    """The folder of real survey data (``decals_cutouts/``, ``sdss/``, ``decam/``).

    Parameters
    ----------
    data_dir : str or path-like, optional
        Explicit folder. Default: ``$ASTRO_ENHANCE_REAL_DATA``, else ``../shared/data/real``
        beside the source checkout.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    astro_enhance.InputError
        If the folder does not exist.

    Examples
    --------
    >>> real_data_dir("/nowhere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    astro_enhance.exceptions.InputError: real-data folder /nowhere not found; pass data_dir=...
    """
    if data_dir is None:
        data_dir = os.environ.get("ASTRO_ENHANCE_REAL_DATA")
    if data_dir is None:
        data_dir = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    p = Path(data_dir)
    if not p.is_dir():
        raise InputError(f"real-data folder {p} not found; pass data_dir= (--real-data DIR) or "
                         f"set ASTRO_ENHANCE_REAL_DATA to the folder holding decals_cutouts/, "
                         f"sdss/ and decam/")
    return p


@functools.lru_cache(maxsize=1)
def split_table():
    """The fixed split of the DECaLS cutout galaxies (committed with the package).

    Returns
    -------
    `~astropy.table.Table`
        Columns ``name`` (IAU name, the file stem) and ``split`` (``train``, ``val`` or
        ``bench``). Made once by sorting the names on their SHA-256 digest: the first 64 are
        ``bench``, the next 44 ``val``, the rest ``train``.

    Examples
    --------
    >>> t = split_table()
    >>> sorted(set(t["split"]))
    ['bench', 'train', 'val']
    """
    from astropy.table import Table
    return Table.read(_SPLIT_FILE, format="ascii.ecsv")


def galaxy_names(split, *, hdf=True):
    """Names of the truth galaxies of one split, in the committed order.

    The ``train`` split also holds the Hubble Deep Field crops (``hdf-X-Y``, see
    `hdf_regions`) after the cutouts, unless ``hdf=False``; the demo's HDF region is in no
    split (it is the demo's held-out scene).

    Parameters
    ----------
    split : {"train", "val", "bench"}
    hdf : bool, optional
        Include the HDF crops in ``train``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> len(galaxy_names("bench")) >= 60, len(galaxy_names("val")) >= 40
    (True, True)
    """
    if split not in REAL_SPLIT_SEEDS:
        raise InputError(f"unknown split {split!r}; use train, val or bench")
    t = split_table()
    names = [str(n) for n, s in zip(t["name"], t["split"]) if s == split]
    if split == "train" and hdf:
        names += [f"hdf-{x}-{y}" for x, y in hdf_regions()]
    return names


def make_split(names, *, n_bench=64, n_val=44):
    """Split galaxy names by their SHA-256 digest (how `split_table` was made).

    Parameters
    ----------
    names : sequence of str
    n_bench, n_val : int, optional
        Sizes of the bench and validation splits.

    Returns
    -------
    list of (str, str)
        ``(name, split)`` pairs: the names sorted on their SHA-256 hex digest, the first
        ``n_bench`` ``bench``, the next ``n_val`` ``val``, the rest ``train``. The digest
        order depends on nothing but the names, so no choice of galaxies enters the split.

    Examples
    --------
    >>> [s for _, s in make_split(["a", "b", "c"], n_bench=1, n_val=1)]
    ['bench', 'val', 'train']
    """
    order = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return ([(n, "bench") for n in order[:n_bench]]
            + [(n, "val") for n in order[n_bench:n_bench + n_val]]
            + [(n, "train") for n in order[n_bench + n_val:]])


def invert_decals_stretch(rgb, *, scales=DR2_SCALES, mnmx=DR2_MNMX):
    """Approximate linear g, r, z flux of an 8-bit ``dr2_style_rgb`` colour image.

    The forward model (Galaxy Zoo DECaLS, after D. Lang) is, per band,
    ``v = (asinh(x / s) - asinh(lo)) / (asinh(hi) - asinh(lo))`` clipped to [0, 1], with
    ``x`` in nanomaggies, ``s`` the band's scale and ``(lo, hi) = mnmx``; the inverse is
    ``x = s sinh(v (asinh(hi) - asinh(lo)) + asinh(lo))``. The desaturation of
    single-colour pixels and the JPEG compression are not undone, and clipped pixels stay at
    the clip value, so the result is an approximation (a few per cent in colour).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        8-bit (0-255) or float (0-1) image, rows top-down as in the JPEG.
    scales : dict, optional
        Band -> (plane, scale).
    mnmx : (float, float), optional
        Black and white points before the stretch.

    Returns
    -------
    dict of str -> ndarray, float64, shape (H, W)
        ``"g"``, ``"r"``, ``"z"`` linear flux (nanomaggies for the stretch's nominal
        calibration), rows bottom-up (FITS order).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.1, 1.0]])
    >>> lo, hi = np.arcsinh(-0.5), np.arcsinh(300.0)
    >>> v = (np.arcsinh(x / 0.014) - lo) / (hi - lo)
    >>> rgb = np.stack([v, v, v], axis=-1)
    >>> np.round(invert_decals_stretch(rgb)["r"], 6).tolist()
    [[0.0, 0.1, 1.0]]
    """
    a = np.asarray(rgb, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) colour image, got shape {a.shape}")
    if a.max() > 1.0:
        a = a / 255.0
    lo, hi = np.arcsinh(mnmx[0]), np.arcsinh(mnmx[1])
    out = {}
    for band, (plane, s) in scales.items():
        v = a[::-1, :, plane]
        out[band] = s * np.sinh(v * (hi - lo) + lo)
    return out


def sdss_kl_psf(psfield, band, row, col):
    """The SDSS PSF at a position of a field, from the psField KL basis.

    ``psf = sum_k a_k(row, col) RROWS_k`` with
    ``a_k = sum_ij C_k[i, j] (0.001 row)**i (0.001 col)**j`` (SDSS photo's KL
    reconstruction), normalised to unit sum.

    Parameters
    ----------
    psfield : str, path-like or `~astropy.io.fits.HDUList`
        SDSS ``psField`` file.
    band : {"u", "g", "r", "i", "z"}
    row, col : float
        Position in the frame (0-based pixel row and column).

    Returns
    -------
    ndarray, float64, shape (51, 51)
        PSF image at 0.396"/px, centred on the central pixel.

    Raises
    ------
    astro_enhance.InputError
        Unknown band or not a psField file.

    Examples
    --------
    With the shared real data (``../shared/data/real``):

    >>> psf = sdss_kl_psf(real_data_dir() / "sdss" / "psField-002583-2-0136.fits", "r",
    ...                   744.0, 1024.0)                                # doctest: +SKIP
    >>> psf.shape, round(psf_effective_fwhm(psf, 0.396), 2)             # doctest: +SKIP
    ((51, 51), 1.09)
    """
    from astropy.io import fits
    bands = "ugriz"
    if band not in bands:
        raise InputError(f"band {band!r} has no SDSS PSF; use one of u, g, r, i, z")
    close = not isinstance(psfield, fits.HDUList)
    hdul = fits.open(psfield) if close else psfield
    try:
        try:
            t = hdul[bands.index(band) + 1].data
            rrows, c = t["RROWS"], t["c"]
        except (KeyError, IndexError, TypeError) as exc:
            raise InputError(f"{psfield} is not an SDSS psField file (no KL PSF for band "
                             f"{band}): {exc}") from exc
        nr, nc = int(t["RNROW"][0]), int(t["RNCOL"][0])
        img = np.zeros(nr * nc)
        for k in range(len(t)):
            nrb, ncb = int(t["nrow_b"][k]), int(t["ncol_b"][k])
            ck = np.asarray(c[k], dtype=np.float64).reshape(5, 5)[:nrb, :ncb]
            a = sum(ck[i, j] * (0.001 * row) ** i * (0.001 * col) ** j
                    for i in range(nrb) for j in range(ncb))
            img += a * np.asarray(rrows[k], dtype=np.float64)
    finally:
        if close:
            hdul.close()
    img = img.reshape(nr, nc)
    return img / img.sum()


def psf_effective_fwhm(psf, scale):
    """Effective FWHM of a PSF image: the Gaussian FWHM with the same noise-equivalent area.

    ``NEA = (sum p)**2 / sum p**2``; ``FWHM = 2 sqrt(2 ln 2) sqrt(NEA / 4 pi) * scale``, the
    definition of SDSS ``psf_width`` and Legacy Surveys ``psfsize``.

    Parameters
    ----------
    psf : ndarray, shape (ny, nx)
        PSF image (any normalisation).
    scale : float
        Its pixel scale, arcsec.

    Returns
    -------
    float
        Effective FWHM, arcsec.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[-20:21, -20:21]
    >>> g = np.exp(-0.5 * (x ** 2 + y ** 2) / 2.0 ** 2)
    >>> round(psf_effective_fwhm(g, 0.5), 3)   # sigma 2 px at 0.5" -> 2.355"
    2.355
    """
    p = np.asarray(psf, dtype=np.float64)
    nea = p.sum() ** 2 / np.sum(p ** 2)
    return float(2.0 * math.sqrt(2.0 * math.log(2.0)) * math.sqrt(nea / (4.0 * math.pi))
                 * float(scale))


def _moffat_image(fwhm_eff, beta, scale, size=61):
    import galsim
    from .simulate import moffat_core_fwhm
    psf = galsim.Moffat(beta=beta, fwhm=moffat_core_fwhm(fwhm_eff, beta))
    return psf.drawImage(nx=size, ny=size, scale=scale).array.astype(np.float64)


def _denoise(a, *, smooth=1.5, snr=5.0):
    """Smooth the faint parts of an image, keep the bright ones (noise-adaptive blend).

    ``w = clip(s / (snr * sigma), 0, 1)`` with ``s`` the image smoothed by a Gaussian of
    ``smooth`` pixels and ``sigma`` its background noise; the result is ``w a + (1 - w) s``:
    the sky and faint outskirts are smoothed (their noise drops by about ``1 / (2 sqrt(pi)
    smooth)``), the galaxy above ``snr`` sigmas keeps its full resolution.
    """
    from scipy.ndimage import gaussian_filter
    from .normalize import estimate_noise
    s = gaussian_filter(a, smooth, mode="nearest")
    sig = estimate_noise(a)
    if not sig > 0:
        return a
    w = np.clip(np.abs(s) / (snr * sig), 0.0, 1.0)
    return w * a + (1.0 - w) * s


@functools.lru_cache(maxsize=8)
def _load_cutout(path):
    """Linear, 2x2-averaged, background-subtracted, tapered g/r/z of one cutout + its r50."""
    from PIL import Image as PILImage
    with PILImage.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    try:
        return _prepare(invert_decals_stretch(rgb), _DOWNSAMPLE)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc


#: Crops of scikit-image's Hubble eXtreme Deep Field JPEG used as training truths,
#: ``(x0, y0)`` of 128 x 128 px crops on a 124 px grid, leaving out every crop within 40 px of
#: the demo's region (`astro_enhance.sample_data.HDF_REGION`), which stays held out.
HDF_CROP = 128


def hdf_regions():
    """``(x0, y0)`` of the Hubble Deep Field training crops (the demo's region left out).

    Examples
    --------
    >>> from astro_enhance.sample_data import HDF_REGION
    >>> x0, y0, size = HDF_REGION
    >>> all(x + HDF_CROP + 40 <= x0 or x >= x0 + size + 40 or y + HDF_CROP + 40 <= y0
    ...     or y >= y0 + size + 40 for x, y in hdf_regions())
    True
    """
    from .sample_data import HDF_REGION
    hx, hy, hs = HDF_REGION
    out = []
    for y in range(0, 872 - HDF_CROP + 1, 124):
        for x in range(0, 1000 - HDF_CROP + 1, 124):
            clear = (x + HDF_CROP + 40 <= hx or x >= hx + hs + 40
                     or y + HDF_CROP + 40 <= hy or y >= hy + hs + 40)
            if clear:
                out.append((x, y))
    return out


def _prepare(lin, downsample):
    """Background-subtract, average, denoise and taper linear g/r/z; add i; measure r50."""
    n = min(lin["r"].shape)
    n -= n % downsample
    out = {}
    for b, a in lin.items():
        a = a[:n, :n]
        border = np.concatenate([a[:8].ravel(), a[-8:].ravel(), a[:, :8].ravel(),
                                 a[:, -8:].ravel()])
        a = a - np.median(border)
        m = n // downsample
        out[b] = _denoise(a.reshape(m, downsample, m, downsample).mean(axis=(1, 3)))
    m = out["r"].shape[0]
    yy, xx = np.mgrid[:m, :m] - (m - 1) / 2.0
    rr = np.hypot(xx, yy) / (m / 2.0)
    taper = np.clip((1.0 - rr) / 0.2, 0.0, 1.0)
    taper = np.sin(0.5 * np.pi * taper) ** 2
    for b in out:
        out[b] = out[b] * taper
    r = out["r"]
    inside = rr < 0.8
    tot = float(r[inside].sum())
    if not tot > 0:
        raise InputError("no positive r-band flux after inverting the stretch")
    order = np.argsort(rr[inside])
    cum = np.cumsum(r[inside][order])
    r50 = float(rr[inside][order][np.searchsorted(cum, 0.5 * tot)] * m / 2.0)
    rz = np.clip(out["r"], 0, None) * np.clip(out["z"], 0, None)
    out["i"] = np.where((out["r"] > 0) & (out["z"] > 0), np.sqrt(rz),
                        0.5 * (out["r"] + out["z"]))
    return out, max(r50, 1.0), tot


@functools.lru_cache(maxsize=8)
def _load_hdf(x0, y0):
    """Linear g/r/z of one HDF crop: sRGB decoded, B -> g, G -> r, R -> z (approximate)."""
    from skimage.data import hubble_deep_field

    from .sample_data import srgb_to_linear
    rgb = hubble_deep_field()[y0:y0 + HDF_CROP, x0:x0 + HDF_CROP].astype(np.float64) / 255.0
    lin = srgb_to_linear(rgb)[::-1]
    return _prepare({"g": lin[:, :, 2], "r": lin[:, :, 1], "z": lin[:, :, 0]}, 1)


def _truth_image(name, data_dir):
    """(images, r50 px, r flux, residual PSF FWHM in declared pixels) of a truth galaxy."""
    if name.startswith("hdf-"):
        x0, y0 = (int(v) for v in name[4:].split("-"))
        imgs, r50, tot = _load_hdf(x0, y0)
        return imgs, r50, tot, 2.0        # the JPEG's own smoothing, about 2 px
    imgs, r50, tot = _load_cutout(str(_cutout_path(name, data_dir)))
    # the cutouts' seeing (~1.2") in averaged pixels at the finest cutout scale (worst case)
    return imgs, r50, tot, _DECALS_PSF_ARCSEC / (_DOWNSAMPLE * _CUTOUT_SCALE)


def _cutout_path(name, data_dir):
    p = real_data_dir(data_dir) / "decals_cutouts" / f"{name}.jpg"
    if not p.exists():
        raise InputError(f"cutout {p} not found; is {p.parent} the Galaxy Zoo DECaLS cutout "
                         f"folder?")
    return p


def _psfield_path(data_dir):
    d = real_data_dir(data_dir) / "sdss"
    files = sorted(d.glob("psField-*.fit*"))
    if not files:
        raise InputError(f"no SDSS psField-*.fits in {d}; the real-morphology pairs take "
                         f"the SDSS PSF from it")
    return files[0]


def real_morphology_pair(name, seed, *, bands=("r",), data_dir=None, sdss_noise_scale=1.0):
    """One real galaxy seen by SDSS (real KL PSF) and by a DECaLS-like survey.

    Parameters
    ----------
    name : str
        Cutout galaxy name (see `galaxy_names`).
    seed : int
        Scene seed: draws the magnitude, size, position, seeing, noise, PSF position on the
        SDSS field and the noise realisations (the same seed gives the same pair).
    bands : sequence of str or str, optional
        Bands among g, r, i, z.
    data_dir : path-like, optional
        Real-data folder (see `real_data_dir`).
    sdss_noise_scale : float, optional
        Multiply the SDSS image's noise by this factor (as in
        `~astro_enhance.simulate.simulate_pair`; the truth and the DECaLS-like image do not
        change).

    Returns
    -------
    `~astro_enhance.simulate.SimulatedPair`
        As from `~astro_enhance.simulate.simulate_pair`, with an empty star table and
        ``galaxy`` holding ``name``, ``mag_r``, ``r50`` (arcsec), ``scale`` (the declared
        arcsec per pixel of the truth image), ``psf_row``/``psf_col`` (position on the SDSS
        field), ``truth_noise`` per band (residual noise of the truth in units of the
        DECaLS-like sigma) and the pixel positions of the centre.

    Examples
    --------
    With the shared real data (``../shared/data/real``):

    >>> pair = real_morphology_pair(galaxy_names("train")[0], 9_000_000,
    ...                             bands="r")                          # doctest: +SKIP
    >>> pair.sdss["r"].shape, pair.truth["r"].shape                     # doctest: +SKIP
    ((81, 81), (123, 123))
    """
    from astropy.io import fits

    from .io import Image
    from .normalize import estimate_noise
    from .simulate import (SDSS_PIXEL_SCALE, SimulatedPair, _check_bands, _decals_grid,
                           _draw_mag_size, _header, _make_scene, _nmgy_unit, _poisson_per_nmgy,
                           _record_band, _star_table, _tan_wcs, _with_noise, decals_sigma)

    bands = _check_bands(bands)
    seed = int(seed)
    imgs, r50_px, tot_r, res_px = _truth_image(str(name), data_dir)
    psfield = _psfield_path(data_dir)
    sc = _make_scene(seed, _MIN_STAMP, 0)
    rng = np.random.default_rng([seed, 0xEA1])
    mag, r50_goal = _draw_mag_size(rng)    # the simulator's magnitude-size relation
    scale = float(np.clip(r50_goal / r50_px, *_SCALE_RANGE))
    r50 = r50_px * scale
    res_fwhm = res_px * scale
    m = imgs["r"].shape[0]
    stamp = max(m * scale, _MIN_STAMP)
    off = rng.normal(0.0, 1.0, 2) / 3600.0
    row, col = float(rng.uniform(0, 1489)), float(rng.uniform(0, 2048))
    fscale = 10 ** (-0.4 * (mag - 22.5)) / tot_r

    ns = int(round(stamp / SDSS_PIXEL_SCALE))
    sdss_wcs = _tan_wcs(sc["ra"], sc["dec"], SDSS_PIXEL_SCALE, (ns, ns), sc["rot_deg"])
    dec_wcs, dec_shape = _decals_grid(sdss_wcs, (ns, ns))
    gal_wcs = _tan_wcs(sc["ra"] + off[0] / max(math.cos(math.radians(sc["dec"])), 1e-3),
                       sc["dec"] + off[1], scale, (m, m), 0.0)
    pair = SimulatedPair(seed=seed, bands=bands, sdss_wcs=sdss_wcs, decals_wcs=dec_wcs,
                         stars=_star_table())
    truth_noise = {}
    with fits.open(psfield) as psf_hdul:
        for b in bands:
            p = sc["psf"][b]
            bi = "grizu".index(b)
            sig_s = p["sdss_sigma"]
            sig_d = decals_sigma(sig_s, sdss_fwhm=p["sdss_fwhm"], decals_fwhm=p["decals_fwhm"])
            k_s, k_d = _poisson_per_nmgy(b, sig_s, sig_d)
            gal = Image(data=(imgs[b] * fscale).astype(np.float32), wcs=gal_wcs,
                        unit=_nmgy_unit(), header=_header(gal_wcs, band=b, survey="REAL"))
            model_s, truth = _degrade_pair(gal, b, sdss_kl_psf(psf_hdul, b, row, col), p,
                                           res_fwhm, sdss_wcs, (ns, ns), dec_wcs, dec_shape)
            # noise as the simulator adds it (sky + source Poisson)
            f = float(sdss_noise_scale)
            sdss, var_s = _with_noise(model_s, sig_s * f, k_s * f * f,
                                      np.random.default_rng([seed, 0xB00 + bi]))
            decals, _ = _with_noise(truth, sig_d, k_d,
                                    np.random.default_rng([seed, 0xDEC + bi]))
            _record_band(pair, b, sdss=sdss, decals=decals, truth=truth, psf=p,
                         sig_s=sig_s * f, sig_d=sig_d, var_s=var_s,
                         saturated=np.zeros(model_s.shape, bool),
                         beta_sdss=math.nan,
                         AE_REAL=(str(name), "real-morphology truth (DECaLS cutout)"))
            truth_noise[b] = float(estimate_noise(truth) / sig_d)
    cra, cdec = gal_wcs.wcs.crval
    xs, ys = sdss_wcs.wcs_world2pix([[cra, cdec]], 0)[0]
    xd, yd = dec_wcs.wcs_world2pix([[cra, cdec]], 0)[0]
    pair.galaxy = dict(name=str(name), type="real", mag_r=mag, r50=float(r50), scale=scale,
                       residual_psf_fwhm=float(res_fwhm), psf_row=row, psf_col=col,
                       psfield=psfield.name, ra=float(cra), dec=float(cdec),
                       x_sdss=float(xs), y_sdss=float(ys), x_decals=float(xd),
                       y_decals=float(yd), truth_noise=truth_noise)
    return pair


def _degrade_pair(gal, band, kl, psf, res_fwhm, sdss_wcs, sdss_shape, dec_wcs, dec_shape):
    """Noiseless SDSS and DECaLS-grid images of a truth galaxy, with `degrade`: the SDSS one
    through the KL PSF ``kl`` stretched to the drawn seeing (a PSF image at another pixel
    scale), the truth through a DECaLS-like Moffat. ``psf`` is the scene's PSF record."""
    from .simulate import SDSS_PIXEL_SCALE, degrade
    scale = SDSS_PIXEL_SCALE * psf["sdss_fwhm"] / psf_effective_fwhm(kl, SDSS_PIXEL_SCALE)
    model_s = degrade(gal, to="sdss", psf=kl, psf_scale=scale, psf_fwhm_in=res_fwhm,
                      noise=False, band=band, wcs_out=sdss_wcs, shape_out=sdss_shape).data
    moff = _moffat_image(psf["decals_fwhm"], psf["decals_beta"], 0.1)
    truth = degrade(gal, to="decals", psf=moff, psf_scale=0.1, psf_fwhm_in=res_fwhm,
                    noise=False, band=band, wcs_out=dec_wcs, shape_out=dec_shape).data
    return (np.nan_to_num(model_s).astype(np.float64),
            np.nan_to_num(truth).astype(np.float64))


def _real_shard(task):
    from .simulate import _atomic_savez, _pack_shard
    out_dir, split, fname, jobs, bands, data_dir = task
    items, rows = [], []
    for name, seed in jobs:
        pair = real_morphology_pair(name, seed, bands=bands, data_dir=data_dir)
        g = pair.galaxy
        for b in bands:
            items.append((pair, b))
            rows.append(dict(seed=seed, split=split, band=b, file=fname, index=len(items) - 1,
                             name=g["name"], mag_r=g["mag_r"], r50=g["r50"], scale=g["scale"],
                             psf_row=g["psf_row"], psf_col=g["psf_col"],
                             sigma_sdss=pair.sigma_sdss[b], sigma_decals=pair.sigma_decals[b],
                             psf_fwhm_sdss=pair.psf_fwhm_sdss[b],
                             psf_fwhm_decals=pair.psf_fwhm_decals[b],
                             truth_noise=g["truth_noise"][b]))
    _atomic_savez(Path(out_dir) / fname, _pack_shard(items))
    return rows


def write_real_shards(out_dir, *, split, per_galaxy=1, bands=("g", "r", "i"), workers=1,
                      galaxies_per_shard=16, data_dir=None, max_galaxies=None):
    """Write real-morphology pairs of one split as npz shards (the simulator's format).

    Shards are ``out_dir/<split>-real-<first:04d>.npz``, so that the training loaders read
    them beside the parametric ``<split>-*.npz`` shards of the same directory; each row is
    padded with NaN to its shard's largest image (the loaders mask NaN). A manifest
    ``manifest_real_<split>.ecsv`` lists the galaxy, magnitude, size, declared scale, PSF position
    and residual truth noise of every row.

    Parameters
    ----------
    out_dir : path-like
    split : {"train", "val", "bench"}
    per_galaxy : int, optional
        Pairs per galaxy (different seeds: magnitude, size, PSF, noise).
    bands : sequence of str, optional
    workers : int, optional
        Worker processes.
    galaxies_per_shard : int, optional
    data_dir : path-like, optional
        Real-data folder (see `real_data_dir`).
    max_galaxies : int, optional
        Use only the first galaxies of the split.

    Returns
    -------
    `~astropy.table.Table`
        The manifest rows.

    Examples
    --------
    With the shared real data (``../shared/data/real``):

    >>> t = write_real_shards("shards", split="train", per_galaxy=2,
    ...                       workers=2)                                # doctest: +SKIP
    >>> len(t)                                                          # doctest: +SKIP
    2190
    """
    from astropy.table import Table

    from .io import write_table_atomic
    from .simulate import _check_bands

    bands = _check_bands(bands)
    names = galaxy_names(split)[:max_galaxies]
    real_data_dir(data_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_galaxy = int(per_galaxy)
    if not 1 <= per_galaxy <= 10:
        raise InputError(f"per_galaxy must be 1 to 10, got {per_galaxy}")
    first = REAL_SPLIT_SEEDS[split]
    tasks = []
    for s in range(0, len(names), galaxies_per_shard):
        chunk = names[s:s + galaxies_per_shard]
        jobs = [(nm, first + 10 * i + k) for i, nm in enumerate(chunk, start=s)
                for k in range(per_galaxy)]
        tasks.append((str(out_dir), split, f"{split}-real-{s:04d}.npz", jobs, bands,
                      None if data_dir is None else str(data_dir)))
    rows = []
    if workers <= 1:
        for t in tasks:
            rows.extend(_real_shard(t))
    else:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            for r in pool.imap(_real_shard, tasks):
                rows.extend(r)
    table = Table(rows=rows)
    write_table_atomic(table, out_dir / f"manifest_real_{split}.ecsv")
    return table
