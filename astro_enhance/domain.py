"""Is an input within what a trained model has seen? (the `~astro_enhance.DomainWarning`).

A network trained on simulated SDSS galaxy fields gives answers on anything, but it has only
*learnt* something about inputs like its training scenes. `check_domain` compares an input
image with the training domain of an enhancer and returns one plain-language reason per
difference; `astro_enhance.enhance_fits` turns each into a `~astro_enhance.DomainWarning`
and records it as HISTORY in the output header.

What is compared (tolerances in `TOLERANCES`):

* pixel scale of the input against the input survey the model was trained on
  (SDSS, 0.396"/px);
* band: the model's bands (g, r, i for the shipped models);
* noise level: the measured per-pixel noise of the input against the survey's nominal noise
  in that band (the training scenes span 0.85-1.18 times it). The networks see the image
  divided by its noise, so a much deeper image (a coadd) shows them sources at
  signal-to-noise ratios they never saw, and a much shallower one the reverse;
* whether it looks like a galaxy field: the fraction of pixels more than 5 sigma above the
  background (0.3-9% in the training scenes); a crowded star field or a large bright object
  fills far more.

A survey other than the training one is reported too when the header says so.
"""

import math

import numpy as np

__all__ = ["check_domain", "TRAINING_DOMAIN", "TOLERANCES"]

#: What the shipped models were trained on: SDSS frames (nanomaggies per 0.396" pixel) of
#: simulated galaxy fields in g, r and i (`astro_enhance.simulate`). Measured on 128
#: training scenes: noise 0.85-1.18 times the survey's nominal per-pixel noise, 0.3-9% of the
#: pixels more than 5 sigma above the background.
TRAINING_DOMAIN = {
    "survey": "sdss",
    "pixel_scale": 0.396,
    "bands": ("g", "r", "i"),
    "noise_ratio": (0.85, 1.18),
    "source_fraction": (0.003, 0.09),
}

#: How far outside the training domain an input may be before a warning: relative pixel-scale
#: difference, noise ratio range, largest fraction of > 5 sigma pixels.
TOLERANCES = {"pixel_scale": 0.10, "noise_ratio": (0.5, 2.0), "source_fraction": 0.15}


def _pixel_scale(wcs):
    from astropy.wcs.utils import proj_plane_pixel_scales

    try:
        return float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
    except Exception:  # noqa: BLE001 - a WCS without a usable scale: nothing to compare
        return math.nan


def check_domain(image, *, info=None, band=None, survey=None, sigma=None):
    """Reasons why an image is outside a model's training domain (empty when it is not).

    Parameters
    ----------
    image : `~astro_enhance.io.Image` or anything `~astro_enhance.io.read_image` accepts
        The input as given to the pipeline (native pixel grid, before resampling).
    info : `~astro_enhance.enhancers.EnhancerInfo`, optional
        The enhancer; its ``survey_pair[0]`` and ``bands`` replace the defaults of
        `TRAINING_DOMAIN`.
    band : str, optional
        Band of the image (default: from the FILTER/BAND header keyword, else unknown and the
        band and noise tests are skipped).
    survey : `~astro_enhance.surveys.Survey`, optional
        Survey the input comes from, if known (e.g. from
        `~astro_enhance.surveys.guess_survey`).
    sigma : float, optional
        The image's per-pixel noise if already measured
        (`~astro_enhance.normalize.estimate_noise` of its finite, unmasked pixels).

    Returns
    -------
    list of str
        One sentence per difference, naming the measured value and the trained range.

    Examples
    --------
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> check_domain(make_sdss_sample())
    []
    >>> import numpy as np
    >>> from astro_enhance.io import read_image
    >>> img = read_image(make_sdss_sample())
    >>> img.data = img.data * 10   # ten times the noise and the flux
    >>> print(check_domain(img)[0])  # doctest: +ELLIPSIS
    noise level 10... times the nominal SDSS r noise...
    """
    from .io import read_image
    from .normalize import estimate_noise
    from .surveys import get_survey

    img = read_image(image)
    dom = dict(TRAINING_DOMAIN)
    if info is not None:
        if getattr(info, "survey_pair", None):
            dom["survey"] = info.survey_pair[0]
        if getattr(info, "bands", None):
            dom["bands"] = tuple(info.bands)
    trained = get_survey(dom["survey"])
    dom["pixel_scale"] = trained.pixel_scale
    reasons = []

    if survey is not None and survey.name != trained.name:
        reasons.append(f"the input looks like {survey.name.upper()} data; the model was "
                       f"trained on {trained.name.upper()} images")

    scale = _pixel_scale(img.wcs)
    if math.isfinite(scale):
        rel = abs(scale / dom["pixel_scale"] - 1.0)
        if rel > TOLERANCES["pixel_scale"]:
            reasons.append(f"pixel scale {scale:.3f}\"/px; the model was trained on "
                           f"{dom['pixel_scale']:.3f}\"/px {trained.name.upper()} pixels")

    if band is None:
        for key in ("FILTER", "BAND", "FILTNAM"):
            val = img.header.get(key)
            if isinstance(val, str) and val.strip():
                band = val.strip()[0].lower()
                break
    if band is not None and dom["bands"] and band not in dom["bands"]:
        reasons.append(f"band {band!r}; the model was trained on bands "
                       f"{', '.join(dom['bands'])}")

    data = np.asarray(img.data, dtype=np.float32)
    finite = np.isfinite(data)
    if img.mask is not None:
        finite &= ~np.asarray(img.mask, dtype=bool)
    if finite.sum() < 100:
        return reasons
    sigma = float(estimate_noise(data, mask=~finite) if sigma is None else sigma)
    if not sigma > 0:
        return reasons
    nominal = trained.noise.get(band) if band is not None else None
    unit = str(img.unit) if img.unit is not None else ""
    if nominal and unit.lower().startswith(("nmgy", "nanomaggy")):
        ratio = sigma / nominal
        lo, hi = TOLERANCES["noise_ratio"]
        if not lo <= ratio <= hi:
            tlo, thi = dom["noise_ratio"]
            deeper = "deeper" if ratio < 1 else "shallower"
            reasons.append(f"noise level {ratio:.2f} times the nominal {trained.name.upper()} "
                           f"{band} noise ({sigma:.3g} vs {nominal:.3g} nanomaggy per pixel): "
                           f"a {deeper} image than the training scenes ({tlo:.2f}-{thi:.2f} "
                           f"times)")
    vals = data[finite]
    frac = float(np.mean(vals - np.median(vals) > 5.0 * sigma))
    if frac > TOLERANCES["source_fraction"]:
        lo, hi = dom["source_fraction"]
        reasons.append(f"{100 * frac:.0f}% of the pixels are more than 5 sigma above the "
                       f"background (training galaxy fields: {100 * lo:.1f}-{100 * hi:.0f}%): "
                       f"a crowded field or an object larger than the training scenes")
    return reasons
