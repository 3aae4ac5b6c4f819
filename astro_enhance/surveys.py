"""Imaging surveys astro_enhance knows: pixel scale, bands, seeing, zero point, units, noise.

The numbers are *typical* values for planning, simulation and sanity checks, not calibrations:
measure a real image's noise with `~astro_enhance.normalize.estimate_noise` and its seeing from
its stars.

Sources
-------
- SDSS: pixel scale 0.396"/px; median seeing in r about 1.3" (Stoughton et al. 2002, AJ 123,
  485; DR7 imaging documentation). ``frame`` images are calibrated in nanomaggies per pixel
  (``m = 22.5 - 2.5 log10(f)``, zero point 22.5). Per-pixel noise from the sky in a typical
  frame: about 0.020 (g), 0.035 (r), 0.05 (i) nanomaggy, consistent with the 5-sigma point
  source depths u 22.3, g 23.1, r 22.7, i 22.2, z 20.8 for a PSF of the listed FWHM (the u and
  z values are derived from these depths with the relation below); an SDSS frame in this
  repository's shared data gives 0.022, 0.034 and 0.056 with `estimate_noise`.
- DECaLS (Legacy Surveys DR9/DR10 coadds): 0.262"/px, nanomaggies per pixel (zero point
  22.5); median delivered seeing g 1.29", r 1.18", z 1.11" (Dey et al. 2019, AJ 157, 168),
  i about 1.15" (DR10). Per-pixel noise: the coadds are about 1.7 mag deeper than SDSS for point
  sources (PSF depth r ~24.4 against ~22.7). For a Gaussian PSF of width ``s`` pixels the
  point-source flux error is ``sigma_pix * sqrt(4 pi) * s``, so
  ``sigma_pix(DECaLS) = sigma_pix(SDSS) * 10**(-0.4 * 1.7) * (FWHM_SDSS / FWHM_DECaLS)
  * (0.262 / 0.396)``, which `_deeper_noise` computes per band: about 0.0031 (g), 0.0054 (r),
  0.0076 (i) nanomaggy per DECaLS pixel. The same 1.7 mag is assumed in z (DECaLS z is in
  fact deeper still relative to SDSS z).
- DES (DR2 coadds): 0.263"/px, counts with zero point 30.0; median PSF FWHM g 1.11", r 0.95",
  i 0.88", z 0.83", Y 0.90" (Abbott et al. 2021, ApJS 255, 20); noise from the 10-sigma
  depths g 24.7, r 24.4, i 23.8, z 23.1, Y 21.9 taken as 5-sigma at +0.75 mag.
- HSC-SSP Wide (PDR3): 0.168"/px, coadd counts with zero point 27.0; seeing g 0.79", r 0.75",
  i 0.61", z 0.68", y 0.71"; 5-sigma point source depths g 26.5, r 26.5, i 26.2, z 25.2,
  y 24.4 (Aihara et al. 2022, PASJ 74, 247).
- Pan-STARRS1 3pi stacks: 0.25"/px, counts with zero point 25 + 2.5 log10(EXPTIME) (25.0 is
  listed, per second of exposure); seeing g 1.31", r 1.19", i 1.11", z 1.07", y 1.02"; 5-sigma
  stack depths g 23.3, r 23.2, i 23.1, z 22.3, y 21.4 (Chambers et al. 2016, arXiv:1612.05560).

Noise from a depth ``m5`` uses ``sigma_pix = 10**(-0.4 (m5 - zp)) / 5 / (sqrt(4 pi) s)`` with
``s = FWHM / 2.355 / pixel_scale`` (the optimal point-source noise of a Gaussian PSF).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .exceptions import SurveyError

__all__ = ["Survey", "get_survey", "list_surveys", "guess_survey", "SURVEYS"]


@dataclass(frozen=True)
class Survey:
    """An imaging survey's typical properties.

    Parameters
    ----------
    name : str
        Lower-case short name (``"sdss"``, ``"decals"``...).
    pixel_scale : float
        Pixel scale in arcsec per pixel.
    bands : tuple of str
        Filters.
    psf_fwhm : dict
        Typical (median) PSF FWHM per band, arcsec.
    zeropoint : dict
        AB magnitude zero point per band in the native units: ``m = zp - 2.5 log10(value)``.
    unit : str
        Native unit of the pixel values (``BUNIT`` spelling), per pixel.
    noise : dict
        Typical per-pixel background noise (1 sigma) per band, in the native unit.
    telescope : str
        Telescope (and camera).
    title : str, optional
        Display name.
    description : str, optional
        One line about the data product the numbers describe.

    Examples
    --------
    >>> from astro_enhance.surveys import get_survey
    >>> sdss = get_survey("sdss")
    >>> sdss.pixel_scale, sdss.bands
    (0.396, ('u', 'g', 'r', 'i', 'z'))
    """

    name: str
    pixel_scale: float
    bands: tuple
    psf_fwhm: dict
    zeropoint: dict
    unit: str
    noise: dict
    telescope: str
    title: str = ""
    description: str = ""
    aliases: tuple = field(default=(), repr=False)

    def __post_init__(self):
        if not self.title:
            object.__setattr__(self, "title", self.name.upper())

    def check_band(self, band):
        """Return ``band`` if the survey has it, else raise `~astro_enhance.SurveyError`.

        Parameters
        ----------
        band : str

        Returns
        -------
        str

        Raises
        ------
        astro_enhance.SurveyError
            If the survey has no such band.

        Examples
        --------
        >>> get_survey("sdss").check_band("r")
        'r'
        """
        b = str(band).strip()
        if b in self.bands:
            return b
        if b.lower() in self.bands:
            return b.lower()
        raise SurveyError(f"{self.title} has no band {band!r}: choose one of "
                          f"{', '.join(self.bands)}")


def _noise_from_depth(m5, zp, fwhm, pixel_scale):
    """Per-pixel sigma giving a 5-sigma point-source depth ``m5`` for a Gaussian PSF."""
    s = fwhm / 2.3548 / pixel_scale
    flux_sigma = 10 ** (-0.4 * (m5 - zp)) / 5.0
    return flux_sigma / (math.sqrt(4 * math.pi) * s)


def _deeper_noise(sigma, dmag, fwhm_from, fwhm_to, scale_from, scale_to):
    """Per-pixel sigma of a survey ``dmag`` deeper for point sources (see module docstring)."""
    return sigma * 10 ** (-0.4 * dmag) * (fwhm_from / fwhm_to) * (scale_to / scale_from)


def _sig(x):
    return float(f"{x:.3g}")


_SDSS_FWHM = {"u": 1.53, "g": 1.44, "r": 1.32, "i": 1.26, "z": 1.29}
_SDSS_NOISE = {"g": 0.020, "r": 0.035, "i": 0.05}
_SDSS_NOISE["u"] = _sig(_noise_from_depth(22.3, 22.5, _SDSS_FWHM["u"], 0.396))
_SDSS_NOISE["z"] = _sig(_noise_from_depth(20.8, 22.5, _SDSS_FWHM["z"], 0.396))
_SDSS_NOISE = {b: _SDSS_NOISE[b] for b in "ugriz"}

_DECALS_FWHM = {"g": 1.29, "r": 1.18, "i": 1.15, "z": 1.11}
#: DECaLS is about this much deeper than SDSS for point sources (magnitudes).
DECALS_DEPTH_GAIN = 1.7
_DECALS_NOISE = {b: _sig(_deeper_noise(_SDSS_NOISE[b], DECALS_DEPTH_GAIN, _SDSS_FWHM[b],
                                       _DECALS_FWHM[b], 0.396, 0.262)) for b in "griz"}


def _depth_noise(depths, zp, fwhm, scale):
    return {b: _sig(_noise_from_depth(m5, zp, fwhm[b], scale)) for b, m5 in depths.items()}


_DES_FWHM = {"g": 1.11, "r": 0.95, "i": 0.88, "z": 0.83, "Y": 0.90}
_DES_DEPTH = {"g": 25.45, "r": 25.15, "i": 24.55, "z": 23.85, "Y": 22.65}
_HSC_FWHM = {"g": 0.79, "r": 0.75, "i": 0.61, "z": 0.68, "y": 0.71}
_HSC_DEPTH = {"g": 26.5, "r": 26.5, "i": 26.2, "z": 25.2, "y": 24.4}
_PS1_FWHM = {"g": 1.31, "r": 1.19, "i": 1.11, "z": 1.07, "y": 1.02}
_PS1_DEPTH = {"g": 23.3, "r": 23.2, "i": 23.1, "z": 22.3, "y": 21.4}

#: The known surveys, by name.
SURVEYS = {
    "sdss": Survey(
        name="sdss", pixel_scale=0.396, bands=("u", "g", "r", "i", "z"),
        psf_fwhm=dict(_SDSS_FWHM), zeropoint={b: 22.5 for b in "ugriz"}, unit="nanomaggy",
        noise=_SDSS_NOISE, telescope="SDSS 2.5-m (Apache Point), SDSS imaging camera",
        title="SDSS", description="SDSS DR frame images, nanomaggies per pixel",
        aliases=("sloan",)),
    "decals": Survey(
        name="decals", pixel_scale=0.262, bands=("g", "r", "i", "z"),
        psf_fwhm=dict(_DECALS_FWHM), zeropoint={b: 22.5 for b in "griz"}, unit="nanomaggy",
        noise=_DECALS_NOISE, telescope="CTIO Blanco 4-m, DECam",
        title="DECaLS", description="Legacy Surveys DR9/DR10 coadds, nanomaggies per pixel",
        aliases=("legacy", "legacysurvey", "ls", "decam")),
    "des": Survey(
        name="des", pixel_scale=0.263, bands=("g", "r", "i", "z", "Y"),
        psf_fwhm=dict(_DES_FWHM), zeropoint={b: 30.0 for b in _DES_FWHM}, unit="count",
        noise=_depth_noise(_DES_DEPTH, 30.0, _DES_FWHM, 0.263),
        telescope="CTIO Blanco 4-m, DECam", title="DES",
        description="DES DR2 coadds, counts per pixel with zero point 30"),
    "hsc": Survey(
        name="hsc", pixel_scale=0.168, bands=("g", "r", "i", "z", "y"),
        psf_fwhm=dict(_HSC_FWHM), zeropoint={b: 27.0 for b in _HSC_FWHM}, unit="count",
        noise=_depth_noise(_HSC_DEPTH, 27.0, _HSC_FWHM, 0.168),
        telescope="Subaru 8.2-m, Hyper Suprime-Cam", title="HSC",
        description="HSC-SSP Wide PDR3 coadds, counts per pixel with zero point 27",
        aliases=("hsc-ssp", "subaru")),
    "ps1": Survey(
        name="ps1", pixel_scale=0.25, bands=("g", "r", "i", "z", "y"),
        psf_fwhm=dict(_PS1_FWHM), zeropoint={b: 25.0 for b in _PS1_FWHM}, unit="count",
        noise=_depth_noise(_PS1_DEPTH, 25.0, _PS1_FWHM, 0.25),
        telescope="Pan-STARRS1 1.8-m, GPC1", title="Pan-STARRS1",
        description="PS1 3pi stacks, counts per pixel (zero point 25 + 2.5 log10 EXPTIME)",
        aliases=("panstarrs", "pan-starrs", "pan-starrs1", "ps")),
}


def list_surveys():
    """Names of the known surveys.

    Returns
    -------
    list of str

    Examples
    --------
    >>> list_surveys()
    ['sdss', 'decals', 'des', 'hsc', 'ps1']
    """
    return list(SURVEYS)


def get_survey(name):
    """Look a survey up by name (case-insensitive; a few aliases such as ``"legacy"``).

    Parameters
    ----------
    name : str or `Survey`
        Survey name; a `Survey` is returned unchanged.

    Returns
    -------
    `Survey`

    Raises
    ------
    astro_enhance.SurveyError
        If the name is unknown (the message lists the known names).

    Examples
    --------
    >>> get_survey("DECaLS").pixel_scale
    0.262
    """
    if isinstance(name, Survey):
        return name
    key = str(name).strip().lower()
    if key in SURVEYS:
        return SURVEYS[key]
    for s in SURVEYS.values():
        if key in s.aliases:
            return s
    raise SurveyError(f"unknown survey {name!r}: choose one of {', '.join(SURVEYS)}")


#: Keyword patterns identifying a survey: (survey, keywords to look in, substrings).
_KEYWORD_RULES = [
    ("sdss", ("TELESCOP", "ORIGIN", "INSTRUME", "SURVEY", "OBSERVAT"), ("SDSS", "SLOAN")),
    ("hsc", ("TELESCOP", "INSTRUME", "ORIGIN", "SURVEY"), ("HYPER SUPRIME", "HSC", "SUBARU")),
    ("ps1", ("TELESCOP", "INSTRUME", "ORIGIN", "SURVEY"),
     ("PS1", "PAN-STARRS", "PANSTARRS", "GPC1")),
    ("des", ("SURVEY", "ORIGIN", "PROJECT", "OBSERVAT"), ("DES",)),
    ("decals", ("SURVEY", "ORIGIN", "PROJECT"), ("DECALS", "LEGACY", "LEGACYSURVEY")),
    ("decals", ("TELESCOP", "INSTRUME"), ("DECAM", "BLANCO", "CTIO 4")),
]


def _pixel_scale_arcsec(wcs):
    from astropy.wcs.utils import proj_plane_pixel_scales

    try:
        cel = wcs.celestial if wcs.naxis != 2 else wcs
        return float(np.mean(proj_plane_pixel_scales(cel)) * 3600.0)
    except Exception:  # noqa: BLE001 - a broken WCS just gives no scale
        return None


def guess_survey(header_or_wcs):
    """Guess which survey an image comes from.

    Header keywords (``TELESCOP``, ``ORIGIN``, ``INSTRUME``, ``SURVEY``...) are the strongest
    clue; the pixel scale confirms or weakens them, and alone gives a moderate guess. Images
    written by astro_enhance (``AE_TGT``) are on the target survey's grid and are reported as
    such.

    Parameters
    ----------
    header_or_wcs : `~astropy.io.fits.Header`, `~astropy.wcs.WCS`, HDU or `~astro_enhance.Image`
        What to look at.

    Returns
    -------
    survey : `Survey` or None
        The best guess, None when nothing matches.
    confidence : float
        0 (no idea) to 1 (certain).
    reason : str
        Why, in words.

    Examples
    --------
    >>> from astropy.io import fits
    >>> survey, conf, why = guess_survey(fits.Header({"ORIGIN": "SDSS", "TELESCOP": "2.5m"}))
    >>> survey.name, conf >= 0.8
    ('sdss', True)
    """
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    import warnings

    header, wcs = None, None
    obj = header_or_wcs
    if hasattr(obj, "header") and hasattr(obj, "wcs") and not isinstance(obj, WCS):
        header, wcs = obj.header, obj.wcs  # an Image
    elif isinstance(obj, WCS):
        wcs = obj
    elif isinstance(obj, fits.Header):
        header = obj
    elif hasattr(obj, "header"):
        header = obj.header  # an HDU
    elif obj is None:
        return None, 0.0, "nothing to look at"
    else:
        raise TypeError(f"guess_survey needs a Header, WCS, HDU or Image, not "
                        f"{type(obj).__name__}")
    if wcs is None and header is not None and "CTYPE1" in header:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wcs = WCS(header)
        except Exception:  # noqa: BLE001
            wcs = None
    if wcs is not None and not getattr(wcs, "has_celestial", False):
        wcs = None
    scale = _pixel_scale_arcsec(wcs) if wcs is not None else None

    def scale_match(survey):
        return scale is not None and abs(scale - survey.pixel_scale) <= 0.01 * survey.pixel_scale

    scale_txt = f"pixel scale {scale:.4f}\"/px" if scale is not None else "no pixel scale"

    # Output of astro_enhance: on the target survey's grid.
    if header is not None and "AE_TGT" in header:
        try:
            s = get_survey(header["AE_TGT"])
            conf = 0.95 if scale_match(s) else 0.7
            return s, conf, (f"astro_enhance output on the {s.title} grid (AE_TGT="
                             f"{header['AE_TGT']!r}, {scale_txt})")
        except SurveyError:
            pass

    if header is not None and "LEGPIPEV" in header:
        s = SURVEYS["decals"]
        conf = 0.9 if scale is None or scale_match(s) else 0.6
        return s, conf, f"LEGPIPEV present: a Legacy Surveys (legacypipe) product ({scale_txt})"
    if header is not None:
        for name, keys, needles in _KEYWORD_RULES:
            for key in keys:
                value = header.get(key)
                if value is None or isinstance(value, bool):
                    continue
                text = str(value).upper()
                hit = next((n for n in needles if _word_in(n, text)), None)
                if hit is None:
                    continue
                s = SURVEYS[name]
                clue = f"{key}={str(value).strip()!r}"
                if name == "decals" and key in ("TELESCOP", "INSTRUME"):
                    # DECam data: DECaLS or DES; the pixel scale cannot tell them apart.
                    conf = 0.6 if scale is None or scale_match(s) else 0.4
                    return s, conf, f"{clue} is DECam (DECaLS or DES; {scale_txt})"
                if scale is None:
                    return s, 0.8, f"{clue} ({scale_txt})"
                if scale_match(s):
                    return s, 0.95, f"{clue} and {scale_txt} match {s.title}"
                return s, 0.5, (f"{clue} says {s.title} but the {scale_txt} does not match its "
                                f"{s.pixel_scale}\"/px (resampled?)")

    if scale is not None:
        matches = [s for s in SURVEYS.values() if scale_match(s)]
        if matches:
            s = matches[0]
            if len(matches) > 1:
                others = ", ".join(m.title for m in matches[1:])
                return s, 0.35, (f"{scale_txt} matches {s.title} (also {others}); no telescope "
                                 "keyword")
            return s, 0.5, f"{scale_txt} matches {s.title}; no telescope keyword"
        return None, 0.0, f"{scale_txt} matches no known survey and no telescope keyword"
    return None, 0.0, "no telescope keyword and no celestial WCS"


def _word_in(needle, text):
    """``needle`` occurs in ``text`` as a word (so 'DES' does not match 'DESI' or 'MODES')."""
    import re

    return re.search(rf"(?<![A-Z0-9]){re.escape(needle)}(?![A-Z0-9])", text) is not None
