"""Training loops: supervised and adversarial, with checkpoints and resume.

One loop serves every network, chosen by ``kind``: the supervised kinds (`SUPERVISED_KINDS`:
``unet``, ``srresnet``, ``autoencoder``) train a generator alone against the noiseless
truth; the adversarial kinds (`ADVERSARIAL_KINDS`: ``gan``, ``srgan``, ``colorize``) train a
generator initialised from a supervised run together with a conditional patch critic
(``colorize``: one band in, a (C, H, W) stack of bands out, `~.data.ColourShardDataset`).
The network, losses and their weights come from the recipe. The diffusion kind (`DIFFUSION_KINDS`: ``sr3``)
trains an `~astro_enhance.models.SR3Denoiser` to predict ``v`` for the noisy residual
``(truth - unet(input)) / residual_scale`` at a random noise level, with the shipped U-Net
frozen inside it (see `train_sr3`).

All loops run for a number of steps given by the recipe, or until a wall-clock budget
(``minutes``) is spent, whichever comes first; in both cases they write a checkpoint and
stop cleanly, and ``resume=True`` continues from it (model, optimiser, EMA, random
states, step and elapsed time). A run directory holds:

- ``checkpoint.pt`` -- resume state (torch format; it never leaves the run directory);
- ``model.safetensors`` -- current (EMA) weights of the network, safetensors;
- ``loss_log.csv`` -- one row per logged step;
- ``val_log.csv`` -- quick validation figures (PSNR gain over the input in the stretched
  space, relative flux error);
- ``samples/step_XXXXXX.png`` -- input / output / target images.

Shipped weights are written by `export_weights` with `astro_enhance.weights.save_weights`
(safetensors + JSON sidecar), never with ``torch.save``.
"""

import copy
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["train_unet", "train_gan", "train_srresnet", "train_autoencoder", "train_srgan",
           "train_colorize", "train_supervised", "train_adversarial", "export_weights",
           "evaluate_quick", "AdaptiveSwitcher", "SUPERVISED_KINDS", "ADVERSARIAL_KINDS", "DIFFUSION_KINDS",
           "train_sr3"]

#: Kinds trained by the supervised loop (their default recipe has the same name).
SUPERVISED_KINDS = ("unet", "srresnet", "autoencoder")
#: Kinds trained by the adversarial loop (generator + conditional critic).
ADVERSARIAL_KINDS = ("gan", "srgan", "colorize")
#: Kinds trained as conditional diffusion models (`~astro_enhance.models.SR3Denoiser`): the
#: network learns to denoise the residual ``target - unet(input)`` at a random noise level.
DIFFUSION_KINDS = ("sr3",)


def _torch():
    import torch
    return torch


def _lr_at(step, recipe, base):
    """Linear warm-up then cosine decay to ``lr_min`` over ``steps``."""
    warm = int(recipe.get("warmup", 0))
    total = max(int(recipe["steps"]), 1)
    lo = float(recipe.get("lr_min", base * 0.02))
    if warm and step < warm:
        return base * (step + 1) / warm
    t = min(max(step - warm, 0) / max(total - warm, 1), 1.0)
    return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * t))


def _atomic_torch_save(obj, path):
    torch = _torch()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _save_safetensors(state, path):
    from safetensors.torch import save_file
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


class _CSVLog:
    def __init__(self, path, fields, *, append):
        self.path = Path(path)
        self.fields = list(fields)
        new = not (append and self.path.exists())
        self.fh = open(self.path, "w" if new else "a", newline="")
        self.w = csv.DictWriter(self.fh, fieldnames=self.fields, extrasaction="ignore")
        if new:
            self.w.writeheader()

    def write(self, row):
        self.w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.fh.flush()

    def close(self):
        self.fh.close()


def _load_dataset(data, recipe, targets, max_samples=None):
    from .data import ColourShardDataset, ShardDataset, StretchedPairs
    if isinstance(data, StretchedPairs):
        return data
    d = recipe.get("data", {})
    if d.get("input_band"):
        # one band in, several out (colorize): scenes grouped by seed
        cls, kw = ColourShardDataset, dict(input_band=d["input_band"],
                                           bands=d.get("bands") or ("g", "r", "z"))
    else:
        cls, kw = ShardDataset, dict(bands=d.get("bands"))
    kw.update(targets=targets, max_samples=max_samples)
    try:
        return cls(data, split=d.get("split"), **kw)
    except FileNotFoundError:
        # a directory of shards of another split name, or explicit files
        return cls(data, **kw)


def _to_t(a):
    torch = _torch()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def evaluate_quick(model, dataset, *, target, n=16, size=None):
    """Quick validation on whole images: PSNR gain over the input and flux error.

    PSNR is computed in the stretched space against the target, for the model output and
    for the input itself (which is the bicubic-resampled SDSS image), with the peak taken
    as the target's range. The flux error is ``|sum(out) - sum(target)| / sum(target)`` in
    linear units inside the pixels where the target exceeds 2 noise sigma (a galaxy
    aperture), per image.

    Parameters
    ----------
    model : torch.nn.Module
        Network (evaluated in ``eval`` mode, no gradient).
    dataset : StretchedPairs
        Validation pairs.
    target : str
        Target key.
    n : int, optional
        Number of images (the first ``n``).
    size : int, optional
        Crop images to this size (multiple of the model's size multiple).

    Returns
    -------
    dict
        ``psnr_model``, ``psnr_input``, ``psnr_gain`` (medians, dB), ``flux_err_median``,
        ``flux_err_p90``, ``flux_err_input_median``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from astro_enhance.models import build_model
    >>> from astro_enhance.training import ShardDataset, synthetic_shard
    >>> d = tempfile.mkdtemp()
    >>> _ = synthetic_shard(d, n=2, size=32, rng=np.random.default_rng(0))
    >>> model = build_model("unet", {"width": 8, "depth": 2})
    >>> res = evaluate_quick(model, ShardDataset(d), target="truth")
    >>> sorted(res)  # doctest: +NORMALIZE_WHITESPACE
    ['flux_err_input_median', 'flux_err_median', 'flux_err_p90', 'psnr_gain', 'psnr_input',
     'psnr_model']
    """
    torch = _torch()
    mult = getattr(model, "size_multiple", 8)
    psnr_m, psnr_i, ferr, ferr_in = [], [], [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(min(n, len(dataset))):
            x = dataset.x[i]
            t = dataset.y[target][i]
            ny, nx = x.shape
            cy, cx = (ny // mult) * mult, (nx // mult) * mult
            if size:
                cy, cx = min(cy, size), min(cx, size)
            y0, x0 = (ny - cy) // 2, (nx - cx) // 2
            x = x[y0:y0 + cy, x0:x0 + cx]
            t = t[..., y0:y0 + cy, x0:x0 + cx]
            out = model(_to_t(x)[None, None])[0].numpy()
            out = out[0] if t.ndim == 2 else out   # (C, H, W) for a several-band target
            rng_ = float(t.max() - t.min()) or 1.0
            for arr, acc in ((out, psnr_m), (x, psnr_i)):
                mse = float(np.mean((arr - t) ** 2))
                acc.append(10 * np.log10(rng_ ** 2 / max(mse, 1e-12)))
            lt = np.sinh(t.astype(np.float64))
            ap = lt > 2.0 / 3.0   # > 2 sigma (units of k*sigma with k = 3)
            if ap.sum() >= 5:
                ft = lt[ap].sum()
                ferr.append(abs(np.sinh(out.astype(np.float64))[ap].sum() - ft) / abs(ft))
                xin = np.broadcast_to(x, t.shape)   # the input band against every band
                ferr_in.append(abs(np.sinh(xin.astype(np.float64))[ap].sum() - ft) / abs(ft))
    if was_training:
        model.train()
    res = {"psnr_model": float(np.median(psnr_m)), "psnr_input": float(np.median(psnr_i))}
    res["psnr_gain"] = res["psnr_model"] - res["psnr_input"]
    if ferr:
        res["flux_err_median"] = float(np.median(ferr))
        res["flux_err_p90"] = float(np.percentile(ferr, 90))
        res["flux_err_input_median"] = float(np.median(ferr_in))
    return res


def _hf_ratio(model, dataset, *, target, n=8):
    """Median high-frequency power ratio of output over target, in linear units.

    Uses `astro_enhance.metrics.hf_power_ratio` (radial power above 0.15 cycles/px) on the
    un-stretched images, as ``astro-enhance evaluate`` does.
    """
    torch = _torch()
    from ..metrics import hf_power_ratio
    from ..normalize import asinh_unstretch
    mult = getattr(model, "size_multiple", 8)
    ratios = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(min(n, len(dataset))):
            x = dataset.x[i]
            ny, nx = (x.shape[0] // mult) * mult, (x.shape[1] // mult) * mult
            x = x[:ny, :nx]
            t = dataset.y[target][i][..., :ny, :nx].reshape(-1, ny, nx)
            out = model(_to_t(x)[None, None])[0].numpy()
            sig = dataset.sigma[i]
            # a several-band target: the mean ratio over its planes
            ratios.append(np.mean([hf_power_ratio(asinh_unstretch(o, sig),
                                                  asinh_unstretch(tt, sig))
                                   for o, tt in zip(out, t)]))
    if was_training:
        model.train()
    return float(np.median(ratios)) if ratios else float("nan")


def _save_samples(path, model, dataset, *, target, n=4, size=128):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    torch = _torch()
    mult = getattr(model, "size_multiple", 8)
    n = min(n, len(dataset))
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    model.eval()
    with torch.no_grad():
        for r in range(n):
            x = dataset.x[r]
            s = min(size, (min(x.shape) // mult) * mult)
            y0, x0 = (x.shape[0] - s) // 2, (x.shape[1] - s) // 2
            xin = x[y0:y0 + s, x0:x0 + s]
            t = dataset.y[target][r][..., y0:y0 + s, x0:x0 + s]
            out = model(_to_t(xin)[None, None])[0].numpy()
            # several bands (colorize): the first plane, the bluest band
            t, out = t.reshape(-1, s, s)[0], out[0]
            vmax = float(np.percentile(t, 99.5)) or 1.0
            for c, (img, title) in enumerate(((xin, "input"), (out, "output"), (t, target))):
                axes[r, c].imshow(img, origin="lower", cmap="gray", vmin=-0.5, vmax=vmax)
                axes[r, c].set_axis_off()
                if r == 0:
                    axes[r, c].set_title(title)
    model.train()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..visualization import _save_figure

    _save_figure(fig, path, dpi=80)


class _EMA:
    def __init__(self, model, decay):
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def update(self, model):
        torch = _torch()
        self.n = getattr(self, "n", 0) + 1
        # warm-up of the decay so that a short run's EMA is not stuck at the initial weights
        d = min(self.decay, (1.0 + self.n) / (10.0 + self.n))
        with torch.no_grad():
            for pe, p in zip(self.model.parameters(), model.parameters()):
                if not p.requires_grad:     # frozen (the U-Net inside sr3): copied exactly
                    pe.copy_(p)
                    continue
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
            for be, b in zip(self.model.buffers(), model.buffers()):
                be.copy_(b)


class AdaptiveSwitcher:
    """Decide which side of a GAN to train: whichever is losing.

    Training stays on the critic until its (smoothed) loss falls below ``critic_thresh``
    (it tells real from fake well enough), then moves to the generator until the
    generator's smoothed adversarial loss falls below ``gen_thresh`` (it fools the critic),
    and back. ``max_run`` bounds consecutive steps on one side so neither stalls.

    Parameters
    ----------
    critic_thresh, gen_thresh : float
        Loss thresholds (BCE: ``log 2 = 0.69`` is chance level).
    max_run : int, optional
        Maximum consecutive steps for one side.
    smooth : float, optional
        Exponential smoothing factor of the losses.
    start : {"critic", "generator"}, optional
        Side trained first.

    Examples
    --------
    >>> s = AdaptiveSwitcher(critic_thresh=0.5, gen_thresh=0.8, smooth=0.0)
    >>> s.side
    'critic'
    >>> s.update(0.3)   # critic now strong: train the generator
    'generator'
    """

    def __init__(self, *, critic_thresh=0.6, gen_thresh=0.8, max_run=20, smooth=0.8,
                 start="critic"):
        self.critic_thresh = float(critic_thresh)
        self.gen_thresh = float(gen_thresh)
        self.max_run = int(max_run)
        self.smooth = float(smooth)
        self.side = start
        self.run = 0
        self.avg = {"critic": None, "generator": None}

    def update(self, loss):
        """Record the loss of the side just trained and return the side to train next.

        Parameters
        ----------
        loss : float
            Critic loss (if the critic was trained) or generator adversarial loss.

        Returns
        -------
        str
            ``"critic"`` or ``"generator"``.
        """
        side = self.side
        prev = self.avg[side]
        self.avg[side] = loss if prev is None else self.smooth * prev + (1 - self.smooth) * loss
        self.run += 1
        thresh = self.critic_thresh if side == "critic" else self.gen_thresh
        if self.avg[side] < thresh or self.run >= self.max_run:
            self.side = "generator" if side == "critic" else "critic"
            self.run = 0
            self.avg[self.side] = None
        return self.side

    def state_dict(self):
        """dict: state for checkpoints."""
        return {"side": self.side, "run": self.run, "avg": dict(self.avg)}

    def load_state_dict(self, state):
        """Restore from `state_dict`."""
        self.side, self.run, self.avg = state["side"], state["run"], dict(state["avg"])


def _setup(out, recipe, threads, seed):
    torch = _torch()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(threads or recipe.get("threads", 1)))
    torch.manual_seed(seed)
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2))
    return out


def _progress(total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


def train_unet(data, out, *, recipe=None, minutes=None, resume=False, val=None,
               threads=None, progress=True, max_samples=None, max_steps=None):
    """Supervised training of the residual U-Net against the noiseless truth.

    Parameters
    ----------
    data : str or path-like or list or StretchedPairs
        Training shards (directory or files), or an already built dataset such as a
        `~astro_enhance.training.FitsPairDataset` (its target is used).
    out : str or path-like
        Run directory (checkpoints, logs, samples).
    recipe : dict or str, optional
        Recipe (default the shipped ``"unet"`` recipe).
    minutes : float, optional
        Wall-clock budget of this call; when spent, checkpoint and stop.
    resume : bool, optional
        Continue from ``out/checkpoint.pt``.
    val : str or path-like or StretchedPairs, optional
        Validation shards or dataset for quick figures and sample images (default: the first
        training images).
    threads : int, optional
        torch CPU threads (default from the recipe).
    progress : bool, optional
        Show a progress bar.
    max_samples : int, optional
        Read at most this many training pairs.
    max_steps : int, optional
        Stop (checkpoint, resumable) after this many steps in this call.

    Returns
    -------
    dict
        ``step``, ``elapsed`` (s, over all resumed sessions), ``finished`` (all steps
        done), ``val`` (last quick validation), ``run_dir``.

    Examples
    --------
    A two-step run of a tiny U-Net on a toy shard:

    >>> import numpy as np, tempfile
    >>> from astro_enhance.training import load_recipe, synthetic_shard
    >>> d = tempfile.mkdtemp()
    >>> _ = synthetic_shard(d, n=2, size=32, rng=np.random.default_rng(0))
    >>> recipe = load_recipe("unet", overrides=dict(
    ...     steps=2, patch=32, batch_size=2, warmup=1, threads=1, log_every=1,
    ...     val_every=2, sample_every=2, checkpoint_every=2))
    >>> recipe["model"] = {"architecture": "unet", "config": {"width": 8, "depth": 2}}
    >>> res = train_unet(d, d + "/unet", recipe=recipe, progress=False)
    >>> res["step"], res["finished"], "psnr_gain" in res["val"]
    (2, True, True)
    """
    return _train(data, out, kind="unet", recipe=recipe, minutes=minutes, resume=resume,
                  val=val, threads=threads, progress=progress, max_samples=max_samples,
                  max_steps=max_steps)


def train_gan(data, out, *, recipe=None, init=None, minutes=None, resume=False, val=None,
              threads=None, progress=True, max_samples=None, max_steps=None):
    """Adversarial training: U-Net generator plus conditional patch critic.

    The generator starts from trained U-Net weights (``init``); the critic is pre-trained
    for ``critic_pretrain`` steps on real (DECaLS-like) versus generated images; then an
    `AdaptiveSwitcher` trains whichever side is losing, with a content (L1) and flux loss
    on the generator besides the adversarial one, and a larger learning rate for the
    critic.

    Parameters
    ----------
    data, out, recipe, minutes, resume, val, threads, progress, max_samples, max_steps
        As in `train_unet` (default recipe ``"gan"``).
    init : str or path-like, optional
        Generator initial weights: a weights path (``.safetensors`` with sidecar, or a
        run directory holding ``model.safetensors``); default the recipe's ``init``
        (``"unet"`` = the shipped U-Net weights).

    Returns
    -------
    dict
        As in `train_unet`.

    Examples
    --------
    A two-step run of a tiny GAN, started from a two-step tiny U-Net:

    >>> import numpy as np, tempfile
    >>> from astro_enhance.training import load_recipe, synthetic_shard, train_unet
    >>> d = tempfile.mkdtemp()
    >>> _ = synthetic_shard(d, n=2, size=32, rng=np.random.default_rng(0))
    >>> tiny = dict(steps=2, patch=32, batch_size=2, warmup=1, threads=1, log_every=1,
    ...             val_every=2, sample_every=2, checkpoint_every=2)
    >>> unet = load_recipe("unet", overrides=tiny)
    >>> unet["model"] = {"architecture": "unet", "config": {"width": 8, "depth": 2}}
    >>> _ = train_unet(d, d + "/unet", recipe=unet, progress=False)
    >>> gan = load_recipe("gan", overrides=dict(tiny, critic_pretrain=1))
    >>> gan["model"] = unet["model"]
    >>> gan["critic"] = {"architecture": "patch_critic", "config": {"width": 8, "n_layers": 2}}
    >>> res = train_gan(d, d + "/gan", recipe=gan, init=d + "/unet", progress=False)
    >>> res["step"], res["finished"], "hf_ratio" in res["val"]
    (2, True, True)
    """
    return _train(data, out, kind="gan", recipe=recipe, minutes=minutes, resume=resume,
                  val=val, threads=threads, progress=progress, max_samples=max_samples,
                  init=init, max_steps=max_steps)


def train_supervised(data, out, *, kind="unet", recipe=None, init=None, minutes=None,
                     resume=False, val=None, threads=None, progress=True, max_samples=None,
                     max_steps=None):
    """Supervised training of any generator kind (``unet``, ``srresnet``, ``autoencoder``).

    The loop of `train_unet`: the recipe's network is trained against the recipe's target
    (default the noiseless truth) with the recipe's pixel loss (``pixel_loss``: ``"l1"``,
    ``"l2"`` = MSE or ``"huber"``), plus ``flux_weight`` x `~.losses.flux_loss` and
    ``structure_weight`` x `~.losses.structure_loss` (``structure_loss``: ``"ssim"`` or
    ``"gradient"``).

    Parameters
    ----------
    data, out, recipe, minutes, resume, val, threads, progress, max_samples, max_steps
        As in `train_unet`; the default recipe is the one named ``kind``.
    kind : str, optional
        One of `SUPERVISED_KINDS`.
    init : str or path-like, optional
        Start from these weights (weights path or run directory) instead of the
        initialisation of the architecture; ignored on ``resume``.

    Returns
    -------
    dict
        As in `train_unet`.

    Raises
    ------
    ValueError
        If ``kind`` is not supervised.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from astro_enhance.training import load_recipe, synthetic_shard
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = synthetic_shard(tmp / "shards", n=2, size=32, rng=np.random.default_rng(0))
    >>> r = load_recipe("autoencoder", overrides=dict(steps=2, patch=32, batch_size=2,
    ...                                             log_every=1, val_every=2, threads=1))
    >>> r["model"]["config"]["width"] = 8
    >>> res = train_supervised(tmp / "shards", tmp / "run", kind="autoencoder", recipe=r,
    ...                        progress=False)
    >>> res["step"], res["finished"]
    (2, True)
    """
    if kind not in SUPERVISED_KINDS:
        raise ValueError(f"kind {kind!r} is not supervised; use one of "
                         f"{', '.join(SUPERVISED_KINDS)}")
    return _train(data, out, kind=kind, recipe=recipe, minutes=minutes, resume=resume,
                  val=val, threads=threads, progress=progress, max_samples=max_samples,
                  init=init, max_steps=max_steps)


def train_adversarial(data, out, *, kind="gan", recipe=None, init=None, minutes=None,
                      resume=False, val=None, threads=None, progress=True, max_samples=None,
                      max_steps=None):
    """Adversarial training of any generator kind (``gan``, ``srgan``).

    The loop of `train_gan`; besides its content, flux and adversarial terms, the
    generator's loss has ``feature_weight`` x `~.losses.feature_loss`: the L1 distance
    between the critic's intermediate activations
    (`astro_enhance.models.PatchCritic.features`) for ``(input, generated)`` and for
    ``(input, real)``, with the real image taken from ``data.feature_target`` (default the
    critic's target).

    Parameters
    ----------
    data, out, recipe, init, minutes, resume, val, threads, progress, max_samples, max_steps
        As in `train_gan`; the default recipe is the one named ``kind``.
    kind : str, optional
        One of `ADVERSARIAL_KINDS`.

    Returns
    -------
    dict
        As in `train_unet`.

    Raises
    ------
    ValueError
        If ``kind`` is not adversarial.

    Examples
    --------
    >>> train_adversarial("shards", "run", kind="unet")
    Traceback (most recent call last):
    ...
    ValueError: kind 'unet' is not adversarial; use one of gan, srgan, colorize
    """
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"kind {kind!r} is not adversarial; use one of "
                         f"{', '.join(ADVERSARIAL_KINDS)}")
    return _train(data, out, kind=kind, recipe=recipe, minutes=minutes, resume=resume,
                  val=val, threads=threads, progress=progress, max_samples=max_samples,
                  init=init, max_steps=max_steps)


def train_srresnet(data, out, **kwargs):
    """Supervised training of the same-grid SRResNet (recipe ``"srresnet"``).

    `train_supervised` with ``kind="srresnet"``: L1 + flux loss against the truth.

    Parameters
    ----------
    data, out
        As in `train_unet`.
    **kwargs
        Keyword arguments of `train_supervised` (``recipe``, ``minutes``, ``resume``...).

    Returns
    -------
    dict
        As in `train_unet`.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from astro_enhance.training import load_recipe, synthetic_shard
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = synthetic_shard(tmp / "shards", n=2, size=32, rng=np.random.default_rng(0))
    >>> r = load_recipe("srresnet", overrides=dict(steps=2, patch=32, batch_size=2,
    ...                                          log_every=1, val_every=2, threads=1))
    >>> r["model"]["config"].update(width=8, n_blocks=1)
    >>> train_srresnet(tmp / "shards", tmp / "run", recipe=r, progress=False)["step"]
    2
    """
    return train_supervised(data, out, kind="srresnet", **kwargs)


def train_autoencoder(data, out, **kwargs):
    """Supervised training of the skip-connection autoencoder (recipe ``"autoencoder"``).

    `train_supervised` with ``kind="autoencoder"``: MSE + ``1 - SSIM`` (+ flux) against the
    truth.

    Parameters
    ----------
    data, out
        As in `train_unet`.
    **kwargs
        Keyword arguments of `train_supervised`.

    Returns
    -------
    dict
        As in `train_unet`.

    Examples
    --------
    >>> from astro_enhance.training import load_recipe
    >>> load_recipe("autoencoder")["model"]["architecture"]
    'skip_autoencoder'
    >>> # train_autoencoder(shard_dir, "runs/autoencoder")  # ~20 min with the full recipe
    """
    return train_supervised(data, out, kind="autoencoder", **kwargs)


def train_srgan(data, out, **kwargs):
    """Adversarial training of the SRResNet generator (recipe ``"srgan"``).

    `train_adversarial` with ``kind="srgan"``: the generator starts from trained
    ``srresnet`` weights (``init``, default the recipe's ``"srresnet"`` = the shipped
    ones), and the critic's feature-matching loss replaces SRGAN's VGG loss.

    Parameters
    ----------
    data, out
        As in `train_gan`.
    **kwargs
        Keyword arguments of `train_adversarial` (``init``, ``recipe``, ``minutes``...).

    Returns
    -------
    dict
        As in `train_unet`.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from astro_enhance.training import load_recipe, synthetic_shard
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = synthetic_shard(tmp / "shards", n=2, size=32, rng=np.random.default_rng(0))
    >>> r = load_recipe("srresnet", overrides=dict(steps=2, patch=32, batch_size=2,
    ...                                          log_every=1, val_every=2, threads=1))
    >>> r["model"]["config"].update(width=8, n_blocks=1)
    >>> _ = train_srresnet(tmp / "shards", tmp / "sr", recipe=r, progress=False)
    >>> g = load_recipe("srgan", overrides=dict(steps=2, patch=32, batch_size=2,
    ...                                       critic_pretrain=1, log_every=1, val_every=2,
    ...                                       threads=1))
    >>> g["model"] = r["model"]
    >>> g["critic"]["config"].update(width=8, n_layers=2)
    >>> train_srgan(tmp / "shards", tmp / "gan", recipe=g, init=tmp / "sr",
    ...             progress=False)["step"]
    2
    """
    return train_adversarial(data, out, kind="srgan", **kwargs)


def train_colorize(data, out, **kwargs):
    """Train the colorizer: one band in, several bands out (recipe ``"colorize"``).

    `train_adversarial` with ``kind="colorize"``: a U-Net generator (initialised from the
    shipped single-band ``unet``, its output layer repeated for every band) and a
    conditional patch critic that sees the input band with the generated or true bands;
    L1 in the stretched space plus a flux term and a small adversarial term, as the
    Galaxy10 colorizer (pix2pix) did. ``data`` are shards simulated with the input band and
    every output band (``astro-enhance simulate --bands g,r,z``), read with
    `~astro_enhance.training.ColourShardDataset`.

    Parameters
    ----------
    data, out
        As in `train_gan`.
    **kwargs
        Keyword arguments of `train_adversarial` (``init``, ``recipe``, ``minutes``...).

    Returns
    -------
    dict
        As in `train_unet`.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from astro_enhance.simulate import write_shards
    >>> from astro_enhance.training import load_recipe
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = write_shards(tmp / "shards", n=2, split="train", bands="g,r,z",
    ...                  stamp_arcsec=16, shard_size=2)
    >>> small = dict(steps=2, patch=32, batch_size=2, log_every=1, val_every=2, threads=1)
    >>> u = load_recipe("unet", overrides=small)    # a tiny single-band U-Net to start from
    >>> u["model"]["config"].update(width=8, depth=2)
    >>> _ = train_unet(tmp / "shards", tmp / "unet", recipe=u, progress=False)
    >>> r = load_recipe("colorize", overrides=dict(small, critic_pretrain=1))
    >>> r["model"]["config"].update(width=8, depth=2)
    >>> r["critic"]["config"].update(width=8, n_layers=2)
    >>> res = train_colorize(tmp / "shards", tmp / "run", recipe=r, init=tmp / "unet",
    ...                      progress=False)
    >>> res["step"], "colour_err_median" in res["val"]
    (2, True)
    """
    return train_adversarial(data, out, kind="colorize", **kwargs)


def _texture_batch(batch, ds, texture, rng):
    """Per patch of a batch: the input's stretch scale ``k sigma`` and the sky sigma and
    source factor of a DECaLS-like noise of a depth drawn uniformly in
    ``texture["depth_range"]`` times the band's nominal (`decals_noise_model`), plus the
    standard normal draws of the noise of the real and of the fake image."""
    from ..enhancers.texture import decals_noise_model

    lo, hi = texture.get("depth_range", (1.0, 1.0))
    bands = ds.meta["band"]
    out = {"scale": [], "sigma": [], "k": []}
    for i, sig in zip(batch["index"], batch["sigma"]):
        s0, _ = decals_noise_model(str(bands[i]))
        s, k = decals_noise_model(str(bands[i]), sigma=s0 * rng.uniform(lo, hi))
        out["scale"].append(ds.softening * float(sig))
        out["sigma"].append(s)
        out["k"].append(k)
    shape = batch["input"].shape
    out = {k: _to_t(np.asarray(v, np.float32)[:, None, None, None]) for k, v in out.items()}
    out["eps"] = [_to_t(rng.standard_normal(shape).astype(np.float32)) for _ in range(2)]
    out["used"] = 0
    return out


def _add_texture_t(y, tex):
    """Stretched image + a DECaLS-like noise realisation added in linear units (the next
    unused draw of ``tex``: the real image takes the first, fakes the second)."""
    torch = _torch()
    eps = tex["eps"][min(tex["used"], 1)]
    tex["used"] += 1
    lin = tex["scale"] * torch.sinh(y)
    var = tex["sigma"] ** 2 + tex["k"] * torch.relu(lin)
    return torch.asinh((lin + torch.sqrt(var) * eps) / tex["scale"])


def _chi_loss(pred, truth, tex, power=1):
    """Mean ``|pred - truth| ** power`` in units of the DECaLS noise of the truth's pixels
    (linear space). ``power=2`` (chi-square per pixel) weighs the few pixels that err by many
    sigma -- bright star cores -- far more than the many faint ones."""
    torch = _torch()
    lin_p = tex["scale"] * torch.sinh(pred)
    lin_t = tex["scale"] * torch.sinh(truth)
    sig = torch.sqrt(tex["sigma"] ** 2 + tex["k"] * torch.relu(lin_t))
    return torch.mean((torch.abs(lin_p - lin_t) / sig) ** power)


def _load_init(model, init):
    """Load generator weights from a weights file, a run dir or a shipped name."""
    from safetensors.torch import load_file
    p = Path(str(init))
    if p.is_dir():
        p = p / "model.safetensors"
    elif p.suffix != ".safetensors":
        cand = p.with_suffix(".safetensors")
        shipped = Path(__file__).resolve().parents[1] / "weights" / f"{init}.safetensors"
        p = cand if cand.exists() else shipped
    if not p.exists():
        raise FileNotFoundError(f"generator initial weights {init!r} not found (looked at "
                                f"{p}); train the supervised model first (e.g. the U-Net "
                                f"for gan, the SRResNet for srgan) or pass --init RUN_DIR")
    if p.with_suffix(".json").exists():
        try:
            from ..weights import load_weights
            state, _ = load_weights(p.with_suffix(""))
        except ImportError:
            state = load_file(str(p))
    else:
        state = load_file(str(p))
    model.load_state_dict(_adapt_state(state, model))
    return str(p)


def train_sr3(data, out, *, recipe=None, init=None, minutes=None, resume=False, val=None,
              threads=None, progress=True, max_samples=None, max_steps=None):
    """Train the SR3-style conditional diffusion model (recipe ``"sr3"``).

    The recipe's `~astro_enhance.models.SR3Denoiser` holds a conditioning U-Net, loaded from
    ``init`` (default the recipe's ``init``: ``"unet"`` = the shipped U-Net weights) and
    frozen. Its output on every whole training image is computed once; each step then cuts
    patches of the input, the U-Net output and the noiseless truth, draws a noise level
    piecewise uniformly over the schedule and minimises the mean squared error of the ``v``
    prediction (`~astro_enhance.models.SR3Denoiser.loss`), with an EMA of the weights.
    Quick validation draws one sample with ``val_steps`` steps (default 10): PSNR gain over
    the input against the truth, flux error, and ``hf_ratio`` against the DECaLS-like image
    when the validation data have it.

    Parameters
    ----------
    data, out, recipe, minutes, resume, val, threads, progress, max_samples, max_steps
        As in `train_unet` (default recipe ``"sr3"``).
    init : str or path-like, optional
        Weights of the conditioning U-Net (weights path, run directory or shipped name).

    Returns
    -------
    dict
        As in `train_unet`.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from astro_enhance.training import load_recipe, synthetic_shard, train_unet
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = synthetic_shard(tmp / "shards", n=2, size=32, rng=np.random.default_rng(0))
    >>> small = dict(steps=2, patch=32, batch_size=2, log_every=1, val_every=2, threads=1)
    >>> u = load_recipe("unet", overrides=small)
    >>> u["model"]["config"].update(width=8, depth=2)
    >>> _ = train_unet(tmp / "shards", tmp / "unet", recipe=u, progress=False)
    >>> r = load_recipe("sr3", overrides=dict(small, val_steps=2))
    >>> r["model"]["config"].update(width=8, depth=2, unet=u["model"]["config"])
    >>> res = train_sr3(tmp / "shards", tmp / "sr3", recipe=r, init=tmp / "unet",
    ...                 progress=False)
    >>> res["step"], res["finished"], "psnr_gain" in res["val"]
    (2, True, True)
    """
    if recipe is None or isinstance(recipe, (str, Path)):
        from .recipes import load_recipe
        recipe = load_recipe(recipe or "sr3")
    recipe = dict(recipe)
    if init is not None:
        recipe["init"] = str(init)
    return _train(data, out, kind="sr3", recipe=recipe, minutes=minutes, resume=resume,
                  val=val, threads=threads, progress=progress, max_samples=max_samples,
                  max_steps=max_steps)


def _load_cond_unet(model, init):
    """Load the frozen conditioning U-Net of a diffusion model (`SR3Denoiser.cond_net`)."""
    if getattr(model, "cond_net", None) is None:
        return None
    return _load_init(model.cond_net, init)


def _add_unet_base(model, dataset, batch=4):
    """Store the frozen U-Net's output on every whole image as ``dataset.y["unet_base"]``.

    Computed once on the whole (reflection-padded) images, as at inference, so that patches
    are cut from it like from the targets.
    """
    torch = _torch()
    if "unet_base" in dataset.y:
        return
    mult = model.size_multiple
    outs = [None] * len(dataset)
    shapes = {}
    for i, x in enumerate(dataset.x):
        shapes.setdefault(x.shape, []).append(i)
    with torch.no_grad():
        for shape, idx in shapes.items():
            ny, nx = shape
            py, px = (-ny) % mult, (-nx) % mult
            for j in range(0, len(idx), batch):
                ii = idx[j:j + batch]
                xb = _to_t(np.stack([dataset.x[i] for i in ii]))[:, None]
                if py or px:
                    xb = torch.nn.functional.pad(xb, (0, px, 0, py), mode="reflect")
                yb = model.base(xb)[:, 0, :ny, :nx].numpy()
                for k, i in enumerate(ii):
                    outs[i] = np.ascontiguousarray(yb[k], dtype=np.float32)
    dataset.y["unet_base"] = outs


def _adapt_state(state, model):
    """Fit a single-band network's weights to a model with more output planes.

    Tensors whose first (output-channel) axis is 1 where the model has C are repeated C
    times (a colorize U-Net starts as the U-Net, every band a copy of the input band);
    any other mismatch is left for ``load_state_dict`` to report.
    """
    own = model.state_dict()
    out = {}
    for k, v in state.items():
        if k in own and v.shape != own[k].shape and v.ndim == own[k].ndim \
                and v.shape[0] == 1 and v.shape[1:] == own[k].shape[1:]:
            v = v.repeat(own[k].shape[0], *([1] * (v.ndim - 1)))
        out[k] = v
    return out


def _colour_quick(model, dataset, *, target, n=16):
    """Median |colour error| (mag, over the colours of consecutive bands and images) of the
    model in the truth's 2 r50 aperture, and of the median-colour baseline (the input band
    painted with the median colours of these images)."""
    torch = _torch()
    from ..metrics import aperture_colours, colour_error
    from ..normalize import asinh_unstretch
    bands = getattr(dataset, "bands", None)
    if bands is None:
        return {}
    mult = getattr(model, "size_multiple", 8)
    errs, truths = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(min(n, len(dataset))):
            x = dataset.x[i]
            ny, nx = (x.shape[0] // mult) * mult, (x.shape[1] // mult) * mult
            sig = dataset.sigma[i]
            t = asinh_unstretch(dataset.y[target][i][:, :ny, :nx], sig)
            o = asinh_unstretch(model(_to_t(x[:ny, :nx])[None, None])[0].numpy(), sig)
            try:
                errs.append(list(colour_error(o, t, bands).values()))
                truths.append(list(aperture_colours(t, bands).values()))
            except Exception:   # noqa: BLE001 - e.g. no flux in a band: skip the image
                continue
    if was_training:
        model.train()
    if not errs:
        return {}
    truths = np.asarray(truths)
    base = np.abs(truths - np.nanmedian(truths, axis=0))
    return {"colour_err_median": float(np.nanmedian(np.abs(errs))),
            "colour_err_baseline": float(np.nanmedian(base))}


def _train(data, out, *, kind, recipe, minutes, resume, val, threads, progress,
           max_samples, init=None, max_steps=None):
    torch = _torch()
    from ..models import build_model
    from .losses import (adversarial_loss, critic_loss, feature_loss, flux_loss, pixel_loss,
                         structure_loss)
    from .recipes import load_recipe

    if recipe is None or isinstance(recipe, (str, Path)):
        recipe = load_recipe(recipe or kind)
    recipe = dict(recipe)
    seed = int(recipe.get("seed", 0))
    dcfg = recipe.get("data", {})
    all_kinds = SUPERVISED_KINDS + ADVERSARIAL_KINDS + DIFFUSION_KINDS
    if kind not in all_kinds:
        raise ValueError(f"unknown training kind {kind!r}; use one of {', '.join(all_kinds)}")
    adversarial = kind in ADVERSARIAL_KINDS
    diffusion = kind in DIFFUSION_KINDS
    target = dcfg.get("target", "decals" if adversarial else "truth")
    flux_target = dcfg.get("flux_target", target)
    # the content (pixel) term of the GAN may use another target than the critic's "real"
    # images, e.g. the noiseless truth while the critic sees realistic noisy DECaLS images
    content_target = dcfg.get("content_target", target)
    # the real image of the critic feature-matching term (srgan): default the critic's
    feature_target = dcfg.get("feature_target", target)
    from .data import StretchedPairs
    if isinstance(data, StretchedPairs):
        # e.g. a FitsPairDataset, whose single target is called "target"
        target = target if target in data.y else data.target_names[0]
        flux_target = flux_target if flux_target in data.y else target
        content_target = content_target if content_target in data.y else target
        feature_target = feature_target if feature_target in data.y else target
    targets = sorted({target, flux_target, content_target, feature_target})
    ds = _load_dataset(data, recipe, targets, max_samples=max_samples)
    vtargets = targets
    if diffusion and "decals" not in targets:
        vtargets = targets + ["decals"]   # hf_ratio of a sample against the DECaLS-like image
    vds = _load_dataset(val, recipe, vtargets) if val is not None else ds
    # the run directory (and its recipe.json) only once the data are known to be there
    out = _setup(out, recipe, threads, seed)
    rng = np.random.default_rng(seed)
    seeds = ds.meta.get("seed")
    data_seeds = ([int(np.min(seeds)), int(np.max(seeds))] if seeds is not None and len(seeds)
                  else None)

    mcfg = recipe["model"]
    model = build_model(mcfg["architecture"], mcfg.get("config", {}))
    if diffusion and not resume:
        recipe["cond_weights"] = _load_cond_unet(model, recipe.get("init", "unet"))
        (out / "recipe.json").write_text(json.dumps(recipe, indent=2))
    model.train()
    # a diffusion model's conditioning U-Net is frozen (requires_grad False): not optimised
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                            lr=float(recipe["lr"]),
                            betas=tuple(recipe.get("betas", (0.9, 0.99))),
                            weight_decay=float(recipe.get("weight_decay", 0.0)))
    critic = copt = switcher = None
    if adversarial:
        ccfg = recipe["critic"]
        critic = build_model(ccfg["architecture"], ccfg.get("config", {}))
        critic.train()
        copt = torch.optim.AdamW(critic.parameters(), lr=float(recipe["lr_critic"]),
                                 betas=tuple(recipe.get("betas", (0.5, 0.99))),
                                 weight_decay=0.0)
        switcher = AdaptiveSwitcher(**recipe.get("switch", {}))
    ema = _EMA(model, recipe["ema"]) if recipe.get("ema") else None

    step, elapsed, best = 0, 0.0, None
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        if ema is not None and "ema" in ck:
            ema.model.load_state_dict(ck["ema"])
            ema.n = int(ck.get("ema_n", 0))
        if critic is not None:
            critic.load_state_dict(ck["critic"])
            copt.load_state_dict(ck["copt"])
            switcher.load_state_dict(ck["switcher"])
        step, elapsed = int(ck["step"]), float(ck["elapsed"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        best = ck.get("val")
    elif resume:
        raise FileNotFoundError(f"--resume given but {ckpt_path} does not exist; start "
                                f"without --resume")
    elif (adversarial or init is not None) and not diffusion:
        default_init = {"gan": "unet", "srgan": "srresnet", "colorize": "unet"}.get(kind)
        recipe["init_weights"] = _load_init(model, init or recipe.get("init", default_init))
        if ema is not None:
            ema = _EMA(model, recipe["ema"])
        (out / "recipe.json").write_text(json.dumps(recipe, indent=2))

    texture = recipe.get("texture") if adversarial else None
    sw = float(recipe.get("structure_weight", 0.0)) if not adversarial else 0.0
    s_kind = recipe.get("structure_loss", "ssim")
    featw = float(recipe.get("feature_weight", 0.0)) if adversarial else 0.0
    fields = ["step", "elapsed", "lr", "loss", "pixel", "flux"]
    if adversarial:
        fields += ["side", "critic", "adv", "d_real", "d_fake"]
    # new columns only when their term is on, so that resumed older runs keep their header
    if sw:
        fields.append("structure")
    if featw:
        fields.append("feature")
    if texture is not None and texture.get("chi_weight"):
        fields.append("chi")
    log = _CSVLog(out / "loss_log.csv", fields, append=resume)
    vfields = ["step", "elapsed", "psnr_model", "psnr_input", "psnr_gain", "flux_err_median",
               "flux_err_p90", "flux_err_input_median", "hf_ratio", "psnr_gain_truth"]
    if kind == "colorize":
        vfields += ["colour_err_median", "colour_err_baseline"]
    vlog = _CSVLog(out / "val_log.csv", vfields, append=resume)

    total = int(recipe["steps"])
    budget = None if minutes is None else float(minutes) * 60.0
    t_start = time.monotonic()
    bar = _progress(total, step, progress)
    pl_kind = recipe.get("pixel_loss", "l1")
    fw, fpool = float(recipe.get("flux_weight", 0.0)), int(recipe.get("flux_pool", 8))
    acc = {}
    pretrain = int(recipe.get("critic_pretrain", 0)) if adversarial else 0
    finished = False
    stop_step = total if max_steps is None else min(total, step + int(max_steps))

    def eval_model():
        return ema.model if ema is not None else model

    def checkpoint(val_res=None):
        ck = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
              "elapsed": elapsed + (time.monotonic() - t_start), "rng": rng.bit_generator.state,
              "torch_rng": torch.get_rng_state(), "recipe": recipe, "kind": kind,
              "val": val_res, "data_seeds": data_seeds, "n_pairs": len(ds)}
        if ema is not None:
            ck["ema"] = ema.model.state_dict()
            ck["ema_n"] = getattr(ema, "n", 0)
        if critic is not None:
            ck.update(critic=critic.state_dict(), copt=copt.state_dict(),
                      switcher=switcher.state_dict())
        _atomic_torch_save(ck, ckpt_path)
        _save_safetensors(eval_model().state_dict(), out / "model.safetensors")
        if critic is not None:
            _save_safetensors(critic.state_dict(), out / "critic.safetensors")

    def validate():
        res = evaluate_quick(shown_model(), vds, target=target, n=16)
        if kind == "colorize":
            res.update(_colour_quick(eval_model(), vds, target=target, n=16))
        if adversarial or (diffusion and "decals" in vds.y):
            res["hf_ratio"] = _hf_ratio(shown_model(), vds,
                                        target="decals" if diffusion else target, n=8)
            if "truth" in vds.y and target != "truth":
                rt = evaluate_quick(eval_model(), vds, target="truth", n=16)
                res["psnr_gain_truth"] = rt["psnr_gain"]
        res.update(step=step, elapsed=elapsed + (time.monotonic() - t_start))
        vlog.write(res)
        # keep the weights of every validated step, so that export can pick one
        snap = out / "snapshots"
        snap.mkdir(exist_ok=True)
        _save_safetensors(eval_model().state_dict(), snap / f"step_{step:06d}.safetensors")
        (snap / f"step_{step:06d}.json").write_text(json.dumps(res, indent=1))
        return res

    if diffusion:
        # the frozen U-Net's output on every whole image, once (patches are cut from it)
        _add_unet_base(model, ds)
        dif_steps = int(recipe.get("val_steps", 10))
        dgen = torch.Generator().manual_seed(seed + 1 + step)

    def shown_model():
        """The network seen as image -> image: one seeded sample for a diffusion model."""
        if diffusion:
            from ..models.diffusion import DiffusionSampler
            return DiffusionSampler(eval_model(), steps=dif_steps)
        return eval_model()

    last_val = best
    try:
        while step < stop_step:
            if budget is not None and time.monotonic() - t_start >= budget:
                break
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, recipe, float(recipe["lr"]))
            b = ds.sample(int(recipe["batch_size"]), int(recipe["patch"]), rng,
                          targets=targets + ["unet_base"] if diffusion else targets,
                          center_frac=float(recipe.get("center_frac", 0.0)))
            x = _to_t(b["input"])
            t = _to_t(b[target])
            tf = _to_t(b[flux_target])
            tc = t if content_target == target else _to_t(b[content_target])
            row = {"step": step + 1, "lr": opt.param_groups[0]["lr"]}
            if diffusion:
                loss = model.loss(x, t, base=_to_t(b["unet_base"]), generator=dgen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(recipe["grad_clip"]))
                opt.step()
                row.update(loss=loss.item(), pixel=loss.item(), flux=0.0)
            elif not adversarial:
                pred = model(x)
                lp = pixel_loss(pred, t, kind=pl_kind)
                lf = flux_loss(pred, tf, pool=fpool) if fw else torch.zeros(())
                loss = lp + fw * lf
                if sw:
                    ls = structure_loss(pred, t, kind=s_kind)
                    loss = loss + sw * ls
                    row["structure"] = ls.item()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(recipe["grad_clip"]))
                opt.step()
                row.update(loss=loss.item(), pixel=lp.item(), flux=lf.item())
            else:
                side = "critic" if step < pretrain else switcher.side
                if texture is not None:
                    # the critic's real image: the truth plus DECaLS noise of a random depth;
                    # the fake gets noise of the same depth (see _texture_batch)
                    tex = _texture_batch(b, ds, texture, rng)
                    t = _add_texture_t(t, tex)
                if side == "critic":
                    with torch.no_grad():
                        fake = model(x)
                        if texture is not None:
                            fake = _add_texture_t(fake, tex)
                    dr, df = critic(x, t), critic(x, fake)
                    lc = critic_loss(dr, df, kind=recipe.get("adv_loss", "bce"))
                    copt.zero_grad(set_to_none=True)
                    lc.backward()
                    torch.nn.utils.clip_grad_norm_(critic.parameters(),
                                                   float(recipe["grad_clip"]))
                    copt.step()
                    row.update(side="critic", critic=lc.item(), loss=lc.item(),
                               d_real=torch.sigmoid(dr).mean().item(),
                               d_fake=torch.sigmoid(df).mean().item())
                    if step >= pretrain:
                        switcher.update(lc.item())
                else:
                    pred = model(x)
                    cp = int(recipe.get("content_pool", 1))
                    if cp > 1:
                        # content on a low-passed image: structure must match, the pixel
                        # scale texture is left to the adversarial term
                        lp = pixel_loss(torch.nn.functional.avg_pool2d(pred, cp),
                                        torch.nn.functional.avg_pool2d(tc, cp), kind=pl_kind)
                    else:
                        lp = pixel_loss(pred, tc, kind=pl_kind)
                    lf = flux_loss(pred, tf, pool=fpool) if fw else torch.zeros(())
                    chiw = float(texture.get("chi_weight", 0.0)) if texture is not None else 0.0
                    if chiw:
                        # the error in units of the DECaLS noise of each pixel (linear space):
                        # weighs bright cores as a DECaLS image would, unlike the stretch
                        lchi = _chi_loss(pred, tc, tex, power=int(texture.get("chi_power", 1)))
                        loss_extra = chiw * lchi
                        row["chi"] = lchi.item()
                    else:
                        loss_extra = 0.0
                    if texture is not None:
                        pred = _add_texture_t(pred, tex)
                    if featw:
                        # one critic pass gives the logits and the features of the fake
                        ff, df = critic.features(x, pred, with_logits=True)
                        tr = t if feature_target == target else _to_t(b[feature_target])
                        with torch.no_grad():
                            fr = critic.features(x, tr)
                        lfeat = feature_loss(ff, fr)
                        row["feature"] = lfeat.item()
                    else:
                        df = critic(x, pred)
                    la = adversarial_loss(df, real=True, kind=recipe.get("adv_loss", "bce"))
                    loss = (float(recipe.get("content_weight", 1.0)) * lp + fw * lf
                            + float(recipe["adv_weight"]) * la + loss_extra)
                    if featw:
                        loss = loss + featw * lfeat
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                   float(recipe["grad_clip"]))
                    opt.step()
                    if ema is not None:
                        ema.update(model)
                    row.update(side="generator", loss=loss.item(), pixel=lp.item(),
                               flux=lf.item(), adv=la.item(),
                               d_fake=torch.sigmoid(df).mean().item())
                    switcher.update(la.item())
            if not adversarial and ema is not None:
                ema.update(model)
            step += 1
            for k, v in row.items():
                if isinstance(v, float):
                    acc.setdefault(k, []).append(v)
            if step % int(recipe.get("log_every", 20)) == 0 or step == total:
                avg = {k: float(np.mean(v)) for k, v in acc.items()}
                avg.update(step=step, elapsed=elapsed + (time.monotonic() - t_start),
                           side=row.get("side", ""), lr=row["lr"])
                log.write(avg)
                acc = {}
                if bar is not None:
                    bar.set_postfix(loss=f"{avg.get('loss', float('nan')):.4f}")
            if bar is not None:
                bar.update(1)
            if step % int(recipe.get("val_every", 500)) == 0:
                last_val = validate()
            if step % int(recipe.get("sample_every", 500)) == 0:
                _save_samples(out / "samples" / f"step_{step:06d}.png", shown_model(), vds,
                              target=target)
            if step % int(recipe.get("checkpoint_every", 200)) == 0:
                checkpoint(last_val)
        finished = step >= total
        if step % int(recipe.get("val_every", 500)) != 0 and step > 0 and finished:
            last_val = validate()
        checkpoint(last_val)
    finally:
        if bar is not None:
            bar.close()
        log.close()
        vlog.close()
    return {"step": step, "elapsed": elapsed + (time.monotonic() - t_start),
            "finished": finished, "val": last_val, "run_dir": str(out)}


def _read_loss_log(path, max_points=200):
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            try:
                rows.append([int(r["step"]), float(r["loss"])])
            except (KeyError, ValueError):
                continue
    if len(rows) > max_points:
        idx = np.unique(np.linspace(0, len(rows) - 1, max_points).round().astype(int))
        rows = [rows[i] for i in idx]
    return rows


def _size_multiple(architecture, config):
    """Size multiple of a network, read from the built network itself."""
    from ..models import build_model
    return int(getattr(build_model(architecture, config), "size_multiple", 1) or 1)


def export_weights(run_dir, dest, *, step=None, data_seeds=None, extra=None):
    """Export a run's current (EMA) weights as shipped safetensors + JSON sidecar.

    Parameters
    ----------
    run_dir : str or path-like
        Training run directory (with ``checkpoint.pt`` and ``model.safetensors``).
    dest : str or path-like
        Destination without suffix, e.g. ``astro_enhance/weights/unet``; or a bare name,
        which is put in the package's ``weights`` directory.
    data_seeds : sequence of int, optional
        ``[first, last]`` seeds of the training pairs, recorded in the sidecar.
    step : int, optional
        Export the snapshot saved at this validated step (``run_dir/snapshots``) instead of
        the latest weights; the training log is cut at that step.
    extra : dict, optional
        More sidecar entries.

    Returns
    -------
    pathlib.Path
        The ``.safetensors`` file written.

    Examples
    --------
    Export a two-step tiny U-Net run and read the weights back:

    >>> import numpy as np, tempfile
    >>> from astro_enhance.training import load_recipe, synthetic_shard, train_unet
    >>> from astro_enhance.weights import load_weights
    >>> d = tempfile.mkdtemp()
    >>> _ = synthetic_shard(d, n=2, size=32, rng=np.random.default_rng(0))
    >>> recipe = load_recipe("unet", overrides=dict(
    ...     steps=2, patch=32, batch_size=2, warmup=1, threads=1, log_every=1,
    ...     val_every=2, sample_every=2, checkpoint_every=2))
    >>> recipe["model"] = {"architecture": "unet", "config": {"width": 8, "depth": 2}}
    >>> _ = train_unet(d, d + "/run", recipe=recipe, progress=False)
    >>> path = export_weights(d + "/run", d + "/export/tiny_unet")
    >>> path.name
    'tiny_unet.safetensors'
    >>> sidecar = load_weights(path)[1]
    >>> sidecar["architecture"], sidecar["training"]["steps"]
    ('unet', 2)
    """
    torch = _torch()
    from safetensors.torch import load_file
    from ..weights import save_weights
    run_dir = Path(run_dir)
    dest = Path(dest)
    if dest.parent == Path(".") and not str(dest).startswith("."):
        dest = Path(__file__).resolve().parents[1] / "weights" / dest.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    recipe = ck["recipe"]
    val = ck.get("val") or {}
    n_steps, minutes = int(ck["step"]), float(ck["elapsed"]) / 60.0
    if step is None:
        state = load_file(str(run_dir / "model.safetensors"))
    else:
        snap = run_dir / "snapshots" / f"step_{int(step):06d}"
        if not snap.with_suffix(".safetensors").exists():
            have = sorted(p.stem for p in (run_dir / "snapshots").glob("*.safetensors"))
            raise FileNotFoundError(f"no snapshot at step {step} in {run_dir}; have {have}")
        state = load_file(str(snap.with_suffix(".safetensors")))
        val = json.loads(snap.with_suffix(".json").read_text())
        n_steps, minutes = int(step), float(val.get("elapsed", 0.0)) / 60.0
    if ck.get("kind") in DIFFUSION_KINDS:
        # the frozen U-Net exactly as trained (the EMA of runs before the frozen-parameter
        # copy averaged it with itself, which changes float32 values in the last bits)
        state.update({k: v for k, v in ck["model"].items() if k.startswith("cond_net.")})
    loss_log = [r for r in _read_loss_log(run_dir / "loss_log.csv", max_points=10 ** 9)
                if r[0] <= n_steps]
    if len(loss_log) > 200:
        idx = np.unique(np.linspace(0, len(loss_log) - 1, 200).round().astype(int))
        loss_log = [loss_log[i] for i in idx]
    training = {"minutes": round(minutes, 2), "steps": n_steps,
                "steps_planned": int(recipe["steps"]),
                "loss_log": loss_log,
                "quick_val": {k: v for k, v in val.items() if isinstance(v, (int, float))},
                "machine": "2-core CPU, no GPU", "kind": ck.get("kind")}
    data = {"split": recipe.get("data", {}).get("split", "train"),
            "bands": recipe.get("data", {}).get("bands"),
            "target": recipe.get("data", {}).get("target")}
    data_seeds = data_seeds if data_seeds is not None else ck.get("data_seeds")
    if data_seeds is not None:
        data["seeds"] = [int(s) for s in data_seeds]
    if ck.get("n_pairs"):
        data["n_pairs"] = int(ck["n_pairs"])
    cfg = recipe["model"].get("config", {})
    info = {"name": dest.name, "kind": "neural",
            "channels_in": int(cfg.get("in_channels", 1)),
            "channels_out": int(cfg.get("out_channels", 1)),
            "survey_pair": ["sdss", "decals"],
            "bands": ([recipe["data"]["input_band"]] if recipe.get("data", {}).get("input_band")
                      else list(recipe.get("data", {}).get("bands") or ["g", "r", "i"])),
            # a U-Net's receptive field is ~100 px: with 32 px of overlap tiled and untiled
            # outputs differed by 1e-2 of the stretched range next to bright stars, with 96
            # by 2e-5 (benchmarks/bench_enhancers.py, real SDSS frame)
            "tile_size": int(recipe.get("tile_size", 512)),
            "overlap": int(recipe.get("overlap", 96)),
            "size_multiple": _size_multiple(recipe["model"]["architecture"], cfg),
            "description": recipe.get("description", "")}
    if recipe.get("data", {}).get("input_band"):
        # the bands of the output planes, in order (colorize)
        info["extra"] = {"bands_out": list(recipe["data"].get("bands") or [])}
    if recipe.get("texture"):
        # the enhancer adds the noise the generator was trained with (TorchEnhancer texture)
        info.setdefault("extra", {})["texture"] = recipe["texture"].get("kind", "decals")
    meta = {"info": info, "description": recipe.get("description", ""), "recipe": recipe,
            "data": data, "training": training, "metrics": {}}
    if ck.get("kind") in DIFFUSION_KINDS:
        # sampled by DiffusionEnhancer; its defaults travel in info["extra"]
        info["kind"] = "diffusion"
        info["extra"] = {k: recipe[k] for k in ("default_steps", "decals_noise_ratio")
                         if k in recipe}
        meta["enhancer_class"] = "astro_enhance.enhancers.diffusion.DiffusionEnhancer"
    meta.update(extra or {})
    save_weights(state, dest, architecture=recipe["model"]["architecture"],
                 config=recipe["model"].get("config", {}), **meta)
    return dest.with_suffix(".safetensors")
