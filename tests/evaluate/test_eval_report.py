"""write_report: strict JSON, one figure set per target, sanitised file names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matfuse.evaluate.report import json_safe, safe_filename, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _strict_load(text: str):
    def reject(token):
        raise ValueError(f"non-strict JSON constant {token}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture(scope="module")
def report_case(series):
    smiles, letters = series
    train = [s for s, x in zip(smiles, letters, strict=True) if x in "AB"]
    test = [s for s, x in zip(smiles, letters, strict=True) if x in "CD"] + ["not a smiles"]
    n = len(test)
    rng = np.random.default_rng(1)
    y_reg = rng.normal(size=n)
    y_cls = (rng.uniform(size=n) > 0.5).astype(float)
    Y_true = np.column_stack([y_reg, y_reg * 2, y_cls, np.ones(n)])
    Y_true[[0, 3], 0] = np.nan
    Y_pred = np.column_stack(
        [y_reg + 0.3, np.full(n, np.nan), rng.uniform(size=n), rng.uniform(size=n)]
    )
    return train, test, Y_true, Y_pred


def test_write_report(tmp_path, report_case):
    train, test, Y_true, Y_pred = report_case
    names = ["log S / (mol/L)", "log S (mol/L)", "NR-AR active?", "all positive"]
    tasks = ["regression", "regression", "classification", "classification"]
    std = np.full(Y_true.shape, 0.2)
    intervals = np.stack([Y_pred - 0.5, Y_pred + 0.5], axis=-1)
    report = write_report(
        tmp_path / "run",
        target_names=names,
        task_types=tasks,
        Y_true=Y_true,
        Y_pred=Y_pred,
        Y_std=std,
        intervals=intervals,
        test_smiles=test,
        train_smiles=train,
        split_name="cluster",
        extra={"encoders": ["morgan"], "seed": np.int64(3), "score": float("nan")},
        units={"log S / (mol/L)": "log mol/L"},
    )
    text = (tmp_path / "run" / "report.json").read_text()
    loaded = _strict_load(text)
    assert loaded == report
    assert report["split"] == "cluster"
    assert report["counts"] == {
        "test": 21,
        "train": 20,
        "labelled": {names[0]: 19, names[1]: 21, names[2]: 21, names[3]: 21},
    }
    metrics = report["metrics"]["targets"]
    assert metrics[names[0]]["n"] == 19 and metrics[names[0]]["coverage"] == 1.0
    assert metrics[names[1]]["rmse"] is None  # no predictions -> NaN -> null
    assert metrics[names[3]]["roc_auc"] is None and "one class" in metrics[names[3]]["note"]
    assert report["extra"] == {"encoders": ["morgan"], "seed": 3, "score": None}

    sim = report["similarity"]
    assert sim["scaffold_overlap"] == 0.0  # series C/D share no scaffold with A/B
    assert 0.0 < sim["nearest_train_tanimoto"]["mean"] < 0.5
    assert sim["nearest_train_tanimoto"]["n"] == 20  # invalid SMILES excluded
    assert sum(b["n"] for b in report["error_by_similarity"][names[0]]) == 18

    files = report["files"]
    assert files[names[0]] == ["log_S_mol_L_parity.png", "log_S_mol_L_error_vs_similarity.png"]
    assert files[names[1]][0] == "log_S_mol_L_2_parity.png"  # unique after sanitising
    assert files[names[2]] == ["NR-AR_active_roc.png"]
    for listed in files.values():
        for rel in listed:
            data = (tmp_path / "run" / rel).read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 2_000
    assert len(list((tmp_path / "run").glob("*.png"))) == 6


def test_write_report_without_smiles(tmp_path):
    y = np.array([1.0, 2.0, 3.0])
    report = write_report(
        tmp_path, target_names=["y"], task_types=["regression"], Y_true=y, Y_pred=y + 0.1
    )
    assert report["similarity"] is None and report["error_by_similarity"] is None
    assert report["files"] == {"y": ["y_parity.png"]}
    assert report["metrics"]["mean"]["regression"]["rmse"] == pytest.approx(0.1)


def test_write_report_checks_smiles_length(tmp_path):
    with pytest.raises(ValueError, match="test SMILES"):
        write_report(
            tmp_path,
            target_names=["y"],
            task_types=["regression"],
            Y_true=[1.0, 2.0],
            Y_pred=[1.0, 2.0],
            test_smiles=["C"],
            train_smiles=["CC"],
        )


def test_json_safe_and_safe_filename():
    assert json_safe({"a": [np.float32(1.5), np.nan, np.inf], 2: np.array([1, 2])}) == {
        "a": [1.5, None, None],
        "2": [1, 2],
    }
    used: set[str] = set()
    assert safe_filename("a/b c", used) == "a_b_c"
    assert safe_filename("a b/c", used) == "a_b_c_2"
    assert safe_filename("../..", used, fallback="t0") == "t0"
