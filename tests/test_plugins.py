"""Third-party enhancers through the ``astro_enhance.enhancers`` entry-point group.

The entry points are faked by patching ``entry_points`` in the registry module; the plugin
code lives in a temporary module put on ``sys.path``.
"""

import sys
import textwrap
import warnings
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from astro_enhance.enhancers import Bicubic, get_enhancer, list_enhancers
from astro_enhance.enhancers import registry as registry_mod
from astro_enhance.exceptions import AstroEnhanceWarning

PLUGIN_SOURCE = textwrap.dedent('''
    import numpy as np
    from astro_enhance.enhancers import Enhancer, EnhancerInfo, register_enhancer

    class Negate(Enhancer):
        """Returns minus the image (a plugin for the tests)."""
        info = EnhancerInfo("negate", "classical", bands=(), description="minus the image")
        needs_noise = False

        def __init__(self, gain=1.0):
            self.gain = gain

        def _enhance(self, filled, *, mask, noise, rng):
            return -self.gain * filled

    def negate_factory(*, device="auto", weights=None, **options):
        return Negate(**options).to(device)

    not_callable = 42

    def hijack_bicubic(**kw):
        return Negate()
''')

SELF_REGISTERING = textwrap.dedent('''
    from astro_enhance.enhancers import register_enhancer
    from ae_test_plugin import Negate, hijack_bicubic
    register_enhancer("bicubic", hijack_bicubic, overwrite=True)   # must not win
    register_enhancer("selfreg", Negate)
''')


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Install fake entry points; returns a function taking (name, value) pairs."""
    (tmp_path / "ae_test_plugin.py").write_text(PLUGIN_SOURCE)
    (tmp_path / "ae_test_selfreg.py").write_text(SELF_REGISTERING)
    (tmp_path / "ae_test_broken.py").write_text("raise RuntimeError('plugin is broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in ("ae_test_plugin", "ae_test_selfreg", "ae_test_broken"):
        monkeypatch.delitem(sys.modules, mod, raising=False)

    def install(*pairs):
        eps = [EntryPoint(n, v, registry_mod.ENTRY_POINT_GROUP) for n, v in pairs]

        def fake_entry_points(**params):
            assert params == {"group": registry_mod.ENTRY_POINT_GROUP}
            return eps
        monkeypatch.setattr(registry_mod, "entry_points", fake_entry_points)
        registry_mod._reset_registry()

    yield install
    registry_mod._reset_registry()


def test_good_plugin_listed_and_broken_plugin_warns(plugins):
    plugins(("negate", "ae_test_plugin:negate_factory"),
            ("broken", "ae_test_broken:Anything"))
    with pytest.warns(AstroEnhanceWarning, match=r"plugin 'broken' \(ae_test_broken:Anything\)"
                                                 r" failed to load.*plugin is broken"):
        t = list_enhancers()
    names = list(t["name"])
    assert "negate" in names and "broken" not in names
    row = t[names.index("negate")]
    assert row["source"].startswith("plugin 'negate'")
    assert row["available"]
    # built-ins still first and intact
    assert names[:4] == ["bicubic", "bilateral", "gaussian", "richardson-lucy"]
    out = get_enhancer("negate", gain=2.0).enhance(np.ones((4, 4)))
    np.testing.assert_array_equal(out, -2.0)
    # the warning is given once: plugins are loaded once per process
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list_enhancers()


def test_plugins_loaded_lazily(plugins):
    calls = []
    plugins(("negate", "ae_test_plugin:negate_factory"))
    real = registry_mod.entry_points

    def counting(**params):
        calls.append(params)
        return real(**params)
    registry_mod.entry_points = counting
    try:
        assert calls == []
        get_enhancer("bicubic")
        get_enhancer("negate")
        list_enhancers()
        assert len(calls) == 1
    finally:
        registry_mod.entry_points = real


def test_enhancer_class_as_entry_point(plugins):
    plugins(("negate-class", "ae_test_plugin:Negate"))
    enh = get_enhancer("negate-class", gain=3.0, device="cpu")
    np.testing.assert_array_equal(enh.enhance(np.ones((2, 2))), -3.0)
    t = list_enhancers()
    assert t[list(t["name"]).index("negate-class")]["description"] == "minus the image"


def test_plugin_cannot_replace_builtin(plugins):
    plugins(("bicubic", "ae_test_plugin:hijack_bicubic"),
            ("selfreg", "ae_test_selfreg"))
    with pytest.warns(AstroEnhanceWarning) as record:
        t = list_enhancers()
    messages = " | ".join(str(w.message) for w in record)
    assert "plugin 'bicubic' (ae_test_plugin:hijack_bicubic) is ignored" in messages
    assert "plugin 'selfreg' (ae_test_selfreg) tried to replace the built-in enhancer " \
           "'bicubic'" in messages
    assert isinstance(get_enhancer("bicubic"), Bicubic)
    assert t[list(t["name"]).index("bicubic")]["source"] == "built-in"
    assert "selfreg" in t["name"]          # the module's own registration of a new name works


def test_bad_plugin_objects_warn(plugins):
    plugins(("nocall", "ae_test_plugin:not_callable"),
            ("missing", "ae_test_no_such_module:thing"),
            ("negate", "ae_test_plugin:negate_factory"),
            ("negate", "ae_test_plugin:Negate"))          # duplicate plugin name
    with pytest.warns(AstroEnhanceWarning) as record:
        names = list(list_enhancers()["name"])
    messages = " | ".join(str(w.message) for w in record)
    assert "'nocall'" in messages and "not a factory" in messages
    assert "'missing'" in messages and "ModuleNotFoundError" in messages
    assert "already registered" in messages
    assert "negate" in names and "nocall" not in names and "missing" not in names
