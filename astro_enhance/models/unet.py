"""Residual U-Net used by the ``unet`` and ``gan`` enhancers.

The network works in the stretched space of `astro_enhance.normalize` and predicts a
correction added to its input, ``y = x + f(x)``. The last convolution starts at zero, so a
freshly built network is the identity (it reproduces the resampled input) and training only
has to learn what to change. It is fully convolutional: any height and width that are
multiples of ``2 ** depth`` are accepted.
"""

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["UNet", "ConvBlock", "add_residual", "unet_channels", "unet_levels"]


def add_residual(out, x):
    """Residual output ``y = x + f(x)`` when input and output channels may differ.

    A single-plane input is added to every output plane (e.g. ``colorize``: one band in,
    three bands out, each starting from the input band). Otherwise the first
    ``min(C_in, C_out)`` input planes are added to the same output planes and the other
    output planes are returned as they are.

    Parameters
    ----------
    out : torch.Tensor, shape (B, C_out, H, W)
        The network's correction ``f(x)``.
    x : torch.Tensor, shape (B, C_in, H, W)
        The network's input.

    Returns
    -------
    torch.Tensor, shape (B, C_out, H, W)

    Examples
    --------
    >>> import torch
    >>> add_residual(torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2)).sum(dim=(2, 3))
    tensor([[4., 4., 4.]])
    >>> add_residual(torch.zeros(1, 3, 2, 2), torch.ones(1, 2, 2, 2)).sum(dim=(2, 3))
    tensor([[4., 4., 0.]])
    """
    if x.shape[1] == 1:
        return out + x
    n = min(x.shape[1], out.shape[1])
    if n == out.shape[1]:
        return out + x[:, :n]
    return torch.cat([out[:, :n] + x[:, :n], out[:, n:]], dim=1)


def unet_channels(width, depth, channel_mult=None):
    """Channels of each level of a U-Net: ``width * channel_mult[i]`` for ``i = 0..depth``.

    Parameters
    ----------
    width, depth : int
        Channels of the first level; number of down-sampling steps (>= 1).
    channel_mult : sequence of int, optional
        ``depth + 1`` multipliers (default ``min(2**i, 4)``).

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        If ``depth < 1`` or ``channel_mult`` has the wrong length.

    Examples
    --------
    >>> unet_channels(8, 3)
    [8, 16, 32, 32]
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if channel_mult is None:
        channel_mult = [min(2 ** i, 4) for i in range(depth + 1)]
    channel_mult = list(channel_mult)
    if len(channel_mult) != depth + 1:
        raise ValueError(f"channel_mult needs depth + 1 = {depth + 1} entries, "
                         f"got {len(channel_mult)}")
    return [int(width) * int(m) for m in channel_mult]


def unet_levels(chans, block):
    """The encoder/decoder modules shared by `UNet` and the diffusion denoiser.

    Each encoder level is a ``block`` followed (except the deepest) by a strided 4x4
    convolution that halves the size; each decoder level reduces the coarser features with
    a 1x1 convolution and runs a ``block`` on them concatenated with the encoder's skip.
    Modules are created in the order both networks used before, so seeded initialisations
    and state-dict keys are unchanged.

    Parameters
    ----------
    chans : list of int
        Channels per level (`unet_channels`); ``len(chans) - 1`` down-sampling steps.
    block : callable
        ``block(c_in, c_out)`` -> `torch.nn.Module`.

    Returns
    -------
    enc, down, reduce, dec : `torch.nn.ModuleList`

    Examples
    --------
    >>> enc, down, reduce, dec = unet_levels(unet_channels(8, 2), ConvBlock)
    >>> len(enc), len(down), len(reduce), len(dec)
    (3, 2, 2, 2)
    """
    depth = len(chans) - 1
    enc, down = nn.ModuleList(), nn.ModuleList()
    for i in range(depth + 1):
        enc.append(block(chans[max(i - 1, 0)] if i else chans[0], chans[i]))
        if i < depth:
            # strided convolution: learnable, anti-checkerboard enough with 4x4 kernel
            down.append(nn.Conv2d(chans[i], chans[i], 4, stride=2, padding=1))
    reduce, dec = nn.ModuleList(), nn.ModuleList()
    for i in reversed(range(depth)):
        reduce.append(nn.Conv2d(chans[i + 1], chans[i], 1))
        dec.append(block(2 * chans[i], chans[i]))
    return enc, down, reduce, dec


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU activations, with a residual 1x1 shortcut.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    """

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x):
        h = self.act(self.conv1(x))
        h = self.conv2(h)
        return self.act(h + self.skip(x))


class UNet(nn.Module):
    """Encoder-decoder with skip connections and a residual output.

    Parameters
    ----------
    in_channels : int, optional
        Channels of the input (stretched image planes).
    out_channels : int, optional
        Channels of the output. The residual connection adds the first
        ``min(in_channels, out_channels)`` input planes to the output.
    width : int, optional
        Channels of the first level; level ``i`` has ``width * mult[i]`` channels.
    depth : int, optional
        Number of 2x down-samplings; input sizes must be multiples of ``2 ** depth``.
    channel_mult : sequence of int, optional
        Width multipliers per level (length ``depth + 1``; default doubles up to 4x).
    residual : bool, optional
        Add the input to the output (``y = x + f(x)``).

    Examples
    --------
    >>> import torch
    >>> net = UNet(width=8, depth=2)
    >>> x = torch.randn(1, 1, 32, 32)
    >>> torch.equal(net(x), x)   # identity at initialisation
    True
    """

    def __init__(self, in_channels=1, out_channels=1, *, width=24, depth=3, channel_mult=None,
                 residual=True):
        super().__init__()
        chans = unet_channels(width, depth, channel_mult)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.depth = int(depth)
        self.residual = bool(residual)
        self.stem = nn.Conv2d(in_channels, chans[0], 3, padding=1)
        enc, down, reduce, dec = unet_levels(chans, ConvBlock)
        # attribute order as before the shared helper: same state-dict key order
        self.down, self.enc, self.dec, self.reduce = down, enc, dec, reduce
        self.head = nn.Conv2d(chans[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def size_multiple(self):
        """int: input height and width must be multiples of this."""
        return 2 ** self.depth

    def forward(self, x):
        """Enhance a batch.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_channels, H, W)
            Stretched input; ``H`` and ``W`` multiples of `size_multiple`.

        Returns
        -------
        torch.Tensor, shape (B, out_channels, H, W)
        """
        m = self.size_multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"input height and width must be multiples of {m}, "
                             f"got {tuple(x.shape[-2:])}; pad the input (reflection)")
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.enc):
            h = block(h)
            if i < self.depth:
                skips.append(h)
                h = self.down[i](h)
        for red, block in zip(self.reduce, self.dec):
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([red(h), skip], dim=1))
        out = self.head(h)
        return add_residual(out, x) if self.residual else out
