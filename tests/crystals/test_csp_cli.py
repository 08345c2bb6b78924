"""``matfuse csp``: one-line errors for bad input, and a small real search on NaCl."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Xx2O"], "unknown element(s): Xx"),
        (["NaCl", "--z", "0"], "need 1 <= MIN <= MAX"),
        (["NaCl", "--z", "1-x"], "expected N or MIN-MAX"),
        (["MgAl2O4", "--z", "10"], "over the limit of 40"),
        (["NaCl", "--strategy", "genetic"], "unknown crystal generator 'genetic'"),
        (["NaCl", "--budget", "0"], "at least 1 relaxation"),
        (["NaCl", "--workers", "0"], "--workers 0: need at least 1"),
        (["NaCl", "--potential", "mace"], "unknown potential 'mace'"),
        (["NaCl", "--reference", "missing.cif"], "--reference missing.cif"),
        (["NaCl", "--relax-seconds", "0"], "--relax-seconds 0.0: must be positive"),
        (["NaClK", "--strategy", "qubo"], "qubo orders binary alloys"),
        (["NaCl2", "--charge-balanced"], "NaCl2 cannot be charge-balanced"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "csp"
    result = runner.invoke(app, ["csp", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not out.exists()


@pytest.mark.slow
def test_nacl_search_ranks_rock_salt_first(tmp_path):
    pytest.importorskip("chgnet")
    from pymatgen.core import Structure

    from matfuse.crystals.matching import mattergen_matcher
    from matfuse.crystals.prototypes import prototype_structure

    out = tmp_path / "d"
    args = ["csp", "NaCl", "--budget", "4", "--strategy", "mixed", "--relax-steps", "30"]
    result = runner.invoke(app, [*args, "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "candidates.csv")
    assert len(table) == 4
    for column in (
        "cif",
        "energy_per_atom",
        "e_above_hull",
        "spacegroup",
        "formula",
        "origin",
        "rmsd",
        "potential",
    ):
        assert column in table.columns
    assert table["energy_per_atom"].is_monotonic_increasing
    best = Structure.from_str(table["cif"][0], fmt="cif")
    assert mattergen_matcher().fit(best, prototype_structure("rocksalt"))
    assert table["e_above_hull"][0] == pytest.approx(0.0, abs=1e-6)
    assert table["potential"][0].startswith("CHGNet")
    assert len(list((out / "cifs").glob("*.cif"))) == 4
    assert (out / "energy_vs_evaluation.png").stat().st_size > 0
    # the same command again resumes: nothing left to relax, same table
    again = runner.invoke(app, [*args, "--seed", "0", "--out", str(out)])
    assert again.exit_code == 0 and "4 resumed" in again.output


@pytest.mark.slow
def test_qubo_strategy_end_to_end_orders_cuau_as_l10(tmp_path):
    """``csp --strategy qubo``: cluster expansion fitted to CHGNet, annealed, relaxed, ranked."""
    pytest.importorskip("chgnet")
    pytest.importorskip("dimod")
    out = tmp_path / "q"
    args = ["csp", "CuAu", "--strategy", "qubo", "--z", "2", "--budget", "2"]
    result = runner.invoke(
        app, [*args, "--relax-steps", "30", "--relax-seconds", "20", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "candidates.csv")
    # a two-site fcc cell has one distinct ordering: the stream ends before the budget
    assert len(table) == 1 and table["origin"].str.startswith("qubo").all()
    assert "1 relaxations" in result.output
    assert table["spacegroup"][0] == "P4/mmm"  # L1_0, the CuAu ordering on fcc
    assert table["energy_per_atom"].is_monotonic_increasing


@pytest.mark.slow
def test_kill_9_mid_search_then_rerun_finishes_with_the_uninterrupted_table(tmp_path):
    """A real SIGKILL of ``matfuse csp`` while it relaxes: the rerun resumes from the
    journal, relaxes only what was not recorded, and ends with the same candidates."""
    pytest.importorskip("chgnet")
    import os
    import signal
    import subprocess
    import sys
    import time

    from matfuse.crystals.journal import JOURNAL_NAME

    def command(out):
        return [
            sys.executable,
            "-m",
            "matfuse.cli",
            "csp",
            "NaCl",
            "--z",
            "1-2",
            "--budget",
            "6",
            "--relax-steps",
            "40",
            "--seed",
            "5",
            "--out",
            str(out),
        ]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = killed / JOURNAL_NAME
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        lines = journal.read_text().count('"kind": "candidate"') if journal.exists() else 0
        if lines >= 2 or proc.poll() is not None:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert not (killed / "candidates.csv").exists()
    done_before = journal.read_text().count('"kind": "candidate"')
    assert 2 <= done_before < 6
    again = subprocess.run(command(killed), capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert f"({done_before} resumed" in again.stderr
    clean = subprocess.run(command(tmp_path / "clean"), capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    resumed = pd.read_csv(killed / "candidates.csv")
    uninterrupted = pd.read_csv(tmp_path / "clean" / "candidates.csv")
    assert list(resumed["origin"]) == list(uninterrupted["origin"])
    assert resumed["energy_per_atom"].to_numpy() == pytest.approx(
        uninterrupted["energy_per_atom"].to_numpy(), abs=1e-6
    )
