"""Conditional patch critic for adversarial training.

The critic sees the conditioning image (the resampled SDSS input, stretched) and a
candidate output (a real DECaLS-like image or the generator's output) stacked as channels,
and returns a map of logits, one per overlapping patch: large where the patch looks real.
"""

import torch
from torch import nn

__all__ = ["PatchCritic"]


class PatchCritic(nn.Module):
    """PatchGAN-style conditional critic.

    Parameters
    ----------
    in_channels : int, optional
        Channels of the conditioning image.
    out_channels : int, optional
        Channels of the candidate output.
    width : int, optional
        Channels of the first layer (doubled at each stride-2 layer, capped at 8x).
    n_layers : int, optional
        Number of stride-2 layers; the logit map is ``2 ** n_layers`` times smaller.
    spectral_norm : bool, optional
        Apply spectral normalisation to the convolutions (stabilises training).

    Examples
    --------
    >>> import torch
    >>> critic = PatchCritic(width=8, n_layers=2)
    >>> critic(torch.zeros(2, 1, 64, 64), torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(self, in_channels=1, out_channels=1, *, width=32, n_layers=3,
                 spectral_norm=True):
        super().__init__()
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        self.n_layers = int(n_layers)
        layers = [sn(nn.Conv2d(in_channels + out_channels, width, 3, padding=1)),
                  nn.LeakyReLU(0.2, inplace=True)]
        c = width
        for i in range(n_layers):
            c_next = width * min(2 ** (i + 1), 8)
            layers += [sn(nn.Conv2d(c, c_next, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.2, inplace=True)]
            c = c_next
        layers += [sn(nn.Conv2d(c, c, 3, padding=1)), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(c, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, condition, candidate):
        """Logit map.

        Parameters
        ----------
        condition : torch.Tensor, shape (B, in_channels, H, W)
            Stretched input image.
        candidate : torch.Tensor, shape (B, out_channels, H, W)
            Real or generated output, same stretch.

        Returns
        -------
        torch.Tensor, shape (B, 1, H / 2**n_layers, W / 2**n_layers)
            Logits (no sigmoid).
        """
        return self.net(torch.cat([condition, candidate], dim=1))

    def features(self, condition, candidate, *, with_logits=False):
        """Intermediate activations, for a feature-matching (perceptual) loss.

        The same computation as `forward`, keeping the output of every LeakyReLU: the
        full-resolution layer, one per stride-2 layer and the last hidden layer
        (``n_layers + 2`` tensors). It adds no parameters, so state dicts are unchanged.

        Parameters
        ----------
        condition : torch.Tensor, shape (B, in_channels, H, W)
            Stretched input image.
        candidate : torch.Tensor, shape (B, out_channels, H, W)
            Real or generated output, same stretch.
        with_logits : bool, optional
            Also return the logit map of `forward` (from the same pass).

        Returns
        -------
        features : list of torch.Tensor
            Activations, finest first.
        logits : torch.Tensor
            Only when ``with_logits``: equal to ``self(condition, candidate)``.

        Examples
        --------
        >>> import torch
        >>> critic = PatchCritic(width=8, n_layers=2)
        >>> feats = critic.features(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))
        >>> [tuple(f.shape[1:]) for f in feats]
        [(8, 32, 32), (16, 16, 16), (32, 8, 8), (32, 8, 8)]
        """
        h = torch.cat([condition, candidate], dim=1)
        feats = []
        for layer in self.net:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                feats.append(h)
        return (feats, h) if with_logits else feats
