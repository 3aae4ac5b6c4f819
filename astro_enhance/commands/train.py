"""``astro-enhance train``: train a neural enhancer on simulated shards.

Supervised kinds (``unet``, ``srresnet``, ``autoencoder``) train against the noiseless
truth; adversarial kinds (``gan``, ``srgan``, ``colorize``) start their generator from a
supervised run (``--init``) and train it with a conditional critic. ``colorize`` needs shards
simulated with the input band and every output band (``simulate --bands g,r,z``).
``sr3`` trains a conditional diffusion model on the residual of a frozen U-Net (``--init``,
default the shipped ``unet``).
"""

__all__ = ["NAME", "HELP", "MODELS", "add_arguments", "run"]

NAME = "train"
HELP = ("train a neural enhancer (unet, gan, srresnet, srgan, autoencoder, colorize, sr3) on "
        "simulated pairs; checkpoints and resumes")

#: Models the command trains, in the order shown by ``--help``.
MODELS = ("unet", "gan", "srresnet", "srgan", "autoencoder", "colorize", "sr3")


def add_arguments(parser):
    """Add the ``train`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("model", choices=MODELS,
                        help="what to train (its shipped recipe has the same name)")
    parser.add_argument("--data", required=True,
                        help="training shards: directory from 'astro-enhance simulate' or .npz")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, logs, samples)")
    parser.add_argument("--val", default=None, help="validation shards (default: training ones)")
    parser.add_argument("--recipe", default=None,
                        help="recipe name or JSON file (default: the model's shipped recipe)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget; checkpoint and stop when spent")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop (checkpointed, resumable) after this many steps in this call")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--init", default=None,
                        help="initial weights (weights stem, .safetensors or run dir): the "
                             "generator of gan (default the shipped unet) or srgan (default "
                             "the shipped srresnet), the frozen U-Net inside sr3 (default "
                             "the shipped unet); optional warm start for the others")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="read at most this many training pairs")
    parser.add_argument("--export", default=None, metavar="NAME",
                        help="after training, export weights (bare name -> package weights dir)")
    parser.add_argument("--export-step", type=int, default=None,
                        help="export the snapshot of this validated step instead of the latest")
    parser.add_argument("--export-only", action="store_true",
                        help="do not train; export the run's current weights (needs --export)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Run ``astro-enhance train``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        Exit code.
    """
    from ..training import export_weights, load_recipe
    from ..training.loops import (ADVERSARIAL_KINDS, DIFFUSION_KINDS, train_adversarial,
                                  train_sr3, train_supervised)

    if args.export_only:
        if not args.export:
            raise ValueError("--export-only needs --export NAME (where to write the weights)")
        path = export_weights(args.out, args.export, step=args.export_step)
        print(f"exported {path}")
        return 0
    recipe = load_recipe(args.recipe or args.model,
                         overrides={"steps": args.steps} if args.steps else None)
    kw = dict(recipe=recipe, minutes=args.minutes, resume=args.resume, val=args.val,
              threads=args.threads, progress=not args.no_progress,
              max_samples=args.max_samples, max_steps=args.max_steps)
    if args.model in DIFFUSION_KINDS:
        res = train_sr3(args.data, args.out, init=args.init, **kw)
    elif args.model in ADVERSARIAL_KINDS:
        res = train_adversarial(args.data, args.out, kind=args.model, init=args.init, **kw)
    else:
        res = train_supervised(args.data, args.out, kind=args.model, init=args.init, **kw)
    state = "finished" if res["finished"] else "stopped (resume with --resume)"
    print(f"{args.model}: {state} at step {res['step']} after {res['elapsed'] / 60:.1f} min")
    if res.get("val"):
        v = res["val"]
        keys = [k for k in ("psnr_gain", "flux_err_median", "hf_ratio") if k in v]
        print("quick val: " + ", ".join(f"{k}={v[k]:.4g}" for k in keys))
    if args.export:
        path = export_weights(args.out, args.export, step=args.export_step)
        print(f"exported {path}")
    return 0
