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
    """Base class of every error raised by astro_enhance on purpose.

    Examples
    --------
    Every deliberate error can be caught with this class (the message says what to do):

    >>> from astro_enhance import AstroEnhanceError, read_image
    >>> try:
    ...     read_image("no-such-frame.fits")
    ... except AstroEnhanceError as exc:
    ...     print(type(exc).__name__)
    FITSReadError
    """


class InputError(AstroEnhanceError, ValueError):
    """The input data cannot be used (wrong shape, all NaN, unsupported type...).

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.exceptions import InputError
    >>> from astro_enhance.metrics import psnr
    >>> try:
    ...     psnr(np.zeros((4, 4)), np.zeros((5, 5)), sigma=1.0)
    ... except InputError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    images must be 2-D and of the same shape, got (4, 4) and (5, 5); resample them ...
    >>> issubclass(InputError, ValueError)
    True
    """


class FITSReadError(InputError, OSError):
    """A file could not be read as FITS (missing, not FITS, truncated, unreadable).

    Examples
    --------
    >>> from astro_enhance import read_image
    >>> from astro_enhance.exceptions import FITSReadError
    >>> try:
    ...     read_image("no-such-frame.fits")
    ... except FITSReadError:
    ...     print("not readable")
    not readable
    """


class NoImageError(InputError):
    """A FITS file or HDUList holds no image HDU with data.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from astro_enhance import read_image
    >>> from astro_enhance.exceptions import NoImageError
    >>> try:
    ...     read_image(fits.HDUList([fits.PrimaryHDU()]))
    ... except NoImageError:
    ...     print("no image")
    no image
    """


class WCSError(InputError):
    """The input has no usable celestial WCS.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from astro_enhance import read_image
    >>> from astro_enhance.exceptions import WCSError
    >>> try:
    ...     read_image(fits.PrimaryHDU(np.zeros((8, 8), np.float32)))
    ... except WCSError:
    ...     print("no celestial WCS")
    no celestial WCS
    """


class UnitError(InputError):
    """The data's unit is unknown or unsuitable for the requested operation.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from astro_enhance.exceptions import InputError, UnitError
    >>> from astro_enhance.simulate import decam_to_nanomaggies
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]; w.wcs.cdelt = [-7e-5, 7e-5]
    >>> try:
    ...     decam_to_nanomaggies((np.ones((8, 8)), w))     # ADU, but no EXPTIME
    ... except UnitError:
    ...     print("cannot convert without an exposure time")
    cannot convert without an exposure time
    >>> issubclass(UnitError, InputError)
    True
    """


class SurveyError(AstroEnhanceError, ValueError):
    """An unknown survey or band was asked for.

    Examples
    --------
    >>> from astro_enhance import get_survey
    >>> from astro_enhance.exceptions import SurveyError
    >>> try:
    ...     get_survey("hubble")
    ... except SurveyError:
    ...     print("unknown survey")
    unknown survey
    """


class OutputError(AstroEnhanceError, OSError):
    """The output cannot be written (directory missing or read-only, disk full...).

    Examples
    --------
    >>> import os, tempfile
    >>> from astro_enhance.exceptions import OutputError
    >>> from astro_enhance.io import write_fits
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> missing = os.path.join(tempfile.mkdtemp(), "no-such-dir", "out.fits")
    >>> try:
    ...     write_fits(make_sdss_sample(shape=(16, 16)), missing)
    ... except OutputError:
    ...     print("cannot write there")
    cannot write there
    """


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and overwriting was not asked for.

    Examples
    --------
    >>> import os, tempfile
    >>> from astro_enhance.exceptions import OutputExistsError
    >>> from astro_enhance.io import write_fits
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> path = os.path.join(tempfile.mkdtemp(), "out.fits")
    >>> hdu = make_sdss_sample(shape=(16, 16))
    >>> _ = write_fits(hdu, path)
    >>> try:
    ...     write_fits(hdu, path)
    ... except OutputExistsError:
    ...     print("exists: pass overwrite=True")
    exists: pass overwrite=True
    """


class DeviceError(AstroEnhanceError, RuntimeError):
    """A compute device was asked for that is absent or unknown.

    Examples
    --------
    >>> from astro_enhance.device import resolve_device
    >>> from astro_enhance.exceptions import DeviceError
    >>> try:
    ...     resolve_device("tpu")
    ... except DeviceError:
    ...     print("unknown device")
    unknown device
    """


class WeightsError(AstroEnhanceError, ValueError):
    """Model weights are missing, of an unsafe kind (pickle) or do not fit the model.

    Examples
    --------
    >>> from astro_enhance.exceptions import WeightsError
    >>> from astro_enhance.weights import load_weights
    >>> try:
    ...     load_weights("model.pt")
    ... except WeightsError:
    ...     print("pickles are refused")
    pickles are refused
    """


class ChecksumError(WeightsError):
    """A weights file does not match the sha256 recorded in its sidecar.

    Examples
    --------
    >>> from astro_enhance.exceptions import ChecksumError, WeightsError
    >>> issubclass(ChecksumError, WeightsError)
    True
    """


class EnhancerError(AstroEnhanceError, ValueError):
    """Unknown enhancer name, duplicate registration or misuse of an enhancer.

    Examples
    --------
    >>> from astro_enhance.enhancers import get_enhancer
    >>> from astro_enhance.exceptions import EnhancerError
    >>> try:
    ...     get_enhancer("bicubicc")
    ... except EnhancerError as exc:
    ...     print("Did you mean 'bicubic'?" in str(exc))
    True
    """


class SplitError(AstroEnhanceError, ValueError):
    """A seed range would overlap another data split (train / val / bench).

    Examples
    --------
    >>> from astro_enhance.exceptions import SplitError
    >>> from astro_enhance.simulate import check_seeds
    >>> try:
    ...     check_seeds("bench", start=5, n=1)
    ... except SplitError:
    ...     print("seed 5 is a training seed")
    seed 5 is a training seed
    """


class AstroEnhanceWarning(AstropyUserWarning):
    """Base class of astro_enhance warnings.

    Examples
    --------
    >>> import warnings
    >>> from astro_enhance.exceptions import AstroEnhanceWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", AstroEnhanceWarning)  # silence all of them
    """


class DomainWarning(AstroEnhanceWarning):
    """The input is far from what a model was trained on.

    Examples
    --------
    Turn it into an error to refuse inputs outside a model's training domain:

    >>> import warnings
    >>> from astro_enhance.exceptions import AstroEnhanceWarning, DomainWarning
    >>> issubclass(DomainWarning, AstroEnhanceWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", DomainWarning)
    """


class NoStarsWarning(AstroEnhanceWarning):
    """Star removal found no stars.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from astro_enhance.exceptions import NoStarsWarning
    >>> from astro_enhance.stars import remove_stars
    >>> noise = np.random.default_rng(0).normal(0, 1, (64, 64)).astype(np.float32)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     result = remove_stars(noise, fwhm=3.0)
    >>> any(issubclass(w.category, NoStarsWarning) for w in caught)
    True
    """
