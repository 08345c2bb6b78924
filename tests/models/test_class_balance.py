"""The class-balanced logistic loss shared by the torch classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matfuse.models.class_balance import balanced_weights, weighted_logistic_loss


def test_balanced_weights_make_both_classes_count_alike_and_offset_is_the_log_odds():
    target = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)  # 10 % positive
    (neg, pos), offset = balanced_weights(target, "balanced")
    assert pos * target.sum() == pytest.approx(neg * (1 - target).sum())  # equal class mass
    assert (neg * 9 + pos * 1) / 10 == pytest.approx(1.0)  # mean weight 1: same loss scale
    assert offset == pytest.approx(np.log(0.1 / 0.9))
    assert balanced_weights(target, None) == ((1.0, 1.0), 0.0)
    assert balanced_weights(np.ones(4, dtype=np.float32), "balanced") == ((1.0, 1.0), 0.0)
    with pytest.raises(ValueError, match="class_weight must be 'balanced' or None"):
        balanced_weights(target, "inverse")


def test_weighted_loss_is_the_hand_computed_weighted_mean():
    out = torch.tensor([0.0, 2.0, -1.0])
    target = torch.tensor([1.0, 0.0, 0.0])
    weights = (0.75, 1.5)
    per_row = torch.nn.functional.binary_cross_entropy_with_logits(out, target, reduction="none")
    expected = (per_row * torch.tensor([1.5, 0.75, 0.75])).mean()
    assert weighted_logistic_loss(out, target, weights).item() == pytest.approx(expected.item())
    unweighted = weighted_logistic_loss(out, target, (1.0, 1.0)).item()
    assert unweighted == pytest.approx(per_row.mean().item())
