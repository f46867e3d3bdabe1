"""Training: one loop for every model (config, data pairs, losses, checkpoints, DDP)."""

from sciops.train.config import RunConfig, build_config, load_run_config
from sciops.train.trainer import Trainer

__all__ = ["RunConfig", "Trainer", "build_config", "load_run_config"]
