"""User errors of ``transfer-build``, ``transfer-shotgun`` and the crystal commands.

Each bad input must give exactly one ``error:`` line and exit code 2, before any training
or relaxation starts, and must not create ``--out``. A traceback (an exception escaping the
command) fails the test: ``result.exception`` is then not the ``SystemExit`` of exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matfuse.cli import app

runner = CliRunner()


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.csv").write_text("formula,target\nNaCl,1.0\nKCl,2.0\nLiF,3.0\nMgO,4.0\n")
    # no row has both a parsable formula and a numeric target
    (tmp_path / "bad_rows.csv").write_text("formula,target\nXx,abc\nQq2,\n,1\n")
    (tmp_path / "no_cif.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad_cif.csv").write_text("cif\nnot a cif\n")
    (tmp_path / "not_a_model").mkdir()
    (tmp_path / "not_a_model" / "notes.txt").write_text("hello")
    (tmp_path / "a_file").write_text("x")
    return tmp_path


CASES = [
    # transfer-build
    (["transfer-build", "--data", "{d}/missing.csv", "--out", "{o}"], "does not exist"),
    (
        ["transfer-build", "--data", "{d}/good.csv", "--target-col", "zzz", "--out", "{o}"],
        "no column 'zzz'",
    ),
    (["transfer-build", "--data", "{d}/bad_rows.csv", "--out", "{o}"], "0 usable rows"),
    (["transfer-build", "--data", "{d}/empty.csv", "--out", "{o}"], "not a readable CSV"),
    (["transfer-build", "--data", "{d}/good.csv", "--hidden", "a,b", "--out", "{o}"], "--hidden"),
    (["transfer-build", "--data", "{d}/good.csv", "--max-rows", "0", "--out", "{o}"], "--max-rows"),
    (
        ["transfer-build", "--data", "{d}/good.csv", "--max-epochs", "0", "--out", "{o}"],
        "--max-epochs 0",
    ),
    (["transfer-build", "--data", "{d}/good.csv", "--threads", "0", "--out", "{o}"], "--threads 0"),
    (["transfer-build", "--data", "{d}/good.csv", "--out", "{d}/a_file"], "is a file"),
    # transfer-shotgun
    (["transfer-shotgun", "{d}/missing.csv", "--out", "{o}"], "no such file"),
    (["transfer-shotgun", "{d}/good.csv", "--formula-col", "zzz", "--out", "{o}"], "no column"),
    (["transfer-shotgun", "{d}/bad_rows.csv", "--out", "{o}"], "at least"),
    (
        ["transfer-shotgun", "{d}/good.csv", "--library", "{d}/not_a_model", "--out", "{o}"],
        "not a transfer source library",
    ),
    (["transfer-shotgun", "{d}/good.csv", "--modes", "bogus", "--out", "{o}"], "bogus"),
    (["transfer-shotgun", "{d}/good.csv", "--cv", "1", "--out", "{o}"], "--cv 1"),
    (["transfer-shotgun", "{d}/good.csv", "--out", "{d}/a_file"], "is a file"),
    # csp and crystal-search
    (["csp", "NaCl", "--reference", "{d}/good.csv", "--out", "{o}"], "cif"),
    (["csp", "NaCl", "--out", "{d}/a_file"], "is a file"),
    (["crystal-search", "--elements", "Li,Xx", "--out", "{o}"], "unknown element"),
    (["crystal-search", "--elements", "Li,O", "--objective", "nope", "--out", "{o}"], "nope"),
    (["crystal-search", "--elements", "Li,O", "--strategy", "bogus", "--out", "{o}"], "bogus"),
    (["crystal-search", "--elements", "Li,O", "--budget", "0", "--out", "{o}"], "--budget 0"),
    (["crystal-search", "--elements", "Li,O", "--out", "{d}/a_file"], "is a file"),
    # crystal-train and crystal-generate
    (["crystal-train", "{d}/missing.csv", "--out", "{o}"], "no such file"),
    (["crystal-train", "{d}/no_cif.csv", "--out", "{o}"], "no 'cif' column"),
    (["crystal-train", "{d}/bad_cif.csv", "--out", "{o}"], "no usable structure"),
    (
        ["crystal-train", "{d}/no_cif.csv", "--init-from", "{d}/not_a_model", "--out", "{o}"],
        "unknown crystal model",
    ),
    (
        ["crystal-generate", "--formula", "SrTiO3", "--model", "{d}/not_a_model", "--out", "{o}"],
        "unknown crystal model",
    ),
    (["crystal-generate", "--formula", "Xx3", "--out", "{o}"], "unknown element"),
    (["crystal-generate", "--formula", "SrTiO3", "--n", "0", "--out", "{o}"], "--n 0"),
    (["crystal-generate", "--condition", "garbage", "--out", "{o}"], "NAME=VALUE"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_user_error_is_one_line_and_exit_2(files: Path, args: list[str], message: str) -> None:
    out = files / "out"
    argv = [a.format(d=files, o=out) for a in args]
    result = runner.invoke(app, argv)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and message in lines[0], lines[0]
    assert not out.exists()


def test_entry_point_prints_no_traceback(files: Path) -> None:
    """Through the real entry point: stderr has the one line, not a Python traceback."""
    out = files / "lib"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "matfuse.cli",
            "transfer-build",
            "--data",
            str(files / "bad_rows.csv"),
        ]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()][0].startswith("error:")
    assert not out.exists()
