"""The input-kind registry: a fourth kind, added in one module, through the whole CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.inputs import KINDS, detect_columns

runner = CliRunner()

UNITS = [
    "[*]CC[*]",
    "[*]CC(C)[*]",
    "[*]CC(Cl)[*]",
    "[*]CC(c1ccccc1)[*]",
    "[*]CC(O)[*]",
    "[*]CC(C#N)[*]",
    "[*]CC(F)(F)[*]",
    "[*]OCC[*]",
    "[*]CC(C(=O)OC)[*]",
    "[*]C=CC[*]",
    "[*]CCCC[*]",
    "[*]CC(CC)[*]",
    "[*]CC(OC(C)=O)[*]",
    "[*]CC(N)[*]",
    "[*]OC(C)C[*]",
    "[*]CC(Br)[*]",
    "[*]C(F)(F)C(F)(F)[*]",
    "[*]CC(C)(C)[*]",
    "[*]CC(c1ccncc1)[*]",
    "[*]CCO[*]",
    "[*]CC(CCCC)[*]",
    "[*]NCC(=O)[*]",
    "[*]CC(S)[*]",
    "[*]CC(C=O)[*]",
]


@pytest.fixture
def polymer_kind():
    # the kind lives in its own module beside this test; nothing else in matfuse knows it
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "polymer_kind", Path(__file__).with_name("polymer_kind.py")
    )
    polymer_kind = importlib.util.module_from_spec(spec)
    sys.modules["polymer_kind"] = polymer_kind  # dataclasses look their module up there
    spec.loader.exec_module(polymer_kind)
    polymer_kind.register()
    yield polymer_kind
    polymer_kind.unregister()
    del sys.modules["polymer_kind"]


def _polymers(n_copies: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n_copies):
        for i, unit in enumerate(UNITS):
            rows.append({"id": f"p{k}_{i}", "psmiles": unit, "tg": 200 + 10 * i + rng.normal(0, 2)})
    rows.append({"id": "bad", "psmiles": "[*]CC", "tg": 250.0})  # one end group only
    return pd.DataFrame(rows)


def test_a_fourth_kind_registered_in_one_module_trains_predicts_and_benchmarks(
    polymer_kind, tmp_path
):
    assert "polymer" in KINDS and "polymer" not in KINDS.names(tag="builtin")
    data = tmp_path / "polymers.csv"
    _polymers().to_csv(data, index=False)
    assert detect_columns(pd.read_csv(data)) == {"psmiles": "polymer"}
    model = tmp_path / "model"
    res = runner.invoke(
        app, ["train", str(data), "--target", "tg", "--model", "rf", "--out", str(model)]
    )
    assert res.exit_code == 0, res.output
    config = json.loads((model / "matfuse.json").read_text())
    assert config["params"]["input_type"] == "polymer"
    assert config["params"]["encoders"] == ["ecfp-count"]  # the kind's default
    new = tmp_path / "new.csv"
    pd.DataFrame({"psmiles": ["[*]CC(C)[*]", "not a polymer", "[*]CC(CCC)[*]"]}).to_csv(new)
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(model), str(new), "--out", str(out)])
    assert res.exit_code == 3, res.output  # one invalid row
    pred = pd.read_csv(out)
    assert len(pred) == 3 and pred["error"].notna().tolist() == [False, True, False]
    assert pred["canonical_psmiles"].iloc[0] == "*CC(*)C"
    assert np.isfinite(pred.loc[[0, 2], "pred_tg"]).all()
    bench = tmp_path / "bench.json"
    res = runner.invoke(
        app,
        [
            "benchmark",
            str(data),
            "--target",
            "tg",
            "--model",
            "rf",
            "--out",
            str(bench),
            "--split",
            "cluster",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(bench.read_text())
    assert result["split"] == "cluster"  # molecule splitters apply through the conversion
    assert "ecfp-count" in result["representations"] and result["baseline"]["metrics"]


def test_unregistered_kind_is_a_clear_user_error(tmp_path):
    data = tmp_path / "polymers.csv"
    _polymers().to_csv(data, index=False)
    res = runner.invoke(
        app,
        [
            "train",
            str(data),
            "--target",
            "tg",
            "--input-type",
            "polymer",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 2
    assert "unknown input type 'polymer'" in res.output and "Traceback" not in res.output
