"""``matfuse screen``: a library in partitions on Dask workers, resumable, ranked (issue 18).

One in-process cluster (two single-threaded workers) serves the module; one test also runs
the default multi-process ``LocalCluster`` and checks it writes the same bytes.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.pipeline import PropertyModel
from matfuse.workflow.screen import ROW_ID, read_partition, screen

runner = CliRunner()

TRAIN = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Clc1ccccc1", "c1ccncc1", "C1CCCCC1", "OC1CCCCC1", "C1CCNCC1", "CCN(CC)CC",
    "CC(=O)O", "CCOC(C)=O", "CC#N", "ClCCl", "O=C1CCCCC1",
]  # fmt: skip
ROWS = 7  # rows per partition: files of 20 and 11 rows make 3 + 2 partitions


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, fit_logp_model):
    return fit_logp_model(tmp_path_factory.mktemp("screen") / "model", TRAIN, 128)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A directory of two files: 20 rows of CSV (one invalid SMILES) and 11 of gzipped CSV."""
    directory = tmp_path_factory.mktemp("screen") / "library"
    directory.mkdir()
    first = [*TRAIN[:12], "C1CC(", *TRAIN[12:19]]
    pd.DataFrame({"name": [f"a{i}" for i in range(20)], "smiles": first}).to_csv(
        directory / "a.csv", index=False
    )
    second = ["CCCCCCO", "c1ccc2ccccc2c1", "CCOCC", "CCCCN", *TRAIN[:7]]
    with gzip.open(directory / "b.csv.gz", "wt") as handle:
        pd.DataFrame({"name": [f"b{i}" for i in range(11)], "smiles": second}).to_csv(
            handle, index=False
        )
    return directory


def test_every_row_once_with_predict_s_predictions(
    model_dir, library, client, read_predictions, tmp_path
):
    result = screen(model_dir, library, tmp_path / "out", top=5, partition_rows=ROWS, client=client)
    assert (result.rows, result.invalid, result.partitions, result.resumed) == (31, 1, 5, 0)
    frame = read_predictions(tmp_path / "out")
    assert frame[ROW_ID].tolist() == list(range(31))
    assert frame["name"].tolist() == [f"a{i}" for i in range(20)] + [f"b{i}" for i in range(11)]
    bad = frame[frame["smiles"] == "C1CC("]
    assert len(bad) == 1 and bad["error"].notna().all() and bad["pred_logp"].isna().all()
    assert frame["error"].notna().sum() == 1
    for name, rows in (("a.csv", slice(0, 20)), ("b.csv.gz", slice(20, 31))):
        pred = tmp_path / f"{name}.pred.csv"
        res = runner.invoke(
            app, ["predict", str(model_dir), str(library / name), "--out", str(pred)]
        )
        assert res.exit_code in (0, 3), res.output
        expected = pd.read_csv(pred)
        got = frame.iloc[rows].reset_index(drop=True)
        assert got["smiles"].tolist() == expected["smiles"].tolist()
        np.testing.assert_allclose(got["pred_logp"], expected["pred_logp"], rtol=1e-12)


def test_top_csv_is_the_best_rows_ties_by_row_id(
    model_dir, library, client, read_predictions, tmp_path
):
    out = tmp_path / "out"
    screen(model_dir, library, out, top=6, partition_rows=ROWS, client=client)
    frame = read_predictions(out).dropna(subset=["pred_logp"])
    # the library repeats molecules: equal scores, so the row id decides
    assert frame["pred_logp"].duplicated().any()
    expected = frame.sort_values(["pred_logp", ROW_ID], ascending=[False, True]).head(6)
    top = pd.read_csv(out / "top.csv")
    assert top[ROW_ID].tolist() == expected[ROW_ID].tolist()
    assert top.columns.tolist() == frame.columns.tolist()
    low = screen(model_dir, library, out, top=4, partition_rows=ROWS, client=client, ascending=True)
    assert low.resumed == 5
    expected = frame.sort_values(["pred_logp", ROW_ID], ascending=[True, True]).head(4)
    assert pd.read_csv(out / "top.csv")[ROW_ID].tolist() == expected[ROW_ID].tolist()


def test_resume_writes_the_same_bytes(model_dir, library, cluster, tree_bytes, tmp_path):
    local, _ = cluster
    out = tmp_path / "out"
    # a fresh run on the default local cluster of worker processes
    args = ["screen", str(model_dir), str(library), "--out", str(out), "--top", "5"]
    args += ["--partition-rows", str(ROWS)]
    fresh = runner.invoke(app, [*args, "--workers", "1"])
    assert fresh.exit_code == 3, fresh.output  # one invalid row
    assert "31 rows screened, 1 invalid, 5 partitions (0 resumed)" in fresh.output
    before = tree_bytes(out)
    (out / "predictions" / "part-00000-00001.parquet").unlink()
    (out / "top.csv").unlink()
    resumed = runner.invoke(app, [*args, "--scheduler", local.scheduler_address, "--allow-invalid"])
    assert resumed.exit_code == 0, resumed.output
    assert "(4 resumed)" in resumed.output
    assert tree_bytes(out) == before


def test_user_errors_exit_2_before_any_work(model_dir, library, tmp_path):
    out = tmp_path / "out"
    base = ["--out", str(out), "--partition-rows", str(ROWS)]
    cases = [
        ["screen", str(tmp_path / "no-model"), str(library), *base],
        ["screen", str(model_dir), str(tmp_path / "nothing-*.csv"), *base],
        ["screen", str(model_dir), str(library), *base, "--by", "nope"],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert "error:" in res.output
    assert not (out / "predictions").exists()
    # a directory screened with other options is refused, not mixed
    (out).mkdir(exist_ok=True)
    (out / "run.json").write_text('{"partition_rows": 3}\n')
    res = runner.invoke(app, ["screen", str(model_dir), str(library), *base])
    assert res.exit_code == 2 and "another model" in res.output


def test_a_library_changed_since_the_first_run_is_refused(model_dir, client, tmp_path):
    path = tmp_path / "lib.csv"
    pd.DataFrame({"smiles": TRAIN[:10]}).to_csv(path, index=False)
    screen(model_dir, path, tmp_path / "out", partition_rows=ROWS, client=client)
    pd.DataFrame({"smiles": TRAIN[:11]}).to_csv(path, index=False)
    args = ["screen", str(model_dir), str(path), "--out", str(tmp_path / "out")]
    res = runner.invoke(app, [*args, "--partition-rows", str(ROWS)])
    assert res.exit_code == 2 and "have changed" in res.output


def test_read_partition_slices_in_file_order(library):
    whole = pd.read_csv(library / "a.csv")
    parts = [read_partition(library / "a.csv", k, ROWS) for k in range(3)]
    assert [len(p) for p in parts] == [7, 7, 6]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_the_model_is_loaded_once_per_worker(model_dir, library, client, tmp_path, monkeypatch):
    import matfuse.workflow.screen as engine

    loads = []
    load = PropertyModel.load.__func__

    def counted(cls, directory):
        loads.append(directory)
        return load(cls, directory)

    monkeypatch.setattr(engine, "_MODELS", {})
    monkeypatch.setattr(PropertyModel, "load", classmethod(counted))
    result = screen(model_dir, library, tmp_path / "out", partition_rows=3, client=client)
    assert result.partitions == 11
    # one load to check the model before the cluster, one for the in-process workers
    assert len(loads) == 2
