"""Training of the neural enhancers: data, losses, loops and recipes.

Importing this subpackage does not import torch; the loops import it when they run.
"""

from .data import (StretchedPairs, ShardDataset, ColourShardDataset, FitsPairDataset,
                   load_shards, augment, synthetic_shard)
from .recipes import RECIPE_DIR, list_recipes, load_recipe
from .loops import (train_unet, train_gan, train_supervised, train_adversarial, train_srresnet,
                    train_autoencoder, train_srgan, train_colorize, export_weights,
                    evaluate_quick, AdaptiveSwitcher)

__all__ = ["StretchedPairs", "ShardDataset", "ColourShardDataset", "FitsPairDataset",
           "load_shards", "augment", "synthetic_shard", "RECIPE_DIR", "list_recipes",
           "load_recipe", "train_unet", "train_gan", "train_supervised", "train_adversarial",
           "train_srresnet", "train_autoencoder", "train_srgan", "train_colorize",
           "export_weights", "evaluate_quick", "AdaptiveSwitcher"]
