"""Neural network architectures (torch) used by the neural enhancers.

Importing this subpackage imports torch; ``import astro_enhance`` does not.
Networks are built by name from a JSON-serialisable configuration with `build_model`,
which is how `astro_enhance.enhancers.TorchEnhancer.from_weights` rebuilds them from the
sidecar of a weights file.
"""

from .unet import UNet
from .critic import PatchCritic
from .srresnet import SRResNet
from .autoencoder import SkipAutoencoder
from .diffusion import SR3Denoiser

__all__ = ["UNet", "PatchCritic", "SRResNet", "SkipAutoencoder", "SR3Denoiser", "build_model",
           "ARCHITECTURES", "register_architecture"]

#: Architecture name -> class (called with ``**config``).
ARCHITECTURES = {"unet": UNet, "patch_critic": PatchCritic, "srresnet": SRResNet,
                 "skip_autoencoder": SkipAutoencoder, "sr3": SR3Denoiser}


def register_architecture(name, cls, *, overwrite=False):
    """Make an architecture available to `build_model`.

    Parameters
    ----------
    name : str
        Architecture name stored in weights sidecars.
    cls : callable
        Class or factory called as ``cls(**config)`` returning a `torch.nn.Module`.
    overwrite : bool, optional
        Replace an existing entry.

    Raises
    ------
    ValueError
        If ``name`` is taken and ``overwrite`` is false.

    Examples
    --------
    >>> import torch
    >>> register_architecture("identity_demo", lambda **config: torch.nn.Identity())
    >>> type(build_model("identity_demo")).__name__
    'Identity'
    >>> register_architecture("identity_demo", UNet)
    Traceback (most recent call last):
        ...
    ValueError: architecture 'identity_demo' is already registered; pass overwrite=True
    >>> del ARCHITECTURES["identity_demo"]  # tidy up
    """
    if name in ARCHITECTURES and not overwrite:
        raise ValueError(f"architecture {name!r} is already registered; pass overwrite=True")
    ARCHITECTURES[name] = cls


def build_model(architecture, config=None):
    """Build a network by architecture name.

    Parameters
    ----------
    architecture : str
        One of `ARCHITECTURES` (``"unet"``, ``"patch_critic"``, ``"srresnet"``,
        ``"skip_autoencoder"``).
    config : dict, optional
        Keyword arguments of the architecture's constructor.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    astro_enhance.exceptions.WeightsError
        If the architecture is unknown or the configuration does not fit it.

    Examples
    --------
    >>> net = build_model("unet", {"width": 8, "depth": 2})
    >>> net.size_multiple
    4
    """
    from ..exceptions import WeightsError
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        raise WeightsError(f"unknown architecture {architecture!r}; known: "
                           f"{', '.join(sorted(ARCHITECTURES))}") from None
    try:
        return cls(**dict(config or {}))
    except TypeError as exc:
        raise WeightsError(f"configuration {config!r} does not fit architecture "
                           f"{architecture!r}: {exc}") from None
