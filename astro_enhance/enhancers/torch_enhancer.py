"""`TorchEnhancer`: a PyTorch network wrapped as an `~astro_enhance.enhancers.Enhancer`.

The pipeline around the network is fixed, and networks are trained in exactly the same space:

1. ``sigma`` = the given noise or `astro_enhance.normalize.estimate_noise` of each band
   (non-finite pixels ignored; on a sample of blocks for images above 2**20 pixels, see
   `astro_enhance.enhancers.estimate_noise_bounded`);
2. the image is cut into overlapping tiles (`astro_enhance.tiling.run_tiled`); in each tile
   non-finite pixels are filled with 0 (the sky level of sky-subtracted data) and
   ``y = asinh(x / (softening * sigma))`` is applied (`astro_enhance.normalize.asinh_stretch`);
3. each batch of tiles goes through ``model(y)`` under `torch.inference_mode` (and autocast
   when running in half precision; on the CPU with channels-last tensors and the network's
   weights in channels-last order), and the tiles are blended back strip by strip;
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
from ..normalize import DEFAULT_SOFTENING, asinh_unstretch
from ..tiling import _is_oom
from .base import Enhancer, EnhancerInfo
from .texture import DEFAULT_NOISE_RATIO, TEXTURE_KINDS

__all__ = ["TorchEnhancer", "CPU_TILE_SIZE", "CPU_BATCH_PIXELS"]

#: Smallest default tile side on the CPU (the model's hint ``info.tile_size`` if larger, or
#: ``cpu_tile_size`` in the sidecar's ``info``). Tiles are balanced to cover the image
#: evenly (`astro_enhance.tiling.plan_tiles` with ``balance=True``), so a 2251 x 3096 frame
#: runs as 12 tiles of 776 x 800 px.
CPU_TILE_SIZE = 1024

#: Default pixels per forward pass on the CPU (``batch_size`` = this // tile area, >= 1);
#: the U-Net needs about 1 GB per million pixels in a forward pass.
CPU_BATCH_PIXELS = 2 ** 20


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
        Largest tile side in pixels (tiles shrink to cover the image evenly); 0 processes the
        whole image at once. Default ``info.tile_size``; on the CPU at least
        `CPU_TILE_SIZE` is used (or the sidecar's ``cpu_tile_size``; see `run_tiling`).
    overlap : int, optional
        Tile overlap in pixels; default ``info.overlap``.
    batch_size : int, optional
        Tiles per forward pass. Memory grows with ``batch_size * tile_size**2``. Default 4;
        on the CPU with the default tile, as many tiles as fit in `CPU_BATCH_PIXELS` pixels
        (at least 1).
    softening : float, optional
        Softening ``k`` of the asinh stretch, in units of the noise (default 3, as in
        training).
    progress : bool, optional
        Show a tqdm progress bar over tiles.
    channels_last : {"auto", True, False}, optional
        Run the network on channels-last (NHWC) tensors. ``"auto"`` (default) does so on the
        CPU for networks with 2-D convolutions, where oneDNN runs them about twice as fast;
        results agree with the NCHW run to float rounding.
    threads : int, optional
        CPU threads for inference (``torch.set_num_threads``, process-wide). Default: torch's
        setting, lowered if needed so as not to oversubscribe the CPUs available to this
        process or to each thread of a dask worker (see
        `astro_enhance.device.inference_threads`).
    compile : bool, optional
        Run the network through ``torch.compile`` (default False: on the 2-core CPU it took
        ~10% off the U-Net's time per tile, within the noise of a loaded machine, while the
        first compilation costs 5-60 s, and again for a new tile shape; it can pay off for
        many frames in one process, e.g. a batch worker). If compilation fails the model
        runs uncompiled, with a warning.
    texture : {"decals", None}, optional
        Add a DECaLS-depth noise realisation to the restored sky
        (`astro_enhance.enhancers.texture`): the output is then a sample of a DECaLS-like
        image, not the restored sky itself. Default from the weights' sidecar
        (``info.extra["texture"]``: on for ``gan`` and ``srgan``, off otherwise); False or
        None turns it off.
    texture_sigma : float, optional
        Sky noise of the texture, per output pixel in the image's units (default: the
        DECaLS depth of the band set by `set_target`, or ``noise_ratio`` times the input's
        measured noise when the image is not in nanomaggies).

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
                 overlap=None, batch_size=None, softening=DEFAULT_SOFTENING, progress=False,
                 channels_last="auto", threads=None, compile=False, texture="sidecar",
                 texture_sigma=None):
        import torch

        if not isinstance(model, torch.nn.Module):
            raise EnhancerError(f"model must be a torch.nn.Module, not {type(model).__name__}")
        if not isinstance(info, EnhancerInfo):
            raise EnhancerError("info must be an EnhancerInfo")
        self.model = model.eval()
        self.info = info
        self._tile_request = tile_size
        self.tile_size = info.tile_size if tile_size is None else (int(tile_size) or None)
        self.overlap = info.overlap if overlap is None else int(overlap)
        self._batch_request = batch_size
        self.batch_size = 4 if batch_size is None else int(batch_size)
        if self.batch_size < 1:
            raise EnhancerError(f"batch_size must be >= 1, got {batch_size}")
        self.softening = float(softening)
        self.progress = bool(progress)
        if channels_last not in ("auto", True, False):
            raise EnhancerError(f"channels_last must be 'auto', True or False, got "
                                f"{channels_last!r}")
        self._channels_last_request = channels_last
        self.channels_last = False
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise EnhancerError(f"threads must be a positive integer or None, got {threads!r}")
        self.threads = threads
        self.compile = bool(compile)
        self._compiled = None
        # tile_size is the largest tile; tiles shrink to cover the image evenly
        self._balance_tiles = True
        self._precision_request = precision
        self.precision = None
        self.device = None
        self.sidecar = None
        if texture == "sidecar":
            texture = (info.extra or {}).get("texture")
        if texture not in (None, False) and texture not in TEXTURE_KINDS:
            raise EnhancerError(f"{info.name}: texture must be one of {TEXTURE_KINDS} or None, "
                                f"got {texture!r}")
        self.texture = texture or None
        if texture_sigma is not None and not float(texture_sigma) > 0:
            raise EnhancerError(f"{info.name}: texture_sigma must be positive, got "
                                f"{texture_sigma!r}")
        self.texture_sigma = None if texture_sigma is None else float(texture_sigma)
        self.texture_used = None
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

        import torch

        dev = resolve_device(device)
        self.precision = resolve_precision(self._precision_request, dev)
        self.model.to(dev)
        want = self._channels_last_request
        if want == "auto":
            # measured on the CPU (benchmarks/bench_enhancers.py): oneDNN convolutions run
            # about twice as fast on NHWC tensors; not measured on GPUs, so left off there
            want = dev.type == "cpu" and any(isinstance(m, torch.nn.Conv2d)
                                             for m in self.model.modules())
        self.model.to(memory_format=torch.channels_last if want
                      else torch.contiguous_format)
        self.channels_last = bool(want)
        self._compiled = None
        self.device = dev
        return self

    def run_tiling(self):
        """Tile side and batch size that `enhance` uses on the current device.

        ``tile_size`` and ``batch_size`` as given, or, for what the caller left unset: on
        the CPU, tiles of at least `CPU_TILE_SIZE` px (or the sidecar's ``cpu_tile_size``)
        and as many tiles per batch as fit in `CPU_BATCH_PIXELS` pixels -- on a CPU, large
        tiles run faster per pixel than batches of small ones and waste less work in the
        overlaps (``benchmarks/bench_enhancers.py``); elsewhere the model's hint
        ``info.tile_size`` and a batch of 4.

        Returns
        -------
        tile_size : int or None
            Largest tile side (None: the whole image at once).
        batch_size : int
            Tiles per forward pass.
        """
        tile, batch = self.tile_size, self.batch_size
        cpu = self.device is not None and self.device.type == "cpu"
        if cpu and self._tile_request is None and tile == self.info.tile_size and \
                tile is not None:
            tile = int(self.info.extra.get("cpu_tile_size", max(tile, CPU_TILE_SIZE)))
        if cpu and self._batch_request is None and batch == 4:
            batch = 1 if tile is None else max(1, CPU_BATCH_PIXELS // (tile * tile))
        return tile, batch

    # ---------------------------------------------------------------------------------------
    def _forward(self, x, *, rng=None):
        """Run the network on a batch tensor in the stretched space (override for sampling)."""
        return self._network()(x)

    def _network(self):
        """The module ``_forward`` calls: the model, or its ``torch.compile`` version."""
        if not self.compile:
            return self.model
        if self._compiled is None:
            import torch

            try:
                self._compiled = torch.compile(self.model)
            except Exception as exc:    # noqa: BLE001 - compile is an optional speed-up
                self._compile_failed(exc)
                return self.model
        return self._compiled

    def _compile_failed(self, exc):
        import warnings

        from ..exceptions import AstroEnhanceWarning

        warnings.warn(f"torch.compile failed for {self.info.name} ({type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:200]}); running the model uncompiled",
                      AstroEnhanceWarning, stacklevel=4)
        self.compile = False
        self._compiled = None

    def _predict(self, batch, rng):
        import torch

        # from_numpy shares the batch's memory; on the CPU nothing is copied for a
        # single-band input (NCHW with C=1 is already channels-last)
        x = torch.from_numpy(batch)
        if self.device.type != "cpu":
            x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        use_amp = self.precision != torch.float32
        with torch.inference_mode():
            with torch.autocast(device_type=self.device.type, dtype=self.precision,
                                enabled=use_amp):
                try:
                    y = self._forward(x, rng=rng)
                except Exception as exc:    # noqa: BLE001
                    if not (self.compile and self._compiled is not None) or _is_oom(exc):
                        raise
                    self._compile_failed(exc)
                    y = self._forward(x, rng=rng)
            if y.dtype != torch.float32:
                y = y.float()
            return y.cpu().numpy()

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
        if self.texture is not None:
            rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        res = self._run(arr, noise, rng, out=out, restore_nan=True)
        if self.texture is not None:
            self._add_texture(res, noise, rng)
        if out is not None:
            return out
        if squeeze and res.shape[0] == 1:
            return res[0]
        return res

    def _add_texture(self, res, noise, rng):
        """Add the DECaLS-depth noise realisation to the restored sky ``res`` (C, ny, nx);
        records what was used in ``texture_used``."""
        from .texture import add_texture, decals_noise_model

        band, nmgy = self.target.get("band"), self.target.get("nanomaggy", False)
        sig, ks = [], []
        for c in range(res.shape[0]):
            if nmgy and band is not None:
                s, k = decals_noise_model(band, sigma=self.texture_sigma)
                how = f"DECaLS {band}-band depth"
            else:
                ratio = float((self.info.extra or {}).get("noise_ratio", DEFAULT_NOISE_RATIO))
                s0 = float(noise[c] if c < len(noise) else np.median(noise))
                s, k = (self.texture_sigma or ratio * s0), 0.0
                how = ("the given sigma" if self.texture_sigma else
                       f"{ratio:g} x the input's noise (band or nanomaggy unit unknown)")
            sig.append(s)
            ks.append(k)
        add_texture(res, sigma=sig, k=ks, rng=rng)
        self.texture_used = dict(sigma=[float(v) for v in sig], k=[float(v) for v in ks],
                                 how=how)

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

        scales = [np.float32(k * s) for s in sig]

        def fn(batch):
            # the batch is the tiler's own float32 copy: fill and stretch it in place, the
            # same float32 operations as asinh_stretch (identical values), no temporaries
            batch[~np.isfinite(batch)] = 0.0
            for c in range(nchan):
                plane = batch[:, c]
                np.divide(plane, scales[c], out=plane)
                np.arcsinh(plane, out=plane)
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

        if self.device.type == "cpu":
            from ..device import inference_threads

            inference_threads(self.threads)
        tile, batch = self.run_tiling()
        res = run_tiled(arr, fn, tile_size=tile, overlap=self.overlap,
                        size_multiple=self.info.size_multiple, batch_size=batch,
                        progress=self.progress, out=out, postprocess=post,
                        balance=self._balance_tiles)
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
            ``batch_size``, ``progress``, ``softening``, ``channels_last``, ``threads``,
            ``compile``).

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
