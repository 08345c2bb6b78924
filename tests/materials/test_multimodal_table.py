"""A table with several modality columns (formula and CIF): every row trained and predicted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.inputs import MultiBatch, as_batch, load_input_table

runner = CliRunner()


def _half_without_cif(build) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    sites = [
        ("Sr", "Ti"),
        ("Ba", "Zr"),
        ("Ca", "Ti"),
        ("La", "Al"),
        ("K", "Nb"),
        ("Na", "Nb"),
        ("Pb", "Ti"),
        ("Cs", "Pb"),
        ("Ba", "Ti"),
        ("Sr", "Zr"),
    ]
    rows = []
    for i in range(60):
        a_el, b_el = sites[i % len(sites)]
        a = float(rng.uniform(3.7, 4.3))
        s = build.perovskite(a, (a_el, b_el, "O"))
        rows.append(
            {
                "formula": s.composition.reduced_formula,
                "cif": s.to(fmt="cif") if i % 2 == 0 else None,  # half the rows have no CIF
                "y": 3.0 * (a - 4.0) + 0.2 * (i % len(sites)),
            }
        )
    return pd.DataFrame(rows)


def test_formula_and_cif_columns_train_and_predict_every_row(tmp_path, crystals):
    frame = _half_without_cif(crystals)
    table = load_input_table(frame, input_col=["formula", "cif"], targets=["y"])
    assert table.input_type == "composition+structure"
    assert isinstance(table.parsed, MultiBatch) and table.parsed.n_invalid == 0
    assert table.batches["structure"].n_invalid == 30  # the missing CIFs
    # each encoder reads its own column: the composition block is complete
    comp = as_batch(table.parsed, "composition")
    assert comp.valid.all()

    data = tmp_path / "mixed.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "train",
            str(data),
            "--target",
            "y",
            "--input-col",
            "formula",
            "--input-col",
            "cif",
            "--model",
            "rf",
            "--out",
            str(model),
        ],
    )
    assert res.exit_code == 0, res.output
    config = json.loads((model / "matfuse.json").read_text())
    assert config["params"]["input_type"] == "composition+structure"
    assert config["params"]["encoders"] == ["composition", "structure-descriptors", "chgnet"]
    # a missing structure is translated from the composition (impute=auto, multimodal input)
    pairs = {(t["target"], t["source"]) for t in config["fusion"]["translators"]}
    assert {("structure-descriptors", "composition"), ("chgnet", "composition")} <= pairs

    new = _half_without_cif(crystals).head(6)
    new.loc[5, "formula"] = "Xx2O"  # neither modality usable on this row
    new.loc[5, "cif"] = None
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(model), str(new_path), "--out", str(out)])
    assert res.exit_code == 3, res.output
    pred = pd.read_csv(out)
    assert len(pred) == 6
    assert np.isfinite(pred["pred_y"].iloc[:5]).all()  # rows without a CIF predicted too
    assert pred["error"].iloc[:5].isna().all() and "Xx" in pred["error"].iloc[5]
    imputed = pred["imputed"].fillna("").tolist()
    assert imputed[:5] == ["", "structure-descriptors,chgnet"] * 2 + [""]
    assert pred["formula"].iloc[5] == "Xx2O"  # the user's input is kept
