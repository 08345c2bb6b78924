"""Training the language model on a corpus file: exact resume after a kill, logs, exports."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from matfuse.foundation.clm import ChemicalLanguageModel, CLMConfig, load_clm
from matfuse.pretrain.clm import CLMTrainConfig, load_run_model, recover_checkpoint, train_clm

torch.set_num_threads(1)

MODEL = CLMConfig(arch="gru", d_model=16, n_layers=1)


def _cfg(**kw) -> CLMTrainConfig:
    base = dict(
        steps=10,
        batch_size=16,
        warmup=2,
        checkpoint_every=3,
        eval_every=5,
        log_every=2,
        n_heldout=40,
        eval_samples=5,
        chunk_size=120,
        device="cpu",
    )
    return CLMTrainConfig(**{**base, **kw})


class Killed(Exception):
    """Stands in for kill -9: the process stops between two optimiser steps."""


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path / "checkpoint" / "model.safetensors")


def test_resume_after_a_kill_matches_an_uninterrupted_run(corpus, tmp_path, monkeypatch):
    train_clm(corpus, tmp_path / "straight", MODEL, _cfg())

    calls = {"n": 0}
    original = ChemicalLanguageModel.loss

    def dying_loss(self, ids):
        calls["n"] += 1
        if calls["n"] == 8:  # after the checkpoint at step 6, before step 8
            raise Killed
        return original(self, ids)

    monkeypatch.setattr(ChemicalLanguageModel, "loss", dying_loss)
    with pytest.raises(Killed):
        train_clm(corpus, tmp_path / "killed", MODEL, _cfg())
    monkeypatch.setattr(ChemicalLanguageModel, "loss", original)
    state = json.loads((tmp_path / "killed" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6
    # a kill during the next checkpoint write leaves a half-written temporary directory
    (tmp_path / "killed" / "checkpoint.tmp").mkdir()
    (tmp_path / "killed" / "checkpoint.tmp" / "model.safetensors").write_bytes(b"partial")
    train_clm(corpus, tmp_path / "killed", MODEL, _cfg())

    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    resumed = json.loads((tmp_path / "killed" / "checkpoint" / "state.json").read_text())
    straight = json.loads((tmp_path / "straight" / "checkpoint" / "state.json").read_text())
    assert resumed["step"] == straight["step"] == 10
    assert resumed["tokens_seen"] == straight["tokens_seen"]
    assert resumed["position"] == straight["position"]


def test_an_interrupted_checkpoint_swap_is_completed(corpus, tmp_path):
    run = tmp_path / "r"
    train_clm(corpus, run, MODEL, _cfg(steps=3))
    # kill between removing the old checkpoint and renaming the finished new one
    shutil.copytree(run / "checkpoint", run / "checkpoint.tmp")
    shutil.rmtree(run / "checkpoint")
    recover_checkpoint(run / "checkpoint")
    assert (run / "checkpoint" / "state.json").exists()
    assert not (run / "checkpoint.tmp").exists()


def test_run_directory_logs_and_exports_loadable_models(corpus, tmp_path):
    run = tmp_path / "r"
    best = train_clm(corpus, run, MODEL, _cfg(), command="matfuse clm-train x")
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    events = {r["event"] for r in records}
    assert {"train", "eval", "final"} <= events
    evals = [r for r in records if r["event"] == "eval"]
    assert all(0.0 <= r["validity"] <= 1.0 and r["heldout_nll_token"] > 0 for r in evals)
    train_losses = [r["loss"] for r in records if r["event"] == "train"]
    assert train_losses[-1] < train_losses[0]  # it learns
    model = load_clm(best)
    assert model.config == MODEL
    assert model.meta["commands"] == ["matfuse clm-train x"]  # type: ignore[attr-defined]
    last = load_run_model(run)
    smiles, _ = last.sample(3, generator=torch.Generator().manual_seed(0))
    assert len(smiles) == 3


def test_more_time_continues_and_fine_tuning_keeps_the_vocabulary(corpus, tmp_path):
    run = tmp_path / "r"
    train_clm(corpus, run, MODEL, _cfg(steps=4))
    train_clm(corpus, run, MODEL, _cfg(steps=6), command="again")
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6
    assert json.loads((run / "run.json").read_text())["commands"] == ["again"]
    tuned = train_clm(corpus, tmp_path / "ft", train_cfg=_cfg(steps=2), init=run / "model")
    assert load_clm(tuned).vocab == load_clm(run / "model").vocab


def test_start_epoch_streams_a_fresh_order_over_the_same_heldout_rows(corpus, tmp_path):
    """A continuation run starting at epoch 1 trains on epoch 1's permutation, not on the
    batches epoch 0 already showed, and evaluates on the same held-out rows."""
    from matfuse.pretrain.data import CorpusStream, StreamPosition

    train_clm(corpus, tmp_path / "a", MODEL, _cfg(steps=2))
    train_clm(corpus, tmp_path / "b", MODEL, _cfg(steps=2, start_epoch=1))
    pos = [
        json.loads((tmp_path / r / "checkpoint" / "state.json").read_text())["position"]
        for r in ("a", "b")
    ]
    assert pos[0]["epoch"] == 0 and pos[1]["epoch"] == 1
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["train"]["start_epoch"] == 1
    tok = load_clm(tmp_path / "a" / "model").tokenizer
    streams = [CorpusStream(corpus, tok, 16, 128, chunk_size=120, n_heldout=40) for _ in "ab"]
    assert streams[0].heldout() == streams[1].heldout()
    first = [
        next(s(StreamPosition(epoch=e)))[1].tokens for s, e in zip(streams, (0, 1), strict=True)
    ]
    assert not torch.equal(first[0], first[1])


def test_export_writes_a_loadable_directory_with_a_card(corpus, tmp_path):
    from matfuse.pretrain.clm import export_clm

    run = tmp_path / "r"
    train_clm(corpus, run, MODEL, _cfg(steps=5), command="matfuse clm-train c --out r")
    target = export_clm(run, tmp_path / "shipped", benchmark={"valid": 0.5})
    model = load_clm(target)
    assert model.vocab == load_clm(run / "best").vocab
    card = (target / "MODEL_CARD.md").read_text()
    assert "matfuse clm-train c --out r" in card and '"valid": 0.5' in card
    assert not (target / "config.json").exists()  # never mistaken for an autoencoder


def test_two_process_data_parallel_training_on_gloo(corpus, tmp_path):
    """``torchrun --nproc-per-node 2`` on the CPU: both ranks step together, rank 0 writes."""
    import os
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys, torch\n"
        "torch.set_num_threads(1)\n"
        "from matfuse.foundation.clm import CLMConfig\n"
        "from matfuse.pretrain.clm import CLMTrainConfig, train_clm\n"
        "cfg = CLMTrainConfig(steps=4, batch_size=8, warmup=1, checkpoint_every=2, eval_every=4,"
        " log_every=2, n_heldout=20, eval_samples=2, chunk_size=100, device='cpu')\n"
        "train_clm(sys.argv[1], sys.argv[2], CLMConfig(d_model=8, n_layers=1), cfg)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    cmd += ["--master-port", "29533", str(script), str(corpus), str(tmp_path / "r")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 4
    # two batches per step: the stream is two steps' worth further than one process would be
    single = tmp_path / "one"
    cfg = _cfg(steps=4, batch_size=8, n_heldout=20, chunk_size=100)
    train_clm(corpus, single, CLMConfig(d_model=8, n_layers=1), cfg)
    one = json.loads((single / "checkpoint" / "state.json").read_text())
    assert state["position"]["batch"] == 2 * one["position"]["batch"]
    assert load_clm(tmp_path / "r" / "best").meta["world_size"] == 2  # type: ignore[attr-defined]
