"""``rom-net``: the ROM-net surrogate of :class:`sciops.rom.RomNet` in the zoo.

ROM-net is fitted, not trained by gradient descent: local POD bases on sine-dissimilarity
clusters, a k-NN classifier and per-cluster RBF coefficient regressors
(:class:`~sciops.rom.RomNet`). This module gives it the zoo's calling convention,
``model(x)`` with ``x`` (B, in_channels, *S_in) -> (B, out_channels, *S_out), and a
checkpointable state: the training pairs are buffers, and loading a state dict refits the
(deterministic) ROM from them, so ``torch.load(weights_only=True)`` round-trips it.
Fit with :meth:`RomNetModel.fit`; the model has no parameters for an optimizer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sciops.models import register
from sciops.rom import RomNet


@register("rom-net")
class RomNetModel(nn.Module):
    """ROM-net: local POD bases on sine-dissimilarity clusters picked by a k-NN classifier.

    ``n_clusters`` local bases of ``rank`` modes and a ``n_neighbors``-NN classifier;
    ``in_channels``/``out_channels`` are checked against the data at fit time. Fitted, not
    trained by gradient descent."""

    kind = "grid"

    def __init__(self, in_channels: int, out_channels: int, n_clusters: int = 8,
                 rank: int = 10, n_neighbors: int = 5, seed: int = 0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.rom = RomNet(n_clusters=n_clusters, rank=rank, n_neighbors=n_neighbors, seed=seed)
        self.register_buffer("train_inputs", torch.empty(0))
        self.register_buffer("train_targets", torch.empty(0))

    def fit(self, inputs: Tensor, targets: Tensor) -> RomNetModel:
        """Fit on pairs ``inputs (n, in_channels, *S_in)``, ``targets (n, out_channels,
        *S_out)``. Returns ``self``."""
        for name, t, c in (("inputs", inputs, self.in_channels),
                           ("targets", targets, self.out_channels)):
            if t.ndim < 2 or t.shape[1] != c:
                raise ValueError(f"rom-net: {name} of shape {tuple(t.shape)} must be "
                                 f"(n, {c}, ...)")
        self.train_inputs = inputs.detach().to(torch.float64).cpu()
        self.train_targets = targets.detach().to(torch.float64).cpu()
        self._refit()
        return self

    def _refit(self) -> None:
        x, y = self.train_inputs, self.train_targets
        self.rom.fit(x.reshape(len(x), -1).numpy(), y.reshape(len(y), -1).numpy())

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # size the empty buffers to the stored ones so the copy succeeds, then refit
        for name in ("train_inputs", "train_targets"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)
        if self.train_inputs.numel():
            self._refit()

    def forward(self, x: Tensor) -> Tensor:
        if not self.train_targets.numel():
            raise RuntimeError("rom-net: call fit(inputs, targets) before predicting")
        if tuple(x.shape[1:]) != tuple(self.train_inputs.shape[1:]):
            raise ValueError(f"rom-net: input shape {tuple(x.shape[1:])} differs from the "
                             f"fitted {tuple(self.train_inputs.shape[1:])}")
        pred = self.rom.predict(x.detach().reshape(len(x), -1).to(torch.float64).cpu().numpy())
        out = torch.from_numpy(pred).reshape(len(x), *self.train_targets.shape[1:])
        return out.to(dtype=x.dtype, device=x.device)
