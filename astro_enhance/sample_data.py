"""A small, deterministic SDSS-like frame that the package makes itself.

Used by the README Quick start, the documentation and the tests: no download, no data files.
"""

import math

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .surveys import get_survey

__all__ = ["make_sdss_sample"]

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
