"""Fixtures shared by the ``matfuse screen`` tests: Dask clusters, a cheap model, output readers.

Each cluster fixture is module-scoped, so every test module still gets its own cluster (started
once, torn down at the module's end) exactly as when each module declared it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest


@contextmanager
def _local_cluster(processes: bool) -> Iterator[tuple[Any, Any]]:
    """Two single-threaded workers (threads of this process, or worker processes) + a client."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield cluster, client


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Any, Any]]:
    """(cluster, client) of two single-threaded in-process workers: fast to start."""
    with _local_cluster(processes=False) as pair:
        yield pair


@pytest.fixture(scope="module")
def client(cluster: tuple[Any, Any]) -> Any:
    """The client of :func:`cluster`."""
    return cluster[1]


@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[Any, Any]]:
    """(cluster, client) of two single-threaded worker processes, as `dask scheduler` +
    `dask worker` give: what a killed worker or a scheduler address needs."""
    with _local_cluster(processes=True) as pair:
        yield pair


@pytest.fixture(scope="session")
def fit_logp_model() -> Callable[[Path, list[str], int], Path]:
    """``fit(directory, smiles, n_bits)``: save a linear ECFP-count model of Crippen logP there.

    A linear model trains in well under a second, so screening tests spend their time on the
    engine they test, not on the model.
    """

    def fit(directory: Path, smiles: list[str], n_bits: int) -> Path:
        from conftest_helpers import logp
        from matfuse.pipeline import PropertyModel

        model = PropertyModel(encoders=[f"ecfp-count:n_bits={n_bits}"], model="linear")
        model.fit(smiles, logp(smiles), target_names=["logp"]).save(directory)
        return directory

    return fit


@pytest.fixture(scope="session")
def read_predictions() -> Callable[[Path], pd.DataFrame]:
    """``read(out)``: every ``predictions/part-*.parquet`` of a screen, in partition order."""

    def read(out: Path) -> pd.DataFrame:
        parts = sorted((out / "predictions").glob("part-*.parquet"))
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)

    return read


@pytest.fixture(scope="session")
def tree_bytes() -> Callable[[Path], dict[Path, bytes]]:
    """``snapshot(directory)``: {relative path: bytes} of every file below it, to compare runs."""

    def snapshot(directory: Path) -> dict[Path, bytes]:
        return {
            p.relative_to(directory): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file()
        }

    return snapshot
