"""``astro-enhance list``: the enhancers installed (built-in, shipped weights, plugins)."""

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "list"
HELP = "list the available enhancers (name, kind, what they were trained for, weights)"


def add_arguments(parser):
    """Add the options of ``astro-enhance list``.

    Parameters
    ----------
    parser : `argparse.ArgumentParser`
        Subcommand parser.
    """
    parser.add_argument("--format", choices=("text", "csv", "ecsv", "json"), default="text",
                        help="output format (default: an aligned text table)")
    parser.add_argument("--available", action="store_true",
                        help="only enhancers that can run on this machine")


def run(args):
    """Print the enhancer table.

    Parameters
    ----------
    args : `argparse.Namespace`
        Parsed arguments.

    Returns
    -------
    int
        0.
    """
    import json

    from ..enhancers import list_enhancers

    table = list_enhancers()
    if getattr(args, "available", False) and len(table):
        table = table[table["available"]]
    fmt = getattr(args, "format", "text")
    if fmt == "text":
        lines = table.pformat(max_lines=-1, max_width=-1)
        print("\n".join(lines))
    elif fmt == "json":
        rows = [{k: (bool(v) if k == "available" else str(v)) for k, v in zip(table.colnames, r)}
                for r in table]
        print(json.dumps(rows, indent=2))
    else:
        import io

        buf = io.StringIO()
        table.write(buf, format="ascii." + fmt)
        print(buf.getvalue().rstrip("\n"))
    return 0
