"""``astro-enhance batch 'GLOB' [MORE...] -o DIR``: many files on dask.distributed.

Exit codes: 0 every input succeeded (or was already done), 1 some failed (partial success),
2 none succeeded or the command line was wrong. Details of every file are in
``DIR/batch_manifest.jsonl``.
"""

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "batch"
HELP = ("enhance many files in parallel (dask.distributed), resumable; exit code 0 all ok, "
        "1 some failed, 2 none ok")


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="input FITS files, quoted glob patterns ('frames/*.fits', "
                             "'data/**/*.fits.bz2') or directories")
    parser.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                        help="output directory: <stem>_enhanced.fits per input and "
                             "batch_manifest.jsonl")
    parser.add_argument("--method", default=None,
                        help="enhancer name (see 'astro-enhance list'); default: best available")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local cluster, one thread each "
                            "(default: number of cores)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="use an existing dask cluster: scheduler address "
                            "(tcp://host:8786) or scheduler file")
    parser.add_argument("--no-resume", action="store_true",
                        help="redo every input, even those whose output is intact")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that an earlier run made with other settings")
    parser.add_argument("--target", default="decals", help="target survey (default decals)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--tile-size", type=int, default=None, help="tile size in pixels")
    parser.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels")
    parser.add_argument("--weights", default=None, help="user weights (.safetensors + .json)")
    parser.add_argument("--samples", type=int, default=1,
                        help="samples for stochastic enhancers (writes an STD extension)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (each file gets its own seed derived from it)")
    parser.add_argument("--hdu", default=None, help="HDU index or name to read")
    parser.add_argument("--remove-stars", action="store_true",
                        help="remove foreground stars before enhancing")
    parser.add_argument("--north-up", action="store_true", help="output grid north up")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ..batch import run_batch

    hdu = args.hdu
    if hdu is not None and str(hdu).lstrip("-").isdigit():
        hdu = int(hdu)
    options = {"target": args.target, "device": args.device, "samples": args.samples,
               "north_up": args.north_up}
    for key, val in (("tile_size", args.tile_size), ("overlap", args.overlap),
                     ("weights", args.weights), ("rng", args.seed), ("hdu", hdu)):
        if val is not None:
            options[key] = val
    result = run_batch(args.inputs, args.output_dir, method=args.method,
                       client=args.scheduler, n_workers=args.workers,
                       resume=not args.no_resume, overwrite=args.overwrite,
                       remove_stars=args.remove_stars, progress=not args.no_progress,
                       **options)
    print(result.summary())
    return result.exit_code
