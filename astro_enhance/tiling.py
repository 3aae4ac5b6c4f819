"""Overlapping tiles with smooth weight windows: run a model on an image of any size.

A large image is cut into tiles of ``tile_size`` pixels that overlap by ``overlap`` pixels.
Each tile goes through the model (in batches), is multiplied by a separable weight window and
added into an accumulator; the sum is divided by the summed weights (normalised overlap-add).

The window of a tile is 1 in its interior and at every side that touches the image border.
On a side shared with a neighbour, the outer quarter of the overlap (the ``margin``, where a
convolutional model sees the artificial tile edge) has a tiny weight ``EPS`` (never exactly
zero), and the middle half of the overlap is a raised-cosine (Hann) ramp. Neighbouring ramps
cover the same pixels, so tiles cross-fade without seams, and every pixel has a normalising
weight of at least ~1 (at least one tile covers it with weight 1 or a ramp). For a purely
convolutional model whose receptive-field radius is at most ``overlap // 4``, the tiled result
equals the untiled one up to float rounding.

Because tiles lie on a Cartesian grid and the windows are separable, the summed weight is the
outer product of two 1-D profiles: no full-size weight image is ever stored. Memory is the
output accumulator (float32, one per output channel) plus one batch of tiles.

Tiles smaller than the model's ``size_multiple`` requirement (only when the image itself is
smaller than a tile) are padded by reflection and cropped after the model. On a GPU
out-of-memory error the whole run restarts with tiles of half the size (then with half the
batch), with a warning.

This module is pure numpy; the model is any callable taking a float32 array
``(B, C_in, h, w)`` and returning ``(B, C_out, h, w)``.
"""

import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from .exceptions import AstroEnhanceWarning, DeviceError, EnhancerError

__all__ = ["TilePlan", "plan_tiles", "tile_window", "run_tiled", "pad_to_multiple", "EPS"]

#: Weight given to the outer margin of a shared tile side (small, never exactly zero).
EPS = 1e-6


def tile_window(length, *, overlap, at_start=False, at_end=False, margin=None):
    """One-dimensional weight profile of a tile.

    Parameters
    ----------
    length : int
        Tile length in pixels.
    overlap : int
        Overlap with the neighbouring tiles, in pixels.
    at_start, at_end : bool, optional
        True when that side of the tile is the image border (the profile is then 1 up to the
        border: nothing there to blend with).
    margin : int, optional
        Pixels at a shared side that get weight `EPS` (default ``overlap // 4``).

    Returns
    -------
    ndarray, shape (length,), float64
        Weights in ``[EPS, 1]``.

    Examples
    --------
    >>> w = tile_window(16, overlap=8)
    >>> bool(w.min() > 0), float(w[8])
    (True, 1.0)
    """
    length = int(length)
    overlap = max(0, min(int(overlap), length))
    m = overlap // 4 if margin is None else max(0, min(int(margin), overlap // 2))
    r = overlap - 2 * m
    ramp = np.concatenate([np.full(m, EPS),
                           0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / max(r, 1))])
    ramp = np.maximum(ramp, EPS)
    w = np.ones(length, dtype=np.float64)
    n = ramp.size
    if n and not at_start:
        w[:n] = np.minimum(w[:n], ramp)
    if n and not at_end:
        w[length - n:] = np.minimum(w[length - n:], ramp[::-1])
    return w


def _starts(n, t, overlap):
    if n <= t:
        return [0]
    stride = t - overlap
    k = int(np.ceil((n - t) / stride)) + 1
    return sorted({min(i * stride, n - t) for i in range(k)})


@dataclass
class TilePlan:
    """Where the tiles of an image lie and how they are weighted.

    Attributes
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    tile_shape : tuple of int
        Shape of every tile before padding, ``(ty, tx)``.
    padded_shape : tuple of int
        Shape of every tile after reflection padding to the size multiple.
    overlap : int
        Overlap between neighbouring tiles.
    starts_y, starts_x : list of int
        Tile origins along each axis; the tiles are their Cartesian product.
    windows_y, windows_x : list of ndarray
        1-D weight profile of each tile row / column.
    norm_y, norm_x : ndarray
        Summed 1-D weights; the 2-D normaliser is their outer product.
    """

    shape: tuple
    tile_shape: tuple
    padded_shape: tuple
    overlap: int
    starts_y: list
    starts_x: list
    windows_y: list = field(repr=False)
    windows_x: list = field(repr=False)
    norm_y: np.ndarray = field(repr=False)
    norm_x: np.ndarray = field(repr=False)

    @property
    def n_tiles(self):
        """Number of tiles."""
        return len(self.starts_y) * len(self.starts_x)

    def tiles(self):
        """Iterate over tiles as ``(iy, ix, y0, y1, x0, x1)`` in row-major order."""
        ty, tx = self.tile_shape
        for iy, y0 in enumerate(self.starts_y):
            for ix, x0 in enumerate(self.starts_x):
                yield iy, ix, y0, y0 + ty, x0, x0 + tx


def plan_tiles(shape, *, tile_size=None, overlap=32, size_multiple=1):
    """Plan overlapping tiles covering an image.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    tile_size : int or None, optional
        Tile side in pixels (rounded down to a multiple of ``size_multiple``). None: one tile
        covering the whole image.
    overlap : int, optional
        Overlap between neighbouring tiles; must be smaller than the tile.
    size_multiple : int, optional
        The model needs tile sides that are multiples of this.

    Returns
    -------
    `TilePlan`

    Raises
    ------
    ValueError
        If the tile is not larger than the overlap.

    Examples
    --------
    >>> plan = plan_tiles((1024, 1024), tile_size=256, overlap=32)
    >>> plan.starts_x
    [0, 224, 448, 672, 768]
    """
    ny, nx = (int(s) for s in shape)
    if ny < 1 or nx < 1:
        raise ValueError(f"cannot tile an empty image of shape {shape}")
    mult = max(1, int(size_multiple))
    overlap = max(0, int(overlap or 0))
    if tile_size is None:
        ty, tx = ny, nx
    else:
        t = (int(tile_size) // mult) * mult
        if t < 1:
            raise ValueError(f"tile_size={tile_size} is smaller than the model's size "
                             f"multiple {mult}")
        ty, tx = min(t, ny), min(t, nx)
        for n, tt in ((ny, ty), (nx, tx)):
            if n > tt and tt <= overlap:
                raise ValueError(f"tile_size={t} must be larger than overlap={overlap}; "
                                 f"use a larger tile or a smaller overlap")
    py = -(-ty // mult) * mult
    px = -(-tx // mult) * mult
    sy, sx = _starts(ny, ty, overlap), _starts(nx, tx, overlap)

    def profiles(starts, t, n):
        wins = [tile_window(t, overlap=overlap, at_start=(s == 0), at_end=(s + t == n))
                for s in starts]
        norm = np.zeros(n, dtype=np.float64)
        for s, w in zip(starts, wins):
            norm[s:s + t] += w
        return wins, norm

    wy, normy = profiles(sy, ty, ny)
    wx, normx = profiles(sx, tx, nx)
    return TilePlan((ny, nx), (ty, tx), (py, px), overlap, sy, sx, wy, wx, normy, normx)


def pad_to_multiple(array, multiple):
    """Pad the last two axes at their end by reflection to a multiple of ``multiple``.

    Parameters
    ----------
    array : ndarray, shape (..., h, w)
        Array to pad.
    multiple : int
        Required multiple.

    Returns
    -------
    padded : ndarray, shape (..., H, W)
        Padded array (``array`` itself when no padding is needed).
    pads : tuple of int
        ``(H - h, W - w)``.

    Examples
    --------
    >>> import numpy as np
    >>> p, pads = pad_to_multiple(np.zeros((5, 6)), 4)
    >>> p.shape, pads
    ((8, 8), (3, 2))
    """
    h, w = array.shape[-2:]
    m = max(1, int(multiple))
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return array, (0, 0)
    widths = [(0, 0)] * (array.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(array, widths, mode="reflect"), (ph, pw)


def _is_oom(exc):
    torch = sys.modules.get("torch")
    if torch is not None:
        oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
        if oom is not None and isinstance(exc, oom):
            return True
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def run_tiled(data, fn, *, tile_size=None, overlap=32, size_multiple=1, batch_size=4,
              progress=False, min_tile_size=None):
    """Apply ``fn`` to an image tile by tile and blend the results.

    Parameters
    ----------
    data : ndarray, shape (ny, nx) or (C, ny, nx)
        Input image (not modified). Converted to float32 tile by tile.
    fn : callable
        ``fn(batch) -> result`` with ``batch`` a float32 array ``(B, C, h, w)`` and
        ``result`` array-like ``(B, C_out, h, w)`` (a torch tensor on the CPU is accepted).
    tile_size : int or None, optional
        Tile side in pixels; None processes the image as a single tile.
    overlap : int, optional
        Overlap between neighbouring tiles, in pixels.
    size_multiple : int, optional
        ``fn`` needs ``h`` and ``w`` to be multiples of this.
    batch_size : int, optional
        Tiles per call of ``fn``.
    progress : bool, optional
        Show a tqdm progress bar.
    min_tile_size : int, optional
        Smallest tile tried after out-of-memory errors (default ``max(2 * overlap + 1, 32)``).

    Returns
    -------
    ndarray, float32
        ``(ny, nx)`` when ``data`` is 2-D and ``C_out == 1``, else ``(C_out, ny, nx)``.

    Raises
    ------
    DeviceError
        If the device runs out of memory even with the smallest tiles and a batch of one.
    EnhancerError
        If ``fn`` returns an array of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(100.0, dtype=np.float32).reshape(10, 10)
    >>> out = run_tiled(img, lambda b: b * 2, tile_size=6, overlap=2)
    >>> bool(np.allclose(out, 2 * img))
    True
    """
    arr = np.asarray(data)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected an image of shape (ny, nx) or (C, ny, nx), got {arr.shape}")
    ny, nx = arr.shape[1:]
    mult = max(1, int(size_multiple))
    if min_tile_size is None:
        min_tile_size = max(2 * int(overlap or 0) + 1, 32)
    batch_size = max(1, int(batch_size))
    tile = tile_size
    while True:
        try:
            out = _run_once(arr, fn, plan_tiles((ny, nx), tile_size=tile, overlap=overlap,
                                                size_multiple=mult), batch_size, progress)
            break
        except Exception as exc:
            if not _is_oom(exc):
                raise
            current = max(ny, nx) if tile is None else int(tile)
            new = (current // 2 // mult) * mult
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():  # pragma: no cover - GPU only
                torch.cuda.empty_cache()
            if new >= max(min_tile_size, mult):
                warnings.warn(f"out of memory with tiles of {current} px; retrying with "
                              f"{new} px tiles", AstroEnhanceWarning, stacklevel=2)
                tile = new
            elif batch_size > 1:
                batch_size //= 2
                warnings.warn(f"out of memory with tiles of {current} px; retrying with a "
                              f"batch of {batch_size}", AstroEnhanceWarning, stacklevel=2)
            else:
                raise DeviceError(f"out of memory even with {current} px tiles and a batch of "
                                  f"one; free device memory or use device='cpu'") from exc
    if squeeze and out.shape[0] == 1:
        return out[0]
    return out


def _run_once(arr, fn, plan, batch_size, progress):
    ny, nx = plan.shape
    ty, tx = plan.tile_shape
    out = None
    tiles = list(plan.tiles())
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(tiles), desc="tiles", unit="tile")
    try:
        for b0 in range(0, len(tiles), batch_size):
            chunk = tiles[b0:b0 + batch_size]
            batch = np.stack([arr[:, y0:y1, x0:x1] for _, _, y0, y1, x0, x1 in chunk])
            batch = batch.astype(np.float32, copy=False)
            ph, pw = plan.padded_shape[0] - ty, plan.padded_shape[1] - tx
            if ph or pw:
                batch = np.pad(batch, [(0, 0), (0, 0), (0, ph), (0, pw)], mode="reflect")
            res = fn(np.ascontiguousarray(batch))
            if hasattr(res, "detach"):
                res = res.detach().cpu().numpy()
            res = np.asarray(res)
            if res.ndim != 4 or res.shape[0] != len(chunk) or res.shape[2:] != batch.shape[2:]:
                raise EnhancerError(f"the model returned an array of shape {res.shape} for "
                                    f"input {batch.shape}; same-grid models must return "
                                    f"(B, C_out, H, W) with the input's B, H, W")
            if out is None:
                out = np.zeros((res.shape[1], ny, nx), dtype=np.float32)
            for (iy, ix, y0, y1, x0, x1), r in zip(chunk, res):
                w = np.outer(plan.windows_y[iy], plan.windows_x[ix]).astype(np.float32)
                out[:, y0:y1, x0:x1] += r[:, :ty, :tx].astype(np.float32, copy=False) * w
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    # Normalise in row blocks: no full-size float64 temporary.
    step = max(1, 262_144 // max(nx, 1))
    inv_x = (1.0 / plan.norm_x)
    for r0 in range(0, ny, step):
        r1 = min(ny, r0 + step)
        inv = (1.0 / plan.norm_y[r0:r1])[:, None] * inv_x[None, :]
        out[:, r0:r1] *= inv.astype(np.float32)
    return out
