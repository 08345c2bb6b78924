"""Synthetic data for the models tests, generated in code and kept tiny so each test is fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _single_blas_thread() -> Iterator[None]:
    """Tests run on shared 2-core machines; BLAS oversubscription slows GP fits ~30x."""
    with threadpool_limits(limits=1):
        yield


def linear_regression_data(
    n: int, d: int = 12, noise: float = 0.3, seed: int = 0, nan_frac: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """y = X @ w + noise with 5 informative features; scattered NaN and a few all-NaN rows in X.

    NaN is injected after computing y, mimicking descriptors that failed to compute for a
    molecule whose property was still measured.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:5] = [1.5, -1.0, 0.8, 0.5, -0.5]
    y = X @ w + noise * rng.normal(size=n) + 3.0
    X[rng.random(size=X.shape) < nan_frac] = np.nan
    X[::50] = np.nan  # whole-row NaN: a molecule no encoder could featurise
    return X, y


def separable_classification_data(
    n: int, d: int = 12, seed: int = 0, nan_frac: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels from a linear rule with 5% flipped labels; scattered NaN in X."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    score = X[:, 0] - X[:, 1] + 0.5 * X[:, 2]
    y = (score > 0).astype(float)
    flip = rng.random(n) < 0.05
    y[flip] = 1.0 - y[flip]
    X[rng.random(size=X.shape) < nan_frac] = np.nan
    return X, y


@pytest.fixture(scope="session")
def make_regression() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Factory fixture, so tests can ask for other sizes or seeds."""
    return linear_regression_data


@pytest.fixture(scope="session")
def make_classification() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Factory fixture, so tests can ask for other sizes or seeds."""
    return separable_classification_data


@pytest.fixture(scope="session")
def regression_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = linear_regression_data(400, seed=1)
    return X[:300], y[:300], X[300:], y[300:]


@pytest.fixture(scope="session")
def classification_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = separable_classification_data(400, seed=2)
    return X[:300], y[:300], X[300:], y[300:]
