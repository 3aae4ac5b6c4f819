"""
Batch a folder with dask
========================

`~astro_enhance.batch.run_batch` runs `~astro_enhance.enhance_fits` on many files with
`dask.distributed`: on a `~distributed.LocalCluster` by default, or on any existing cluster
(a `~distributed.Client` or a scheduler address). Each worker loads the model once; each
output is written atomically; a manifest records every file's status and output checksum,
so running the same batch again skips what is done and a failed file never stops the rest.

Three small SDSS-like files keep this quick; the same call works on thousands.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from astro_enhance.batch import run_batch
from astro_enhance.sample_data import make_sdss_sample

work = Path(tempfile.mkdtemp(prefix="ae-batch-"))
frames = work / "frames"
frames.mkdir()
for seed in range(3):
    make_sdss_sample(shape=(96, 96), seed=seed).writeto(frames / f"frame-{seed}.fits")
(frames / "notes.fits").write_text("not a FITS file")  # a bad input, on purpose

###############################################################################
# A local cluster
# ---------------
# `run_batch` with ``client=None`` starts a cluster of worker *processes* sized to the
# machine's cores and closes it at the end; that is what ``astro-enhance batch`` does. A
# script can also make its own cluster and pass the client, as here. This page is built
# inside Sphinx, so the cluster's two workers are threads of this process
# (``processes=False``): worker processes are started by re-importing the main program,
# which in a plain script needs the usual ``if __name__ == "__main__":`` guard.

from distributed import Client, LocalCluster  # noqa: E402

with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=None) as cluster, Client(cluster) as client:
    result = run_batch(str(frames / "*.fits"), work / "out", method="bilateral",
                       client=client)
    print(result.summary())
    t = result.table["input", "status", "seconds"]
    t["input"] = [Path(p).name for p in t["input"]]
    print(t)

    ###########################################################################
    # Running it again
    # ----------------
    # Finished files are skipped (their outputs still have the recorded sha256); the
    # bad file is tried again and fails again, with its reason.

    again = run_batch(str(frames / "*.fits"), work / "out", method="bilateral",
                      client=client)
    print(again.summary())

###############################################################################
# The outputs
# -----------
# ``<stem>_enhanced.fits`` for each input plus ``batch_manifest.jsonl``.

outs = sorted((work / "out").glob("*_enhanced.fits"))
print([p.name for p in outs])
from astropy.io import fits  # noqa: E402

fig, axes = plt.subplots(1, len(outs), figsize=(3.3 * len(outs), 3.4))
for ax, path in zip(np.atleast_1d(axes), outs):
    data = fits.getdata(path)
    ax.imshow(np.arcsinh(data / 0.05), origin="lower", cmap="gray")
    ax.set_title(path.name, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
fig.subplots_adjust(top=0.88)
plt.show()

###############################################################################
# On the command line: ``astro-enhance batch 'frames/*.fits' -o out/`` (a local cluster),
# ``--scheduler tcp://host:8786`` for a running cluster. See :doc:`/batch`.

import shutil  # noqa: E402

shutil.rmtree(work)
