"""Device and precision resolution, with CUDA/MPS availability faked by patching torch."""

import pytest
import torch

from astro_enhance.device import (DEVICE_ENV_VAR, available_devices, resolve_device,
                                  resolve_precision)
from astro_enhance.exceptions import DeviceError


@pytest.fixture
def machine(monkeypatch):
    """Fake the machine: fake(cuda=n_gpus, mps=bool, bf16=bool). Clears the env var."""
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)

    def fake(cuda=0, mps=False, bf16=True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    fake()
    return fake


@pytest.mark.parametrize("request_", [None, "auto", "AUTO", " auto "])
def test_auto_prefers_cuda_then_mps_then_cpu(machine, request_):
    machine(cuda=2, mps=True)
    assert resolve_device(request_) == torch.device("cuda", 0)
    machine(cuda=0, mps=True)
    assert resolve_device(request_) == torch.device("mps")
    machine(cuda=0, mps=False)
    assert resolve_device(request_) == torch.device("cpu")


def test_explicit_devices_present(machine):
    machine(cuda=2, mps=True)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("mps") == torch.device("mps")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert available_devices() == ["cuda:0", "cuda:1", "mps", "cpu"]


def test_cuda_absent_is_an_error_naming_what_exists(machine):
    with pytest.raises(DeviceError, match=r"CUDA is not available on this machine.*"
                                          r"available: cpu"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device(torch.device("cuda", 0))


def test_cuda_index_out_of_range(machine):
    machine(cuda=1)
    with pytest.raises(DeviceError, match=r"cuda:1 requested but only cuda:0 is available"):
        resolve_device("cuda:1")
    machine(cuda=2)
    with pytest.raises(DeviceError, match=r"cuda:3 requested but only cuda:0, cuda:1 are"):
        resolve_device("cuda:3")


def test_mps_absent(machine):
    with pytest.raises(DeviceError, match="MPS .* not available.*available: cpu"):
        resolve_device("mps")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "cuda:x", "", "cpu:0:1"])
def test_unknown_device_strings(machine, bad):
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device(bad)


def test_non_string_device(machine):
    with pytest.raises(DeviceError, match="must be None, a string or a torch.device"):
        resolve_device(3.5)


def test_env_var_sets_default_only_for_auto(machine, monkeypatch):
    machine(cuda=1)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    # An explicit request beats the environment.
    assert resolve_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv(DEVICE_ENV_VAR, "auto")
    assert resolve_device(None) == torch.device("cuda", 0)


def test_env_var_naming_absent_device_is_an_error(machine, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda:0")
    with pytest.raises(DeviceError, match=f"CUDA is not available.*{DEVICE_ENV_VAR}"):
        resolve_device()
    monkeypatch.setenv(DEVICE_ENV_VAR, "quantum")
    with pytest.raises(DeviceError, match=f"unknown device 'quantum'.*{DEVICE_ENV_VAR}"):
        resolve_device("auto")


def test_precision_auto(machine):
    assert resolve_precision("auto", "cpu") is torch.float32
    machine(cuda=1, mps=True)
    assert resolve_precision("auto", "cuda") is torch.float16
    assert resolve_precision("auto", "mps") is torch.float32
    assert resolve_precision(None, "cpu") is torch.float32


def test_precision_explicit(machine):
    assert resolve_precision("fp32", "cpu") is torch.float32
    assert resolve_precision("float32", "cpu") is torch.float32
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    assert resolve_precision(torch.bfloat16, "cpu") is torch.bfloat16
    with pytest.raises(DeviceError, match=r"fp16.*not supported.*CPU.*'fp32'.*'bf16'"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(DeviceError, match="fp16"):
        resolve_precision("half", "cpu")
    machine(cuda=1, mps=True, bf16=False)
    assert resolve_precision("fp16", "cuda:0") is torch.float16
    assert resolve_precision("half", "mps") is torch.float16
    with pytest.raises(DeviceError, match="bfloat16 is not supported by the GPU"):
        resolve_precision("bf16", "cuda")
    machine(cuda=1, bf16=True)
    assert resolve_precision("bf16", "cuda") is torch.bfloat16


def test_precision_unknown(machine):
    with pytest.raises(DeviceError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", "cpu")
    with pytest.raises(DeviceError, match="unsupported precision"):
        resolve_precision(torch.int8, "cpu")


def test_precision_checks_the_device(machine):
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_precision("fp32", "cuda")


def test_thread_count_untouched(machine, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    before = torch.get_num_threads()
    resolve_device("auto")
    resolve_precision("auto", "cpu")
    assert calls == [] and torch.get_num_threads() == before


@pytest.fixture
def threads(monkeypatch):
    """Record set_num_threads calls; torch's count starts at 4."""
    import astro_enhance.device as dev

    state = {"n": 4, "calls": []}
    monkeypatch.setattr(torch, "get_num_threads", lambda: state["n"])

    def set_n(n):
        state["calls"].append(n)
        state["n"] = n
    monkeypatch.setattr(torch, "set_num_threads", set_n)
    monkeypatch.setattr(dev, "_dask_worker_threads", lambda: None)
    return state


def test_inference_threads_explicit(threads):
    from astro_enhance.device import inference_threads

    assert inference_threads(3) == 3 and threads["calls"] == [3]
    assert inference_threads(3) == 3 and threads["calls"] == [3]     # no needless call
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(DeviceError, match="positive integer"):
            inference_threads(bad)


def test_inference_threads_default_never_raises_only_caps(threads, monkeypatch):
    import astro_enhance.device as dev

    monkeypatch.setattr(dev, "available_cpus", lambda: 8)
    assert dev.inference_threads() == 4 and threads["calls"] == []   # user's 4 kept
    monkeypatch.setattr(dev, "available_cpus", lambda: 2)
    assert dev.inference_threads() == 2 and threads["calls"] == [2]  # no oversubscription
    # inside a dask worker with 2 threads on 2 CPUs: one torch thread per task
    monkeypatch.setattr(dev, "_dask_worker_threads", lambda: 2)
    threads["n"] = 2
    assert dev.inference_threads() == 1 and threads["calls"][-1] == 1
    monkeypatch.setattr(dev, "_dask_worker_threads", lambda: 4)      # more threads than CPUs
    assert dev.inference_threads() == 1


def test_available_cpus_respects_affinity_and_quota(monkeypatch):
    import astro_enhance.device as dev

    monkeypatch.setattr(dev.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(dev, "_cgroup_cpu_limit", lambda: None)
    assert dev.available_cpus() == 3
    monkeypatch.setattr(dev, "_cgroup_cpu_limit", lambda: 2)
    assert dev.available_cpus() == 2


def test_dask_worker_threads_outside_a_worker():
    from astro_enhance.device import _dask_worker_threads

    assert _dask_worker_threads() is None
