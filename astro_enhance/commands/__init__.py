"""Subcommands of the ``astro-enhance`` command line (one module each; see `astro_enhance.cli`)."""
