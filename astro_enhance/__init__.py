"""astro_enhance: make SDSS images look like DECaLS, and say what was done.

The top-level namespace is kept light: heavy dependencies (torch, dask, matplotlib) are only
imported when the function that needs them is called.
"""

from .version import __version__
from .exceptions import *  # noqa: F401,F403
from .io import Image, read_image, write_fits  # noqa: F401
from .surveys import Survey, get_survey, guess_survey, list_surveys  # noqa: F401
from .resample import resample  # noqa: F401

__all__ = ["__version__", "Image", "read_image", "write_fits", "Survey", "get_survey",
           "guess_survey", "list_surveys", "resample", "enhance_fits"]


def __getattr__(name):
    # Lazy imports keep ``import astro_enhance`` free of torch and friends.
    if name == "enhance_fits":
        from .pipeline import enhance_fits
        return enhance_fits
    raise AttributeError(f"module 'astro_enhance' has no attribute {name!r}")
