"""Convolutional autoencoder with one pooling level and additive skips (``autoencoder``).

The design follows the SDSS-to-HSC course project: a convolutional encoder, a **single**
2x2 pooling level (one level was found the best trade-off between denoising, which wants a
larger context, and keeping small structure, which each pooling level blurs), a decoder that
up-samples back, and skip connections that **add** the encoder's full-resolution features to
the decoder's (rather than concatenating them, as the U-Net does). As with the other
networks here, the output is residual, ``y = x + f(x)``, in the stretched space, and the last
convolution starts at zero, so a fresh network is the identity.
"""

import torch
from torch import nn
import torch.nn.functional as F

from .unet import add_residual

__all__ = ["SkipAutoencoder"]


def _convs(c_in, c_out, n):
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1),
                   nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class SkipAutoencoder(nn.Module):
    """Encoder - one 2x2 pooling - decoder, with an additive skip and a residual output.

    ``enc`` (``depth_convs`` 3x3 convolutions, ``width`` channels, full resolution) ->
    2x2 pooling -> ``bottleneck`` (``depth_convs`` convolutions, ``2 * width`` channels, half
    resolution) -> nearest 2x up-sampling and a 3x3 convolution back to ``width`` channels ->
    **plus** the encoder's features -> ``dec`` (``depth_convs`` convolutions) -> 3x3 ``tail``
    (zero-initialised) -> added to the input.

    Parameters
    ----------
    in_channels : int, optional
        Channels of the input (stretched image planes).
    out_channels : int, optional
        Channels of the output. The residual connection adds the first
        ``min(in_channels, out_channels)`` input planes to the output.
    width : int, optional
        Channels at full resolution (twice as many after pooling).
    depth_convs : int, optional
        3x3 convolutions per stage (encoder, bottleneck, decoder).
    pool : {"max", "avg"}, optional
        2x2 pooling kind.
    residual : bool, optional
        Add the input to the output (``y = x + f(x)``).

    Examples
    --------
    >>> import torch
    >>> net = SkipAutoencoder(width=8)
    >>> net.size_multiple
    2
    >>> x = torch.randn(1, 1, 30, 18)
    >>> torch.equal(net(x), x)                 # identity at initialisation
    True
    """

    def __init__(self, in_channels=1, out_channels=1, *, width=32, depth_convs=2, pool="max",
                 residual=True):
        super().__init__()
        if depth_convs < 1:
            raise ValueError(f"depth_convs must be at least 1, got {depth_convs}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.residual = bool(residual)
        self.pool = pool
        width, n = int(width), int(depth_convs)
        self.enc = _convs(in_channels, width, n)
        self.bottleneck = _convs(width, 2 * width, n)
        self.up = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1),
                                nn.LeakyReLU(0.1, inplace=True))
        self.dec = _convs(width, width, n)
        self.tail = nn.Conv2d(width, out_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def size_multiple(self):
        """int: input height and width must be multiples of this."""
        return 2

    def forward(self, x):
        """Enhance a batch.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_channels, H, W)
            Stretched input; ``H`` and ``W`` even.

        Returns
        -------
        torch.Tensor, shape (B, out_channels, H, W)

        Raises
        ------
        ValueError
            If ``H`` or ``W`` is odd.
        """
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"input height and width must be multiples of 2, got "
                             f"{tuple(x.shape[-2:])}; pad the input (reflection)")
        e = self.enc(x)
        pooled = F.max_pool2d(e, 2) if self.pool == "max" else F.avg_pool2d(e, 2)
        h = self.bottleneck(pooled)
        h = self.up(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.dec(h + e)
        out = self.tail(h)
        return add_residual(out, x) if self.residual else out
