"""The end-to-end pipeline: read -> resample -> [remove stars] -> enhance -> diagnostics -> FITS.

`enhance_fits` is what scripts call; the ``astro-enhance enhance`` command and the batch runner
call it too, so every entry point does exactly the same thing.
"""

import warnings

import numpy as np
from astropy.io import fits

from .exceptions import AstroEnhanceWarning, EnhancerError, InputError
from .io import add_provenance, image_to_hdu, read_image
from .normalize import estimate_noise
from .resample import resample
from .surveys import get_survey, guess_survey
from .version import __version__

__all__ = ["enhance_fits", "default_method", "PREFERRED_METHODS"]

#: Methods in order of preference for the default: the first one available is used.
#: ``unet`` leads because it is the enhancer that meets its measured quality targets
#: (docs: "Enhancers and how to choose one"); the shipped ``gan`` is provisional (too smooth,
#: flux error above its 2% target) and becomes the default once it meets its own.
#: ``bilateral`` is the best classical method by PSNR/SSIM in the same evaluation.
PREFERRED_METHODS = ("unet", "gan", "bilateral", "bicubic")


def default_method():
    """Name of the best enhancer available in this installation.

    Returns
    -------
    str
        The first of `PREFERRED_METHODS` that is registered.

    Examples
    --------
    >>> from astro_enhance.pipeline import default_method
    >>> default_method() in PREFERRED_METHODS
    True
    """
    from .enhancers import list_enhancers

    names = set(list_enhancers()["name"])
    for name in PREFERRED_METHODS:
        if name in names:
            return name
    raise EnhancerError("no enhancer is available; the installation looks broken")


def _band_of(image):
    hdr = image.header
    for key in ("FILTER", "BAND", "FILTNAM"):
        val = hdr.get(key)
        if isinstance(val, str) and val.strip():
            return val.strip()[0].lower()
    return None


def _fwhm(survey, band, default_band="r"):
    fw = survey.psf_fwhm
    if band in fw:
        return float(fw[band])
    if default_band in fw:
        return float(fw[default_band])
    return float(np.median(list(fw.values())))


def enhance_fits(data, method=None, *, target="decals", device="auto", remove_stars=False,
                 tile_size=None, overlap=None, weights=None, samples=1, rng=None,
                 progress=False, hdu=None, conserve_flux=None, north_up=False, options=None):
    """Enhance an image onto a target survey's grid and return FITS with provenance.

    The steps are: read the input (any astropy image form), resample it with `reproject`
    onto a TAN grid at the target survey's pixel scale (flux-aware), optionally remove stars,
    run the enhancer on that grid, compute diagnostics (consistency chi^2 against the input
    and the total-flux ratio) and assemble an `~astropy.io.fits.HDUList`.

    Parameters
    ----------
    data : str, path, HDU, HDUList, CCDData, NDData, (array, WCS) or `~astro_enhance.Image`
        The input image; see `~astro_enhance.read_image`.
    method : str, optional
        Enhancer name (see ``astro-enhance list``). Default: the best available,
        `default_method`.
    target : str, optional
        Target survey whose grid and PSF the output has (default ``"decals"``).
    device : str or torch.device, optional
        ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda:N"``, ``"mps"``.
    remove_stars : bool, optional
        Remove foreground stars before enhancing; the mask is stored as a ``MASK`` extension
        and the catalogue as a ``STARS`` table.
    tile_size, overlap : int, optional
        Tiling of the image for neural enhancers (bounds memory); default from the model.
    weights : str or path, optional
        A user weights file (safetensors with JSON sidecar) instead of the shipped one.
    samples : int, optional
        Number of samples for stochastic enhancers; with ``samples > 1`` the primary HDU is
        the mean and an ``STD`` extension holds the per-pixel standard deviation.
    options : dict, optional
        Options of the enhancer (see its docstring), e.g.
        ``{"sigma_color": 8, "sigma_space": 8}`` for ``bilateral``; recorded in HISTORY.
    rng : int or `numpy.random.Generator`, optional
        Seed for stochastic enhancers and star-removal noise.
    progress : bool, optional
        Show a progress bar.
    hdu : int or str, optional
        HDU to read from a multi-extension input.
    conserve_flux : bool, optional
        Override the unit-based decision to scale per-pixel fluxes by the pixel-area ratio.
    north_up : bool, optional
        Rotate the output grid to north up instead of keeping the input's orientation.

    Returns
    -------
    hdul : `~astropy.io.fits.HDUList`
        Primary HDU: enhanced image (float32, target-grid WCS, BUNIT, provenance keywords
        ``AE_*`` and HISTORY). For an enhancer with several output bands (``colorize``) it
        is a cube ``(n_bands, ny, nx)`` in the same unit per band, with ``BAND1``,
        ``BAND2``... naming the band of each plane (``AE_BANDS`` lists them) and the
        celestial WCS on axes 1 and 2; ``AE_FLUXR`` and ``AE_CHI2`` then refer to the plane
        of the input's band. Extensions as described above.

    Raises
    ------
    astro_enhance.InputError
        If the input cannot be read as a celestial image.
    astro_enhance.EnhancerError
        If ``method`` is unknown.
    astro_enhance.SurveyError
        If ``target`` is unknown.

    Examples
    --------
    >>> from astro_enhance import enhance_fits
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> hdul = enhance_fits(make_sdss_sample(), method="bicubic")
    >>> hdul[0].header["AE_METH"]
    'bicubic'
    """
    hdul, _ = _enhance(data, method, target=target, device=device, remove_stars=remove_stars,
                       tile_size=tile_size, overlap=overlap, weights=weights, samples=samples,
                       rng=rng, progress=progress, hdu=hdu, conserve_flux=conserve_flux,
                       north_up=north_up, options=options)
    return hdul


def _enhance(data, method=None, *, target="decals", device="auto", remove_stars=False,
             tile_size=None, overlap=None, weights=None, samples=1, rng=None, progress=False,
             hdu=None, conserve_flux=None, north_up=False, options=None):
    # The pipeline itself; also returns the resampled input (used for previews).
    from .enhancers import get_enhancer

    samples = int(samples)
    if samples < 1:
        raise InputError(f"samples must be at least 1, got {samples}")
    target_survey = get_survey(target)
    image = read_image(data, hdu=hdu)
    in_survey, confidence, _ = guess_survey(image.header if len(image.header) else image.wcs)
    band = _band_of(image)

    user_options, options = _enhancer_options(options, tile_size, overlap, progress)
    method = method or default_method()
    enhancer = get_enhancer(method, device=device, weights=weights, **options)
    # the input's noise, measured once for the domain and consistency checks
    sigma_in, domain_reasons = _domain_check(image, enhancer, method, band, in_survey)

    resampled = resample(image, target=target_survey.name, return_type="image",
                         conserve_flux=conserve_flux, north_up=north_up)
    work = resampled.data
    star_result = None
    if remove_stars:
        from .stars import remove_stars as _remove_stars

        star_result = _remove_stars(resampled, rng=rng)
        work = np.asarray(star_result.clean, dtype=np.float32)

    footprint = np.isfinite(resampled.data)
    rng = np.random.default_rng(rng)
    enhancer.set_target(band=band, unit=resampled.unit)
    out, std, std_factor = _draw(enhancer, work, samples, rng)
    out = np.where(footprint, out, np.nan).astype(np.float32)
    info = enhancer.info
    # several output bands (colorize): a cube; the diagnostics use the input band's plane
    bands_out, ref = None, out
    if out.ndim == 3:
        bands_out = [str(b) for b in (info.extra.get("bands_out") or
                                      [f"plane{k + 1}" for k in range(out.shape[0])])]
        # the input's band; unknown (no FILTER card): the band the enhancer reads
        ref_band = band if band in bands_out else next(
            (b for b in info.bands if b in bands_out), bands_out[0])
        ref = out[bands_out.index(ref_band)]

    # Diagnostics: total-flux ratio and consistency with the input.
    in_flux = float(np.nansum(work[footprint]))
    out_flux = float(np.nansum(ref[footprint]))
    flux_ratio = out_flux / in_flux if in_flux != 0 else float("nan")
    chi2 = _consistency(ref, resampled, image, in_survey, target_survey, band,
                        star_mask=None if star_result is None else star_result.mask,
                        sigma=sigma_in)

    hdr_image = resampled.__class__(data=ref, wcs=resampled.wcs, unit=resampled.unit,
                                    mask=None, header=resampled.header,
                                    filename=image.filename)
    primary = image_to_hdu(hdr_image, primary=True)
    h = primary.header
    history = [
        f"astro_enhance {__version__}: enhanced with method '{method}' ({info.kind})"
        + (" with options " + ", ".join(f"{k}={v!r}" for k, v in sorted(user_options.items()))
           if user_options else "") + ".",
        f"Total flux ratio output/input = {flux_ratio:.5f}; consistency chi2 = "
        f"{chi2:.3f}." if np.isfinite(chi2) else
        f"Total flux ratio output/input = {flux_ratio:.5f}.",
    ]
    if info.kind != "classical":
        history.append("This image was processed by a trained model: structure below the "
                       "input's resolution and noise may be invented. Check AE_CHI2 and "
                       "AE_FLUXR before using it for measurements.")
    for reason in domain_reasons:
        history.append(f"Domain warning: {reason}.")
    if remove_stars:
        n = int(star_result.n_removed)
        history.append(f"{n} star(s) removed before enhancement (MASK extension).")
    sampling_history, sampling_cards = _sampling_notes(enhancer, samples, std_factor)
    history += sampling_history
    if bands_out is not None:
        history.append(f"Planes 1-{len(bands_out)} are bands {', '.join(bands_out)} "
                       f"(BAND1...); AE_FLUXR and AE_CHI2 refer to the {ref_band} plane"
                       f"{'' if ref_band == band else ' (the band the enhancer reads)'}.")
    add_provenance(h, method=method, target=target_survey.name,
                   weights_sha256=info.weights_sha256,
                   device=str(getattr(enhancer, "device", "cpu")),
                   chi2=chi2 if np.isfinite(chi2) else None,
                   input_name=image.filename, history=history)
    h["AE_FLUXR"] = (round(flux_ratio, 6) if np.isfinite(flux_ratio) else "nan",
                     "total flux ratio output/input")
    h["AE_NSAMP"] = (samples, "number of samples averaged")
    for key, card in sampling_cards.items():
        h[key] = card
    h["AE_DOMN"] = (len(domain_reasons), "domain warnings (see HISTORY)")
    if bands_out is not None:
        primary.data = out   # NAXIS3 follows the data
        for key in ("FILTER", "BAND", "FILTNAM"):   # the input's single band, now wrong
            h.remove(key, ignore_missing=True, remove_all=True)
        h["AE_BANDS"] = (",".join(bands_out), "bands of the planes, in order")
        for k, b in enumerate(bands_out, start=1):
            h[f"BAND{k}"] = (b, f"band of plane {k}")
    if in_survey is not None:
        h["AE_SRC"] = (in_survey.name, f"input survey (guess, confidence {confidence:.2f})")
    hdul = fits.HDUList([primary])
    wcs_header = resampled.wcs.to_header()
    if std is not None:
        std = np.where(footprint, std, np.nan).astype(np.float32)
        hdul.append(fits.ImageHDU(std, header=wcs_header, name="STD"))
    if star_result is not None:
        hdul.append(fits.ImageHDU(np.asarray(star_result.mask, dtype=np.uint8),
                                  header=wcs_header, name="MASK"))
        try:
            hdul.append(fits.table_to_hdu(_plain_table(star_result.catalog)))
            hdul[-1].name = "STARS"
        except Exception as exc:  # noqa: BLE001 - the image matters more than the table
            warnings.warn(f"star catalogue not stored in the output: {exc}",
                          AstroEnhanceWarning)
    return hdul, resampled


def _enhancer_options(options, tile_size, overlap, progress):
    """The user's enhancer options (for HISTORY) and those given to the enhancer."""
    if options is not None and not isinstance(options, dict):
        raise InputError(f"options must be a dict of enhancer options, got "
                         f"{type(options).__name__}")
    user_options = dict(options or {})
    options = dict(user_options)
    if tile_size is not None:
        options["tile_size"] = int(tile_size)
    if overlap is not None:
        options["overlap"] = int(overlap)
    if progress:
        options["progress"] = True
    return user_options, options


def _domain_check(image, enhancer, method, band, in_survey):
    """Noise of the input and the reasons it lies outside a trained enhancer's domain (each
    also a DomainWarning); (None, []) for classical enhancers."""
    if enhancer.info.kind == "classical":
        return None, []
    from .domain import check_domain
    from .exceptions import DomainWarning

    sigma_in = float(estimate_noise(image.data, mask=image.mask))
    reasons = check_domain(image, info=enhancer.info, band=band, survey=in_survey,
                           sigma=sigma_in)
    for reason in reasons:
        warnings.warn(f"input outside the training domain of '{method}': {reason}; "
                      "treat the enhanced image with extra care", DomainWarning, stacklevel=4)
    return sigma_in, reasons


def _sampling_notes(enhancer, samples, std_factor):
    """HISTORY lines and header cards about how the output was drawn: the added texture
    (gan, srgan), several samples and their calibrated spread, diffusion steps (sr3)."""
    history, cards = [], {}
    texture = getattr(enhancer, "texture_used", None)
    if texture:
        history.append(f"Output = restored sky + a DECaLS-like noise realisation (texture: sky "
                       f"sigma {texture['sigma'][0]:.3g}, from {texture['how']}), a sample of "
                       "what DECaLS would record; measure on method 'unet'.")
    if samples > 1:
        history.append(f"Mean of {samples} samples; STD extension holds their std" + (
            f" times the calibration factor AE_STDCF = {std_factor:.4g} (raw spread = STD / "
            "AE_STDCF)." if std_factor != 1.0 else "."))
        cards["AE_STDCF"] = (float(f"{std_factor:.6g}"), "STD = sample std x this factor")
    steps = getattr(enhancer, "steps", None)
    if steps is not None:
        history.append(f"Each sample drawn with {int(steps)} diffusion steps.")
    if texture:
        cards["AE_TEXSG"] = (float(f"{texture['sigma'][0]:.4g}"), "sky sigma of the added texture")
    if steps is not None:   # diffusion enhancers (sr3)
        cards["AE_STEPS"] = (int(steps), "diffusion sampling steps per sample")
    return history, cards


def _draw(enhancer, work, samples, rng):
    """Mean and calibrated spread of ``samples`` draws (one pass when the enhancer can draw
    several at once). Returns (mean, std or None, calibration factor)."""
    if samples == 1:
        return np.asarray(enhancer.enhance(work, rng=rng), dtype=np.float32), None, 1.0
    if np.ndim(work) == 2:
        stack = enhancer.enhance_samples(work, samples, rng=rng)
        look = enhancer.look_noise_image(work) if getattr(enhancer, "look_noise", False) \
            else None
    else:
        stack, look = np.stack([enhancer.enhance(work, rng=rng) for _ in range(samples)]), None
    mean = stack.mean(axis=0, dtype=np.float64)
    std = stack.std(axis=0, ddof=1, dtype=np.float64)
    del stack
    if look is not None:
        mean += look
    factor = float(getattr(enhancer, "std_calibration", 1.0))
    return mean.astype(np.float32), (std * factor).astype(np.float32), factor


def _plain_table(catalog):
    from astropy.table import Table

    t = Table(catalog)
    t.meta = {}  # run metadata (dicts, long keys) does not fit FITS cards; HISTORY says it
    for name in list(t.colnames):
        col = t[name]
        if col.__class__.__name__ == "SkyCoord" or hasattr(col, "frame"):
            t[f"{name}_ra"] = col.ra.deg
            t[f"{name}_dec"] = col.dec.deg
            t.remove_column(name)
    return t


def _consistency(out, resampled, image, in_survey, target_survey, band, star_mask=None,
                 sigma=None):
    """Reduced chi^2 of the output degraded back to the input grid and PSF.

    With star removal, the removed stars are in the input but not in the output: their
    pixels (``star_mask`` on the output grid, taken to the input grid) are left out."""
    try:
        from .metrics import consistency_chi2
    except ImportError:
        return float("nan")
    src = in_survey if in_survey is not None else get_survey("sdss")
    try:
        if sigma is None:
            sigma = estimate_noise(image.data, mask=image.mask)
        mask = None if image.mask is None else np.asarray(image.mask, dtype=bool)
        if star_mask is not None and np.any(star_mask):
            from reproject import reproject_interp

            m, _ = reproject_interp((np.asarray(star_mask, dtype=np.float32), resampled.wcs),
                                    image.wcs, shape_out=image.data.shape, order="bilinear")
            m = np.nan_to_num(m) > 0.01
            mask = m if mask is None else (mask | m)
        return float(consistency_chi2(
            out, image.data, sdss_wcs=image.wcs, enhanced_wcs=resampled.wcs,
            psf_sdss_fwhm=_fwhm(src, band), psf_out_fwhm=_fwhm(target_survey, band),
            sigma_sdss=sigma, mask=mask))
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not lose the result
        warnings.warn(f"consistency chi2 could not be computed: {exc}", AstroEnhanceWarning)
        return float("nan")
