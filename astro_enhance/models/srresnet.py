"""Same-grid SRResNet generator used by the ``srresnet`` and ``srgan`` enhancers.

SRResNet (Ledig et al. 2017, the generator of SRGAN) is a stack of residual blocks between
a wide head convolution and a long skip connection. The published network ends with
pixel-shuffle up-sampling stages; here the pipeline resamples the image onto the target grid
with `reproject` before the network sees it, so the network restores on the same grid and
has no up-sampling stage: input and output have the same shape.

The residual blocks have **no batch normalisation** (as in EDSR, Lim et al. 2017): with
batches of 8 patches whose content ranges from empty sky to bright galaxy cores, batch
statistics are noisy and differ between training and inference, and normalising the
features throws away the absolute brightness scale a flux-preserving restoration needs.
Without it the network also has no running buffers, so an exponential moving average of the
weights is the whole state.

Like the U-Net, the output is residual, ``y = x + f(x)``, in the stretched space of
`astro_enhance.normalize`, and the last convolution starts at zero, so a fresh network is
the identity. It is fully convolutional and accepts any height and width.
"""

import torch
from torch import nn

from .unet import add_residual

__all__ = ["SRResNet", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a LeakyReLU between them, added to the block's input.

    No batch normalisation (see the module docstring).

    Parameters
    ----------
    width : int
        Channels in and out.
    """

    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        """``x + conv2(act(conv1(x)))``."""
        return x + self.conv2(self.act(self.conv1(x)))


class SRResNet(nn.Module):
    """Same-grid SRResNet: head, residual blocks, long skip, residual output.

    ``head`` (9x9 convolution, LeakyReLU) -> ``n_blocks`` x `ResidualBlock` -> 3x3
    convolution, plus the head's features (long skip) -> LeakyReLU -> 3x3 ``tail``
    convolution (zero-initialised) -> added to the input.

    Parameters
    ----------
    in_channels : int, optional
        Channels of the input (stretched image planes).
    out_channels : int, optional
        Channels of the output. The residual connection adds the first
        ``min(in_channels, out_channels)`` input planes to the output.
    width : int, optional
        Feature channels of every block.
    n_blocks : int, optional
        Number of residual blocks. The receptive field is ``9 + 4 * n_blocks + 4`` pixels
        across (45 for 8 blocks).
    residual : bool, optional
        Add the input to the output (``y = x + f(x)``).

    Examples
    --------
    >>> import torch
    >>> net = SRResNet(width=8, n_blocks=2)
    >>> x = torch.randn(1, 1, 33, 17)          # any size: size_multiple is 1
    >>> torch.equal(net(x), x)                 # identity at initialisation
    True
    """

    def __init__(self, in_channels=1, out_channels=1, *, width=48, n_blocks=8, residual=True):
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be at least 1, got {n_blocks}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.residual = bool(residual)
        width = int(width)
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, padding=4),
                                  nn.LeakyReLU(0.1, inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(int(n_blocks))])
        self.body_end = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.tail = nn.Conv2d(width, out_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def size_multiple(self):
        """int: input height and width must be multiples of this (1: any size)."""
        return 1

    def forward(self, x):
        """Enhance a batch.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_channels, H, W)
            Stretched input.

        Returns
        -------
        torch.Tensor, shape (B, out_channels, H, W)
        """
        h = self.head(x)
        h = self.act(self.body_end(self.blocks(h)) + h)
        out = self.tail(h)
        return add_residual(out, x) if self.residual else out
