"""The ``astro-enhance`` command line.

Each subcommand lives in its own module of :mod:`astro_enhance.commands` and provides
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Errors are printed
on one line (``astro-enhance: error: ...``) with a non-zero exit code; ``--debug`` shows the
traceback instead.
"""

import argparse
import importlib
import signal
import sys
import threading

from .version import __version__

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

#: Subcommand modules, in the order they are listed by ``astro-enhance --help``.
SUBCOMMANDS = [
    "info",
    "resample",
    "enhance",
    "list",
    "remove_stars",
    "simulate",
    "evaluate",
    "train",
    "batch",
    "demo",
]

#: Exit code for an error in the input or the options.
EXIT_ERROR = 2
#: Exit code for an interrupted run (Ctrl-C).
EXIT_INTERRUPTED = 130
#: Exit code for a run stopped by SIGTERM (128 + 15).
EXIT_TERMINATED = 143


class _Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception, so that cleanup code (``finally`` blocks, the
    atomic writers' removal of their temporary files, closing a dask cluster) runs exactly
    as for Ctrl-C instead of the process dying on the spot."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def _load_commands():
    mods = []
    for name in SUBCOMMANDS:
        try:
            mods.append(importlib.import_module(f"astro_enhance.commands.{name}"))
        except ModuleNotFoundError as exc:
            # A subcommand whose module is not written yet is simply not offered.
            if exc.name == f"astro_enhance.commands.{name}":
                continue
            raise
    return mods


def build_parser():
    """Build the argument parser with every available subcommand.

    Returns
    -------
    parser : `argparse.ArgumentParser`

    Examples
    --------
    >>> parser = build_parser()
    >>> parser.parse_args(["list"]).command
    'list'
    """
    parser = argparse.ArgumentParser(
        prog="astro-enhance",
        description="Make SDSS images look like DECaLS: resample, enhance, remove stars.")
    parser.add_argument("--version", action="version", version=f"astro-enhance {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback on error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on error")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 on success, non-zero on error.

    Examples
    --------
    >>> main(["info", "no-such-file.fits"])  # doctest: +SKIP
    astro-enhance: error: ...
    2
    >>> main(["list"]) == 0  # doctest: +ELLIPSIS
    name ...
    True
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return EXIT_ERROR
    debug = getattr(args, "debug", False)
    # SIGTERM (kill, a batch system, a closing terminal) stops the run like Ctrl-C does.
    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        return int(args._run(args) or 0)
    except _Terminated:
        print("astro-enhance: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("astro-enhance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one-line report is the contract
        if debug:
            raise
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"astro-enhance: error: {msg} ({exc.__class__.__name__})", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term if old_term is not None else signal.SIG_DFL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
