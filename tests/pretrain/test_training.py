import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest_helpers import TINY_MODEL, tiny_train_config
from matfuse.foundation.autoencoder import ModelConfig
from matfuse.foundation.model_dir import load_model_dir
from matfuse.foundation.tokenizers import SmilesTokenizer
from matfuse.pretrain import pretrain
from matfuse.pretrain.data import CorpusStream, StreamPosition


def _weights(run_dir):
    return load_file(run_dir / "checkpoint" / "model.safetensors")


def test_training_writes_metrics_checkpoint_and_model(tiny_selfies_model):
    run = tiny_selfies_model.parent
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in events if e["event"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"]  # it learns
    assert any(e["event"] == "heldout" and "exact" in e for e in events)
    for name in (
        "config.json",
        "vocab.json",
        "model.safetensors",
        "latent_stats.safetensors",
        "MODEL_CARD.md",
    ):
        assert (tiny_selfies_model / name).exists()
    card = (tiny_selfies_model / "MODEL_CARD.md").read_text()
    assert "steps: 30" in card and "corpus.csv" in card


def test_resume_is_exact(corpus, tmp_path):
    cfg = ModelConfig(encoder="ted", language="smiles", dropout=0.1, **TINY_MODEL)
    straight = tmp_path / "straight"
    pretrain("smi-ted", corpus, straight, cfg, tiny_train_config(steps=20), progress=False)
    resumed = tmp_path / "resumed"
    # "interrupt" after 10 steps, then rerun the same command
    pretrain(
        "smi-ted", corpus, resumed, cfg, tiny_train_config(steps=20, stop_at=10), progress=False
    )
    state = json.loads((resumed / "checkpoint" / "state.json").read_text())
    assert state["step"] == 10
    pretrain("smi-ted", corpus, resumed, cfg, tiny_train_config(steps=20), progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def test_metrics_after_a_resume_equal_an_uninterrupted_run(corpus, tmp_path):
    # stop in the middle of a logging window (log_every=5, stop at 7): the window 6-10 must
    # average the steps before and after the resume, as the uninterrupted run does
    cfg = ModelConfig(encoder="ted", language="smiles", **TINY_MODEL)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    pretrain("smi-ted", corpus, straight, cfg, tiny_train_config(steps=15), progress=False)
    pretrain(
        "smi-ted", corpus, resumed, cfg, tiny_train_config(steps=15, stop_at=7), progress=False
    )
    pretrain("smi-ted", corpus, resumed, cfg, tiny_train_config(steps=15), progress=False)

    def train_rows(run):
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r for r in rows if r["event"] == "train"}

    a, b = train_rows(straight), train_rows(resumed)
    assert sorted(a) == sorted(b) == [5, 10, 15]
    for step in a:
        for key in ("loss", "token_acc"):
            assert b[step][key] == pytest.approx(a[step][key], rel=1e-5), (step, key)


def test_same_seed_same_model_different_seed_different_model(corpus, tmp_path):
    cfg = ModelConfig(encoder="ssed", language="smiles", **TINY_MODEL)
    runs = {}
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        pretrain(
            "smi-ssed",
            corpus,
            tmp_path / name,
            cfg,
            tiny_train_config(steps=6, seed=seed),
            progress=False,
        )
        runs[name] = _weights(tmp_path / name)
    key = "decoder.head.weight"
    torch.testing.assert_close(runs["a"][key], runs["b"][key])
    assert not torch.allclose(runs["a"][key], runs["c"][key])


def test_stream_resumes_on_the_same_batches(corpus):
    tok = SmilesTokenizer().fit(["CCO", "c1ccccc1"])
    stream = CorpusStream(corpus, tok, batch_size=16, max_len=64, chunk_size=100, seed=3)
    it = stream()
    seen = [next(it) for _ in range(12)]
    pos, _ = seen[4]
    again = stream(StreamPosition(**vars(pos)))
    for (_, expected), (_, got) in zip(seen[5:], again, strict=False):
        assert torch.equal(expected.tokens, got.tokens)
    # batches are bucketed by length: less padding than batches drawn at random
    batches = [b.tokens for _, b in seen[:6]]
    lengths = torch.cat([(t != 0).sum(1) for t in batches])
    bucketed = sum(int((t != 0).sum(1).max()) * len(t) for t in batches)
    shuffled = lengths[torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0))]
    at_random = sum(int(c.max()) * len(c) for c in shuffled.split(16))
    assert bucketed < at_random


def _sorted_corpus(tmp_path):
    """A corpus in a meaningful order, as MOSES and ZINC are: chain length grows with the row."""
    smiles = ["C" * (1 + i // 20) + "O" for i in range(400)]
    path = tmp_path / "sorted.smi"
    path.write_text("\n".join(smiles) + "\n")
    return path, smiles


def _epoch_rows(stream, n_batches):
    it = stream()
    rows = []
    for _ in range(n_batches):
        _, batch = next(it)
        rows += [int((t != 0).sum()) for t in batch.tokens]  # token count tracks chain length
    return rows


def test_shuffled_stream_mixes_a_sorted_corpus_and_holds_out_a_random_sample(tmp_path):
    path, smiles = _sorted_corpus(tmp_path)
    tok = SmilesTokenizer().fit(smiles)
    stream = CorpusStream(path, tok, batch_size=20, max_len=64, chunk_size=100, n_heldout=40)
    heldout = stream.heldout()
    assert len(heldout) == 40
    lengths = [len(s) for s in heldout]
    assert min(lengths) < 6 and max(lengths) > 16  # drawn from the whole file, not its head
    _, _, train = stream._split()
    assert len(train) == 360 and not set(train) & set(stream._heldout_idx.tolist())
    # the first chunk (100 rows) spans the file: file order would give only the shortest
    first_chunk = _epoch_rows(stream, 5)
    assert max(first_chunk) - min(first_chunk) > 10
    in_file_order = CorpusStream(
        path, tok, batch_size=20, max_len=64, chunk_size=100, n_heldout=40, order="file"
    )
    assert in_file_order.heldout() == smiles[:40]
    assert max(_epoch_rows(in_file_order, 5)) - min(_epoch_rows(in_file_order, 5)) <= 6
    # same seed, same order; another seed, another order
    again = CorpusStream(path, tok, batch_size=20, max_len=64, chunk_size=100, n_heldout=40)
    assert again.heldout() == heldout and _epoch_rows(again, 5) == first_chunk
    other = CorpusStream(path, tok, batch_size=20, max_len=64, chunk_size=100, n_heldout=40, seed=1)
    assert other.heldout() != heldout


def test_shuffled_epochs_cover_every_training_row_once(tmp_path):
    path, smiles = _sorted_corpus(tmp_path)
    tok = SmilesTokenizer().fit(smiles)
    stream = CorpusStream(path, tok, batch_size=20, max_len=64, chunk_size=100, n_heldout=40)
    _, _, train = stream._split()
    chunks = list(stream.chunks(0))
    assert sorted(s for c in chunks for s in c) == sorted(smiles[i] for i in train)
    assert chunks != list(stream.chunks(1))  # a new permutation each epoch


def test_an_unknown_stream_order_is_refused(tmp_path):
    path, smiles = _sorted_corpus(tmp_path)
    with pytest.raises(ValueError, match="order"):
        CorpusStream(path, SmilesTokenizer().fit(smiles), 4, 64, order="random")


def test_graph_model_trains_and_decodes_valid_molecules(corpus, tmp_path):
    cfg = ModelConfig(encoder="ged", language="selfies", **TINY_MODEL)
    out = pretrain(
        "graph-ged", corpus, tmp_path / "g", cfg, tiny_train_config(steps=8), progress=False
    )
    lm = load_model_dir(out)
    assert lm.config.encoder == "ged"
    assert lm.latent_chol.shape == (16, 16)


def test_corpus_without_usable_molecules_is_an_error(tmp_path):
    bad = tmp_path / "bad.smi"
    bad.write_text("not_a_smiles\nC1CC(\n")
    cfg = ModelConfig(encoder="ted", language="smiles", **TINY_MODEL)
    with pytest.raises(ValueError, match="no usable molecules"):
        pretrain(
            "smi-ted", bad, tmp_path / "run", cfg, tiny_train_config(n_heldout=0), progress=False
        )


def test_latent_stats_are_a_valid_gaussian(tiny_selfies_model):
    lm = load_model_dir(tiny_selfies_model)
    chol = lm.latent_chol.numpy()
    assert np.allclose(chol, np.tril(chol)) and (np.diag(chol) > 0).all()


def test_init_from_continues_a_model_on_a_new_corpus(tiny_selfies_model, corpus, tmp_path):
    start = load_model_dir(tiny_selfies_model)
    run = tmp_path / "finetune"
    exported = pretrain(
        "selfies-ted",
        corpus,
        run,
        train_cfg=tiny_train_config(steps=5),
        progress=False,
        init_from=tiny_selfies_model,
    )
    tuned = load_model_dir(exported)
    # same architecture and vocabulary, so everything that reads the original reads this one
    assert tuned.config == start.config
    assert tuned.tokenizer.to_dict() == start.tokenizer.to_dict()
    # training started from the given weights, not from a fresh initialisation: after 5 small
    # steps the weights are still much closer to the start than a new random model is
    fresh = pretrain(
        "selfies-ted",
        corpus,
        tmp_path / "fresh",
        start.config,
        tiny_train_config(steps=5),
        progress=False,
    )
    a, b, c = (load_model_dir(p).model.state_dict() for p in (tiny_selfies_model, exported, fresh))
    moved = sum(float((b[k] - a[k]).norm()) for k in a)
    unrelated = sum(float((c[k] - a[k]).norm()) for k in a)
    assert 0 < moved < 0.5 * unrelated
    record = json.loads((run / "run.json").read_text())["init_from"]
    assert record["steps"] == start.meta["steps"] and len(record["sha256"]) == 16
    assert "initialised from" in (exported / "MODEL_CARD.md").read_text()


def test_init_from_a_different_architecture_is_refused(tiny_selfies_model, corpus, tmp_path):
    with pytest.raises(ValueError, match="not a smi-ted"):
        pretrain(
            "smi-ted",
            corpus,
            tmp_path / "x",
            train_cfg=tiny_train_config(steps=2),
            progress=False,
            init_from=tiny_selfies_model,
        )
