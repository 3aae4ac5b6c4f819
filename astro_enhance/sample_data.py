"""A small, deterministic SDSS-like frame that the package makes itself.

Used by the README Quick start, the documentation and the tests: no download, no data files.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .surveys import get_survey

__all__ = ["make_sdss_sample", "make_hdf_sample", "HDFSample", "HDF_REGION", "HDF_CENTRE"]

#: Colour offsets (mag, relative to r) of the sample's galaxies (a red-ish early type).
_GALAXY_COLOUR = {"u": 1.9, "g": 0.75, "r": 0.0, "i": -0.35, "z": -0.6}


def _sersic_b(n):
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def _render_sersic(shape, x0, y0, *, r_eff, n, q, pa, oversample=3):
    """Unit-flux Sersic profile integrated over pixels (by oversampling)."""
    ny, nx = shape
    o = oversample
    ys = (np.arange(ny * o) + 0.5) / o - 0.5
    xs = (np.arange(nx * o) + 0.5) / o - 0.5
    dx = xs[None, :] - x0
    dy = ys[:, None] - y0
    c, s = math.cos(pa), math.sin(pa)
    xr = dx * c + dy * s
    yr = -dx * s + dy * c
    r = np.sqrt(xr * xr + (yr / q) ** 2)
    img = np.exp(-_sersic_b(n) * ((r / r_eff) ** (1.0 / n) - 1.0))
    img = img.reshape(ny, o, nx, o).mean(axis=(1, 3))
    return img / img.sum()


def _render_gaussian_star(shape, x0, y0, sigma):
    """Unit-flux circular Gaussian integrated exactly over pixels (error functions)."""
    from scipy.special import erf

    ny, nx = shape

    def edges(n, c):
        e = np.arange(n + 1) - 0.5 - c
        return 0.5 * np.diff(erf(e / (math.sqrt(2.0) * sigma)))

    return np.outer(edges(ny, y0), edges(nx, x0))


def make_sdss_sample(*, shape=(256, 256), seed=0, band="r"):
    """Make a small SDSS-like frame: galaxies and stars with SDSS seeing, noise and units.

    The image is calibrated like an SDSS ``frame``: nanomaggies per pixel (``m = 22.5 -
    2.5 log10(flux)``), sky subtracted, 0.396"/px with a rotated TAN WCS, Gaussian noise at the
    typical SDSS per-pixel level of the band and the band's median seeing. It holds two
    Sersic galaxies (an exponential disk and a compact de Vaucouleurs-like one) and a few
    stars. The same arguments always give the same image.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(ny, nx)``, at least 16 x 16.
    seed : int, optional
        Seed of the scene (positions, shapes, brightness) and of the noise.
    band : str, optional
        SDSS band (``u``, ``g``, ``r``, ``i`` or ``z``).

    Returns
    -------
    `~astropy.io.fits.PrimaryHDU`
        float32 data, WCS, ``BUNIT='nanomaggy'``, ``TELESCOP='SDSS 2.5-M'``, ``FILTER`` and
        ``PSFFWHM`` (arcsec) in the header.

    Raises
    ------
    astro_enhance.SurveyError
        If ``band`` is not an SDSS band.
    ValueError
        If ``shape`` is smaller than 16 x 16.

    Examples
    --------
    >>> hdu = make_sdss_sample(shape=(64, 64), seed=1, band="g")
    >>> hdu.data.shape, hdu.header["BUNIT"], hdu.header["FILTER"]
    ((64, 64), 'nanomaggy', 'g')
    """
    sdss = get_survey("sdss")
    band = sdss.check_band(band)
    ny, nx = (int(n) for n in shape)
    if ny < 16 or nx < 16:
        raise ValueError(f"shape must be at least (16, 16), got {shape!r}")
    rng = np.random.default_rng(seed)
    scale = sdss.pixel_scale
    fwhm = sdss.psf_fwhm[band]
    sigma_psf = fwhm / 2.3548 / scale
    noise = sdss.noise[band]
    zp = sdss.zeropoint[band]

    # WCS: rotated TAN, standard parity (east left when the rotation is undone).
    angle = math.radians(20.0 + 40.0 * rng.random())
    s_deg = scale / 3600.0
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0 + 10.0 * rng.random(), 2.0 + 5.0 * rng.random()]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    c, s = math.cos(angle), math.sin(angle)
    w.wcs.cd = s_deg * np.array([[-c, s], [s, c]])
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0

    size = min(ny, nx)
    image = np.zeros((ny, nx), dtype=np.float64)
    # Galaxies: a disk near the centre and a compact spheroid.
    galaxies = [
        dict(mag=16.8 + 0.8 * rng.random(), r_eff=(4.0 + 3.0 * rng.random()) * size / 256.0 + 3,
             n=1.0, q=0.35 + 0.3 * rng.random(), pa=math.pi * rng.random(),
             x=nx / 2 + 0.1 * nx * (rng.random() - 0.5),
             y=ny / 2 + 0.1 * ny * (rng.random() - 0.5)),
        dict(mag=18.2 + 0.8 * rng.random(), r_eff=2.0 + 1.5 * rng.random(), n=4.0,
             q=0.6 + 0.3 * rng.random(), pa=math.pi * rng.random(),
             x=nx * (0.2 + 0.6 * rng.random()), y=ny * (0.2 + 0.6 * rng.random())),
    ]
    for g in galaxies:
        flux = 10 ** (-0.4 * (g["mag"] + _GALAXY_COLOUR[band] - zp))
        image += flux * _render_sersic((ny, nx), g["x"], g["y"], r_eff=g["r_eff"], n=g["n"],
                                       q=g["q"], pa=g["pa"])
    from scipy.ndimage import gaussian_filter

    image = gaussian_filter(image, sigma_psf, mode="constant")
    # Stars: about six per 256 x 256, with random colours.
    n_stars = max(2, int(round(6 * ny * nx / 256.0 ** 2)))
    margin = 4.0 * sigma_psf
    for _ in range(n_stars):
        mag = 16.0 + 5.0 * rng.random() + (rng.normal(0.0, 0.3) if band != "r" else 0.0)
        x0 = margin + (nx - 2 * margin) * rng.random()
        y0 = margin + (ny - 2 * margin) * rng.random()
        image += 10 ** (-0.4 * (mag - zp)) * _render_gaussian_star((ny, nx), x0, y0, sigma_psf)
    image += rng.normal(0.0, noise, size=(ny, nx))

    header = w.to_header()
    header["BUNIT"] = ("nanomaggy", "1 nanomaggy = 3.631e-6 Jy")
    header["TELESCOP"] = ("SDSS 2.5-M", "synthetic: SDSS-like")
    header["ORIGIN"] = "SDSS"
    header["FILTER"] = (band, "filter used")
    header["PSFFWHM"] = (fwhm, "[arcsec] PSF FWHM")
    header["SKYSIG"] = (noise, "[nanomaggy] per-pixel noise added")
    header["OBJECT"] = "astro_enhance synthetic sample"
    header["AE_SEED"] = (int(seed), "seed of make_sdss_sample")
    header.add_comment("Synthetic SDSS-like frame made by astro_enhance.sample_data."
                       "make_sdss_sample; not an observation.")
    return fits.PrimaryHDU(data=image.astype(np.float32), header=header)


#: Cutout of the Hubble eXtreme Deep Field image used by `make_hdf_sample`: ``(x0, y0, size)``
#: in the pixels of ``skimage.data.hubble_deep_field()`` (a face-on spiral with neighbours).
HDF_REGION = (65, 340, 120)
#: Sky position given to the HDF sample (the real Hubble Deep Field North, RA, Dec in deg).
HDF_CENTRE = (189.2058, 62.2161)


@dataclass
class HDFSample:
    """Real galaxy morphology (Hubble eXtreme Deep Field) as SDSS and DECaLS would see it.

    Attributes
    ----------
    sdss : `~astropy.io.fits.PrimaryHDU`
        SDSS-like image (0.396"/px, SDSS PSF and noise, nanomaggies per pixel), stars added.
    truth : `~astro_enhance.io.Image`
        Noiseless truth on the DECaLS grid the pipeline puts ``sdss`` on (0.262"/px, DECaLS
        PSF), galaxies only (no stars).
    truth_with_stars : `~astro_enhance.io.Image`
        The same with the added stars (what ``sdss`` was degraded from).
    stars : `~astropy.table.Table`
        Added stars: ``x``, ``y`` (0-based DECaLS-grid pixels), ``mag`` (AB).
    sigma_sdss, sigma_decals : float
        Per-pixel background noise of the SDSS image and of a DECaLS image of the band.
    psf_fwhm_sdss, psf_fwhm_decals : float
        PSF FWHMs, arcsec.
    center : tuple of float
        ``(x, y)`` of the spiral on the DECaLS grid (0-based pixels).

    Examples
    --------
    >>> from astro_enhance.sample_data import make_hdf_sample
    >>> sample = make_hdf_sample(seed=0)
    >>> sample.truth.shape, len(sample.stars)
    ((265, 265), 3)
    """

    sdss: fits.PrimaryHDU
    truth: object
    truth_with_stars: object
    stars: object
    sigma_sdss: float
    sigma_decals: float
    psf_fwhm_sdss: float
    psf_fwhm_decals: float
    center: tuple = field(default=(0.0, 0.0))


def srgb_to_linear(rgb):
    """Undo the sRGB transfer curve of display-encoded values in [0, 1] (IEC 61966-2-1)."""
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _hdf_luminance(region):
    """Linear luminance of a cutout of skimage's Hubble eXtreme Deep Field JPEG, sky at 0."""
    from skimage.data import hubble_deep_field

    x0, y0, size = region
    rgb = hubble_deep_field()[y0:y0 + size, x0:x0 + size].astype(np.float64) / 255.0
    # undo the sRGB transfer curve (the JPEG is display-encoded), then luminance
    lum = srgb_to_linear(rgb) @ np.array([0.2126, 0.7152, 0.0722])
    lum = lum[::-1]  # image rows top-down -> FITS rows bottom-up (north up)
    sky = float(np.median(lum))
    mad = float(np.median(np.abs(lum - sky))) * 1.4826
    # the JPEG's own noise and compression floor are not part of a noiseless truth
    return np.clip(lum - sky - 2.0 * mad, 0.0, None)


def make_hdf_sample(*, band="r", seed=0, region=HDF_REGION, zoom_factor=2.2, mag=15.8,
                    n_stars=3):
    """Real galaxy morphology: a Hubble Deep Field cutout made into an SDSS / DECaLS pair.

    The Hubble eXtreme Deep Field colour image that scikit-image ships
    (``skimage.data.hubble_deep_field()``, a local file, no download) supplies real galaxy
    shapes -- spiral arms, clumps, interacting neighbours -- that no analytic profile has.
    A cutout is turned into a linear luminance image (the sRGB curve undone, sky and the
    JPEG's noise floor removed), magnified onto the DECaLS grid (0.262"/px) so that its
    galaxies have the angular size of SDSS galaxies, scaled to a total magnitude ``mag`` and
    convolved to the DECaLS PSF: the noiseless *truth*. A few stars are added and the result
    is degraded to SDSS with the package's own simulator (`astro_enhance.simulate.degrade`:
    PSF matching, flux-conserving resampling to 0.396"/px, SDSS sky and source noise).

    This is morphology, not photometry: the HDF galaxies are distant and faint; here they are
    placed, magnified, at the Hubble Deep Field North position as if they were nearby bright
    galaxies. The same arguments always give the same images.

    Parameters
    ----------
    band : str, optional
        SDSS band of the SDSS-like image (``g``, ``r`` or ``i``).
    seed : int, optional
        Seed of the star positions and of the noise.
    region : tuple of int, optional
        ``(x0, y0, size)`` of the cutout in the HDF image's pixels.
    zoom_factor : float, optional
        DECaLS pixels per HDF image pixel (the magnification).
    mag : float, optional
        Total AB magnitude of the cutout's galaxies.
    n_stars : int, optional
        Number of stars added (r 15.5 to 18.5), away from the central galaxy.

    Returns
    -------
    HDFSample

    Raises
    ------
    astro_enhance.SurveyError
        If ``band`` is not an SDSS band.

    Examples
    --------
    >>> s = make_hdf_sample(seed=1)
    >>> s.sdss.header["BUNIT"], s.sdss.data.shape, s.truth.shape
    ('nanomaggy', (175, 175), (265, 265))
    """
    import astropy.units as u
    from scipy.ndimage import gaussian_filter, zoom

    from .io import Image
    from .resample import target_wcs
    from .simulate import decals_sigma, degrade

    sdss = get_survey("sdss")
    decals = get_survey("decals")
    band = sdss.check_band(band)
    rng = np.random.default_rng(seed)
    fw_s = float(sdss.psf_fwhm[band])
    fw_d = float(decals.psf_fwhm.get(band, decals.psf_fwhm["r"]))
    lum = _hdf_luminance(region)

    # SDSS grid (north up, centred on HDF-N) and the DECaLS grid the pipeline puts it on
    size_arcsec = zoom_factor * lum.shape[0] * decals.pixel_scale
    ns = int(round(size_arcsec / sdss.pixel_scale))
    ws = WCS(naxis=2)
    ws.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    ws.wcs.cunit = ["deg", "deg"]
    ws.wcs.crval = list(HDF_CENTRE)
    ws.wcs.crpix = [(ns + 1) / 2.0, (ns + 1) / 2.0]
    ws.wcs.cd = np.diag([-1.0, 1.0]) * sdss.pixel_scale / 3600.0
    ws.wcs.radesys = "ICRS"
    ws.wcs.equinox = 2000.0
    ws.array_shape = (ns, ns)
    wd, shape_d = target_wcs(ws, "decals")
    ny, nx = (int(v) for v in shape_d)

    # magnify onto the DECaLS grid, then the DECaLS PSF (the HDF's own PSF is ~1.5 HDF px)
    factor = (ny / lum.shape[0], nx / lum.shape[1])
    gal = np.clip(zoom(lum, factor, order=1, grid_mode=True, mode="grid-constant"), 0, None)
    fwhm_px = fw_d / decals.pixel_scale
    own_px = 1.5 * max(factor)
    sig = math.sqrt(max(fwhm_px ** 2 - own_px ** 2, 1.0)) / 2.3548
    gal = gaussian_filter(gal, sig, mode="constant")
    gal *= 10 ** (-0.4 * (mag - sdss.zeropoint[band])) / gal.sum()

    # stars, away from the central spiral
    cx, cy = _hdf_centre(gal)
    with_stars, stars = _add_stars(gal, rng, n_stars, (cx, cy), fwhm_px / 2.3548,
                                   sdss.zeropoint[band])

    hd = wd.to_header()
    hd["BUNIT"] = "nanomaggy"
    hd["FILTER"] = band
    hd["PSFFWHM"] = (fw_d, "[arcsec] PSF FWHM (DECaLS typical)")
    hd.add_comment("Noiseless truth made from skimage.data.hubble_deep_field() by "
                   "astro_enhance.sample_data.make_hdf_sample; not an observation.")
    truth = Image(data=gal.astype(np.float32), wcs=wd, unit=u.nanomaggy, header=hd.copy())
    truth_s = Image(data=with_stars.astype(np.float32), wcs=wd, unit=u.nanomaggy, header=hd)
    sd = degrade(truth_s, to="sdss", psf_fwhm=fw_s, psf_fwhm_in=fw_d, band=band,
                 wcs_out=ws, shape_out=(ns, ns), rng=rng, return_type="image")
    sigma_s = float(sdss.noise[band])
    h = _hdf_sdss_header(ws, band, fw_s, sigma_s, seed)
    return HDFSample(
        sdss=fits.PrimaryHDU(data=np.asarray(sd.data, dtype=np.float32), header=h),
        truth=truth, truth_with_stars=truth_s, stars=stars, sigma_sdss=sigma_s,
        sigma_decals=float(decals_sigma(sigma_s, sdss_fwhm=fw_s, decals_fwhm=fw_d)),
        psf_fwhm_sdss=fw_s, psf_fwhm_decals=fw_d, center=(cx, cy))


def _hdf_sdss_header(ws, band, fwhm, sigma, seed):
    """The FITS header of the HDF sample's SDSS-like image."""
    h = ws.to_header()
    h["BUNIT"] = ("nanomaggy", "1 nanomaggy = 3.631e-6 Jy")
    h["TELESCOP"] = ("SDSS 2.5-M", "synthetic: SDSS-like")
    h["ORIGIN"] = "SDSS"
    h["FILTER"] = (band, "filter used")
    h["PSFFWHM"] = (fwhm, "[arcsec] PSF FWHM")
    h["SKYSIG"] = (sigma, "[nanomaggy] per-pixel noise")
    h["OBJECT"] = "HDF morphology sample"
    h["AE_SEED"] = (int(seed), "seed of make_hdf_sample")
    h.add_comment("Hubble eXtreme Deep Field galaxies (skimage.data.hubble_deep_field) "
                  "magnified and degraded to SDSS by astro_enhance.sample_data.make_hdf_sample;"
                  " not an observation.")
    return h


def _add_stars(gal, rng, n_stars, centre, sigma_star, zeropoint):
    """Gaussian stars of r 15.5-18.5 added at random, away (0.28 of the width) from the
    centre. Returns the image with the stars and their table (x, y, mag)."""
    from astropy.table import Table

    ny, nx = gal.shape
    cx, cy = centre
    with_stars = gal.copy()
    rows = []
    while len(rows) < n_stars:
        x, y = rng.uniform(8, nx - 8), rng.uniform(8, ny - 8)
        if math.hypot(x - cx, y - cy) < 0.28 * nx:
            continue
        m = float(rng.uniform(15.5, 18.5))
        with_stars += (10 ** (-0.4 * (m - zeropoint))
                       * _render_gaussian_star((ny, nx), x, y, sigma_star))
        rows.append((x, y, m))
    return with_stars, Table(rows=rows or None, names=("x", "y", "mag"),
                             dtype=(float, float, float))


def _hdf_centre(img):
    """Peak of the smoothed image in the central half: the spiral's centre."""
    from scipy.ndimage import gaussian_filter

    ny, nx = img.shape
    sm = gaussian_filter(img, 3.0)
    y0, x0 = ny // 4, nx // 4
    sub = sm[y0:ny - y0, x0:nx - x0]
    iy, ix = np.unravel_index(np.argmax(sub), sub.shape)
    return float(ix + x0), float(iy + y0)
