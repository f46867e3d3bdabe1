"""Datasets: recipes, the on-disk store, sharded generation and torch loaders."""

from sciops.data.generate import generate, sample_generator
from sciops.data.loaders import ShardedSamples, XarraySamples, open_samples
from sciops.data.recipes import Recipe, known_recipes, load_recipe
from sciops.data.store import open_dataset, verify

__all__ = ["Recipe", "ShardedSamples", "XarraySamples", "open_samples", "generate",
           "known_recipes", "load_recipe",
           "open_dataset", "sample_generator", "verify"]
