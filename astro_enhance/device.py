"""Choosing the compute device and the numerical precision of neural enhancers.

``device="auto"`` (or None) picks CUDA when a GPU is usable, then Apple's MPS, then the CPU.
The ``ASTRO_ENHANCE_DEVICE`` environment variable sets the default: it is consulted only when
the caller passes ``None`` or ``"auto"``, and an explicit device given in the variable must
exist like any other explicit device. Explicit devices that are absent raise
`~astro_enhance.DeviceError` naming what is available; nothing silently falls back to the CPU.

Precision: ``"auto"`` means float16 on CUDA and float32 elsewhere. Half precision is only
allowed where the device supports it: ``"fp16"`` on CUDA or MPS, ``"bf16"`` on the CPU, on
MPS, and on CUDA GPUs that support bfloat16. Asking for an unsupported combination (e.g.
``"fp16"`` on the CPU) raises `~astro_enhance.DeviceError` with the alternatives, rather than
silently running something else.

Threads: `resolve_device` and `resolve_precision` never change the CPU thread count.
`inference_threads` is what a neural enhancer calls before running on the CPU: an explicit
thread count is applied; otherwise the count is only ever *lowered*, to the CPUs this process
may use (affinity mask, cgroup quota) divided among the threads of a dask worker, so that
nothing oversubscribes the cores. A count set by the user with ``torch.set_num_threads`` (or
``OMP_NUM_THREADS``) below that is left alone.

torch is imported inside the functions, so importing this module stays light.
"""

import os
import re

from .exceptions import DeviceError

__all__ = ["resolve_device", "resolve_precision", "available_devices", "DEVICE_ENV_VAR",
           "PRECISIONS", "available_cpus", "inference_threads"]

#: Environment variable that sets the default device (used when ``device`` is None/"auto").
DEVICE_ENV_VAR = "ASTRO_ENHANCE_DEVICE"

#: Accepted precision names and their aliases.
PRECISIONS = {
    "auto": "auto",
    "fp32": "fp32", "float32": "fp32", "float": "fp32", "single": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
}

_DEVICE_RE = re.compile(r"^(cpu|cuda|mps)(?::(\d+))?$")


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a hard dependency
        raise DeviceError("neural enhancers need PyTorch, which is not installed; "
                          "install it with 'pip install torch'") from exc
    return torch


def _mps_available(torch):
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:  # pragma: no cover - defensive on odd builds
        return False


def available_devices():
    """Names of the compute devices usable on this machine.

    Returns
    -------
    list of str
        For example ``["cpu"]`` or ``["cuda:0", "cuda:1", "cpu"]``; the CPU is always last.

    Examples
    --------
    >>> "cpu" in available_devices()
    True
    """
    torch = _torch()
    names = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available(torch):
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(device=None):
    """Turn a device request into a `torch.device` that exists on this machine.

    Parameters
    ----------
    device : None, str or `torch.device`, optional
        ``None`` or ``"auto"``: the device named by the ``ASTRO_ENHANCE_DEVICE`` environment
        variable if it is set (and not ``"auto"``), otherwise CUDA if available, then MPS,
        then the CPU. ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a `torch.device`
        ask for that device explicitly.

    Returns
    -------
    `torch.device`
        The device (``cuda`` is returned with its index, e.g. ``cuda:0``).

    Raises
    ------
    DeviceError
        If an explicitly requested device is absent (the message lists what is available)
        or the request is not a device name.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    torch = _torch()
    source = "device"
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        env = os.environ.get(DEVICE_ENV_VAR, "").strip()
        if env and env.lower() != "auto":
            device, source = env, f"{DEVICE_ENV_VAR} environment variable"
        else:
            if torch.cuda.is_available() and torch.cuda.device_count() > 0:
                return torch.device("cuda", 0)
            if _mps_available(torch):
                return torch.device("mps")
            return torch.device("cpu")

    if isinstance(device, torch.device):
        kind, index = device.type, device.index
    elif isinstance(device, str):
        m = _DEVICE_RE.match(device.strip().lower())
        if m is None:
            raise DeviceError(
                f"unknown device {device!r} (from the {source}); use 'auto', 'cpu', 'cuda', "
                f"'cuda:N' or 'mps' (available here: {', '.join(available_devices())})")
        kind, index = m.group(1), (int(m.group(2)) if m.group(2) is not None else None)
    else:
        raise DeviceError(f"device must be None, a string or a torch.device, not "
                          f"{type(device).__name__}")

    if kind == "cpu":
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            raise DeviceError(f"CUDA is not available on this machine (requested "
                              f"{device!s} via the {source}); available: "
                              f"{', '.join(available_devices())}. Use device='auto' or 'cpu'.")
        n = torch.cuda.device_count()
        index = 0 if index is None else index
        if index >= n:
            have = ", ".join(f"cuda:{i}" for i in range(n))
            raise DeviceError(f"cuda:{index} requested but only {have} "
                              f"{'is' if n == 1 else 'are'} available")
        return torch.device("cuda", index)
    if kind == "mps":
        if not _mps_available(torch):
            raise DeviceError(f"MPS (Apple GPU) is not available on this machine (requested "
                              f"via the {source}); available: "
                              f"{', '.join(available_devices())}")
        return torch.device("mps")
    raise DeviceError(f"unsupported device type {kind!r}; use 'cpu', 'cuda' or 'mps'")


def resolve_precision(precision="auto", device=None):
    """Choose the floating-point type a model runs in on ``device``.

    Parameters
    ----------
    precision : {"auto", "fp32", "fp16", "bf16"} or `torch.dtype`, optional
        ``"auto"`` gives float16 on CUDA and float32 on the CPU and MPS. Aliases
        ``"float32"``, ``"half"``, ``"float16"``, ``"bfloat16"`` are accepted.
    device : str or `torch.device`, optional
        Device, resolved with `resolve_device`.

    Returns
    -------
    `torch.dtype`
        ``torch.float32``, ``torch.float16`` or ``torch.bfloat16``.

    Raises
    ------
    DeviceError
        If the precision is unknown or the device does not support it (e.g. ``"fp16"`` on
        the CPU: use ``"fp32"`` or ``"bf16"`` there).

    Examples
    --------
    >>> resolve_precision("auto", "cpu")
    torch.float32
    """
    torch = _torch()
    dev = resolve_device(device)
    if isinstance(precision, torch.dtype):
        by_dtype = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
        if precision not in by_dtype:
            raise DeviceError(f"unsupported precision {precision}; use fp32, fp16 or bf16")
        name = by_dtype[precision]
    else:
        name = PRECISIONS.get(str(precision).strip().lower()) if precision is not None \
            else "auto"
        if name is None:
            raise DeviceError(f"unknown precision {precision!r}; use 'auto', 'fp32', 'fp16' "
                              f"or 'bf16'")
    if name == "auto":
        name = "fp16" if dev.type == "cuda" else "fp32"
    if name == "fp32":
        return torch.float32
    if name == "fp16":
        if dev.type == "cpu":
            raise DeviceError("half precision (fp16) is not supported for inference on the "
                              "CPU; use precision='fp32' (default) or 'bf16'")
        return torch.float16
    # bf16
    if dev.type == "cuda":
        ok = getattr(torch.cuda, "is_bf16_supported", lambda: False)
        if not ok():
            raise DeviceError(f"bfloat16 is not supported by the GPU {dev}; use "
                              f"precision='fp16' or 'fp32'")
    return torch.bfloat16


def _cgroup_cpu_limit():
    """CPUs allowed by a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota``), or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, int(int(quota) // int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, quota // period)
    except (OSError, ValueError):
        pass
    return None


def _dask_worker_threads():
    """Threads of the dask worker this code runs in (None outside a worker)."""
    import sys

    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except Exception:       # not in a worker, or an API change: no constraint
        return None


def available_cpus():
    """Number of CPUs this process may use.

    The CPUs of the process's affinity mask (``os.sched_getaffinity``, else
    ``os.cpu_count()``), capped by a cgroup CPU quota (containers, batch schedulers).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> available_cpus() >= 1
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        n = min(n, limit)
    return max(1, int(n))


def inference_threads(threads=None):
    """Set the torch CPU thread count for an inference call and return it.

    Parameters
    ----------
    threads : int or None, optional
        An explicit count is applied with ``torch.set_num_threads`` (process-wide, as
        torch's setting is). None keeps torch's current count unless it exceeds the CPUs
        available to each task: `available_cpus` divided by the number of threads of the
        dask worker the call runs in (1 outside dask), at least 1; it is then lowered to
        that. The count is never raised when ``threads`` is None.

    Returns
    -------
    int
        The thread count in effect.

    Raises
    ------
    DeviceError
        If ``threads`` is not a positive integer.

    Examples
    --------
    >>> n = inference_threads()
    >>> 1 <= n <= available_cpus()
    True
    """
    torch = _torch()
    current = torch.get_num_threads()
    if threads is not None:
        try:
            n = int(threads)
        except (TypeError, ValueError):
            n = 0
        if isinstance(threads, bool) or n < 1 or n != threads:
            raise DeviceError(f"threads must be a positive integer, got {threads!r}")
    else:
        share = available_cpus() // (_dask_worker_threads() or 1)
        n = min(current, max(1, share))
    if n != current:
        torch.set_num_threads(n)
    return n
