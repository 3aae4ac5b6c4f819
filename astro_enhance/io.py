"""Reading any astropy image form into one record, and writing FITS safely.

(Being completed: ``read_image`` and ``write_fits`` are implemented below this record.)
"""

from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

__all__ = ["Image", "read_image", "write_fits"]


@dataclass
class Image:
    """One normalised image record: the common currency of astro_enhance.

    Parameters
    ----------
    data : ndarray, shape (ny, nx), float32
        Pixel values in their physical units and zero point (never rescaled to [0, 1]).
    wcs : `~astropy.wcs.WCS`
        Two-dimensional celestial WCS of ``data``.
    unit : `~astropy.units.UnitBase` or None
        Unit of the pixel values (from BUNIT), None when unknown.
    mask : ndarray of bool, shape (ny, nx), or None
        True where a pixel is bad or missing. NaN pixels are always also masked.
    header : `~astropy.io.fits.Header`
        The input header (a copy; the input is never modified).
    filename : str or None
        The file the image was read from, when there was one.
    """

    data: np.ndarray
    wcs: WCS
    unit: object = None
    mask: np.ndarray = None
    header: fits.Header = field(default_factory=fits.Header)
    filename: str = None

    @property
    def shape(self):
        """Shape ``(ny, nx)`` of the data."""
        return self.data.shape
