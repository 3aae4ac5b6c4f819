"""
Train a small U-Net
===================

The shipped ``unet`` enhancer was trained by ``astro-enhance train`` on simulated
SDSS / DECaLS pairs (see :doc:`/training`). This tutorial runs the same code at toy scale:
a few simulated pairs written to a temporary directory, a tiny U-Net and about a hundred
optimisation steps, so that it runs in well under a minute on a laptop CPU.

The result is *not* a useful model: the shipped weights come from the full recipe (a wider
network, 1800 steps of batch 8 on 1920 simulated g, r, i images, about half an hour on one
CPU thread; :doc:`/training` lists the exact commands, times and validation figures).
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from astropy.table import Table

from astro_enhance.simulate import write_shards
from astro_enhance.training import load_recipe, train_unet

work = Path(tempfile.mkdtemp(prefix="ae-train-"))

###############################################################################
# Simulated training pairs
# ------------------------
# `~astro_enhance.simulate.write_shards` renders scenes of the ``train`` seed split (never
# used by the benchmarks) as SDSS and DECaLS would see them and stores, per scene and band,
# the SDSS image put on the DECaLS grid (``input``), the noisy DECaLS-like image and the
# noiseless DECaLS-PSF ``truth``, the U-Net's target.

write_shards(work / "shards", n=6, split="train", bands=("r",), stamp_arcsec=30.0)
print(sorted(p.name for p in (work / "shards").iterdir()))

###############################################################################
# A tiny recipe
# -------------
# Start from the shipped ``unet`` recipe and shrink it: a narrower, shallower network, small
# patches and 120 steps. Everything else -- the asinh-stretched space the network sees, the
# L1 plus flux loss, the learning-rate schedule -- is the real recipe.

recipe = load_recipe("unet", overrides={
    "model": {"architecture": "unet", "config": {"in_channels": 1, "out_channels": 1,
                                                 "width": 8, "depth": 2}},
    "patch": 48, "batch_size": 4, "steps": 120, "warmup": 10, "threads": 1,
    "log_every": 4, "checkpoint_every": 1000, "sample_every": 1000, "val_every": 1000,
})
result = train_unet(work / "shards", work / "run", recipe=recipe, progress=False)
print({k: result[k] for k in ("step", "finished")}, f"{result['elapsed']:.1f} s")

###############################################################################
# The loss curve
# --------------
# The run directory holds ``loss_log.csv`` (and checkpoints from which ``train_unet(...,
# resume=True)`` continues). The loss is the L1 distance to the truth in the stretched
# space plus the flux term; it falls quickly at first.

log = Table.read(work / "run" / "loss_log.csv", format="ascii.csv")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(log["step"], log["loss"], "o-", label="total")
ax.plot(log["step"], log["pixel"], ".-", label="pixel (L1, stretched)")
ax.plot(log["step"], log["flux"], ".-", label="flux")
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.legend()
ax.set_title("tiny U-Net, 120 steps")
fig.tight_layout()
plt.show()

###############################################################################
# Export and use the weights
# --------------------------
# `~astro_enhance.training.export_weights` writes a safetensors file and its JSON sidecar
# (architecture, recipe, sha256); ``get_enhancer("unet", weights=...)`` or
# ``enhance_fits(..., weights=...)`` then runs it like the shipped model.

from astro_enhance.enhancers import get_enhancer  # noqa: E402
from astro_enhance.simulate import read_shard  # noqa: E402
from astro_enhance.training import export_weights  # noqa: E402

weights = export_weights(work / "run", work / "tiny_unet")
enhancer = get_enhancer("unet", weights=weights, device="cpu")
shard = read_shard(next((work / "shards").glob("train-*.npz")))
out = enhancer.enhance(shard["input"][0])
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
stretch = 3 * float(shard["sigma_decals"][0])
for ax, img, title in zip(axes, (shard["input"][0], out, shard["truth"][0]),
                          ("SDSS on the DECaLS grid", "tiny U-Net (120 steps)", "truth")):
    ax.imshow(np.arcsinh(img / stretch), origin="lower", cmap="gray", vmin=-1, vmax=6)
    ax.set_title(title)
    ax.set_axis_off()
fig.tight_layout()
plt.show()

###############################################################################
# After 120 steps on six scenes the tiny model has barely started: its output is still close
# to its input. The shipped U-Net (width 24, depth 3, 1800 steps on 1920 images;
# :doc:`/training`) gains about 20 dB PSNR over its input against the truth on validation
# scenes (:doc:`/enhancers` has the benchmark table). Clean up:

import shutil  # noqa: E402

shutil.rmtree(work)
