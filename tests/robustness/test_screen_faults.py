"""``matfuse screen`` faults (issue 18): garbage bytes, broken files, a worker killed mid-run.

Rows are never lost silently: a bad row is flagged in its partition, a file that cannot be
read (or the part of it after a break) is listed in ``failed.csv`` and the exit status is 4;
a worker killed mid-run leaves the same bytes as a clean run. One multi-process
``LocalCluster`` serves the module and is also driven by address, as the README's
cluster command does.
"""

from __future__ import annotations

import gzip
import os
import signal

import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.workflow.library import read_rows, scan_file
from matfuse.workflow.screen import ROW_ID, screen

runner = CliRunner()

TRAIN = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Clc1ccccc1", "c1ccncc1", "C1CCCCC1", "OC1CCCCC1", "C1CCNCC1", "CCN(CC)CC",
    "CC(=O)O", "CCOC(C)=O", "CC#N", "ClCCl", "O=C1CCCCC1",
]  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, fit_logp_model):
    return fit_logp_model(tmp_path_factory.mktemp("faults") / "model", TRAIN, 64)


def _garbage_library(directory):
    """Good rows, a run of binary garbage, a truncated gzip, an empty file, a fake parquet."""
    directory.mkdir()
    rng = __import__("random").Random(0)
    garbage = bytes(rng.randrange(256) for _ in range(3000))
    good = "".join(f"m{i},{s}\n" for i, s in enumerate(TRAIN[:8]))
    (directory / "a.csv").write_bytes(
        b"name,smiles\n" + good.encode() + garbage + b"\nlast,CCO\nextra,CC,1,2\n"
    )
    body = "smiles,v\n" + "".join(f"{TRAIN[i % 20]},{i}\n" for i in range(3000))
    packed = gzip.compress(body.encode())
    (directory / "b.csv.gz").write_bytes(packed[: len(packed) // 2])
    (directory / "c.csv").write_bytes(b"")
    (directory / "d.parquet").write_bytes(garbage[:500])
    return directory


def test_garbage_rows_are_flagged_and_unreadable_files_listed(
    model_dir, processes, read_predictions, tmp_path
):
    _, client = processes
    library = _garbage_library(tmp_path / "lib")
    a = scan_file(library / "a.csv")
    b = scan_file(library / "b.csv.gz")
    assert b.error is not None and 0 < b.rows < 3000  # read up to the break
    out = tmp_path / "out"
    result = screen(model_dir, library, out, partition_rows=7, client=client, top=3)
    frame = read_predictions(out)
    # every row the files hold is there once, in order
    assert frame[ROW_ID].tolist() == list(range(a.rows + b.rows))
    assert result.rows == a.rows + b.rows
    first = frame.iloc[: a.rows]
    assert first["name"].iloc[:8].tolist() == [f"m{i}" for i in range(8)]
    assert first["pred_logp"].iloc[:8].notna().all()
    assert first["error"].iloc[8:-2].notna().all()  # the garbage rows: flagged, not dropped
    assert first["smiles"].iloc[-2] == "CCO" and pd.isna(first["error"].iloc[-2])
    assert "fields" in first["error"].iloc[-1]  # a line with too many fields
    last = frame.iloc[-1]
    assert "cut off" in last["error"]  # the row where the gzip stream breaks
    failed = pd.read_csv(out / "failed.csv")
    reasons = dict(zip(failed["file"].map(os.path.basename), failed["reason"], strict=True))
    assert set(reasons) == {"b.csv.gz", "c.csv", "d.parquet"}
    assert "empty" in reasons["c.csv"] and "parquet" in reasons["d.parquet"]
    assert "Compressed file ended" in reasons["b.csv.gz"]
    assert failed.set_index(failed["file"].map(os.path.basename)).loc["b.csv.gz", "first_row"] == (
        a.rows + b.rows
    )
    # the CLI says so: exit 4, even with --allow-invalid
    res = runner.invoke(
        app,
        ["screen", str(model_dir), str(library), "--out", str(out), "--partition-rows", "7"]
        + ["--allow-invalid", "--scheduler", processes[0].scheduler_address],
    )
    assert res.exit_code == 4, res.output
    assert "3 file(s) or partition(s) failed" in res.output


def test_workers_read_with_the_drivers_dtypes(tmp_path):
    """A column of integers with a gap in a later partition, and SMILES that look numeric."""
    path = tmp_path / "t.csv"
    rows = [f"{s},{i},{'' if i == 15 else i}" for i, s in enumerate(["1", "2", *TRAIN[:18]])]
    path.write_text("smiles,n,gap\n" + "\n".join(rows) + "\n")
    info = scan_file(path).with_text(["smiles"])
    parts = [read_rows(info, k, min(k + 7, info.rows)) for k in range(0, info.rows, 7)]
    assert {str(p["gap"].dtype) for p in parts} == {"float64"}  # not int64 in the first ones
    assert {str(p["n"].dtype) for p in parts} == {"Int64"}
    assert {str(p["smiles"].dtype) for p in parts} == {"str"}
    assert parts[0]["smiles"].tolist()[:2] == ["1", "2"]  # text, not 1.0


def test_a_worker_killed_mid_run_gives_the_same_bytes(
    model_dir, processes, read_predictions, tree_bytes, tmp_path
):
    cluster, client = processes
    library = tmp_path / "lib.csv"
    pd.DataFrame({"smiles": TRAIN * 3}).to_csv(library, index=False)
    clean = tmp_path / "clean"
    screen(model_dir, library, clean, partition_rows=2, client=client, top=5)
    before = set(client.run(os.getpid).values())
    killed: list[int] = []

    def kill_one(parts: int, rows: int) -> None:
        if rows and not killed:  # the first partition is written: others are in flight
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    out = tmp_path / "killed"
    result = screen(
        model_dir, library, out, partition_rows=2, client=client, top=5, on_progress=kill_one
    )
    client.wait_for_workers(2, timeout=60)
    assert killed and killed[0] in before
    assert killed[0] not in set(client.run(os.getpid).values())  # it really died
    assert result.failures == () and result.rows == 60
    frame = read_predictions(out)
    assert frame[ROW_ID].tolist() == list(range(60))  # complete, no duplicates
    assert tree_bytes(out / "predictions") == tree_bytes(clean / "predictions")
    assert (out / "top.csv").read_bytes() == (clean / "top.csv").read_bytes()
