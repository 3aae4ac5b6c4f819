"""Plot the loss and quick-validation curves of training runs (for docs/training.rst).

Usage::

    python benchmarks/plot_training_curves.py runs/unet runs/gan -o docs/_static/training_curves.png

Prints the time trained, steps and last validation row of each run.
"""

import argparse
import csv
from pathlib import Path


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 * len(args.runs), figsize=(4.6 * 2 * len(args.runs), 3.6),
                             squeeze=False)
    for k, run in enumerate(map(Path, args.runs)):
        rows = _read(run / "loss_log.csv")
        val = _read(run / "val_log.csv") if (run / "val_log.csv").exists() else []
        ax = axes[0, 2 * k]
        gen = [r for r in rows if r.get("side", "") in ("", "generator") and r.get("pixel")]
        crit = [r for r in rows if r.get("side") == "critic"]
        ax.plot([int(r["step"]) for r in gen], [float(r["loss"]) for r in gen], lw=1,
                label="total (generator)" if crit else "total")
        ax.plot([int(r["step"]) for r in gen], [float(r["pixel"]) for r in gen], lw=1,
                label="L1 (stretched)")
        ax.plot([int(r["step"]) for r in gen], [float(r["flux"]) for r in gen], lw=1,
                label="flux term")
        if crit:
            ax.plot([int(r["step"]) for r in crit], [float(r["critic"]) for r in crit], ".",
                    ms=2, label="critic")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{run.name}: losses")
        ax.legend(fontsize=7)
        ax = axes[0, 2 * k + 1]
        if val:
            st = [int(r["step"]) for r in val]
            key = "psnr_gain_truth" if val[0].get("psnr_gain_truth") else "psnr_gain"
            ax.plot(st, [float(r[key]) for r in val], "o-", label="PSNR gain vs input (dB)")
            ax.set_xlabel("step")
            ax2 = ax.twinx()
            ax2.plot(st, [100 * float(r["flux_err_median"]) for r in val], "s--", color="C3",
                     label="median flux error (%)")
            if val[0].get("hf_ratio"):
                ax2.plot(st, [float(r["hf_ratio"]) for r in val], "^:", color="C2",
                         label="hf power ratio")
            ax.legend(fontsize=7, loc="upper left")
            ax2.legend(fontsize=7, loc="lower right")
        ax.set_title(f"{run.name}: quick validation")
        last = rows[-1]
        print(f"{run}: {int(last['step'])} steps, {float(last['elapsed']) / 60:.1f} min trained")
        if val:
            print("  last validation:", {k: v for k, v in val[-1].items() if v})
    fig.tight_layout()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
