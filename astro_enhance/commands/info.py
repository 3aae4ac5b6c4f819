"""``astro-enhance info FILE``: what an image is (survey guess, scale, units, size, noise, WCS)."""

__all__ = ["NAME", "HELP", "add_arguments", "run", "describe"]

NAME = "info"
HELP = "describe a FITS image: survey guess, pixel scale, units, size, noise and WCS"


def add_arguments(parser):
    parser.add_argument("input", help="FITS file (any image HDU; .gz/.bz2/.fz too)")
    parser.add_argument("--hdu", default=None, help="HDU index or name to read")
    parser.add_argument("--plane", type=int, default=None, help="plane of a 3-D cube")


def parse_hdu(value):
    """``--hdu`` value: an int when it looks like one, else the name (None stays None)."""
    if value is None:
        return None
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def describe(image):
    """Lines describing an `~astro_enhance.Image` (used by ``info``).

    Parameters
    ----------
    image : `~astro_enhance.Image`

    Returns
    -------
    list of str
    """
    import warnings

    import numpy as np
    from astropy.wcs.utils import proj_plane_pixel_scales

    from ..io import unit_to_bunit
    from ..normalize import estimate_noise
    from ..surveys import guess_survey

    ny, nx = image.shape
    survey, confidence, reason = guess_survey(image)
    scales = proj_plane_pixel_scales(image.wcs) * 3600.0
    w = image.wcs
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    world = w.pixel_to_world_values(cx, cy)
    lon, lat = float(world[w.wcs.lng]), float(world[w.wcs.lat])
    # Position angle of the +y pixel axis, east of north (from the local Jacobian).
    up = w.pixel_to_world_values(cx, cy + 0.5)
    down = w.pixel_to_world_values(cx, cy - 0.5)
    dlon = (float(up[w.wcs.lng]) - float(down[w.wcs.lng]) + 180.0) % 360.0 - 180.0
    dlon *= np.cos(np.radians(lat))
    dlat = float(up[w.wcs.lat]) - float(down[w.wcs.lat])
    pa = float(np.degrees(np.arctan2(dlon, dlat)))
    distortion = []
    if w.sip is not None:
        distortion.append("SIP")
    ctype_in = str(image.header.get("CTYPE1", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        has_pv = any(k.startswith("PV1_") for k in w.to_header(relax=True))
    if "TPV" in ctype_in or "TPV" in "".join(w.wcs.ctype) or has_pv:
        distortion.append("TPV" if "TPV" in ctype_in or has_pv else "PV terms")
    if w.cpdis1 is not None or w.cpdis2 is not None or w.det2im1 is not None:
        distortion.append("lookup table")
    finite = np.isfinite(image.data)
    try:
        noise = estimate_noise(image.data, mask=image.mask)
    except ValueError:  # pragma: no cover - read_image refuses all-NaN images
        noise = float("nan")
    unit = unit_to_bunit(image.unit) if image.unit is not None else None
    band = str(image.header.get("FILTER", "")).strip() or None
    lines = [f"file:        {image.filename or '(in memory)'}"]
    if survey is None:
        lines.append(f"survey:      unknown ({reason})")
    else:
        lines.append(f"survey:      {survey.title} (confidence {confidence:.2f}: {reason})")
    lines += [
        f"size:        {nx} x {ny} px (nx x ny), "
        f"{nx * scales[0] / 60:.2f}' x {ny * scales[1] / 60:.2f}'",
        f"pixel scale: {scales[0]:.4f}\" x {scales[1]:.4f}\" per px",
        f"units:       {unit or 'none (no BUNIT)'}"
        + (f", band {band}" if band else ""),
        f"noise:       {noise:.4g} {unit or ''} per pixel (robust MAD of the background)".rstrip(),
        f"data:        {int(finite.sum())} finite px, min {np.nanmin(image.data):.4g}, "
        f"median {np.nanmedian(image.data):.4g}, max {np.nanmax(image.data):.4g}",
        f"masked:      {0 if image.mask is None else int(image.mask.sum())} px",
        f"WCS:         {' '.join(c.strip() for c in w.wcs.ctype)}"
        + (f" + {', '.join(distortion)}" if distortion else "")
        + (f", {w.wcs.radesys.strip()}" if w.wcs.radesys.strip() else ""),
        f"centre:      RA {lon:.6f}, Dec {lat:.6f} deg (pixel {cx:.1f}, {cy:.1f})",
        f"orientation: +y axis at PA {pa:.2f} deg east of north",
    ]
    return lines


def run(args):
    from ..io import read_image

    image = read_image(args.input, hdu=parse_hdu(args.hdu), plane=args.plane)
    print("\n".join(describe(image)))
    return 0
