"""Star removal: photutils detection, multi-scale template matching, colour tests, PSF
subtraction and float inpainting.

The entry point is `remove_stars`; see ``docs/star_removal.rst`` for the method and its
measured performance.
"""

from .core import METHODS, StarRemovalResult, plain_catalog, remove_stars
from .deblend import fit_offcentre_star, offcentre_flux
from .decide import DECISIONS, DecisionRules, classify
from .matching import DEFAULT_SCALES, match_scores, psf_extent
from .psf import PSFModel, build_epsf, psf_from_array, psf_from_fwhm, read_psf
from .preview import save_star_preview
from .removal import INPAINT_METHODS, inpaint

__all__ = ["remove_stars", "StarRemovalResult", "plain_catalog", "METHODS", "INPAINT_METHODS",
           "PSFModel", "psf_from_fwhm", "psf_from_array", "read_psf", "build_epsf",
           "match_scores", "psf_extent", "DEFAULT_SCALES", "classify", "DecisionRules",
           "DECISIONS", "inpaint", "save_star_preview", "fit_offcentre_star", "offcentre_flux"]
