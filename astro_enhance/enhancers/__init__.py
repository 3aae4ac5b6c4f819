"""Enhancers: same-grid restoration of resampled images, classical and neural.

Use `get_enhancer` to create one by name and `list_enhancers` to see what is installed::

    from astro_enhance.enhancers import get_enhancer, list_enhancers
    print(list_enhancers())
    enh = get_enhancer("richardson-lucy", iterations=20)
    sharp = enh.enhance(image_on_decals_grid)

Importing this subpackage does not import torch; neural enhancers import it when created.
"""

from .base import Enhancer, EnhancerInfo, KINDS
from .registry import (register_enhancer, unregister_enhancer, get_enhancer, list_enhancers,
                       enhancer_names, ENTRY_POINT_GROUP)
from .classical import Bicubic, Bilateral, GaussianBlur, RichardsonLucy, psf_matching_sigma
from .torch_enhancer import TorchEnhancer

__all__ = ["Enhancer", "EnhancerInfo", "KINDS", "register_enhancer", "unregister_enhancer",
           "get_enhancer", "list_enhancers", "enhancer_names", "ENTRY_POINT_GROUP", "Bicubic",
           "RichardsonLucy", "Bilateral", "GaussianBlur", "psf_matching_sigma", "TorchEnhancer"]
