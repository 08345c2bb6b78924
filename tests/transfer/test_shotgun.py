"""Shotgun transfer: every source tried, the target's own source excluded, a savable pick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.pipeline import PropertyModel
from matfuse.transfer.library import SourceLibrary, load_library
from matfuse.transfer.shotgun import shotgun

from .conftest import property_of, synthetic_formulas

runner = CliRunner()


def test_shotgun_tries_every_usable_source_and_excludes_the_target_own(
    library: SourceLibrary, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    own = tables["prop_c"].iloc[100:160]  # a subsample of source prop_c's own table
    res = shotgun(own, library, cv=3, include_scratch=True)
    names = {c.name for c in res.candidates}
    assert names == {"scratch", "frozen:prop_a", "finetune:prop_a"}
    assert set(res.excluded) == {"prop_c"} and "target's data" in res.excluded["prop_c"]
    best = min(res.candidates, key=lambda c: c.cv_mae)
    assert res.best == best.name and res.best_of("finetune") is not None
    assert all(np.isfinite(c.cv_mae) and c.cv_std >= 0 for c in res.candidates)
    new = synthetic_formulas(470, seed=9)[-20:]
    pred = res.model.predict(new)
    res.model.save(tmp_path / "m")
    np.testing.assert_array_equal(PropertyModel.load(tmp_path / "m").predict(new), pred)


def test_shotgun_frozen_pick_saves_and_loads(library: SourceLibrary, tmp_path: Path) -> None:
    formulas = synthetic_formulas(90, seed=12)
    res = shotgun(
        (formulas, property_of(formulas, "b")),
        library,
        cv=3,
        modes=("frozen",),
        model="linear",
        screen_params={"linear": {"alphas": [1.0]}},  # CV fits only
    )
    assert res.model.model_params is None  # the winner is refitted with the default
    assert {c.mode for c in res.candidates} == {"frozen"}
    assert "frozen:all" in {c.name for c in res.candidates}
    res.model.save(tmp_path / "m")
    np.testing.assert_array_equal(
        PropertyModel.load(tmp_path / "m").predict(formulas[:10]), res.model.predict(formulas[:10])
    )
    other = res.refit("frozen:prop_a", uncertainty="none")
    assert other.encoders[0].startswith("transfer:sources=prop_a") and other.model == "linear"
    with pytest.raises(ValueError, match="no candidate"):
        res.refit("finetune:prop_a")


def test_shotgun_refuses_bad_modes_and_too_few_rows(library: SourceLibrary) -> None:
    formulas = synthetic_formulas(30, seed=2)
    with pytest.raises(ValueError, match="unknown shotgun mode"):
        shotgun((formulas, property_of(formulas, "b")), library, modes=("thawed",))
    with pytest.raises(ValueError, match="regression targets"):
        shotgun((formulas, [0.0, 1.0] * 15), library)
    with pytest.raises(ValueError, match="at least 5 rows"):
        shotgun((formulas[:3], [1.0, 2.0, 3.0]), library)


def test_cli_builds_a_library_and_runs_shotgun(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    data = tmp_path / "tables"
    data.mkdir()
    for name, frame in tables.items():
        frame.iloc[:150].to_csv(data / f"{name}.csv", index=False)
    lib = tmp_path / "lib"
    res = runner.invoke(
        app,
        [
            "transfer-build",
            "--data",
            str(data),
            "--out",
            str(lib),
            "--hidden",
            "16,8",
            "--max-epochs",
            "10",
        ],
    )
    assert res.exit_code == 0, res.output
    assert load_library(lib).names == ["prop_a", "prop_c"]
    assert "prop_a" in (lib / "MODEL_CARD.md").read_text()
    formulas = synthetic_formulas(60, seed=21)
    target = tmp_path / "target.csv"
    pd.DataFrame({"formula": formulas, "target": property_of(formulas, "b")}).to_csv(
        target, index=False
    )
    out = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "transfer-shotgun",
            str(target),
            "--out",
            str(out),
            "--library",
            str(lib),
            "--cv",
            "3",
            "--modes",
            "frozen",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "picked frozen:" in res.output and (out / "report" / "shotgun.json").exists()
    assert PropertyModel.load(out).predict(formulas[:3]).shape == (3, 1)


def test_cli_user_errors_are_one_line_and_exit_2(tmp_path: Path, library_dir: Path) -> None:
    res = runner.invoke(
        app, ["transfer-build", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "does not exist" in res.output
    target = tmp_path / "t.csv"
    pd.DataFrame({"formula": ["SiO2"] * 6, "target": np.arange(6.0)}).to_csv(target, index=False)
    res = runner.invoke(
        app,
        [
            "transfer-shotgun",
            str(target),
            "--out",
            str(tmp_path / "m"),
            "--library",
            str(library_dir),
            "--modes",
            "bogus",
        ],
    )
    assert res.exit_code == 2 and "unknown shotgun mode" in res.output


def test_finetune_top_keeps_the_best_frozen_sources() -> None:
    from matfuse.transfer.shotgun import Candidate, _finetune_sources

    scored = [
        Candidate("frozen:a", "frozen", "a", 3.0, 0.1, 0.0),
        Candidate("frozen:b", "frozen", "b", 1.0, 0.1, 0.0),
        Candidate("frozen:c", "frozen", "c", 2.0, 0.1, 0.0),
        Candidate("frozen:all", "frozen", "all", 0.5, 0.1, 0.0),
    ]
    assert _finetune_sources(["a", "b", "c"], scored, 2) == ["b", "c"]
    assert _finetune_sources(["a", "b", "c"], scored, None) == ["a", "b", "c"]
    assert _finetune_sources(["a", "c"], [], 1) == ["a", "c"]  # no frozen scores: all
