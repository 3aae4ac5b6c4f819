"""Deciding what each candidate is: star, galaxy knot, galaxy core or other galaxy.

The rules protect the target galaxy first. In order:

1. A saturated candidate is a star (galaxies do not saturate survey images at these
   depths), unless it is the protected core itself; so is a very bright one (peak above
   ``bright_snr`` noise sigmas) that still matches the PSF: its halo and spikes widen the
   best template, but no galaxy other than the protected one is that bright and compact.
2. The candidate at the core of the protected galaxy is the *core*: never removed. (When the
   protected object was found automatically and is itself point-like and no larger than a
   star, it is a star and nothing is protected.)
3. A candidate whose PSF match is poor (best normalised correlation below ``min_score``) or
   whose best template is wider than ``max_scale`` is extended: a *knot* on the protected
   galaxy, another *galaxy* elsewhere.
4. Colour test, when g, r and i (SDSS-like) bands are given: a star lies on the stellar
   locus in (g-r, r-i) (`stellar_locus_offset`). A point source more than
   ``colour_sigma`` measurement errors (and at least ``colour_floor`` mag) off the locus is
   not a star: a *knot* on the galaxy (star-forming regions, whose emission lines put them
   off the locus), another *galaxy* elsewhere.
5. On the protected galaxy, a source that the PSF fits worse than a wider copy of it
   (`~astro_enhance.stars.psf_extent`: best width at least ``resolved_width`` times the
   PSF's, chi-square lower by ``resolved_dchi2`` or more -- or, with a scale-1 score below
   ``blend_score``, ``blend_width`` times with ``blend_dchi2``) is resolved: a *knot* (a
   blend of star-forming knots, or a knot larger than the seeing). Then a point source
   (scale-1 score at least 0.6) away from the core that holds more than
   ``knot_max_fraction`` of the galaxy's flux is a star (no single knot is that bright).
   On a red, passive galaxy (g - r of its smooth light at least ``passive_gr``), a point
   source away from the core with a scale-1 score of at least ``passive_score``, best
   scale at most ``on_galaxy_max_scale`` and S/N of at least ``on_galaxy_snr`` is a star
   (such galaxies have no star-forming knots). Otherwise a star must in addition match
   the PSF at scale 1 at least as well as ``on_galaxy_score`` (or
   ``on_galaxy_colour_score`` when its colours are ``knot_far`` sigmas or more from the
   knots'), have S/N of at least ``on_galaxy_snr``, and -- when the galaxy has five or more
   compact sources and several bands are given -- differ in colour from them by
   ``knot_sigma`` or more, or be ``knot_bright_ratio`` times brighter than the median of
   the others; otherwise it is a *knot*.
6. Everything else is a star.

Each decision comes with a plain-words reason, stored in the catalogue.
"""

import math

import numpy as np

__all__ = ["DecisionRules", "classify", "DECISIONS", "stellar_locus_offset"]

#: Possible decisions.
DECISIONS = ("star", "knot", "core", "galaxy")


def stellar_locus_offset(gr, ri):
    """Distance (magnitudes) of (g-r, r-i) colours from the stellar locus.

    The locus is a coarse version of the SDSS one (Covey et al. 2007, AJ 134, 2398):
    ``r - i = 0.38 (g - r) - 0.06`` for ``-0.3 < g - r < 1.2`` (F to K stars), and the near
    vertical M-dwarf branch ``g - r`` 1.2-1.8 with ``r - i`` 0.3-2.5.

    Parameters
    ----------
    gr, ri : float or ndarray
        Colours in magnitudes.

    Returns
    -------
    ndarray
        Offset from the locus in magnitudes (0 on it; NaN where a colour is NaN).

    Examples
    --------
    >>> round(float(stellar_locus_offset(0.45, 0.11)), 2)  # the Sun
    0.0
    >>> bool(stellar_locus_offset(0.3, 0.8) > 0.5)  # far off: not a star
    True
    """
    gr = np.asarray(gr, dtype=float)
    ri = np.asarray(ri, dtype=float)
    # branch 1: straight segment
    g1 = np.clip(gr, -0.3, 1.2)
    d1 = np.hypot(gr - g1, ri - (0.38 * g1 - 0.06))
    # branch 2: M dwarfs, a box
    g2 = np.clip(gr, 1.2, 1.8)
    r2 = np.clip(ri, 0.3, 2.5)
    d2 = np.hypot(gr - g2, ri - r2)
    out = np.minimum(d1, d2)
    return np.where(np.isfinite(gr) & np.isfinite(ri), out, np.nan)


class DecisionRules:
    """Thresholds of the star / knot / core / galaxy decision.

    Parameters
    ----------
    min_score : float
        Lowest best ``TM_CCOEFF_NORMED`` score of a star.
    max_scale : float
        Largest best-matching template scale of a star (1 = the PSF).
    on_galaxy_score : float
        Lowest scale-1 score of a star on the protected galaxy.
    on_galaxy_snr : float
        Lowest S/N of a star on the protected galaxy.
    on_galaxy_max_scale : float
        Largest best-matching scale of a star on the protected galaxy.
    colour_sigma : float
        A point source further from the stellar locus than this many colour errors is not a
        star (colour test, g, r, i bands only).
    colour_floor : float
        ... and at least this far (magnitudes).
    knot_sigma : float
        A point source on the galaxy whose colours are within this many sigmas of the median
        colour of the galaxy's compact sources (when it has five or more) is a knot.
    bright_snr, bright_score : float
        A candidate whose fitted peak exceeds ``bright_snr`` noise sigmas and whose PSF score
        at scale 1 is at least ``bright_score`` is a star whatever its best scale.
    knot_max_fraction : float
        A point source on the galaxy (away from its core) holding more than this fraction of
        the galaxy's flux is a star: single star-forming knots carry a few per cent of a
        galaxy's light at most.
    on_galaxy_colour_score, knot_far : float
        A point source on the galaxy whose scale-1 score is below ``on_galaxy_score`` but at
        least ``on_galaxy_colour_score`` is a star when its colours are ``knot_far`` or more
        sigmas from the knots'.
    passive_gr, passive_score : float
        On a galaxy whose smooth light has g - r of at least ``passive_gr`` (red, passive:
        no star-forming knots), a point source away from the core with a scale-1 score of
        at least ``passive_score`` is a star.
    resolved_width, resolved_dchi2 : float
        A source on the galaxy whose best-fitting width
        (`~astro_enhance.stars.psf_extent`) is at least ``resolved_width`` times the PSF's,
        with a chi-square lower than the PSF's by at least ``resolved_dchi2``, is resolved:
        not a star.
    blend_width, blend_dchi2, blend_score : float
        ... and so is one whose scale-1 PSF score is below ``blend_score`` and whose
        best-fitting width is at least ``blend_width`` times the PSF's, with a chi-square
        lower by at least ``blend_dchi2``: a blend of two or more knots (a star that
        scores that poorly is rarely measured that wide).
    knot_bright_ratio : float
        A point source with the colours of the galaxy's compact sources is a knot only when
        its flux is below this many times the median flux of the others: the knots of one
        galaxy differ in flux by a factor of a few, a foreground star of their colour is
        often far brighter.
    asym_knot_gr, asym_knot_snr, asym_knot_galaxy_gr : float
        Used by `~astro_enhance.stars.remove_stars` for a source found only in the
        light's asymmetry about the galaxy's centre (not by `classify`): it is a knot when
        its g - r is below ``asym_knot_gr`` (as blue as star-forming regions), its S/N below
        ``asym_knot_snr`` and the g - r of the galaxy's smooth light below
        ``asym_knot_galaxy_gr`` (a galaxy that forms stars).

    Examples
    --------
    >>> import numpy as np
    >>> rules = DecisionRules(min_score=0.9)
    >>> rules.min_score, rules.max_scale
    (0.9, 1.3)
    >>> f = dict(snr=np.array([50.0]), score=np.array([0.85]), scale=np.array([1.0]),
    ...          score1=np.array([0.85]), saturated=np.array([False]),
    ...          on_galaxy=np.array([False]), is_core=np.array([False]))
    >>> classify(f)[0].tolist(), classify(f, rules=rules)[0].tolist()
    (['star'], ['galaxy'])
    """

    def __init__(self, *, min_score=0.5, max_scale=1.3, on_galaxy_score=0.8, on_galaxy_snr=8.0,
                 on_galaxy_max_scale=1.3, colour_sigma=3.0, colour_floor=0.5, knot_sigma=2.0,
                 bright_snr=1000.0, bright_score=0.8, knot_max_fraction=0.1,
                 on_galaxy_colour_score=0.7, knot_far=3.0, passive_gr=0.7, passive_score=0.6,
                 resolved_width=1.3, resolved_dchi2=9.0, blend_width=1.15, blend_dchi2=2.0,
                 blend_score=0.9, knot_bright_ratio=8.0, asym_knot_gr=0.3,
                 asym_knot_snr=100.0, asym_knot_galaxy_gr=0.6):
        self.min_score = float(min_score)
        self.max_scale = float(max_scale)
        self.on_galaxy_score = float(on_galaxy_score)
        self.on_galaxy_snr = float(on_galaxy_snr)
        self.on_galaxy_max_scale = float(on_galaxy_max_scale)
        self.colour_sigma = float(colour_sigma)
        self.colour_floor = float(colour_floor)
        self.knot_sigma = float(knot_sigma)
        self.bright_snr = float(bright_snr)
        self.bright_score = float(bright_score)
        self.knot_max_fraction = float(knot_max_fraction)
        self.on_galaxy_colour_score = float(on_galaxy_colour_score)
        self.knot_far = float(knot_far)
        self.passive_gr = float(passive_gr)
        self.passive_score = float(passive_score)
        self.resolved_width = float(resolved_width)
        self.resolved_dchi2 = float(resolved_dchi2)
        self.blend_width = float(blend_width)
        self.blend_dchi2 = float(blend_dchi2)
        self.blend_score = float(blend_score)
        self.knot_bright_ratio = float(knot_bright_ratio)
        self.asym_knot_gr = float(asym_knot_gr)
        self.asym_knot_snr = float(asym_knot_snr)
        self.asym_knot_galaxy_gr = float(asym_knot_galaxy_gr)

    def __repr__(self):
        items = ", ".join(f"{k}={v:g}" for k, v in vars(self).items())
        return f"DecisionRules({items})"


def classify(feat, *, rules=None):
    """Decide star / knot / core / galaxy for every candidate.

    Parameters
    ----------
    feat : dict of ndarray
        Per-candidate features: ``snr``, ``peak_snr``, ``score`` (best), ``scale`` (best),
        ``score1`` (score at scale 1), ``saturated`` (bool), ``on_galaxy`` (bool),
        ``is_core`` (bool), and optionally ``galaxy_fraction`` (flux over the protected
        galaxy's flux) with ``near_core`` (bool), ``knot_distance`` (colour distance from the
        galaxy's compact sources, sigmas) with ``knot_flux_ratio`` (flux over the median
        flux of the galaxy's other compact sources), ``locus_offset`` and ``locus_err``
        (distance from the stellar locus and its error, magnitudes; NaN when unknown) for
        the colour tests,
        ``galaxy_gr`` (scalar: g - r of the protected galaxy's smooth light, NaN when
        unknown), and ``extent`` with ``extent_dchi2`` (best width in PSF units and its
        chi-square gain, `~astro_enhance.stars.psf_extent`; NaN when not measured).
    rules : DecisionRules, optional
        Thresholds.

    Returns
    -------
    decision : ndarray of str
    reason : ndarray of str

    Examples
    --------
    >>> import numpy as np
    >>> f = dict(snr=np.array([50., 50.]), score=np.array([0.95, 0.9]),
    ...          scale=np.array([1.0, 2.0]), score1=np.array([0.95, 0.6]),
    ...          saturated=np.array([False, False]), on_galaxy=np.array([False, False]),
    ...          is_core=np.array([False, False]))
    >>> classify(f)[0].tolist()
    ['star', 'galaxy']
    """
    r = rules if rules is not None else DecisionRules()
    n = len(feat["snr"])
    decision = np.empty(n, dtype=object)
    reason = np.empty(n, dtype=object)
    locus = feat.get("locus_offset")
    locus_err = feat.get("locus_err")
    knot_distance = feat.get("knot_distance")
    knot_ratio = feat.get("knot_flux_ratio")
    ggr = float(feat.get("galaxy_gr", float("nan")))
    passive = np.isfinite(ggr) and ggr >= r.passive_gr
    # resolved (best PSF width and its chi-square gain over the PSF; NaN: not measured)
    resolved = np.zeros(n, bool)
    if feat.get("extent") is not None and feat.get("extent_dchi2") is not None:
        extent = np.asarray(feat["extent"], float)
        extent_dchi2 = np.asarray(feat["extent_dchi2"], float)
        with np.errstate(invalid="ignore"):
            resolved = (extent >= r.resolved_width) & (extent_dchi2 >= r.resolved_dchi2)
            resolved |= ((extent >= r.blend_width) & (extent_dchi2 >= r.blend_dchi2)
                         & (np.asarray(feat["score1"], float) < r.blend_score))
    for i in range(n):
        snr = float(feat["snr"][i])
        score = float(feat["score"][i])
        scale = float(feat["scale"][i])
        s1 = float(feat["score1"][i])
        if feat["is_core"][i]:
            decision[i], reason[i] = "core", "core of the protected galaxy"
            continue
        if feat["saturated"][i]:
            decision[i], reason[i] = "star", "saturated point source"
            continue
        psnr = float(feat["peak_snr"][i]) if "peak_snr" in feat else 0.0
        if psnr >= r.bright_snr and s1 >= r.bright_score:
            decision[i] = "star"
            reason[i] = (f"bright point source (peak S/N {psnr:.0f}, PSF score {s1:.2f}) with "
                         "halo")
            continue
        on = bool(feat["on_galaxy"][i])
        where = "knot" if on else "galaxy"
        if not np.isfinite(score) or score < r.min_score:
            decision[i] = where
            reason[i] = f"poor PSF match (score {score:.2f} < {r.min_score:g})"
            continue
        if scale > r.max_scale:
            decision[i] = where
            reason[i] = f"extended (best template scale {scale:.2f} > {r.max_scale:g})"
            continue
        if locus is not None and np.isfinite(locus[i]):
            err = float(locus_err[i]) if locus_err is not None else 0.0
            # photometric errors plus a 0.1 mag systematic (PSF mismatch between bands)
            err = math.hypot(err if np.isfinite(err) else 1.0, 0.1)
            tol = max(r.colour_sigma * err, r.colour_floor)
            if locus[i] > tol:
                decision[i] = where
                reason[i] = (f"colours {locus[i]:.2f} mag off the stellar locus "
                             f"(> {tol:.2f})")
                continue
        if on:
            if resolved[i]:
                decision[i] = "knot"
                reason[i] = (f"on the galaxy and resolved: best fit {extent[i]:.2f} times the "
                             f"PSF width (chi-square lower by {extent_dchi2[i]:.0f})")
                continue
            frac = float(feat["galaxy_fraction"][i]) if "galaxy_fraction" in feat else 0.0
            near_core = bool(feat["near_core"][i]) if "near_core" in feat else True
            if frac >= r.knot_max_fraction and s1 >= 0.6 and not near_core:
                decision[i] = "star"
                reason[i] = (f"point source on the galaxy with {frac:.0%} of its flux (no knot "
                             "is that bright)")
                continue
            kd = float(knot_distance[i]) if knot_distance is not None else float("nan")
            if passive and s1 >= r.passive_score and scale <= r.on_galaxy_max_scale and \
                    snr >= r.on_galaxy_snr and not near_core:
                decision[i] = "star"
                reason[i] = (f"point source (PSF score {s1:.2f}, S/N {snr:.0f}) on a red, "
                             f"passive galaxy (g-r {ggr:.2f}), which has no star-forming knots")
                continue
            if s1 < r.on_galaxy_score and not (
                    s1 >= r.on_galaxy_colour_score and
                    np.isfinite(kd) and kd >= r.knot_far):
                decision[i] = "knot"
                reason[i] = (f"on the galaxy and PSF score {s1:.2f} < "
                             f"{r.on_galaxy_score:g}")
                if s1 >= r.on_galaxy_colour_score:
                    reason[i] += (" with colours not clearly unlike its knots'" if
                                  np.isfinite(kd) else " and no knot colours to compare")
                continue
            if scale > r.on_galaxy_max_scale:
                decision[i] = "knot"
                reason[i] = (f"on the galaxy and best scale {scale:.2f} > "
                             f"{r.on_galaxy_max_scale:g}")
                continue
            if snr < r.on_galaxy_snr:
                decision[i] = "knot"
                reason[i] = f"on the galaxy and S/N {snr:.1f} < {r.on_galaxy_snr:g}"
                continue
            knot_colour = kd < r.knot_sigma  # (False when unknown: NaN)
            ratio = float(knot_ratio[i]) if knot_ratio is not None else float("nan")
            if knot_colour and not ratio >= r.knot_bright_ratio:
                decision[i] = "knot"
                reason[i] = (f"on the galaxy with the colours of its compact star-forming "
                             f"knots ({kd:.1f} sigma)")
                continue
            decision[i] = "star"
            reason[i] = f"point source on the galaxy (score {s1:.2f}, S/N {snr:.0f})"
            if knot_colour:
                reason[i] += (f", with its knots' colours but {ratio:.1f} times the median flux "
                              "of its other compact sources")
            continue
        decision[i] = "star"
        reason[i] = f"point source (score {score:.2f} at scale {scale:.2f})"
    return decision.astype(str), reason.astype(str)
