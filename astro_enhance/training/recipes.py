"""Training recipes: JSON files stored in the package that reproduce the shipped weights.

A recipe holds everything a training run needs besides the data: architecture and its
configuration, patch and batch size, number of steps, learning rates, loss weights, seed.
``astro-enhance train unet`` uses the ``unet`` recipe; ``--recipe`` names another one or a
JSON file.
"""

import json
from pathlib import Path

__all__ = ["RECIPE_DIR", "list_recipes", "load_recipe"]

#: Directory of the recipes shipped with the package.
RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"


def list_recipes():
    """Names of the shipped recipes.

    Returns
    -------
    list of str

    Examples
    --------
    >>> names = list_recipes()
    >>> "unet" in names and "gan" in names
    True
    >>> load_recipe(names[0])["model"]["architecture"] in {"unet", "srresnet",
    ...                                                     "skip_autoencoder"}
    True
    """
    return sorted(p.stem for p in RECIPE_DIR.glob("*.json"))


def load_recipe(name, *, overrides=None):
    """Load a recipe by name or from a JSON file.

    Parameters
    ----------
    name : str or path-like
        A shipped recipe name (see `list_recipes`) or the path of a JSON file.
    overrides : dict, optional
        Top-level keys to replace (e.g. ``{"steps": 100}``).

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        If no such recipe exists.

    Examples
    --------
    >>> load_recipe("unet")["model"]["architecture"]
    'unet'
    """
    p = Path(name)
    if not (p.suffix == ".json" and p.exists()):
        p = RECIPE_DIR / f"{name}.json"
    if not p.exists():
        raise FileNotFoundError(f"no recipe {name!r}; shipped recipes: "
                                f"{', '.join(list_recipes())}, or give a JSON file path")
    recipe = json.loads(p.read_text())
    recipe.setdefault("name", p.stem)
    if overrides:
        recipe.update(overrides)
    return recipe
