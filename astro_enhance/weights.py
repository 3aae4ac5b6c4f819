"""Model weights: safetensors files with a JSON sidecar, checked before use.

A set of weights is two files with the same stem:

``<stem>.safetensors``
    The tensors (state dict), in the `safetensors <https://huggingface.co/docs/safetensors>`_
    format: a JSON header plus raw little-endian buffers. Loading it never executes code.
``<stem>.json``
    The sidecar: ``sha256`` of the safetensors file, ``architecture`` and ``config`` (enough
    for `astro_enhance.models.build_model` to rebuild the network), plus whatever was given as
    metadata when saving (``info``, ``recipe``, ``data``, ``metrics``, ``training_log`` ...).

`load_weights` verifies the sha256 before reading the tensors and refuses pickled checkpoints
(``.pt``, ``.pth``, ``.ckpt``, ``.pkl`` or any file that is not safetensors): unpickling can
run arbitrary code, so this package never does it. To convert a checkpoint you trust, load it
yourself in a trusted session and save it again::

    import torch
    from astro_enhance.weights import save_weights
    state = torch.load("model.pt", map_location="cpu", weights_only=True)
    save_weights(state, "model", architecture="unet", config={...})

Nothing here touches the network.
"""

import datetime
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from .exceptions import ChecksumError, WeightsError

__all__ = ["save_weights", "load_weights", "read_sidecar", "file_sha256", "weights_paths",
           "weights_dir", "FORMAT_NAME", "FORMAT_VERSION", "PICKLE_SUFFIXES"]

#: Value of the sidecar's ``format`` key.
FORMAT_NAME = "astro_enhance-weights"
#: Version of the sidecar layout.
FORMAT_VERSION = 1
#: File name suffixes of pickled checkpoints, always refused.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")

_MAX_HEADER = 100_000_000


def weights_dir():
    """Directory of the weights shipped inside the package.

    Returns
    -------
    `pathlib.Path`
        ``astro_enhance/weights``.

    Examples
    --------
    >>> from astro_enhance.weights import weights_dir
    >>> weights_dir().name
    'weights'
    """
    return Path(__file__).resolve().parent / "weights"


def _convert_hint(path):
    return (f"convert it in a session you trust: state = torch.load({str(path)!r}, "
            f"map_location='cpu', weights_only=True); then "
            f"astro_enhance.weights.save_weights(state, 'name', architecture=..., config=...)")


def weights_paths(path):
    """The safetensors file and JSON sidecar paths for a weights name.

    Parameters
    ----------
    path : str or path-like
        ``stem``, ``stem.safetensors`` or ``stem.json``.

    Returns
    -------
    tensors, sidecar : `pathlib.Path`
        ``stem.safetensors`` and ``stem.json``.

    Raises
    ------
    WeightsError
        If ``path`` names a pickled checkpoint (``.pt``, ``.pth``, ``.ckpt``, ``.pkl`` ...).

    Examples
    --------
    >>> [p.name for p in weights_paths("unet.safetensors")]
    ['unet.safetensors', 'unet.json']
    """
    p = Path(os.fspath(path)).expanduser()
    suffix = p.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise WeightsError(f"{p.name} looks like a pickled PyTorch checkpoint; astro_enhance "
                           f"never unpickles files (that can run arbitrary code). "
                           + _convert_hint(p))
    if suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def file_sha256(path, *, chunk_size=1 << 20):
    """SHA-256 hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        File to hash.
    chunk_size : int, optional
        Bytes read at a time.

    Returns
    -------
    str
        64 hexadecimal characters.

    Examples
    --------
    >>> import os, tempfile
    >>> from astro_enhance.weights import file_sha256
    >>> path = os.path.join(tempfile.mkdtemp(), "empty.bin")
    >>> open(path, "wb").close()
    >>> file_sha256(path)[:16]
    'e3b0c44298fc1c14'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _check_safetensors_bytes(blob, name):
    """Raise WeightsError unless ``blob`` starts like a safetensors file."""
    if blob[:2] == b"PK" or blob[:1] == b"\x80":
        raise WeightsError(f"{name} is a pickled (torch.save) checkpoint, not safetensors; "
                           f"astro_enhance never unpickles files. " + _convert_hint(name))
    if len(blob) < 10:
        raise WeightsError(f"{name} is too short to be a safetensors file (truncated?)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob) or blob[8:9] != b"{":
        raise WeightsError(f"{name} is not a safetensors file (bad header); weights must be "
                           f"saved with astro_enhance.weights.save_weights. "
                           + _convert_hint(name))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, (datetime.date, datetime.datetime)):
        return obj.isoformat()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _atomic_write(path, blob):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files: give the weights the usual permissions (umask applied)
        # so an installed package is readable by every user
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_weights(state_dict, path, *, architecture, config, overwrite=True, **meta):
    """Write a state dict as ``<path>.safetensors`` plus a ``<path>.json`` sidecar.

    Parameters
    ----------
    state_dict : dict of str to `torch.Tensor` or ndarray
        Tensors to save (e.g. ``model.state_dict()``). Shared or non-contiguous tensors are
        copied.
    path : str or path-like
        Stem of the two files (a ``.safetensors`` or ``.json`` suffix is removed).
    architecture : str
        Name understood by `astro_enhance.models.build_model`.
    config : dict
        Keyword arguments of the architecture.
    overwrite : bool, optional
        Replace existing files (default True).
    **meta
        Further JSON-serialisable sidecar entries, e.g. ``info`` (a dict of
        `~astro_enhance.enhancers.EnhancerInfo` fields), ``recipe``, ``data``, ``metrics``,
        ``training_log``, ``enhancer_class``.

    Returns
    -------
    `pathlib.Path`
        Path of the safetensors file.

    Raises
    ------
    WeightsError
        If the files exist and ``overwrite`` is False, or the metadata is not JSON
        serialisable.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = save_weights({"w": np.ones(3, np.float32)}, os.path.join(d, "demo"),
    ...                  architecture="none", config={})
    >>> p.name
    'demo.safetensors'
    """
    tensors_path, sidecar_path = weights_paths(path)
    if not overwrite and (tensors_path.exists() or sidecar_path.exists()):
        raise WeightsError(f"{tensors_path} already exists; pass overwrite=True to replace it")
    if not tensors_path.parent.is_dir():
        raise WeightsError(f"directory {tensors_path.parent} does not exist; create it first")
    items = dict(state_dict)
    if not all(isinstance(k, str) for k in items):
        raise WeightsError("state_dict keys must be strings")
    if any(hasattr(v, "detach") for v in items.values()):
        import torch
        from safetensors.torch import save as st_save
        tensors = {k: (v.detach().to("cpu").contiguous().clone() if hasattr(v, "detach")
                       else torch.from_numpy(np.ascontiguousarray(v)))
                   for k, v in items.items()}
    else:
        from safetensors.numpy import save as st_save
        tensors = {k: np.ascontiguousarray(v) for k, v in items.items()}
    blob = st_save(tensors, metadata={"format": FORMAT_NAME})
    sidecar = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "file": tensors_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size_bytes": len(blob),
        "architecture": str(architecture),
        "config": dict(config),
        "saved_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    for key, value in meta.items():
        if key in sidecar:
            raise WeightsError(f"metadata key {key!r} is reserved")
        sidecar[key] = value
    try:
        text = json.dumps(sidecar, indent=2, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"sidecar metadata is not JSON serialisable: {exc}") from exc
    _atomic_write(tensors_path, blob)
    _atomic_write(sidecar_path, (text + "\n").encode("utf-8"))
    return tensors_path


def read_sidecar(path):
    """Read the JSON sidecar of a weights file (no tensors, no torch, no checksum).

    Parameters
    ----------
    path : str or path-like
        ``stem``, ``stem.safetensors`` or ``stem.json``.

    Returns
    -------
    dict
        The sidecar.

    Raises
    ------
    WeightsError
        If the sidecar is missing or not valid JSON.

    Examples
    --------
    >>> from astro_enhance.weights import read_sidecar, weights_dir
    >>> sidecar = read_sidecar(weights_dir() / "unet")   # the shipped U-Net's sidecar
    >>> sidecar["architecture"]
    'unet'
    """
    tensors_path, sidecar_path = weights_paths(path)
    if not sidecar_path.is_file():
        raise WeightsError(f"weights sidecar {sidecar_path} is missing; it must sit next to "
                           f"{tensors_path.name} (write both with "
                           f"astro_enhance.weights.save_weights)")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read weights sidecar {sidecar_path}: {exc}") from exc
    if not isinstance(sidecar, dict):
        raise WeightsError(f"weights sidecar {sidecar_path} must hold a JSON object")
    return sidecar


def load_weights(path, *, framework="pt"):
    """Read a safetensors state dict after checking it against its sidecar.

    Parameters
    ----------
    path : str or path-like
        ``stem``, ``stem.safetensors`` or ``stem.json``.
    framework : {"pt", "numpy"}, optional
        Return torch tensors (default) or numpy arrays.

    Returns
    -------
    state_dict : dict
        Tensors by name (on the CPU).
    sidecar : dict
        The JSON sidecar (``architecture``, ``config``, ``sha256`` ...).

    Raises
    ------
    WeightsError
        If a file is missing, the file is a pickled checkpoint or otherwise not safetensors
        (with instructions to convert it).
    ChecksumError
        If the file's sha256 differs from the one in the sidecar (changed or corrupt file).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> stem = os.path.join(tempfile.mkdtemp(), "demo")
    >>> _ = save_weights({"w": np.ones(3, np.float32)}, stem, architecture="none", config={})
    >>> state, sidecar = load_weights(stem, framework="numpy")
    >>> state["w"].tolist(), sidecar["architecture"]
    ([1.0, 1.0, 1.0], 'none')
    """
    p = Path(os.fspath(path)).expanduser()
    tensors_path, sidecar_path = weights_paths(p)
    if p.suffix.lower() not in (".safetensors", ".json", "") and p.is_file():
        with open(p, "rb") as f:
            _check_safetensors_bytes(f.read(64), p.name)
    if not tensors_path.is_file():
        raise WeightsError(f"weights file {tensors_path} not found")
    sidecar = read_sidecar(tensors_path)
    blob = tensors_path.read_bytes()
    _check_safetensors_bytes(blob, tensors_path.name)
    expected = sidecar.get("sha256")
    if not expected:
        raise WeightsError(f"sidecar {sidecar_path} records no sha256; re-save the weights "
                           f"with astro_enhance.weights.save_weights")
    actual = hashlib.sha256(blob).hexdigest()
    if actual != str(expected).lower():
        raise ChecksumError(f"{tensors_path} does not match its sidecar: sha256 is {actual} "
                            f"but {sidecar_path.name} expects {expected}. The file was "
                            f"changed or is corrupt; restore it (reinstall astro_enhance for "
                            f"shipped weights) or re-save it with save_weights")
    if framework == "pt":
        from safetensors.torch import load as st_load
    elif framework == "numpy":
        from safetensors.numpy import load as st_load
    else:
        raise ValueError(f"framework must be 'pt' or 'numpy', not {framework!r}")
    try:
        state = st_load(blob)
    except Exception as exc:
        raise WeightsError(f"{tensors_path} could not be decoded as safetensors: {exc}") \
            from exc
    return state, sidecar
