"""The enhancer registry: names -> factories, built-ins, and third-party plugins.

Factories are called as ``factory(device=..., weights=..., **options)`` and return an
`~astro_enhance.enhancers.Enhancer`; an `~astro_enhance.enhancers.Enhancer` subclass may be
registered directly (it is instantiated with the options, then moved with ``.to(device)``).

Names are case-insensitive and ``_`` is read as ``-`` (``richardson_lucy`` is
``richardson-lucy``). Registering a name twice is an error unless ``overwrite=True``.

The built-in enhancers (see `astro_enhance.enhancers.builtin`) and the plugins are loaded on
the first use of the registry. Plugins are entry points of the group
``astro_enhance.enhancers``; the entry point's name is the enhancer name and it points at a
factory or `Enhancer` subclass, e.g. in a plugin's ``setup.cfg``::

    [options.entry_points]
    astro_enhance.enhancers =
        my-method = my_package.enhancers:MyEnhancer

A plugin that fails to load produces an `~astro_enhance.AstroEnhanceWarning` naming it and is
skipped. A plugin can never replace a built-in: the built-in is kept and a warning names the
plugin. The names of the built-in neural enhancers (``unet``, ``gan``...) are reserved even when
their weights do not ship.

Nothing here imports torch.
"""

import difflib
import importlib.util
import re
import threading
import types
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..exceptions import AstroEnhanceWarning, EnhancerError
from .base import Enhancer, EnhancerInfo

__all__ = ["register_enhancer", "unregister_enhancer", "get_enhancer", "list_enhancers",
           "enhancer_names", "ENTRY_POINT_GROUP"]

#: Entry-point group scanned for third-party enhancers.
ENTRY_POINT_GROUP = "astro_enhance.enhancers"

_KIND_ORDER = {"classical": 0, "neural": 1, "diffusion": 2}
_DEVICE_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass
class _Entry:
    name: str
    factory: object
    info: EnhancerInfo = None
    source: str = "user"
    available: bool = True
    reason: str = ""

    @property
    def builtin(self):
        return self.source == "built-in"


_LOCK = threading.RLock()
_REGISTRY = {}
_state = {"builtins": False, "plugins": False, "loading_builtins": False, "plugin": None}


def _norm(name):
    if not isinstance(name, str) or not name.strip():
        raise EnhancerError(f"enhancer names are non-empty strings, not {name!r}")
    return name.strip().lower().replace("_", "-")


def _ensure_builtins():
    with _LOCK:
        if _state["builtins"] or _state["loading_builtins"]:
            return
        _state["loading_builtins"] = True
        try:
            from . import builtin
            builtin.register_builtins(_add_builtin)
            _state["builtins"] = True
        finally:
            _state["loading_builtins"] = False


def _add_builtin(name, factory, *, info=None, available=True, reason=""):
    key = _norm(name)
    _REGISTRY[key] = _Entry(key, factory, info, "built-in", available, reason)


def _reserved_names():
    """Names of the built-in neural enhancers: a plugin may not take them even when their
    weights do not ship (``get_enhancer(name, weights=...)`` uses the built-in code)."""
    from .builtin import NEURAL_NAMES

    return NEURAL_NAMES


def _ensure_loaded():
    _ensure_builtins()
    with _LOCK:
        if _state["plugins"]:
            return
        _state["plugins"] = True
        _load_plugins()


def _plugin_label(ep):
    dist = getattr(ep, "dist", None)
    dist_name = getattr(dist, "name", None) if dist is not None else None
    return f"{ep.name!r} ({ep.value}{', from ' + dist_name if dist_name else ''})"


def _load_plugins():
    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # pragma: no cover - broken metadata on the system
        warnings.warn(f"could not list enhancer plugins: {exc!r}", AstroEnhanceWarning,
                      stacklevel=3)
        return
    for ep in eps:
        label = _plugin_label(ep)
        try:
            key = _norm(ep.name)
        except EnhancerError:
            warnings.warn(f"enhancer plugin {label} has an invalid name and is skipped",
                          AstroEnhanceWarning, stacklevel=3)
            continue
        existing = _REGISTRY.get(key)
        if existing is not None:
            what = "built-in" if existing.builtin else f"already registered ({existing.source})"
            warnings.warn(f"enhancer plugin {label} is ignored: the name {key!r} belongs to the "
                          f"{what} enhancer, which is kept", AstroEnhanceWarning, stacklevel=3)
            continue
        if key in _reserved_names():
            warnings.warn(f"enhancer plugin {label} is ignored: the name {key!r} is reserved "
                          "for astro_enhance's built-in neural enhancer", AstroEnhanceWarning,
                          stacklevel=3)
            continue
        _state["plugin"] = label
        try:
            obj = ep.load()
            if isinstance(obj, types.ModuleType):
                # The module registered itself on import (or did nothing).
                if key not in _REGISTRY:
                    raise EnhancerError(f"module {obj.__name__} did not register {key!r}")
                continue
            if not callable(obj):
                raise EnhancerError(f"{ep.value} is not a factory or Enhancer class")
            info = getattr(obj, "info", None)
            _REGISTRY[key] = _Entry(key, obj, info if isinstance(info, EnhancerInfo) else None,
                                    f"plugin {label}")
        except Exception as exc:  # noqa: BLE001 - a broken plugin must never crash us
            warnings.warn(f"enhancer plugin {label} failed to load and is skipped: "
                          f"{type(exc).__name__}: {exc}", AstroEnhanceWarning, stacklevel=3)
        finally:
            _state["plugin"] = None


def register_enhancer(name, factory=None, *, overwrite=False, info=None):
    """Register an enhancer factory under a name (usable as a decorator).

    Parameters
    ----------
    name : str
        Enhancer name (case-insensitive; ``_`` is read as ``-``).
    factory : callable or `Enhancer` subclass, optional
        Called as ``factory(device=..., weights=..., **options)``; an `Enhancer` subclass is
        instantiated with ``**options`` (and ``weights=`` when given) then ``.to(device)``.
        When omitted, a decorator is returned.
    overwrite : bool, optional
        Replace an existing registration. Plugins loading through entry points can never
        replace a built-in, whatever this says.
    info : `EnhancerInfo`, optional
        Metadata shown by `list_enhancers` (default: ``factory.info`` if it is one).

    Returns
    -------
    factory or decorator
        ``factory`` unchanged, so the decorator leaves the decorated object as it was.

    Raises
    ------
    EnhancerError
        If the name is taken and ``overwrite`` is False, or ``factory`` is not callable.

    Examples
    --------
    >>> from astro_enhance.enhancers import Enhancer, EnhancerInfo, register_enhancer
    >>> @register_enhancer("doc-double")
    ... class Double(Enhancer):
    ...     info = EnhancerInfo("doc-double", "classical")
    ...     needs_noise = False
    ...     def _enhance(self, filled, *, mask, noise, rng):
    ...         return 2 * filled
    >>> from astro_enhance.enhancers import unregister_enhancer
    >>> unregister_enhancer("doc-double")
    """
    if factory is None:
        def decorator(obj):
            register_enhancer(name, obj, overwrite=overwrite, info=info)
            return obj
        return decorator
    key = _norm(name)
    if not callable(factory):
        raise EnhancerError(f"the factory registered for {key!r} must be callable")
    _ensure_builtins()
    with _LOCK:
        existing = _REGISTRY.get(key)
        plugin = _state["plugin"]
        if plugin is not None and existing is None and key in _reserved_names():
            warnings.warn(f"enhancer plugin {plugin} tried to register {key!r}, a name reserved "
                          "for astro_enhance's built-in neural enhancer; it is ignored",
                          AstroEnhanceWarning, stacklevel=2)
            return factory
        if existing is not None:
            if plugin is not None and existing.builtin:
                warnings.warn(f"enhancer plugin {plugin} tried to replace the built-in "
                              f"enhancer {key!r}; the built-in is kept", AstroEnhanceWarning,
                              stacklevel=2)
                return factory
            if not overwrite:
                raise EnhancerError(f"an enhancer named {key!r} is already registered "
                                    f"({existing.source}); choose another name or pass "
                                    f"overwrite=True")
        if info is None:
            cand = getattr(factory, "info", None)
            info = cand if isinstance(cand, EnhancerInfo) else None
        source = f"plugin {plugin}" if plugin is not None else "user"
        _REGISTRY[key] = _Entry(key, factory, info, source)
    return factory


def unregister_enhancer(name):
    """Remove a registered enhancer.

    Parameters
    ----------
    name : str
        Enhancer name.

    Raises
    ------
    EnhancerError
        If no enhancer has that name.

    Examples
    --------
    >>> from astro_enhance.enhancers import (Bicubic, enhancer_names, register_enhancer,
    ...                                      unregister_enhancer)
    >>> _ = register_enhancer("doc-temporary", Bicubic)
    >>> unregister_enhancer("doc-temporary")
    >>> "doc-temporary" in enhancer_names()
    False
    """
    key = _norm(name)
    _ensure_builtins()
    with _LOCK:
        if key not in _REGISTRY:
            raise EnhancerError(f"no enhancer named {key!r} is registered")
        del _REGISTRY[key]


def enhancer_names(*, available_only=True):
    """Registered enhancer names, sorted as in `list_enhancers`.

    Parameters
    ----------
    available_only : bool, optional
        Leave out enhancers that cannot run here.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from astro_enhance.enhancers import enhancer_names
    >>> enhancer_names()[:4]
    ['bicubic', 'bilateral', 'gaussian', 'richardson-lucy']
    """
    _ensure_loaded()
    with _LOCK:
        entries = sorted(_REGISTRY.values(), key=_sort_key)
    return [e.name for e in entries if e.available or not available_only]


def _sort_key(e):
    kind = e.info.kind if e.info is not None else "~"
    return (not e.builtin, _KIND_ORDER.get(kind, 9), e.name)


def get_enhancer(name, *, device="auto", weights=None, **options):
    """Create an enhancer by name.

    Parameters
    ----------
    name : str
        Registered name (see `list_enhancers`), e.g. ``"bicubic"``, ``"richardson-lucy"``,
        ``"bilateral"``, ``"unet"``, ``"gan"``.
    device : str or `torch.device`, optional
        Device for neural enhancers (``"auto"``, ``"cpu"``, ``"cuda:0"``, ``"mps"``);
        classical ones always run on the CPU.
    weights : str or path-like, optional
        A weights file (safetensors + JSON sidecar) to use instead of the shipped one. A
        built-in neural name (``"unet"``, ``"gan"`` ...) given with ``weights`` works even
        when no weights for it ship with the package.
    **options
        Method options (see the enhancer's docstring), e.g. ``iterations=30`` for
        ``richardson-lucy`` or ``tile_size=512`` for neural enhancers.

    Returns
    -------
    `Enhancer`

    Raises
    ------
    EnhancerError
        If the name is unknown (the message lists the available names), the enhancer cannot
        run here, or an option is not accepted.
    DeviceError, WeightsError, ChecksumError
        From the device and weights checks of neural enhancers.

    Examples
    --------
    >>> from astro_enhance.enhancers import get_enhancer
    >>> get_enhancer("richardson-lucy", iterations=10).iterations
    10
    """
    key = _norm(name)
    _check_device_name(device)
    _ensure_loaded()
    with _LOCK:
        entry = _REGISTRY.get(key)
    if entry is None:
        from .builtin import NEURAL_NAMES, neural_factory
        if weights is not None and key in NEURAL_NAMES:
            entry = _Entry(key, neural_factory(key), None, "built-in")
        else:
            names = enhancer_names()
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise EnhancerError(f"unknown enhancer {name!r}; available: {', '.join(names)}."
                                + hint)
    if not entry.available:
        raise EnhancerError(f"enhancer {key!r} is not available here: {entry.reason}")
    factory = entry.factory
    try:
        if isinstance(factory, type) and issubclass(factory, Enhancer):
            kw = dict(options)
            if weights is not None:
                kw["weights"] = weights
            obj = factory(**kw).to(device)
        else:
            obj = factory(device=device, weights=weights, **options)
    except TypeError as exc:
        raise EnhancerError(f"cannot create enhancer {key!r} with options "
                            f"{sorted(options)}: {exc}") from exc
    if not isinstance(obj, Enhancer):
        raise EnhancerError(f"the factory of {key!r} ({entry.source}) returned "
                            f"{type(obj).__name__}, not an Enhancer")
    return obj


def _check_device_name(device):
    """Refuse a misspelt device for every enhancer (classical ones run on the CPU whatever
    device is asked, but ``device="tpu"`` is a mistake worth reporting); whether a named
    device exists is checked by `~astro_enhance.device.resolve_device` for neural ones."""
    if device is None or type(device).__module__.startswith("torch"):
        return
    if not isinstance(device, str) or not _DEVICE_NAME.match(device.strip().lower()):
        from ..exceptions import DeviceError

        raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or "
                          "'mps'")


def list_enhancers():
    """Table of the registered enhancers.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``name``, ``kind``, ``description``, ``trained_for`` (survey pair and bands),
        ``weights_sha256`` (first 12 hex digits, empty without weights), ``available``
        (bool) and ``source`` (``built-in``, ``user`` or ``plugin ...``).

    Examples
    --------
    >>> from astro_enhance.enhancers import list_enhancers
    >>> "bicubic" in list_enhancers()["name"]
    True
    """
    from astropy.table import Table

    _ensure_loaded()
    with _LOCK:
        entries = sorted(_REGISTRY.values(), key=_sort_key)
    rows = {"name": [], "kind": [], "description": [], "trained_for": [],
            "weights_sha256": [], "available": [], "source": []}
    for e in entries:
        info = e.info
        rows["name"].append(e.name)
        rows["kind"].append(info.kind if info else "unknown")
        desc = info.description if info else ""
        if not e.available and e.reason:
            desc = f"{desc} [unavailable: {e.reason}]".strip()
        rows["description"].append(desc)
        rows["trained_for"].append(info.trained_for if info else "")
        rows["weights_sha256"].append((info.weights_sha256 or "")[:12] if info else "")
        rows["available"].append(bool(e.available))
        rows["source"].append(e.source)
    return Table(rows, names=list(rows),
                 dtype=[str, str, str, str, str, bool, str] if entries else None)


def _torch_installed():
    return importlib.util.find_spec("torch") is not None


def _reset_registry():
    """Forget every registration and reload built-ins and plugins on next use (for tests)."""
    with _LOCK:
        _REGISTRY.clear()
        _state.update(builtins=False, plugins=False, loading_builtins=False, plugin=None)
