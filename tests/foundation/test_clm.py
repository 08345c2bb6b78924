"""The chemical language model: it learns, samples deterministically, and scores exactly."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from matfuse.foundation.clm import (
    ChemicalLanguageModel,
    CLMConfig,
    clm_is_shipped,
    fit_clm,
    load_clm,
    save_clm,
)
from matfuse.foundation.tokenizers import BOS_ID, EOS_ID, canonical_smiles

torch.set_num_threads(1)

_GROUPS = ["C", "CC", "O", "N", "F", "Cl", "OC", "C(=O)O", "C#N", "C(F)(F)F", "NC(C)=O", "CO"]


def corpus() -> list[str]:
    """~300 canonical molecules: para/meta-disubstituted benzenes and pyridines, plus chains."""
    mols = [f"{a}c1ccc({b})cc1" for a, b in itertools.product(_GROUPS, repeat=2)]
    mols += [f"{a}c1cccc({b})c1" for a, b in itertools.product(_GROUPS, repeat=2)]
    mols += [f"{a}c1ccc({b})nc1" for a, b in itertools.product(_GROUPS[:8], repeat=2)]
    mols += ["C" * k + x for k in range(1, 8) for x in ("O", "N", "Cl", "C(=O)O")]
    return sorted({c for c in (canonical_smiles(m) for m in mols) if c})


@pytest.fixture(scope="module")
def gru() -> ChemicalLanguageModel:
    return fit_clm(
        corpus(), arch="gru", steps=200, batch_size=32, seed=0, d_model=64, n_layers=1, lr=1e-2
    )


@pytest.fixture(scope="module")
def transformer() -> ChemicalLanguageModel:
    return fit_clm(corpus(), arch="transformer", steps=40, seed=0, d_model=32, n_layers=1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_a_tiny_model_learns_to_write_valid_molecules(gru):
    assert len(corpus()) >= 250
    smiles, logp = gru.sample(200, generator=_gen(0))
    valid = [canonical_smiles(s) for s in smiles]
    assert sum(v is not None for v in valid) / 200 >= 0.9
    assert logp.shape == (200,)
    # it learned the corpus: its molecules score far above random strings of its tokens
    assert gru.log_likelihood(["Cc1ccc(O)cc1"]).item() > gru.log_likelihood(["c1(((O"]).item()


def test_same_seed_same_samples_and_different_seed_different_samples(gru):
    a, la = gru.sample(50, generator=_gen(3))
    b, lb = gru.sample(50, generator=_gen(3))
    c, _ = gru.sample(50, generator=_gen(4))
    assert a == b and torch.equal(la, lb)
    assert a != c


def test_training_is_deterministic_for_a_seed():
    mols = corpus()[:60]
    a = fit_clm(mols, steps=5, seed=1, d_model=16, n_layers=1)
    b = fit_clm(mols, steps=5, seed=1, d_model=16, n_layers=1)
    c = fit_clm(mols, steps=5, seed=2, d_model=16, n_layers=1)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def _step_by_step_log_p(model: ChemicalLanguageModel, smiles: str) -> float:
    """log p of a string by feeding one token at a time through the recurrent state."""
    ids = model.token_ids(smiles)
    assert ids is not None
    total, state = 0.0, None
    with torch.no_grad():
        for t in range(len(ids) - 1):
            logits, state = model(torch.tensor([[ids[t]]]), state, offset=t)
            total += float(torch.log_softmax(logits[0, -1], dim=-1)[ids[t + 1]])
    return total


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_sample_log_likelihood_is_exactly_the_sum_of_step_log_probs(arch, gru, transformer):
    model = gru if arch == "gru" else transformer
    smiles, logp = model.sample(20, generator=_gen(5))
    scored = model.log_likelihood(smiles)
    finished = [i for i, s in enumerate(smiles) if s]
    assert finished
    for i in finished[:8]:
        assert logp[i].item() == pytest.approx(_step_by_step_log_p(model, smiles[i]), abs=1e-4)
    assert torch.allclose(logp[finished], scored[finished], atol=1e-4)
    # both are differentiable: a policy gradient can flow through them
    logp.sum().backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_log_likelihood_is_minus_inf_for_what_the_vocabulary_cannot_spell(gru):
    ll = gru.log_likelihood(["CCO", "C[Xe]C", "C%%C", ""])
    assert math.isfinite(ll[0].item()) and ll[0].item() < 0
    assert torch.isinf(ll[1:]).all() and (ll[1:] < 0).all()


def test_extend_completes_prefixes_and_scores_only_the_continuation(gru):
    prefixes = [gru.token_ids(s)[1:k] for s, k in (("Cc1ccc(O)cc1", 4), ("CCCO", 2))]
    texts, logp = gru.extend(prefixes, generator=_gen(6))
    for prefix, text, lp in zip(prefixes, texts, logp, strict=True):
        ids = gru.token_ids(text)
        assert ids is not None and ids[1 : 1 + len(prefix)] == prefix
        full = gru.log_likelihood([text]).item()
        # full log p = log p(prefix tokens) + log p(continuation | prefix)
        seq = torch.tensor([ids])
        prefix_part = gru.token_log_probs(seq)[0, : len(prefix)].sum().item()
        assert full == pytest.approx(prefix_part + lp.item(), abs=1e-4)


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_save_load_round_trip_is_identical(arch, gru, transformer, tmp_path):
    model = gru if arch == "gru" else transformer
    save_clm(model, tmp_path / arch, meta={"steps": 1})
    loaded = load_clm(tmp_path / arch)
    assert loaded.vocab == model.vocab and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert model.sample(10, generator=_gen(7))[0] == loaded.sample(10, generator=_gen(7))[0]
    assert not list(tmp_path.glob(f"{arch}/*.pt")) and not list(tmp_path.glob(f"{arch}/*.pkl"))


def test_loading_refuses_a_tampered_directory(gru, tmp_path):
    save_clm(gru, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError):
        load_clm(tmp_path / "m")


def test_fine_tuning_moves_the_model_toward_the_focused_library(gru):
    focused = [canonical_smiles(f"{a}c1ccc(Cl)cc1") for a in _GROUPS]
    tuned = fit_clm(focused, steps=60, seed=0, init=gru, lr=2e-3)
    assert tuned.vocab == gru.vocab
    probe = ["Clc1ccc(Cl)cc1"]
    assert tuned.log_likelihood(probe).item() > gru.log_likelihood(probe).item()


def test_config_validation():
    with pytest.raises(ValueError, match="unknown arch"):
        CLMConfig(arch="mamba")
    with pytest.raises(ValueError, match="multiple"):
        CLMConfig(arch="transformer", d_model=30, n_heads=4)


def test_special_tokens_are_never_sampled(gru):
    smiles, _ = gru.sample(100, generator=_gen(8))
    ids = [gru.token_ids(s) for s in smiles if s]
    assert all(i is None or (i[0] == BOS_ID and i[-1] == EOS_ID) for i in ids)
    assert not any("<" in s for s in smiles)


@pytest.mark.skipif(not clm_is_shipped(), reason="the clm weights are not shipped")
def test_the_shipped_clm_loads_through_its_manifest_and_samples():
    model = load_clm("clm")
    smiles, logp = model.sample(20, generator=_gen(0))
    assert len(smiles) == 20 and torch.isfinite(logp).all()
    assert (model.log_likelihood(["CCO"]) < 0).all()
    assert model.n_parameters() * 4 < 50e6  # the safetensors file stays under 50 MB
