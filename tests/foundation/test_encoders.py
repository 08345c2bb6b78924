"""The encoder-decoder API on a tiny model trained in the test session (no shipped weights)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.encoders import get_encoder
from matfuse.foundation.encoders import FOUNDATION_ENCODERS, SelfiesTED


@pytest.fixture(scope="module")
def enc(tiny_selfies_model):
    return SelfiesTED(path=str(tiny_selfies_model))


def test_encode_shape_and_invalid_rows(enc):
    Z = enc.encode(["CCO", "not a molecule", "c1ccccc1O"])
    assert Z.shape == (3, 16)
    assert np.isnan(Z[1]).all() and np.isfinite(Z[[0, 2]]).all()
    block = enc.encode_block(["CCO", "C1CC("])
    assert block.errors[0] is None and block.errors[1]


def test_decode_selfies_always_valid(enc):
    Z = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    greedy = enc.decode(Z)
    sampled = enc.decode(Z, temperature=1.0, seed=1)
    assert len(greedy) == len(sampled) == 64
    assert all(s is not None for s in greedy + sampled)


def test_sampling_is_reproducible(enc):
    assert enc.sample(10, seed=5, temperature=1.0) == enc.sample(10, seed=5, temperature=1.0)
    assert enc.sample(10, seed=5, temperature=1.0) != enc.sample(10, seed=6, temperature=1.0)


def test_interpolation_and_reconstruction(enc):
    path = enc.interpolate("CCO", "c1ccccc1O", n=5)
    assert len(path) == 5 and all(p is not None for p in path)
    rec = enc.reconstruct(["CCO", "bad(("])
    assert rec[1] is None and isinstance(rec[0], str)


def test_registered_and_reachable_through_the_registry(tiny_selfies_model):
    names = [c.name for c in FOUNDATION_ENCODERS]
    assert names == ["smi-ted", "selfies-ted", "smi-ssed", "graph-ged"]
    enc = get_encoder(f"selfies-ted:path={tiny_selfies_model}")
    assert enc.dim == 16 and enc.pretrained


def test_missing_weights_give_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="matfuse pretrain"):
        SelfiesTED(path=str(tmp_path)).encode(["CCO"])


def test_cli_encode_then_decode(tiny_selfies_model, tmp_path):
    src = tmp_path / "mols.csv"
    src.write_text("smiles\nCCO\nC1CC(\nc1ccccc1O\n")
    runner = CliRunner()
    z = tmp_path / "z.parquet"
    res = runner.invoke(
        app, ["encode", str(src), "--path", str(tiny_selfies_model), "--out", str(z)]
    )
    assert res.exit_code == 3, res.output  # all rows written, one invalid
    dec = tmp_path / "dec.csv"
    res = runner.invoke(
        app, ["decode", str(z), "--path", str(tiny_selfies_model), "--out", str(dec)]
    )
    assert res.exit_code == 3, res.output  # the NaN latent of the invalid row is flagged
    import pandas as pd

    frame = pd.read_csv(dec)
    assert len(frame) == 3 and frame["error"].notna().tolist() == [False, True, False]
    res = runner.invoke(
        app,
        ["decode", str(z), "--path", str(tiny_selfies_model), "--out", str(dec), "--allow-invalid"],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "decode",
            "--sample",
            "5",
            "--path",
            str(tiny_selfies_model),
            "--out",
            str(tmp_path / "s.csv"),
        ],
    )
    assert res.exit_code == 0 and len(pd.read_csv(tmp_path / "s.csv")) == 5
