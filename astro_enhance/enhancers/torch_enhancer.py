"""`TorchEnhancer`: a PyTorch network wrapped as an `~astro_enhance.enhancers.Enhancer`.

The pipeline around the network is fixed, and networks are trained in exactly the same space:

1. ``sigma`` = the given noise or `astro_enhance.normalize.estimate_noise` of each band
   (non-finite pixels ignored; on a sample of blocks for images above 2**20 pixels, see
   `astro_enhance.enhancers.estimate_noise_bounded`);
2. the image is cut into overlapping tiles (`astro_enhance.tiling.run_tiled`); in each tile
   non-finite pixels are filled with 0 (the sky level of sky-subtracted data) and
   ``y = asinh(x / (softening * sigma))`` is applied (`astro_enhance.normalize.asinh_stretch`);
3. each batch of tiles goes through ``model(y)`` under `torch.inference_mode` (and autocast
   when running in half precision), and the tiles are blended back strip by strip;
4. in each finished strip ``x = softening * sigma * sinh(y_out)``
   (`astro_enhance.normalize.asinh_unstretch`) and the pixels that were not finite in the
   input are set back to NaN; the strip is written to the output (``out=`` if given).

No step makes a full-size copy, mask or temporary, so the memory is the input and output
arrays plus a strip of ``tile_size`` rows; with a memory-mapped input and ``out`` (FITS files
opened with ``memmap=True``), the memory no longer depends on the image height at all.

Model convention: ``model(x)`` with ``x`` a float tensor ``(B, C_in, H, W)`` in the stretched
space returns ``(B, C_out, H, W)`` in the same space (residual learning is inside the model);
``H`` and ``W`` are multiples of ``info.size_multiple`` (the tiler pads by reflection).

torch is imported when an instance is created, not when this module is imported.
"""

import os
from pathlib import Path

import numpy as np

from ..exceptions import EnhancerError, InputError, WeightsError
from ..normalize import DEFAULT_SOFTENING, asinh_stretch, asinh_unstretch
from .base import Enhancer, EnhancerInfo

__all__ = ["TorchEnhancer"]


def _inplace_rows(plane, func, sigma, softening, block_pixels=262_144):
    """plane[...] = func(plane, sigma, softening=...) block by block (bounded temporaries)."""
    rows_per_block = max(1, block_pixels // max(1, plane.shape[1]))
    for r0 in range(0, plane.shape[0], rows_per_block):
        sl = plane[r0:r0 + rows_per_block]
        sl[...] = func(sl, sigma, softening=softening)


class TorchEnhancer(Enhancer):
    """A torch network that restores an image on its own grid.

    Parameters
    ----------
    model : `torch.nn.Module`
        Network following the convention of this module (stretched space in and out).
    info : `~astro_enhance.enhancers.EnhancerInfo`
        Metadata (channels, tiling hint, size multiple, weights sha256 ...).
    device : str or `torch.device`, optional
        Where to run (see `astro_enhance.device.resolve_device`; default ``"auto"``).
    precision : {"auto", "fp32", "fp16", "bf16"}, optional
        Arithmetic precision (see `astro_enhance.device.resolve_precision`): ``"auto"`` is
        fp16 autocast on CUDA, fp32 elsewhere.
    tile_size : int, optional
        Tile side in pixels; default ``info.tile_size``; 0 processes the whole image at once.
    overlap : int, optional
        Tile overlap in pixels; default ``info.overlap``.
    batch_size : int, optional
        Tiles per forward pass (default 4). Memory grows with ``batch_size * tile_size**2``.
    softening : float, optional
        Softening ``k`` of the asinh stretch, in units of the noise (default 3, as in
        training).
    progress : bool, optional
        Show a tqdm progress bar over tiles.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer
    >>> net = torch.nn.Conv2d(1, 1, 3, padding=1)
    >>> enh = TorchEnhancer(net, EnhancerInfo("demo", "neural"), device="cpu")
    >>> enh.enhance(np.zeros((64, 64), np.float32), noise=1.0).shape
    (64, 64)
    """

    def __init__(self, model, info, *, device="auto", precision="auto", tile_size=None,
                 overlap=None, batch_size=4, softening=DEFAULT_SOFTENING, progress=False):
        import torch

        if not isinstance(model, torch.nn.Module):
            raise EnhancerError(f"model must be a torch.nn.Module, not {type(model).__name__}")
        if not isinstance(info, EnhancerInfo):
            raise EnhancerError("info must be an EnhancerInfo")
        self.model = model.eval()
        self.info = info
        self.tile_size = info.tile_size if tile_size is None else (int(tile_size) or None)
        self.overlap = info.overlap if overlap is None else int(overlap)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise EnhancerError(f"batch_size must be >= 1, got {batch_size}")
        self.softening = float(softening)
        self.progress = bool(progress)
        self._precision_request = precision
        self.precision = None
        self.device = None
        self.sidecar = None
        self.to(device)

    def to(self, device):
        """Move the network to ``device`` and choose the precision for it.

        Parameters
        ----------
        device : str or `torch.device`
            Device (``"auto"``, ``"cpu"``, ``"cuda:N"``, ``"mps"`` ...).

        Returns
        -------
        self

        Raises
        ------
        DeviceError
            If the device is absent or does not support the requested precision.
        """
        from ..device import resolve_device, resolve_precision

        dev = resolve_device(device)
        self.precision = resolve_precision(self._precision_request, dev)
        self.model.to(dev)
        self.device = dev
        return self

    # ---------------------------------------------------------------------------------------
    def _forward(self, x, *, rng=None):
        """Run the network on a batch tensor in the stretched space (override for sampling)."""
        return self.model(x)

    def _predict(self, batch, rng):
        import torch

        x = torch.from_numpy(batch).to(self.device)
        use_amp = self.precision != torch.float32
        with torch.inference_mode():
            with torch.autocast(device_type=self.device.type, dtype=self.precision,
                                enabled=use_amp):
                y = self._forward(x, rng=rng)
            return y.float().cpu().numpy()

    def enhance(self, data, *, noise=None, rng=None, out=None):
        """Enhance an image on its own pixel grid (see `Enhancer.enhance`).

        Memory does not grow with the image beyond the input and output themselves: no
        full-size copy, mask or temporary is made. The noise is estimated on a sample of
        blocks (images above `~astro_enhance.enhancers.NOISE_MAX_PIXELS`), each tile is
        filled (non-finite -> 0) and stretched on its own, and the output is blended,
        unstretched and NaN-restored one strip of tile rows at a time (see
        `astro_enhance.tiling.run_tiled`). With a memory-mapped input and ``out`` (e.g. a FITS
        file opened with ``memmap=True`` and an output FITS opened with ``mode="update"``)
        the peak memory is bounded by the tile size, batch size and image *width* only.

        Parameters
        ----------
        data : array-like, shape (ny, nx) or (C_in, ny, nx)
            Image in physical units on the target grid. Not modified. May be a
            `numpy.memmap` or memory-mapped FITS data: it is read tile by tile, and the pages
            of rows already processed are handed back to the operating system.
        noise : float or sequence of float, optional
            Noise sigma per band; estimated when None (with
            `~astro_enhance.enhancers.estimate_noise_bounded`: exactly
            `astro_enhance.normalize.estimate_noise` for images of at most
            `~astro_enhance.enhancers.NOISE_MAX_PIXELS` pixels, a sample of blocks above).
        rng : `numpy.random.Generator` or int, optional
            Passed to ``_forward`` (used by stochastic subclasses).
        out : ndarray, optional
            Preallocated float32 array (either byte order) receiving the result, of shape
            ``(ny, nx)`` for single-band output or ``(C_out, ny, nx)``; typically a
            `numpy.memmap` opened ``"w+"``/``"r+"`` or the ``data`` of a FITS file opened
            with ``mode="update"``. It is written strip by strip and its pages are released
            once written (the data stay in the file), so the output need not fit in memory.
            It must not share memory with ``data``.

        Returns
        -------
        ndarray, float32
            ``out`` when given, else a new array: ``(ny, nx)`` for single-band output, else
            ``(C_out, ny, nx)``. NaN where the input was not finite.

        Raises
        ------
        InputError
            If the shape, number of bands or values are unusable, or ``out`` does not fit.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np, torch
        >>> from astro_enhance.enhancers import EnhancerInfo, TorchEnhancer
        >>> net = torch.nn.Conv2d(1, 1, 3, padding=1)
        >>> enh = TorchEnhancer(net, EnhancerInfo("demo", "neural", tile_size=32, overlap=8),
        ...                     device="cpu")
        >>> path = os.path.join(tempfile.mkdtemp(), "out.dat")
        >>> mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(100, 80))
        >>> enh.enhance(np.ones((100, 80), np.float32), noise=1.0, out=mm) is mm
        True
        """
        arr, squeeze = self._check_input(data)
        if out is not None:
            out = self._check_out(out, arr)
        self._require_finite(arr)
        noise = self._stream_noise(arr, noise)
        # The noise sample touched blocks all over a memory-mapped input: give them back.
        from ..tiling import _PageReleaser
        _PageReleaser(arr).release(0, arr.shape[1])
        res = self._run(arr, noise, rng, out=out, restore_nan=True)
        if out is not None:
            return out
        if squeeze and res.shape[0] == 1:
            return res[0]
        return res

    def _check_out(self, out, arr):
        """Validate ``out`` for an input ``arr`` (C, ny, nx)."""
        if not isinstance(out, np.ndarray):
            raise InputError(f"out must be a numpy array (e.g. a numpy.memmap), not "
                             f"{type(out).__name__}")
        cout = self.info.channels_out
        ny, nx = arr.shape[1:]
        ok = out.shape == (cout, ny, nx) or (cout == 1 and out.shape == (ny, nx))
        if not ok:
            want = f"({ny}, {nx})" if cout == 1 else f"({cout}, {ny}, {nx})"
            raise InputError(f"out has shape {out.shape}; {self.info.name} writes {want} for "
                             f"this image")
        if out.dtype.kind != "f" or out.dtype.itemsize != 4:
            raise InputError(f"out must be a float32 array, got dtype {out.dtype}")
        if not out.flags.writeable:
            raise InputError("out is read-only; open the memory map or FITS file for writing "
                             "(np.memmap mode 'r+'/'w+', fits.open(..., mode='update'))")
        if np.may_share_memory(out, arr):
            raise InputError("out shares memory with the input; inputs are never modified: "
                             "give a separate output array")
        return out

    @staticmethod
    def _require_finite(arr, rows=256):
        """InputError if no pixel is finite (scans strips until it finds one)."""
        for r0 in range(0, arr.shape[1], rows):
            if np.isfinite(arr[:, r0:r0 + rows]).any():
                return
        raise InputError("the image has no finite pixel to enhance")

    def _stream_noise(self, arr, noise):
        """Per-band sigma without a full-size copy (the base class's estimate, same values)."""
        from .base import NOISE_BLOCK, NOISE_MAX_PIXELS, estimate_noise_bounded

        if noise is not None:
            return self._noise(arr, None, noise)
        sig = []
        for c in range(arr.shape[0]):
            plane = arr[c]
            small = plane.size <= NOISE_MAX_PIXELS or min(plane.shape) < NOISE_BLOCK
            if not small:
                try:
                    # Sampled blocks; estimate_noise ignores their non-finite pixels, which
                    # is what the base class's fill + mask gives (inf - inf differences are
                    # computed but not used).
                    with np.errstate(invalid="ignore", over="ignore"):
                        sig.append(estimate_noise_bounded(plane))
                    continue
                except ValueError:      # the sampled blocks hold no finite pixel
                    pass
            bad = ~np.isfinite(plane)
            filled = np.array(plane, dtype=np.float32, copy=True)
            filled[bad] = 0.0
            sig.append(estimate_noise_bounded(filled, mask=bad))
            del filled, bad
        return np.array(sig, dtype=np.float64)

    def _enhance(self, filled, *, mask, noise, rng):
        return self._run(filled, noise, rng)

    def _run(self, arr, noise, rng, *, out=None, restore_nan=False):
        """Tile, fill + stretch each tile, run the model, blend; unstretch (and restore NaN
        from the input when ``restore_nan``) each finished strip. Returns (C_out, ny, nx)."""
        from ..tiling import run_tiled

        nchan = arr.shape[0]
        sig = [float(s) for s in noise]
        k = self.softening

        def fn(batch):
            batch = np.where(np.isfinite(batch), batch, np.float32(0.0))
            for c in range(nchan):
                batch[:, c] = asinh_stretch(batch[:, c], sig[c], softening=k)
            return self._predict(batch, rng)

        def post(block, r0, r1):
            sig_out = sig if block.shape[0] == nchan else [float(np.median(sig))] * \
                block.shape[0]
            for c in range(block.shape[0]):
                _inplace_rows(block[c], asinh_unstretch, sig_out[c], k)
            if restore_nan:
                bad = ~np.isfinite(arr[:, r0:r1])
                if block.shape[0] == nchan:
                    block[bad] = np.nan
                else:
                    block[:, bad.any(axis=0)] = np.nan

        res = run_tiled(arr, fn, tile_size=self.tile_size, overlap=self.overlap,
                        size_multiple=self.info.size_multiple, batch_size=self.batch_size,
                        progress=self.progress, out=out, postprocess=post)
        if res.ndim == 2:
            res = res[None]
        return res

    # ---------------------------------------------------------------------------------------
    @staticmethod
    def load_parts(path, *, name=None):
        """Read a weights file and rebuild its network (no device placement).

        Parameters
        ----------
        path : str or path-like
            Weights stem, ``.safetensors`` file or ``.json`` sidecar.
        name : str, optional
            Enhancer name (default: ``sidecar["info"]["name"]`` or the file stem).

        Returns
        -------
        model : `torch.nn.Module`
            Network with the weights loaded, in eval mode, on the CPU.
        info : `~astro_enhance.enhancers.EnhancerInfo`
            Metadata with ``weights_sha256`` set.
        sidecar : dict
            The verified JSON sidecar.

        Raises
        ------
        WeightsError, ChecksumError
            See `astro_enhance.weights.load_weights`; also when the tensors do not fit the
            architecture.
        """
        from ..weights import load_weights
        from ..models import build_model

        state, sidecar = load_weights(path)
        arch = sidecar.get("architecture")
        if not arch:
            raise WeightsError(f"sidecar of {path} names no 'architecture'")
        model = build_model(arch, sidecar.get("config") or {})
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"the weights in {path} do not fit architecture {arch!r} with "
                               f"config {sidecar.get('config')}: {exc}") from None
        model.eval()
        info_d = dict(sidecar.get("info") or {})
        stem = Path(os.fspath(path)).name
        for suffix in (".safetensors", ".json"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        info_d["name"] = name or info_d.get("name") or stem
        info_d.setdefault("kind", "neural")
        info_d.setdefault("size_multiple", int(getattr(model, "size_multiple", 1) or 1))
        info_d.setdefault("description", sidecar.get("description", f"{arch} network"))
        info = EnhancerInfo.from_dict(info_d, weights_sha256=sidecar["sha256"])
        return model, info, sidecar

    @classmethod
    def from_weights(cls, path, *, device="auto", precision="auto", name=None, **options):
        """Build an enhancer from a safetensors weights file and its JSON sidecar.

        The network is rebuilt with ``astro_enhance.models.build_model(sidecar["architecture"],
        sidecar["config"])`` and the sha256 of the file is checked first.

        Parameters
        ----------
        path : str or path-like
            Weights stem, ``.safetensors`` file or ``.json`` sidecar.
        device, precision : optional
            See `TorchEnhancer`.
        name : str, optional
            Enhancer name (default from the sidecar or the file name).
        **options
            Further `TorchEnhancer` keyword arguments (``tile_size``, ``overlap``,
            ``batch_size``, ``progress``, ``softening``).

        Returns
        -------
        `TorchEnhancer` (or the subclass it is called on)

        Raises
        ------
        WeightsError, ChecksumError, DeviceError, EnhancerError
        """
        model, info, sidecar = cls.load_parts(path, name=name)
        try:
            enh = cls(model, info, device=device, precision=precision, **options)
        except TypeError as exc:
            raise EnhancerError(f"bad option for {info.name}: {exc}") from None
        enh.sidecar = sidecar
        return enh
