"""Preview figures: input, output and difference at one shared asinh stretch.

matplotlib is imported inside the functions, so ``import astro_enhance`` stays light.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from .exceptions import OutputError
from .normalize import estimate_noise

__all__ = ["save_preview", "shared_asinh_norm", "lupton_rgb", "save_rgb"]


def shared_asinh_norm(*images, softening=3.0, percentile=99.7):
    """A matplotlib normalisation shared by several images.

    Parameters
    ----------
    *images : ndarray
        Images in the same units; the first sets the noise scale.
    softening : float, optional
        The asinh softening in units of the first image's noise.
    percentile : float, optional
        Upper percentile of all finite pixels that maps to white.

    Returns
    -------
    norm : `astropy.visualization.mpl_normalize.ImageNormalize`

    Examples
    --------
    >>> import numpy as np
    >>> from astro_enhance.visualization import shared_asinh_norm
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0, 1, (32, 32)); b = 2 * a
    >>> norm = shared_asinh_norm(a, b)
    >>> bool(norm.vmin < 0 < norm.vmax)
    True
    """
    from astropy.visualization import AsinhStretch, ImageNormalize

    finite = np.concatenate([np.asarray(im)[np.isfinite(im)].ravel() for im in images])
    if finite.size == 0:
        finite = np.array([0.0, 1.0])
    sigma = estimate_noise(images[0]) if np.isfinite(images[0]).any() else 1.0
    vmin = float(np.percentile(finite, 1.0))
    vmax = float(np.percentile(finite, percentile))
    if vmax <= vmin:
        vmax = vmin + 1.0
    a = float(np.clip(softening * sigma / (vmax - vmin), 1e-4, 1.0))
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(a=a))


def save_preview(path, panels, *, title=None, unit=None, dpi=110):
    """Write a PNG of several images side by side at a shared asinh stretch.

    The last panel may be a difference image: a panel whose label starts with
    ``"difference"`` or ``"residual"`` gets its own symmetric stretch around zero.

    Parameters
    ----------
    path : str or path
        Output PNG (written atomically).
    panels : list of (str, ndarray)
        Label and image of each panel.
    title : str, optional
        Figure title (e.g. the method name).
    unit : str, optional
        Unit shown on the colour bars.
    dpi : int, optional
        Resolution.

    Returns
    -------
    path : `pathlib.Path`

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from astro_enhance.visualization import save_preview
    >>> rng = np.random.default_rng(1)
    >>> a = rng.normal(size=(32, 32))
    >>> p = save_preview(os.path.join(tempfile.mkdtemp(), "p.png"), [("in", a), ("out", a)])
    >>> p.exists()
    True
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from astropy.visualization import ImageNormalize, LinearStretch

    path = Path(path)
    if not path.parent.exists():
        raise OutputError(f"cannot write preview {path}: directory {path.parent} does not exist")
    main = [im for label, im in panels if not _is_diff(label)]
    norm = shared_asinh_norm(*main)
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.4), squeeze=False)
    for ax, (label, im) in zip(axes[0], panels):
        if _is_diff(label):
            lim = float(np.nanpercentile(np.abs(im), 99.5)) if np.isfinite(im).any() else 1.0
            lim = lim or 1.0
            dn = ImageNormalize(vmin=-lim, vmax=lim, stretch=LinearStretch())
            art = ax.imshow(im, origin="lower", cmap="RdBu_r", norm=dn, interpolation="nearest")
        else:
            art = ax.imshow(im, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        cb = fig.colorbar(art, ax=ax, fraction=0.046, pad=0.02)
        if unit:
            cb.set_label(str(unit), fontsize=8)
        cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save_figure(fig, path, dpi=dpi)


def lupton_rgb(cube, *, stretch=None, Q=8.0, minimum=0.0):
    """Colour image of a (blue, green, red) band cube with `~astropy.visualization.make_lupton_rgb`.

    The planes are in order of increasing wavelength (e.g. g, r, z from ``colorize``): the
    first becomes blue, the last red. The Lupton et al. (2004) asinh stretch keeps the
    colours of bright sources (it scales all three bands by the same function of their
    total intensity).

    Parameters
    ----------
    cube : ndarray, shape (3, ny, nx)
        Band images, same flux unit (e.g. nanomaggies). NaN pixels become black.
    stretch : float, optional
        Linear range of the stretch in data units; default a fifth of the 99.5th percentile
        of the middle band.
    Q : float, optional
        Asinh softening parameter.
    minimum : float, optional
        Data value shown black.

    Returns
    -------
    ndarray, uint8, shape (ny, nx, 3)
        RGB image, row 0 = FITS row 0 (bottom when shown with ``origin="lower"``).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:32, :32]
    >>> g = np.exp(-((xx - 16) ** 2 + (yy - 16) ** 2) / 20.0)
    >>> rgb = lupton_rgb(np.stack([0.5 * g, g, 2 * g]))
    >>> rgb.shape, rgb.dtype, bool(rgb[16, 16, 0] > rgb[16, 16, 2])
    ((32, 32, 3), dtype('uint8'), True)
    """
    from astropy.visualization import make_lupton_rgb

    c = np.asarray(cube, dtype=np.float64)
    if c.ndim != 3 or c.shape[0] != 3:
        raise OutputError(f"an RGB image needs a cube of 3 band planes, got shape {c.shape}")
    c = np.nan_to_num(c, nan=minimum, posinf=minimum, neginf=minimum)
    if stretch is None:
        stretch = _lupton_stretch(c[1])
    return make_lupton_rgb(c[2], c[1], c[0], minimum=minimum, stretch=float(stretch),
                           Q=float(Q))


def save_rgb(path, cube, **kwargs):
    """Write the `lupton_rgb` colour image of a band cube as a PNG (atomically).

    Parameters
    ----------
    path : str or path
        Output PNG; its directory must exist.
    cube : ndarray, shape (3, ny, nx)
        Band images, blue to red (e.g. the ``colorize`` output cube).
    **kwargs
        ``stretch``, ``Q``, ``minimum`` of `lupton_rgb`.

    Returns
    -------
    path : `pathlib.Path`

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> cube = np.random.default_rng(0).random((3, 16, 16))
    >>> save_rgb(os.path.join(tempfile.mkdtemp(), "rgb.png"), cube).exists()
    True
    """
    from PIL import Image as _PIL

    path = Path(path)
    if not path.parent.exists():
        raise OutputError(f"cannot write {path}: directory {path.parent} does not exist")
    rgb = lupton_rgb(cube, **kwargs)[::-1]   # FITS row 0 at the bottom of the PNG
    return _write_atomic(path, lambda tmp: _PIL.fromarray(np.ascontiguousarray(rgb)).save(
        tmp, format="PNG"))


def _lupton_stretch(plane):
    """Default linear range of the Lupton stretch: a fifth of the 99.5th percentile."""
    hi = float(np.nanpercentile(plane, 99.5))
    return hi / 5.0 if hi > 0 else 1.0


def _write_atomic(path, write):
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``;
    nothing is left behind if writing fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix or ".png", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _save_figure(fig, path, *, dpi):
    """Write a matplotlib figure atomically (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    try:
        return _write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    finally:
        plt.close(fig)


def _is_diff(label):
    low = label.lower()
    return low.startswith("difference") or low.startswith("residual")
