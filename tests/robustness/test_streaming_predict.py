"""``matfuse predict`` streams: chunk by chunk, the same bytes as predicting the whole table.

Issue 14, finding 3: predict held the whole table (parsed inputs, encoder blocks) at once,
about 112 KB per row, so 300k rows ran out of memory and a junk file of millions of lines
died in a 47 GB allocation. Now the table is read, predicted and written ``--batch-size``
rows at a time (:mod:`matfuse.workflow.stream`).
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.inputs import load_input_table
from matfuse.inputs.readers import iter_table, read_table
from matfuse.inputs.writers import write_table
from matfuse.pipeline import PropertyModel
from matfuse.workflow.stream import InputTableError, predict_stream

runner = CliRunner()

TRAIN = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Clc1ccccc1", "c1ccncc1", "C1CCCCC1", "OC1CCCCC1", "C1CCNCC1", "CCN(CC)CC",
    "CC(=O)O", "CCOC(C)=O", "CC#N", "ClCCl", "O=C1CCCCC1",
]  # fmt: skip


def _fit(directory, uncertainty):
    from conftest_helpers import logp

    model = PropertyModel(encoders=["ecfp-count:n_bits=256"], model="rf", uncertainty=uncertainty)
    model.fit(TRAIN, logp(TRAIN), target_names=["logp"]).save(directory)
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """Random forest with its spread over trees (``std_logp``)."""
    return _fit(tmp_path_factory.mktemp("stream") / "model", "native")


@pytest.fixture(scope="module")
def conformal_dir(tmp_path_factory):
    """Random forest with conformal intervals (``lower_logp``, ``upper_logp``)."""
    return _fit(tmp_path_factory.mktemp("stream") / "conformal", "conformal")


def _new_table(n: int) -> pd.DataFrame:
    """``n`` rows: user columns of every awkward sort, some inputs invalid, gaps late."""
    rng = np.random.default_rng(0)
    pool = [*TRAIN, "C1CC(", "", "not_a_smiles", "c1ccccc1O"]
    smiles = [pool[i] for i in rng.integers(0, len(pool), n)]
    ids = np.arange(n)
    frame = pd.DataFrame(
        {
            "id": ids,
            "smiles": smiles,
            "score": rng.normal(size=n).round(3),
            # an integer column with a gap only near the end: floats in the whole file
            "count": [None if i == n - 2 else int(i) for i in ids],
            # numbers, then text: text in the whole file
            "note": [str(i) if i < n - 3 else "late text" for i in ids],
            "error": "mine",  # one of ours named like the user's: ours gets a suffix
        }
    )
    return frame


def _predict_whole(model_dir, path, out):
    """The predict of before streaming: the whole table at once, then one write."""
    pm = PropertyModel.load(model_dir)
    table = load_input_table(path, input_type=pm.input_type, standardize=pm.standardize)
    preds = pm.predict_table(table.parsed)
    frame = table.frame.drop(columns=["_read_error"], errors="ignore")
    ours = preds.drop(columns=["input"])
    ours = ours.rename(columns={c: f"{c}_matfuse" for c in ours.columns if c in frame.columns})
    write_table(pd.concat([frame, ours], axis=1), out)


@pytest.mark.parametrize("batch_size", [1, 4, 7, 10_000])
def test_streamed_csv_is_byte_identical_to_the_whole_table(conformal_dir, tmp_path, batch_size):
    path = tmp_path / "new.csv"
    _new_table(23).to_csv(path, index=False)
    expected = tmp_path / "whole.csv"
    _predict_whole(conformal_dir, path, expected)
    out = tmp_path / "stream.csv"
    counts = predict_stream(conformal_dir, path, out, batch_size=batch_size)
    assert out.read_bytes() == expected.read_bytes()
    pred = pd.read_csv(out)
    assert counts.rows == 23 and counts.invalid == pred["error_matfuse"].notna().sum() > 0
    assert counts.chunks == -(-23 // batch_size)
    assert list(pred.columns[:6]) == ["id", "smiles", "score", "count", "note", "error"]
    assert {"lower_logp", "upper_logp"} <= set(pred.columns)


@pytest.mark.parametrize("batch_size", [3, 10_000])
def test_streamed_spread_matches_the_whole_table(model_dir, tmp_path, batch_size):
    """One batch: the same bytes. Several: the spread over trees may differ in its last
    digit (numpy sums a (trees, rows) array in an order that depends on its shape)."""
    path = tmp_path / "new.csv"
    _new_table(23).to_csv(path, index=False)
    expected = tmp_path / "whole.csv"
    _predict_whole(model_dir, path, expected)
    out = tmp_path / "stream.csv"
    predict_stream(model_dir, path, out, batch_size=batch_size)
    if batch_size >= 23:
        assert out.read_bytes() == expected.read_bytes()
    got, want = pd.read_csv(out), pd.read_csv(expected)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    assert got["std_logp"].notna().any()


def test_cli_predict_streams_with_batch_size_and_keeps_exit_codes(model_dir, tmp_path):
    path = tmp_path / "new.csv"
    _new_table(30).to_csv(path, index=False)
    expected = tmp_path / "whole.csv"
    _predict_whole(model_dir, path, expected)
    out = tmp_path / "pred.csv"
    args = ["predict", str(model_dir), str(path), "--out", str(out), "--batch-size", "8"]
    res = runner.invoke(app, args)
    assert res.exit_code == 3, res.output  # every row written, some invalid
    assert out.read_bytes() == expected.read_bytes()
    assert "30 rows predicted" in res.output
    assert runner.invoke(app, [*args, "--allow-invalid"]).exit_code == 0
    res = runner.invoke(app, [*args[:-1], "0"])
    assert res.exit_code == 2


@pytest.mark.parametrize("name", ["pred.tsv", "pred.csv.gz", "pred.parquet"])
def test_streamed_tsv_gzip_and_parquet_hold_the_whole_result(conformal_dir, tmp_path, name):
    path = tmp_path / "new.csv"
    _new_table(21).to_csv(path, index=False)
    expected = tmp_path / name.replace("pred", "whole")
    _predict_whole(conformal_dir, path, expected)
    out = tmp_path / name
    predict_stream(conformal_dir, path, out, batch_size=5)
    if name.endswith(".gz"):
        assert gzip.decompress(out.read_bytes()) == gzip.decompress(expected.read_bytes())
    elif name.endswith(".tsv"):
        assert out.read_bytes() == expected.read_bytes()
    else:
        got, want = pd.read_parquet(out), pd.read_parquet(expected)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("suffix", [".parquet", ".smi", ".tsv"])
def test_chunks_of_every_streaming_format_add_up_to_the_whole_file(tmp_path, suffix):
    frame = _new_table(17).drop(columns=["error"])
    path = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    else:
        lines = [f"{s} name{i}" if i % 3 else s for i, s in enumerate(frame["smiles"]) if s]
        path.write_text("smiles name\n" + "\n".join(lines) + "\n")
    whole = read_table(path)
    chunks = list(iter_table(path, chunk_rows=4))
    assert all(len(c) <= 4 for c in chunks) and len(chunks) == -(-len(whole) // 4)
    joined = pd.concat(chunks, ignore_index=True)
    assert joined.astype(str).equals(whole.astype(str))
    assert list(joined.dtypes.astype(str)) == list(whole.dtypes.astype(str)) or suffix == ".smi"


def test_parquet_gaps_late_in_the_file_give_every_chunk_the_whole_file_dtype(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 10
    table = pa.table(
        {
            "smiles": TRAIN[:n],
            "count": pa.array([*range(n - 1), None], pa.int64()),  # float64 when read whole
            "flag": pa.array([True] * (n - 1) + [None]),  # object when read whole
        }
    )
    plain = tmp_path / "plain.parquet"
    pq.write_table(table, plain)
    nullable = tmp_path / "nullable.parquet"
    frame = pd.DataFrame({"smiles": TRAIN[:n], "count": pd.array([1] * (n - 1) + [None], "Int64")})
    frame.to_parquet(nullable, index=False)  # pandas' nullable dtype comes back as itself
    for path in (plain, nullable):
        whole = read_table(path)
        chunks = list(iter_table(path, chunk_rows=3))
        assert [str(c.dtypes["count"]) for c in chunks] == [str(whole.dtypes["count"])] * 4
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_junk_bytes_are_one_line_and_exit_2(model_dir, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(np.random.default_rng(2).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["predict", str(model_dir), str(path), "--out", str(out)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()


def test_header_check_and_column_errors_run_on_the_first_chunk(model_dir, tmp_path):
    headerless = tmp_path / "noheader.csv"
    headerless.write_text("".join(f"{s},{i}\n" for i, s in enumerate(TRAIN * 3)))
    out = tmp_path / "p.csv"
    with pytest.raises(InputTableError, match="first line looks like data"):
        predict_stream(model_dir, headerless, out, batch_size=5)
    assert not out.exists()
    res = runner.invoke(app, ["predict", str(model_dir), str(headerless), "--out", str(out)])
    assert res.exit_code == 2 and "add a header line" in res.output
    assert "Traceback" not in res.output and not out.exists()
    table = tmp_path / "t.csv"
    pd.DataFrame({"smiles": TRAIN}).to_csv(table, index=False)
    res = runner.invoke(
        app, ["predict", str(model_dir), str(table), "--out", str(out), "--input-col", "nope"]
    )
    assert res.exit_code == 2 and "input column 'nope' not found" in res.output


def test_a_table_broken_midway_is_one_line_and_leaves_nothing(model_dir, tmp_path):
    path = tmp_path / "broken.csv"
    good = "".join(f"{s},{i}\n" for i, s in enumerate(TRAIN))
    path.write_text("smiles,y\n" + good + "CCO,1,2,3,4\n" + good)
    out = tmp_path / "p.csv"
    res = runner.invoke(
        app, ["predict", str(model_dir), str(path), "--out", str(out), "--batch-size", "5"]
    )
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [path]  # no output, no temporary


def test_a_long_junk_file_gives_row_aligned_errors(model_dir, tmp_path):
    """Lines of junk are rows with an error each, predicted a batch at a time."""
    rng = np.random.default_rng(1)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz()[]=@+-0123456789"))  # no "#": comments
    lines = ["".join(rng.choice(alphabet, 12)) for _ in range(5_000)]
    path = tmp_path / "junk.txt"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "junk_pred.csv"
    counts = predict_stream(model_dir, path, out, batch_size=1_000)
    assert counts.rows == 5_000 and counts.chunks == 5
    pred = pd.read_csv(out, keep_default_na=False)
    assert pred["smiles"].tolist() == lines
    assert (pred["error"] != "").sum() == counts.invalid >= 4_900


def test_all_invalid_table_keeps_the_model_columns(model_dir, tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"smiles": ["C1CC(", "xx", ""]}).to_csv(path, index=False)
    out = tmp_path / "p.csv"
    counts = predict_stream(model_dir, path, out)
    pred = pd.read_csv(out)
    assert counts.invalid == 3 and {"pred_logp", "std_logp", "error"} <= set(pred.columns)
    empty = tmp_path / "empty.csv"
    empty.write_text("smiles\n")
    counts = predict_stream(model_dir, empty, out)
    assert counts.rows == 0 and "pred_logp" in pd.read_csv(out).columns
