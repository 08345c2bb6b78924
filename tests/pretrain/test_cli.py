"""``matfuse pretrain`` from the command line: resuming and starting from a model directory."""

import json

from typer.testing import CliRunner

from matfuse.cli import app


def test_cli_pretrain_resumes(corpus, tmp_path):
    runner = CliRunner()
    args = [
        "pretrain",
        "smi-ted",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path / "r"),
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--d-model",
        "16",
        "--layers",
        "1",
        "--latent-dim",
        "8",
        "--checkpoint-every",
        "2",
        "--eval-every",
        "2",
        "--threads",
        "1",
        "--heldout",
        "50",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "model" / "model.safetensors").exists()
    res = runner.invoke(app, [*args[:7], "6", *args[8:]])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())["step"] == 6


def test_cli_pretrain_init_from_a_model_directory(tiny_selfies_model, corpus, tmp_path):
    args = ["pretrain", "selfies-ted", "--corpus", str(corpus), "--out", str(tmp_path / "ft")]
    args += ["--steps", "3", "--batch-size", "16", "--threads", "1", "--heldout", "50"]
    res = CliRunner().invoke(app, [*args, "--init-from", str(tiny_selfies_model)])
    assert res.exit_code == 0, res.output
    card = (tmp_path / "ft" / "model" / "MODEL_CARD.md").read_text()
    assert f"initialised from: `{tiny_selfies_model}`" in card
