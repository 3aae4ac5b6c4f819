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
outer product of two 1-D profiles: no full-size weight image is ever stored. Tiles are run in
row-major order and the output is blended one strip of tile rows at a time: the accumulator
holds ``tile height x image width`` pixels per output channel, and each output row is
normalised and written out (to a new array or a preallocated ``out=``, e.g. a `numpy.memmap`)
as soon as no later tile touches it. The input is read tile by tile. Pages of a memory-mapped
input or ``out`` are handed back to the operating system once their rows are done (Linux
``madvise``), so that a memory-mapped image streams through in memory set by the tile size,
the batch size and the image *width*, not its area.

Tiles smaller than the model's ``size_multiple`` requirement (only when the image itself is
smaller than a tile) are padded by reflection and cropped after the model. On a GPU
out-of-memory error the whole run restarts with tiles of half the size (then with half the
batch), with a warning.

This module is pure numpy; the model is any callable taking a float32 array
``(B, C_in, h, w)`` and returning ``(B, C_out, h, w)``.
"""

import itertools
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


def _balanced(n, t, overlap, mult):
    """Smallest tile side (a multiple of ``mult``, at most ``t``) covering ``n`` pixels with
    as few tiles as side ``t`` needs."""
    if n <= t:
        return t
    k = len(_starts(n, t, overlap))
    need = -(-(n + (k - 1) * overlap) // k)
    return min(t, max(-(-need // mult) * mult, overlap + 1))


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

    Examples
    --------
    Plans are made by `plan_tiles`:

    >>> plan = plan_tiles((100, 150), tile_size=64, overlap=16)
    >>> plan.n_tiles, plan.tile_shape, plan.starts_y, plan.starts_x
    (6, (64, 64), [0, 36], [0, 48, 86])
    >>> next(plan.tiles())
    (0, 0, 0, 64, 0, 64)
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


def plan_tiles(shape, *, tile_size=None, overlap=32, size_multiple=1, balance=False):
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
    balance : bool, optional
        Treat ``tile_size`` as the largest tile side and shrink the tiles along each axis to
        the smallest multiple of ``size_multiple`` that covers the image with the same
        number of tiles, so the last tile does not overlap its neighbour by much more than
        ``overlap``: less computation for the same number of tiles (tiles may then be
        rectangular). Default False: square tiles of ``tile_size``.

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
    >>> plan = plan_tiles((1024, 1024), tile_size=512, overlap=32, balance=True)
    >>> plan.tile_shape, plan.starts_x
    ((363, 363), [0, 331, 661])
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
        if balance:
            ty, tx = _balanced(ny, ty, overlap, mult), _balanced(nx, tx, overlap, mult)
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
              progress=False, min_tile_size=None, out=None, postprocess=None, balance=False):
    """Apply ``fn`` to an image tile by tile and blend the results.

    Tiles are processed in row-major order and the blended output is built one strip of tile
    rows at a time: as soon as no later tile touches an output row, that row is normalised,
    passed to ``postprocess`` and written to ``out``. The working memory is therefore one
    accumulator strip (``C_out x tile height x nx`` float32) and one batch of tiles, whatever
    the image height; the input is only read tile by tile.

    Parameters
    ----------
    data : ndarray, shape (ny, nx) or (C, ny, nx)
        Input image (not modified). Converted to float32 tile by tile, so any real dtype or
        byte order works, and a memory-mapped array (`numpy.memmap`, the ``data`` of a FITS
        file opened with ``memmap=True``) is never read whole: its pages are handed back to
        the operating system once no later tile needs them.
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
    out : ndarray, optional
        Preallocated float32 array (either byte order) of shape ``(C_out, ny, nx)``, or
        ``(ny, nx)`` when ``C_out == 1``, that receives the result strip by strip, e.g. a
        `numpy.memmap` or the data of a FITS file opened with ``mode="update"``. Pages of a
        memory-mapped ``out`` are handed back to the operating system (the data stay in the
        file) once written, so the output does not have to fit in memory. Default: a new
        in-memory array.
    postprocess : callable, optional
        ``postprocess(block, r0, r1)`` is called on every finished block of output rows
        ``r0:r1`` (a float32 array ``(C_out, r1 - r0, nx)``, already normalised) before it is
        stored; it may modify ``block`` in place or return a replacement of the same shape.
        Used to undo a stretch and restore NaN without a full-size temporary.
    balance : bool, optional
        Shrink the tiles to cover the image evenly (see `plan_tiles`); ``tile_size`` is then
        the largest tile side.

    Returns
    -------
    ndarray, float32
        ``out`` when given; otherwise ``(ny, nx)`` when ``data`` is 2-D and ``C_out == 1``,
        else ``(C_out, ny, nx)``.

    Raises
    ------
    DeviceError
        If the device runs out of memory even with the smallest tiles and a batch of one.
    EnhancerError
        If ``fn`` returns an array of the wrong shape, or ``out`` does not fit the result.
    ValueError
        If ``data`` is not 2-D or 3-D, or ``out`` is not a writeable float32 array with the
        image's shape.

    Notes
    -----
    Peak memory is ``out`` (unless memory-mapped), ``C_out * tile_height * nx * 4`` bytes of
    accumulator, one batch of input and output tiles and whatever ``fn`` allocates. The
    normalising weight is the outer product of two 1-D profiles and is never stored. The
    result does not depend on the strip processing: every pixel receives the same additions in
    the same order as in a single full-size accumulator.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(100.0, dtype=np.float32).reshape(10, 10)
    >>> out = run_tiled(img, lambda b: b * 2, tile_size=6, overlap=2)
    >>> bool(np.allclose(out, 2 * img))
    True

    Writing into a preallocated (here memory-mapped) array:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "out.dat")
    >>> mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(10, 10))
    >>> run_tiled(img, lambda b: b * 2, tile_size=6, overlap=2, out=mm) is mm
    True
    >>> bool(np.allclose(mm, 2 * img))
    True
    """
    arr = np.asarray(data)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected an image of shape (ny, nx) or (C, ny, nx), got {arr.shape}")
    ny, nx = arr.shape[1:]
    out3 = None
    if out is not None:
        out3 = _check_out(out, (ny, nx))
    mult = max(1, int(size_multiple))
    if min_tile_size is None:
        min_tile_size = max(2 * int(overlap or 0) + 1, 32)
    batch_size = max(1, int(batch_size))
    tile = tile_size
    while True:
        try:
            res = _run_once(arr, fn, plan_tiles((ny, nx), tile_size=tile, overlap=overlap,
                                                size_multiple=mult, balance=balance),
                            batch_size, progress, out3, postprocess)
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
    if out is not None:
        return out
    if squeeze and res.shape[0] == 1:
        return res[0]
    return res


def _check_out(out, shape):
    """Validate a user ``out`` array; return a (C, ny, nx) view of it."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array (e.g. a numpy.memmap), not "
                         f"{type(out).__name__}")
    if out.dtype.kind != "f" or out.dtype.itemsize != 4:
        raise ValueError(f"out must be a float32 array, got dtype {out.dtype}; allocate it "
                         f"with dtype=np.float32")
    if not out.flags.writeable:
        raise ValueError("out is read-only; open the memory map or FITS file for writing "
                         "(np.memmap mode 'r+'/'w+', fits.open(..., mode='update'))")
    if out.ndim not in (2, 3) or out.shape[-2:] != tuple(shape):
        raise ValueError(f"out has shape {out.shape}; the image needs {tuple(shape)} (one "
                         f"output band) or (C_out, {shape[0]}, {shape[1]})")
    return out[None] if out.ndim == 2 else out


def _run_once(arr, fn, plan, batch_size, progress, out, postprocess):
    """One tiled pass, strip by strip (see `run_tiled`); returns the (C_out, ny, nx) result."""
    ny, nx = plan.shape
    ty, tx = plan.tile_shape
    tiles = plan.tiles()        # a generator: nothing per tile is kept
    src = _PageReleaser(arr)
    dst = None
    acc = None          # accumulator for image rows top .. top + ty
    state = {"top": 0, "row": 0}
    windows = {}        # 2-D float32 weight window per border class (at most 9)
    weighted = None     # preallocated tile * window product
    inv_x = 1.0 / plan.norm_x
    step = max(1, 262_144 // max(nx, 1))

    def finalise(r1):
        """Normalise, post-process and store rows top:r1 (no later tile touches them)."""
        top = state["top"]
        n = r1 - top
        if n <= 0:
            return
        block = acc[:, :n]
        for a in range(0, n, step):     # row blocks: no strip-size float64 temporary
            b = min(n, a + step)
            inv = (1.0 / plan.norm_y[top + a:top + b])[:, None] * inv_x[None, :]
            block[:, a:b] *= inv.astype(np.float32)
        if postprocess is not None:
            new = postprocess(block, top, r1)
            if new is not None:
                new = np.asarray(new)
                if new.shape != block.shape:
                    raise EnhancerError(f"postprocess returned shape {new.shape} for a block "
                                        f"of shape {block.shape}")
                block = new
        out[:, top:r1] = block
        dst.release(top, r1)
        src.release(top, r1)
        # shift the accumulator up by n rows and clear what comes in at the bottom
        if n < ty:
            acc[:, :ty - n] = acc[:, n:]
            acc[:, ty - n:] = 0.0
        else:
            acc[...] = 0.0
        state["top"] = r1

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=plan.n_tiles, desc="tiles", unit="tile")
    try:
        while True:
            chunk = list(itertools.islice(tiles, batch_size))
            if not chunk:
                break
            batch = np.stack([arr[:, y0:y1, x0:x1] for _, _, y0, y1, x0, x1 in chunk])
            batch = batch.astype(np.float32, copy=False)
            ph, pw = plan.padded_shape[0] - ty, plan.padded_shape[1] - tx
            if ph or pw:
                batch = np.pad(batch, [(0, 0), (0, 0), (0, ph), (0, pw)], mode="reflect")
            res = fn(np.ascontiguousarray(batch))
            del batch
            if hasattr(res, "detach"):
                res = res.detach().cpu().numpy()
            res = np.asarray(res)
            if res.ndim != 4 or res.shape[0] != len(chunk) or \
                    res.shape[2:] != (plan.padded_shape[0], plan.padded_shape[1]):
                raise EnhancerError(f"the model returned an array of shape {res.shape} for "
                                    f"input {(len(chunk), arr.shape[0]) + plan.padded_shape}; "
                                    f"same-grid models must return (B, C_out, H, W) with the "
                                    f"input's B, H, W")
            if acc is None:
                c_out = res.shape[1]
                if out is None:
                    out = np.empty((c_out, ny, nx), dtype=np.float32)
                elif out.shape[0] != c_out:
                    raise EnhancerError(f"out has {out.shape[0]} band(s) but the model returns "
                                        f"{c_out}; allocate out with shape ({c_out}, {ny}, "
                                        f"{nx})")
                dst = _PageReleaser(out)
                acc = np.zeros((c_out, ty, nx), dtype=np.float32)
            for (iy, ix, y0, y1, x0, x1), r in zip(chunk, res):
                if iy != state["row"]:
                    # Tiles come row by row with increasing origins: rows above this tile
                    # row's origin are complete.
                    finalise(y0)
                    state["row"] = iy
                # a tile's window depends only on which image borders it touches
                key = (y0 == 0, y1 == ny, x0 == 0, x1 == nx)
                w = windows.get(key)
                if w is None:
                    w = np.outer(plan.windows_y[iy], plan.windows_x[ix]).astype(np.float32)
                    windows[key] = w
                top = state["top"]
                r = r[:, :ty, :tx]
                if r.dtype != np.float32:
                    r = r.astype(np.float32)
                if weighted is None or weighted.shape[0] != r.shape[0]:
                    weighted = np.empty((r.shape[0], ty, tx), dtype=np.float32)
                # the same float32 product and sum as acc += r * w, without temporaries
                np.multiply(r, w, out=weighted)
                acc[:, y0 - top:y1 - top, x0:x1] += weighted
            del res
            if bar is not None:
                bar.update(len(chunk))
        finalise(ny)
    finally:
        if bar is not None:
            bar.close()
    return out


#: ``madvise`` advice values (Linux): drop the pages of a shared mapping (the data stay in
#: the page cache and the file), reclaim those of a private one (never discards data).
_MADV_DONTNEED = 4
_MADV_PAGEOUT = 21


class _PageReleaser:
    """Hands the pages of finished rows of a memory-mapped array back to the OS (Linux).

    Resident pages of a file mapping count in a process's RSS until unmapped, so reading or
    writing a memory-mapped image from top to bottom would otherwise make the RSS grow to the
    image size. For a shared mapping (`numpy.memmap` modes ``"r"``, ``"r+"``, ``"w+"``, FITS
    ``mode="update"``/``"denywrite"``) ``MADV_DONTNEED`` unmaps the pages: written data stay
    in the page cache and reach the file. For a private (copy-on-write) mapping
    (``mode="c"``, FITS ``"readonly"``) ``MADV_PAGEOUT`` asks the kernel to reclaim the
    pages: clean ones are re-read from the file if needed, modified ones are kept. Does
    nothing for ordinary arrays, on other systems, or if anything is unexpected.
    """

    def __init__(self, array):
        self.mm = None
        try:
            self._setup(array)
        except Exception:       # never let page management break a computation
            self.mm = None

    def _setup(self, array):
        import mmap

        if not sys.platform.startswith("linux") or not hasattr(mmap.mmap, "madvise"):
            return
        base = array
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "base", None)
        if base is None or array.ndim != 3 or min(array.strides) < 0 or array.size == 0:
            return
        start = np.frombuffer(base, dtype=np.uint8).__array_interface__["data"][0]
        shared = _mapping_is_shared(start)
        if shared is None:
            return
        self.mm = base
        self.start = start
        self.size = len(base)
        self.advice = _MADV_DONTNEED if shared else _MADV_PAGEOUT
        self.page = mmap.PAGESIZE
        self.ptr = array.__array_interface__["data"][0]
        self.strides = array.strides
        self.row_bytes = (array.shape[2] - 1) * array.strides[2] + array.itemsize
        self.nchan = array.shape[0]

    def release(self, r0, r1):
        """Release the pages of rows ``r0:r1`` of every channel (rows above are finished).

        The page holding the start of row ``r1`` is kept; the one holding row ``r0`` is
        released with the rows above it, which must be finished.
        """
        if self.mm is None or r1 <= r0:
            return
        sc, sy, _ = self.strides
        for c in range(self.nchan):
            lo = self.ptr + c * sc + r0 * sy - self.start
            hi = self.ptr + c * sc + (r1 - 1) * sy + self.row_bytes - self.start
            lo = max(lo, 0) // self.page * self.page  # rows above r0 are finished too
            hi = min(hi, self.size) // self.page * self.page
            if hi > lo >= 0:
                try:
                    self.mm.madvise(self.advice, lo, hi - lo)
                except (OSError, ValueError):
                    self.mm = None
                    return


def _mapping_is_shared(address):
    """True/False for a shared/private mapping containing ``address``; None if unknown."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                rng, perms = line.split(None, 2)[:2]
                lo, hi = (int(v, 16) for v in rng.split("-"))
                if lo <= address < hi:
                    return perms[3] == "s"
    except (OSError, ValueError, IndexError):
        return None
    return None
