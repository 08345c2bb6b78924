"""`matfuse generate` through typer's CliRunner on the shipped example."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from matfuse.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "objectives"


def test_cli_generate_qed_example(tmp_path):
    out, grid = tmp_path / "c.csv", tmp_path / "top.png"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--objective",
            str(EXAMPLES / "qed.yaml"),
            "--strategy",
            "graph-ga",
            "--budget",
            "15",
            "--seed",
            "1",
            "--out",
            str(out),
            "--grid",
            str(grid),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 15 and table["score"].is_monotonic_decreasing
    assert grid.stat().st_size > 1000


def test_cli_bad_spec_is_a_clean_error(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("terms:\n  - property: qed\n    goal: sideways\n")
    result = CliRunner().invoke(
        app,
        ["generate", "--objective", str(spec), "--budget", "5", "--out", str(tmp_path / "o.csv")],
    )
    assert result.exit_code == 2
    assert "goal must be one of" in result.output
    assert "Traceback" not in result.output


def test_cli_help_documents_the_spec():
    result = CliRunner().invoke(app, ["generate", "--help"])
    assert result.exit_code == 0
    assert "aggregate" in result.output and "property: model" in result.output
