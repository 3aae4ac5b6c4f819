"""Preview figures: input, output and difference at one shared asinh stretch.

matplotlib is imported inside the functions, so ``import astro_enhance`` stays light.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from .exceptions import OutputError
from .normalize import estimate_noise

__all__ = ["save_preview", "shared_asinh_norm"]


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


def _save_figure(fig, path, *, dpi):
    """Write a matplotlib figure atomically (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix or ".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        plt.close(fig)
    return path


def _is_diff(label):
    low = label.lower()
    return low.startswith("difference") or low.startswith("residual")
