"""Early stopping for the small networks we fit on tables (source MLPs, learned fusion,
fine-tuned encoders): one validation-split rule and one best-weights keeper, so every such
fit stops by the same rule and is compared on equal terms in the benchmarks."""

from __future__ import annotations

import copy
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from torch import nn

__all__ = ["EarlyStopping", "validation_split"]

N = TypeVar("N", bound=nn.Module)


def validation_split(
    n: int, fraction: float, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(validation rows, training rows) of ``n`` rows, shuffled by ``rng``.

    Below 20 rows there is no validation split: a handful of rows says nothing about
    generalisation, and every row is then needed for training.
    """
    order = rng.permutation(n)
    n_val = int(round(fraction * n)) if n >= 20 else 0
    return order[:n_val], order[n_val:]


class EarlyStopping:
    """The best weights of a training run so far and how many epochs ago they improved.

    The networks we fit on small tables (source and fine-tuned MLPs, learned fusion, fine-tuned
    encoders) all keep the epoch with the lowest validation loss and stop after ``patience``
    epochs without an improvement of more than ``min_delta``; without validation rows every
    epoch counts as the best and training runs to the last epoch.
    """

    def __init__(
        self, net: nn.Module, patience: int, *, min_delta: float = 1e-6, best_epoch: int = 0
    ) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best_state = copy.deepcopy(net.state_dict())
        self.best_loss = float(np.inf)
        self.best_epoch = best_epoch
        self.stale = 0

    def update(self, net: nn.Module, epoch: int, loss: float | None) -> bool:
        """Record ``epoch``'s validation ``loss`` (None: no validation rows); True: stop now."""
        if loss is None:
            self.best_state, self.best_epoch, self.stale = copy.deepcopy(net.state_dict()), epoch, 0
            return False
        if loss < self.best_loss - self.min_delta:
            self.best_state, self.best_loss = copy.deepcopy(net.state_dict()), loss
            self.best_epoch, self.stale = epoch, 0
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self, net: N) -> N:
        """``net`` with the best weights, in evaluation mode."""
        net.load_state_dict(self.best_state)
        return net.eval()
