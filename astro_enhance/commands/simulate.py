"""``astro-enhance simulate``: write simulated SDSS / DECaLS-like training or benchmark shards."""

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "simulate"
HELP = "simulate paired SDSS / DECaLS-like scenes (GalSim) into npz shards + manifest.ecsv"


def add_arguments(parser):
    """Add the ``simulate`` options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--n", type=int, required=True, help="number of scenes (seeds)")
    parser.add_argument("--out", required=True, help="output directory for the shards")
    parser.add_argument("--split", required=True, choices=["train", "val", "bench"],
                        help="seed range: train, val or bench (disjoint)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--bands", default="g,r,i", help="comma-separated bands (default g,r,i)")
    parser.add_argument("--start", type=int, default=None,
                        help="first seed (default: the first seed of the split)")
    parser.add_argument("--shard-size", type=int, default=64, help="scenes per shard")
    parser.add_argument("--stamp-arcsec", type=float, default=64.0,
                        help="scene size in arcsec (default 64)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Run ``astro-enhance simulate``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        Exit code.
    """
    import time

    from ..simulate import write_shards

    t0 = time.perf_counter()
    rows = write_shards(args.out, n=args.n, split=args.split, bands=args.bands,
                        workers=args.workers, shard_size=args.shard_size, start=args.start,
                        stamp_arcsec=args.stamp_arcsec, progress=not args.no_progress)
    dt = time.perf_counter() - t0
    files = sorted(set(rows["file"]))
    print(f"wrote {args.n} scenes ({len(rows)} rows, {len(files)} shards) to {args.out} "
          f"in {dt:.1f} s ({args.n / dt:.2f} scenes/s); manifest: {args.out}/manifest.ecsv")
    return 0
