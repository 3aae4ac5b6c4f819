"""Built-in enhancers: the classical methods and the neural networks shipped with weights.

Classical: ``bicubic``, ``richardson-lucy``, ``bilateral`` (always available).

Neural: for each name in `NEURAL_NAMES` whose ``astro_enhance/weights/<name>.safetensors``
and ``<name>.json`` both exist, a factory is registered. It reads the sidecar and builds the
enhancer with ``TorchEnhancer.from_weights`` or, when the sidecar has an ``"enhancer_class"``
entry, with that class's ``from_weights`` (a dotted path inside ``astro_enhance``, e.g.
``"astro_enhance.enhancers.diffusion.DiffusionEnhancer"``; paths outside the package are
refused). Adding a trained model to the package is therefore only a matter of saving its
weights there with `astro_enhance.weights.save_weights`.

Only the sidecars are read at registration (for `list_enhancers`): no torch import, no
checksum; the checksum is verified when the enhancer is created.
"""

import importlib
import warnings
from pathlib import Path

from ..exceptions import AstroEnhanceWarning, EnhancerError, WeightsError
from .base import EnhancerInfo
from .classical import Bicubic, Bilateral, GaussianBlur, RichardsonLucy

__all__ = ["NEURAL_NAMES", "CLASSICAL", "register_builtins", "neural_factory",
           "classical_factory"]

#: Names of the neural enhancers registered when their weights ship with the package.
NEURAL_NAMES = ("unet", "gan", "sr3", "srresnet", "srgan", "autoencoder", "colorize")

#: Classical enhancer classes, in listing order.
CLASSICAL = (Bicubic, GaussianBlur, RichardsonLucy, Bilateral)


def classical_factory(cls):
    """Registry factory for a classical enhancer class.

    Parameters
    ----------
    cls : type
        A classical `~astro_enhance.enhancers.Enhancer` subclass.

    Returns
    -------
    callable
        ``factory(device=..., weights=None, **options)``.
    """
    def factory(*, device="auto", weights=None, **options):
        if weights is not None:
            raise EnhancerError(f"{cls.info.name} is a classical method and uses no weights; "
                                f"drop the weights argument")
        return cls(**options).to(device)

    factory.info = cls.info
    factory.__doc__ = cls.__doc__
    return factory


def _enhancer_class(dotted):
    from .torch_enhancer import TorchEnhancer

    if not dotted:
        return TorchEnhancer
    dotted = str(dotted)
    if not dotted.startswith("astro_enhance."):
        dotted = "astro_enhance." + dotted
    module, _, attr = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise WeightsError(f"the weights sidecar names enhancer_class {dotted!r}, which does "
                           f"not exist in this astro_enhance: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, TorchEnhancer)):
        raise WeightsError(f"enhancer_class {dotted!r} is not a TorchEnhancer subclass")
    return cls


def neural_factory(name):
    """Registry factory for the neural enhancer ``name``.

    Parameters
    ----------
    name : str
        One of `NEURAL_NAMES`.

    Returns
    -------
    callable
        ``factory(device="auto", weights=None, **options)``: builds the enhancer from
        ``weights`` (a user file) or from the weights shipped in the package.
    """
    def factory(*, device="auto", weights=None, **options):
        from ..weights import read_sidecar, weights_dir

        path = Path(weights) if weights is not None else weights_dir() / f"{name}.safetensors"
        sidecar = read_sidecar(path)
        cls = _enhancer_class(sidecar.get("enhancer_class"))
        return cls.from_weights(path, device=device, name=name, **options)

    return factory


def _info_from_sidecar(name, sidecar):
    d = dict(sidecar.get("info") or {})
    d.setdefault("kind", "neural")
    d.setdefault("description", sidecar.get("description", f"{sidecar.get('architecture')} "
                                                            f"network"))
    return EnhancerInfo.from_dict(d, name=name, weights_sha256=sidecar.get("sha256"))


def register_builtins(add):
    """Register the built-in enhancers through ``add(name, factory, *, info, available)``.

    Parameters
    ----------
    add : callable
        The registry's internal registration function.
    """
    from ..weights import read_sidecar, weights_dir
    from .registry import _torch_installed

    for cls in CLASSICAL:
        add(cls.info.name, classical_factory(cls), info=cls.info)
    wdir = weights_dir()
    torch_ok = _torch_installed()
    for name in NEURAL_NAMES:
        tensors, sidecar_path = wdir / f"{name}.safetensors", wdir / f"{name}.json"
        if not (tensors.is_file() and sidecar_path.is_file()):
            continue
        try:
            info = _info_from_sidecar(name, read_sidecar(sidecar_path))
        except (WeightsError, EnhancerError, TypeError, ValueError) as exc:
            warnings.warn(f"the shipped weights of {name!r} have an unreadable sidecar "
                          f"({exc}); {name!r} is not available", AstroEnhanceWarning,
                          stacklevel=4)
            continue
        add(name, neural_factory(name), info=info, available=torch_ok,
            reason="" if torch_ok else "PyTorch is not installed")
