# Sphinx configuration for astro_enhance (sphinx-astropy based).
#
# The build must work with no network: intersphinx is switched off (no inventories are
# fetched), and the tutorials are executed from the package's own sample data.

import datetime
import os
import sys

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403
from sphinx_astropy.conf.v2 import extensions  # noqa: F401

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

import astro_enhance  # noqa: E402

project = "astro_enhance"
author = "astro_enhance developers"
copyright = f"{datetime.datetime.now().year}, {author}"
version = release = astro_enhance.__version__

# No network: never fetch intersphinx inventories.
intersphinx_mapping = {}
extensions = [e for e in extensions
              if e not in ("sphinx.ext.intersphinx", "sphinx_astropy.ext.intersphinx_toggle")]
extensions += ["sphinx_gallery.gen_gallery"]

exclude_patterns = ["_build", "tutorials_src/README.rst", "**.ipynb_checkpoints"]
html_static_path = ["_static"]
html_theme_options = {"use_edit_page_button": False, "icon_links": []}
html_title = f"astro_enhance {release}"
nitpicky = False
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "tutorials_src",
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
}


# -- Command-line help, generated at build time so the page is always true --------------------
def _write_cli_help():
    import argparse
    import io
    from contextlib import redirect_stdout

    from astro_enhance.cli import build_parser

    parser = build_parser()
    out = io.StringIO()
    with redirect_stdout(out):
        parser.print_help()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, sub in action.choices.items():
            out.write(f"\n\n$ astro-enhance {name} --help\n")
            with redirect_stdout(out):
                sub.print_help()
    os.makedirs("_generated", exist_ok=True)
    with open(os.path.join("_generated", "cli_help.txt"), "w") as fh:
        fh.write("$ astro-enhance --help\n" + out.getvalue())


_write_cli_help()
