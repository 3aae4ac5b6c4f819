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
