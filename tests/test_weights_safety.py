"""Weights and plugins: what tests/test_weights.py and tests/test_plugins.py leave out.

Those modules already check: pickled checkpoints refused by name and by content (also when
renamed ``.safetensors``, with a matching checksum), tampered weights and sidecars failing the
checksum, missing files and sidecars, and that an entry-point plugin cannot replace a built-in
(by name, or by calling ``register_enhancer(..., overwrite=True)`` on import). Added here:

- the whole inference path (registry, sidecar, safetensors, model, tiling) never unpickles:
  ``pickle`` and ``torch.load`` are made to fail while an enhancer is built from user weights
  and run through `enhance_fits`;
- a sidecar without a sha256 is refused;
- a plugin cannot take the name of a built-in neural enhancer whose weights do not ship
  (``get_enhancer("sr3", weights=...)`` would otherwise run the plugin's code on the user's
  weights), neither as an entry point nor by registering itself (the shipped ones are covered
  by test_plugins).
"""

import json
import pickle
import sys
import textwrap
from importlib.metadata import EntryPoint
from unittest import mock

import numpy as np
import pytest

from astro_enhance.enhancers import TorchEnhancer, get_enhancer, list_enhancers
from astro_enhance.enhancers import registry as registry_mod
from astro_enhance.exceptions import AstroEnhanceWarning, WeightsError
from astro_enhance.weights import load_weights

torch = pytest.importorskip("torch")


def _tiny_unet(tmp_path, name="tiny"):
    from astro_enhance.models import build_model
    from astro_enhance.weights import save_weights

    torch.manual_seed(0)
    net = build_model("unet", {"width": 4, "depth": 2})
    return save_weights(net.state_dict(), tmp_path / name, architecture="unet",
                        config={"width": 4, "depth": 2},
                        info={"kind": "neural", "size_multiple": 4})


def _forbidden(*args, **kwargs):
    raise AssertionError("something tried to unpickle")


def test_inference_path_never_unpickles(tmp_path):
    from astro_enhance import enhance_fits
    from astro_enhance.sample_data import make_sdss_sample

    path = _tiny_unet(tmp_path)
    sample = make_sdss_sample(shape=(40, 40), seed=2)
    with mock.patch.object(pickle, "load", _forbidden), \
            mock.patch.object(pickle, "loads", _forbidden), \
            mock.patch.object(pickle, "Unpickler", _forbidden), \
            mock.patch.object(torch, "load", _forbidden):
        registry_mod._reset_registry()
        try:
            hdul = enhance_fits(sample, "unet", weights=path, device="cpu")
        finally:
            registry_mod._reset_registry()
    assert hdul[0].header["AE_METH"] == "unet" and np.isfinite(hdul[0].data).any()


def test_sidecar_without_sha256_refused(tmp_path):
    path = _tiny_unet(tmp_path)
    side = json.loads((tmp_path / "tiny.json").read_text())
    del side["sha256"]
    (tmp_path / "tiny.json").write_text(json.dumps(side))
    with pytest.raises(WeightsError, match="records no sha256"):
        load_weights(path)
    with pytest.raises(WeightsError, match="records no sha256"):
        get_enhancer("unet", weights=path, device="cpu")


PLUGIN = textwrap.dedent('''
    from astro_enhance.enhancers import register_enhancer
    from astro_enhance.enhancers.classical import Bicubic

    def hijack(*, device="auto", weights=None, **options):
        open(weights + ".STOLEN", "w").close() if weights else None
        return Bicubic()

    register_enhancer("{name}", hijack)            # on import: must be ignored too
''')


def _unshipped_neural_names():
    """Built-in neural names whose weights do not ship (so no built-in is registered)."""
    from astro_enhance.enhancers.builtin import NEURAL_NAMES
    from astro_enhance.weights import weights_dir

    return [n for n in NEURAL_NAMES if not (weights_dir() / f"{n}.safetensors").is_file()]


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    # An installation without shipped weights (every neural enhancer now ships its own):
    # the reserved names are then free for a plugin to try to take.
    import astro_enhance.weights as weights_mod

    empty = tmp_path / "no_shipped_weights"
    empty.mkdir()
    monkeypatch.setattr(weights_mod, "weights_dir", lambda: empty)
    names = _unshipped_neural_names()
    assert len(names) >= 2
    (tmp_path / "ae_test_hijack.py").write_text(PLUGIN.replace("{name}", names[1]))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ae_test_hijack", raising=False)

    def install(*pairs):
        eps = [EntryPoint(n, v, registry_mod.ENTRY_POINT_GROUP) for n, v in pairs]
        monkeypatch.setattr(registry_mod, "entry_points", lambda **kw: eps)
        registry_mod._reset_registry()

    yield install
    registry_mod._reset_registry()


def test_plugin_cannot_take_a_reserved_neural_name(fake_plugins, tmp_path):
    first, second = _unshipped_neural_names()[:2]
    fake_plugins((first, "ae_test_hijack:hijack"), ("mine", "ae_test_hijack"))
    with pytest.warns(AstroEnhanceWarning) as record:
        names = set(list_enhancers()["name"])
    messages = " | ".join(str(w.message) for w in record)
    assert f"plugin '{first}' (ae_test_hijack:hijack) is ignored" in messages
    assert "reserved for astro_enhance's built-in neural enhancer" in messages
    assert f"tried to register '{second}'" in messages
    assert not {first, second} & names
    # The user's weights go to the built-in code, never to the plugin's.
    path = _tiny_unet(tmp_path, "user")
    for name in (first, second):
        enh = get_enhancer(name, weights=str(path), device="cpu")
        assert isinstance(enh, TorchEnhancer) and enh.info.name == name
    assert not list(tmp_path.glob("*.STOLEN"))
