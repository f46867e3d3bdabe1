"""Up-front memory estimate of a training run, checked before the first step.

Peak memory of a step = optimizer state + activations of one batch:

* state: :data:`STATE_COPIES` x the parameter bytes (weights, gradients, AdamW's two
  moments);
* activations: what autograd saves for the backward pass, *measured* on one training pair
  (a forward pass of the task's ``predict(model, x)`` with ``saved_tensors_hooks`` adding up
  the bytes of the saved tensors, in eval mode and with the RNG state restored, so training
  is unchanged), times the per-rank batch size, plus the batch itself.

The measurement works for every model on the supervised grid task; tasks without a pure
``predict(model, x)`` of a stored pair (particle rollouts, PINO's input pool, whose loss
changes the task's state; PINN collocation points), and models that cannot take the pair
(the first training step then reports why), are estimated by parameters and batch alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciops.data import sizing

#: Float copies of every parameter during a step: weights, gradients, AdamW's m and v.
STATE_COPIES = 4


def saved_bytes(forward, batch: tuple[Tensor, ...], model: nn.Module) -> int:
    """Bytes autograd saves for backward while computing ``forward(model, *batch)``."""
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    was = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), \
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            forward(model, *batch)
    finally:
        model.train(was)
    return total


def check(predict, one: tuple[Tensor, ...], model: nn.Module, batch_size: int,
          max_memory: int | str | None = None) -> int:
    """Refuse (SciopsError) a run whose step would not fit the available memory (or
    ``max_memory``); ``predict(model, x)``: the task's forward pass (None: activations not
    measured), ``one``: a batch ``(x, y)`` of one training pair, ``batch_size``: pairs per
    rank. Returns the estimate in bytes."""
    state = STATE_COPIES * sum(p.numel() * p.element_size() for p in model.parameters())
    try:
        activations = 0 if predict is None else saved_bytes(predict, one[:1], model)
    except (ValueError, RuntimeError, TypeError):
        activations = 0  # a model that cannot take the pair: the first step reports it
    per_pair = activations + sum(t.numel() * t.element_size() for t in one)
    need = state + batch_size * per_pair
    sizing.require_memory(
        need, f"training: {batch_size} pairs x {sizing.human(per_pair)} of activations and "
        f"{sizing.human(state)} of parameters and optimizer state need",
        "lower train.batch_size (or the model's size, e.g. model.hidden_channels)",
        max_memory)
    return need
