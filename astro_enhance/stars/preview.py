"""Preview figures of star removal: input and clean image at one stretch, and the mask.

matplotlib is imported inside the function, so ``import astro_enhance.stars`` stays light.
"""

from pathlib import Path

import numpy as np

from ..exceptions import OutputError

__all__ = ["save_star_preview"]


def save_star_preview(path, image, clean, mask, *, inpainted=None, extra=None, title=None,
                      dpi=100):
    """Write a PNG: input, clean image (shared asinh stretch) and the removal mask.

    Parameters
    ----------
    path : str or path
        Output PNG (written atomically).
    image, clean : ndarray, shape (ny, nx)
        Input and clean images.
    mask : ndarray of bool
        Pixels changed by the removal.
    inpainted : ndarray of bool, optional
        Pixels masked and inpainted (shown in a second colour).
    extra : tuple of (str, ndarray), optional
        A further panel (e.g. a survey pipeline's data-quality mask), shown with its own
        linear stretch.
    title : str, optional
        Figure title.
    dpi : int, optional
        Resolution.

    Returns
    -------
    `pathlib.Path`

    Raises
    ------
    astro_enhance.OutputError
        If the directory does not exist.

    Examples
    --------
    >>> import tempfile
    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> from astro_enhance.stars import remove_stars
    >>> hdu = make_sdss_sample(shape=(128, 128))
    >>> res = remove_stars(hdu, rng=0)
    >>> path = save_star_preview(tempfile.mkdtemp() + "/stars.png", hdu.data, res.clean,
    ...                          res.mask, inpainted=res.inpainted, title="demo")
    >>> path.suffix, path.stat().st_size > 0
    ('.png', True)
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from astropy.visualization import AsinhStretch, ImageNormalize
    from matplotlib.colors import ListedColormap

    from ..normalize import estimate_noise
    from ..visualization import _save_figure

    path = Path(path)
    if not path.parent.exists():
        raise OutputError(f"cannot write preview {path}: directory {path.parent} does not exist")
    img = np.asarray(image, dtype=np.float64)
    finite = img[np.isfinite(img)]
    sky = float(np.median(finite)) if finite.size else 0.0
    sigma = estimate_noise(img) if finite.size else 1.0
    vmax = float(np.percentile(finite, 99.8)) if finite.size else 1.0
    vmin = sky - 2 * sigma
    if vmax <= vmin:
        vmax = vmin + 1.0
    a = float(np.clip(3 * sigma / (vmax - vmin), 1e-4, 1.0))
    norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(a=a))
    code = np.asarray(mask, dtype=np.int8)
    if inpainted is not None:
        code = np.where(inpainted, 2, code)
    panels = 3 + (extra is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.3 * panels, 4.6), squeeze=False)
    ax = axes[0]
    ax[0].imshow(img, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
    ax[0].set_title("input", fontsize=10)
    ax[1].imshow(np.asarray(clean, dtype=np.float64), origin="lower", cmap="gray", norm=norm,
                 interpolation="nearest")
    ax[1].set_title("clean", fontsize=10)
    cmap = ListedColormap(["#111111", "#4f8fd6", "#f2b134"])
    ax[2].imshow(code, origin="lower", cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
    ax[2].set_title("mask: blue subtracted, orange inpainted", fontsize=10)
    if extra is not None:
        label, arr = extra
        ax[3].imshow(np.asarray(arr, dtype=np.float64), origin="lower", cmap="viridis",
                     interpolation="nearest")
        ax[3].set_title(label, fontsize=10)
    for a_ in ax:
        a_.set_xticks([])
        a_.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save_figure(fig, path, dpi=dpi)
