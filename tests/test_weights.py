"""safetensors + JSON sidecar weights: round trip, checksum, refusal of pickles."""

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch

from astro_enhance.exceptions import ChecksumError, WeightsError
from astro_enhance.weights import (FORMAT_NAME, file_sha256, load_weights, read_sidecar,
                                   save_weights, weights_dir, weights_paths)


def _state():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 1, 1))
    return net.state_dict()


def test_round_trip_torch(tmp_path):
    state = _state()
    path = save_weights(state, tmp_path / "net", architecture="toy", config={"width": 4},
                        info={"kind": "neural", "tile_size": 128},
                        metrics={"psnr": np.float32(31.5)}, recipe={"epochs": 3})
    assert path == tmp_path / "net.safetensors"
    sidecar_file = tmp_path / "net.json"
    assert sidecar_file.is_file()
    side = json.loads(sidecar_file.read_text())
    assert side["format"] == FORMAT_NAME and side["architecture"] == "toy"
    assert side["config"] == {"width": 4} and side["metrics"]["psnr"] == 31.5
    assert side["sha256"] == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    for name in ("net", "net.safetensors", "net.json"):
        loaded, side2 = load_weights(tmp_path / name)
        assert side2 == side
        assert set(loaded) == set(state)
        for k in state:
            assert torch.equal(loaded[k], state[k])
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]


def test_round_trip_numpy(tmp_path):
    save_weights({"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, tmp_path / "np",
                 architecture="none", config={})
    state, _ = load_weights(tmp_path / "np", framework="numpy")
    assert state["a"].dtype == np.float32 and state["a"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_shared_tensors_are_saved(tmp_path):
    w = torch.ones(4)
    save_weights({"a": w, "b": w, "c": torch.ones(4, 4).t()}, tmp_path / "shared",
                 architecture="none", config={})
    state, _ = load_weights(tmp_path / "shared")
    assert torch.equal(state["a"], state["b"])


def test_tampered_file_fails_checksum(tmp_path):
    path = save_weights(_state(), tmp_path / "net", architecture="toy", config={})
    expected = read_sidecar(path)["sha256"]
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01                      # flip one bit in the last tensor
    path.write_bytes(bytes(blob))
    with pytest.raises(ChecksumError, match="changed or is corrupt") as ei:
        load_weights(path)
    msg = str(ei.value)
    assert expected in msg and "changed or is corrupt" in msg
    assert isinstance(ei.value, WeightsError)


def test_tampered_sidecar_fails_checksum(tmp_path):
    path = save_weights(_state(), tmp_path / "net", architecture="toy", config={})
    side = read_sidecar(path)
    side["sha256"] = "0" * 64
    (tmp_path / "net.json").write_text(json.dumps(side))
    with pytest.raises(ChecksumError):
        load_weights(path)


class _Trap:
    """Unpickling this would create a file: the loader must never do it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".pkl"])
def test_pickled_checkpoints_refused_by_name(tmp_path, suffix):
    marker = tmp_path / "unpickled"
    path = tmp_path / f"model{suffix}"
    path.write_bytes(pickle.dumps(_Trap(str(marker))))
    with pytest.raises(WeightsError, match=r"never unpickles.*torch\.load.*save_weights"):
        load_weights(path)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_refused(tmp_path):
    marker = tmp_path / "unpickled"
    # torch.save zip format with a trap inside
    torch.save({"w": torch.ones(2), "trap": _Trap(str(marker))}, tmp_path / "zip.safetensors")
    (tmp_path / "zip.json").write_text(json.dumps(
        {"sha256": file_sha256(tmp_path / "zip.safetensors"), "architecture": "x"}))
    with pytest.raises(WeightsError, match="pickled"):
        load_weights(tmp_path / "zip.safetensors")
    # plain pickle protocol 2+
    (tmp_path / "raw.safetensors").write_bytes(pickle.dumps(_Trap(str(marker)), protocol=4))
    (tmp_path / "raw.json").write_text(json.dumps(
        {"sha256": file_sha256(tmp_path / "raw.safetensors"), "architecture": "x"}))
    with pytest.raises(WeightsError, match="pickled"):
        load_weights(tmp_path / "raw")
    assert not marker.exists()


def test_not_safetensors_refused(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"hello world, this is not a model file")
    (tmp_path / "junk.json").write_text(json.dumps({"sha256": "x", "architecture": "x"}))
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_weights(tmp_path / "junk")


def test_other_suffix_with_pickle_content_refused(tmp_path):
    p = tmp_path / "model.weights"
    p.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    with pytest.raises(WeightsError, match="pickled"):
        load_weights(p)


def test_missing_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "absent")
    path = save_weights(_state(), tmp_path / "net", architecture="toy", config={})
    (tmp_path / "net.json").unlink()
    with pytest.raises(WeightsError, match="sidecar .* is missing"):
        load_weights(path)


def test_save_refuses_bad_input(tmp_path):
    save_weights(_state(), tmp_path / "net", architecture="toy", config={})
    with pytest.raises(WeightsError, match="already exists"):
        save_weights(_state(), tmp_path / "net", architecture="toy", config={},
                     overwrite=False)
    with pytest.raises(WeightsError, match="not JSON serialisable"):
        save_weights(_state(), tmp_path / "bad", architecture="toy", config={},
                     recipe={"f": object()})
    assert not (tmp_path / "bad.safetensors").exists()   # nothing half-written
    with pytest.raises(WeightsError, match="reserved"):
        save_weights(_state(), tmp_path / "bad", architecture="toy", config={}, sha256="x")
    with pytest.raises(WeightsError, match="does not exist"):
        save_weights(_state(), tmp_path / "nodir" / "net", architecture="toy", config={})


def test_paths_and_package_dir():
    t, s = weights_paths("dir/unet.v2")
    assert t.name == "unet.v2.safetensors" and s.name == "unet.v2.json"
    with pytest.raises(WeightsError, match="pickled"):
        weights_paths("x.ckpt")
    assert weights_dir().name == "weights" and (weights_dir() / "README.txt").is_file()


def test_shipped_weights_verify():
    """Every weights file shipped in the package passes its checksum."""
    for st in sorted(weights_dir().glob("*.safetensors")):
        assert read_sidecar(st)["sha256"] == file_sha256(st), st.name


def test_saved_weights_are_readable_by_others(tmp_path):
    """mkstemp's 0600 must not leak into installed weights files."""
    import os
    import stat

    import torch

    from astro_enhance.weights import save_weights

    p = save_weights({"w": torch.zeros(2)}, tmp_path / "m", architecture="unet", config={})
    umask = os.umask(0)
    os.umask(umask)
    for f in (p, p.with_suffix(".json")):
        mode = stat.S_IMODE(os.stat(f).st_mode)
        assert mode == 0o666 & ~umask, oct(mode)
