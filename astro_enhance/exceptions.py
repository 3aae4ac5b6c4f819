"""Exceptions and warnings raised by astro_enhance.

Every error the package raises on bad input is a subclass of :class:`AstroEnhanceError`,
and most also subclass the matching standard exception (``ValueError``, ``FileNotFoundError``
...) so that generic ``except`` clauses keep working. Messages name the problem and the fix.
"""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "AstroEnhanceError",
    "InputError",
    "FITSReadError",
    "NoImageError",
    "WCSError",
    "UnitError",
    "SurveyError",
    "OutputError",
    "OutputExistsError",
    "DeviceError",
    "WeightsError",
    "ChecksumError",
    "EnhancerError",
    "SplitError",
    "AstroEnhanceWarning",
    "DomainWarning",
    "NoStarsWarning",
]


class AstroEnhanceError(Exception):
    """Base class of every error raised by astro_enhance on purpose."""


class InputError(AstroEnhanceError, ValueError):
    """The input data cannot be used (wrong shape, all NaN, unsupported type...)."""


class FITSReadError(InputError, OSError):
    """A file could not be read as FITS (missing, not FITS, truncated, unreadable)."""


class NoImageError(InputError):
    """A FITS file or HDUList holds no image HDU with data."""


class WCSError(InputError):
    """The input has no usable celestial WCS."""


class UnitError(InputError):
    """The data's unit is unknown or unsuitable for the requested operation."""


class SurveyError(AstroEnhanceError, ValueError):
    """An unknown survey or band was asked for."""


class OutputError(AstroEnhanceError, OSError):
    """The output cannot be written (directory missing or read-only, disk full...)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


class DeviceError(AstroEnhanceError, RuntimeError):
    """A compute device was asked for that is absent or unknown."""


class WeightsError(AstroEnhanceError, ValueError):
    """Model weights are missing, of an unsafe kind (pickle) or do not fit the model."""


class ChecksumError(WeightsError):
    """A weights file does not match the sha256 recorded in its sidecar."""


class EnhancerError(AstroEnhanceError, ValueError):
    """Unknown enhancer name, duplicate registration or misuse of an enhancer."""


class SplitError(AstroEnhanceError, ValueError):
    """A seed range would overlap another data split (train / val / bench)."""


class AstroEnhanceWarning(AstropyUserWarning):
    """Base class of astro_enhance warnings."""


class DomainWarning(AstroEnhanceWarning):
    """The input is far from what a model was trained on."""


class NoStarsWarning(AstroEnhanceWarning):
    """Star removal found no stars."""
