"""``matfuse clm-train`` and ``matfuse decode --model clm``: user errors and a small round trip."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app

SMALL = ["--d-model", "16", "--layers", "1", "--batch-size", "16", "--heldout", "40"]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("clm") / "run"
    res = CliRunner().invoke(
        app, ["clm-train", str(corpus), "--out", str(out), "--steps", "6", *SMALL, "--threads", "1"]
    )
    assert res.exit_code == 0, res.output
    return out


def _one_line_exit_2(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert len(text.splitlines()) == 1, text
    return text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "mamba"], "unknown arch"),
        (["--steps", "0"], "--steps must be positive"),
        (["--max-minutes", "-1"], "must be positive"),
        (["--device", "tpu"], "unknown device"),
        (["--stream-order", "random"], "unknown --stream-order"),
        (["--resume"], "holds no run"),
        (["--init", "no-such-model"], "no-such-model"),
    ],
)
def test_bad_training_options_exit_2_with_one_line(corpus, tmp_path, extra, message):
    text = _one_line_exit_2(["clm-train", str(corpus), "--out", str(tmp_path / "r"), *extra])
    assert message in text


def test_a_missing_corpus_exits_2(tmp_path):
    text = _one_line_exit_2(["clm-train", str(tmp_path / "none.smi"), "--out", str(tmp_path)])
    assert "does not exist" in text


def test_training_resumes_and_decode_samples_reproducibly(trained, corpus, tmp_path):
    res = CliRunner().invoke(
        app, ["clm-train", str(corpus), "--out", str(trained), "--steps", "8", "--resume"]
    )
    assert res.exit_code == 0, res.output
    args = ["decode", "--model", "clm", "--path", str(trained / "best"), "--sample", "25"]
    args += ["--temperature", "0.9", "--allow-invalid"]
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        res = CliRunner().invoke(
            app, [*args, "--seed", seed, "--out", str(tmp_path / f"{name}.csv")]
        )
        assert res.exit_code == 0, res.output
    # a language-model directory given as --model samples the same as --model clm --path
    res = CliRunner().invoke(
        app,
        [
            "decode",
            "--model",
            str(trained / "best"),
            *args[5:],
            "--seed",
            "1",
            "--out",
            str(tmp_path / "d.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    a, b, c = (pd.read_csv(tmp_path / f"{n}.csv") for n in "abc")
    assert a.equals(pd.read_csv(tmp_path / "d.csv"))
    assert len(a) == 25 and list(a.columns) == ["smiles", "error", "sampled", "log_likelihood"]
    assert a.equals(b) and not a.equals(c)
    assert (a["log_likelihood"] < 0).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "use --sample N"),
        (["--sample", "5", "--temperature", "-1"], "--temperature must be >= 0"),
        (["--sample", "5", "--path", "/no/such/dir"], "not a language model directory"),
    ],
)
def test_bad_decode_options_exit_2_with_one_line(tmp_path, extra, message):
    args = ["decode", "--model", "clm", "--out", str(tmp_path / "o.csv"), *extra]
    assert message in _one_line_exit_2(args)


def test_an_unknown_decode_model_is_one_line_not_a_traceback(tmp_path):
    args = ["decode", "--model", str(tmp_path / "nothing"), "--sample", "5"]
    assert "nothing" in _one_line_exit_2([*args, "--out", str(tmp_path / "o.csv")])
