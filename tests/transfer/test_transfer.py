"""Source models, the library, leakage exclusion, the transfer encoder and transfer-mlp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matfuse.encoders import get_encoder
from matfuse.models.manifest import UnsafeModelError
from matfuse.pipeline import PropertyModel
from matfuse.transfer.features import composition_features
from matfuse.transfer.library import SourceLibrary, check_leakage, load_library
from matfuse.transfer.network import SourceMLP

from .conftest import property_of, synthetic_formulas


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


def test_source_mlp_learns_and_its_state_round_trips() -> None:
    formulas = synthetic_formulas(300, seed=1)
    _, X, _ = composition_features(formulas)
    y = property_of(formulas, "a")
    mlp = SourceMLP(hidden=(32, 16), max_epochs=60, patience=10).fit(X[:240], y[:240])
    assert _mae(mlp.predict(X[240:]), y[240:]) < 0.6 * _mae(np.mean(y[:240]), y[240:])
    assert mlp.embed(X[:5]).shape == (5, 16)
    config, arrays = mlp.state()
    again = SourceMLP(hidden=(32, 16)).load_state(config, arrays)
    np.testing.assert_array_equal(again.predict(X[240:]), mlp.predict(X[240:]))
    nan_row = np.full((1, X.shape[1]), np.nan)
    assert np.isnan(mlp.predict(nan_row)).all() and np.isnan(mlp.embed(nan_row)).all()


def test_library_records_provenance_and_loads_identically(
    library: SourceLibrary, library_dir: Path, tables: dict[str, pd.DataFrame]
) -> None:
    assert library.names == ["prop_a", "prop_c"]
    info = library.sources["prop_a"].info
    assert info["n_rows"] == 400 and info["n_train"] + info["n_test"] == 400
    assert info["test_mae"] < info["baseline_mae"] and info["command"] == "pytest fixture"
    assert len(info["sha256"][0]) == 64 and info["cpu_s"] >= 0
    _, X, _ = composition_features(list(tables["prop_a"].formula[:20]))
    fresh = load_library.__wrapped__ if hasattr(load_library, "__wrapped__") else load_library
    np.testing.assert_array_equal(
        fresh(library_dir).sources["prop_a"].model.predict(X),
        library.sources["prop_a"].model.predict(X),
    )


def test_tampered_library_weights_are_refused(library_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "lib"
    shutil.copytree(library_dir, copy)
    path = copy / "prop_c.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeModelError, match="prop_c.safetensors"):
        load_library(copy)


def test_a_source_built_from_the_target_is_detected_even_in_other_units(
    library: SourceLibrary, tables: dict[str, pd.DataFrame]
) -> None:
    own = tables["prop_a"].sample(60, random_state=0)
    keys = composition_features(list(own.formula))[0]
    # the same data in another unit and a monotone transform: still the target's own rows
    checks = {c.source: c for c in check_leakage(library, keys, np.exp(own.target / 3) * 7)}
    assert checks["prop_a"].leaked and checks["prop_a"].overlap == 1.0
    assert not checks["prop_c"].leaked  # shares formulas, another property
    related = property_of(list(own.formula), "b")  # same materials, a related property
    checks = {c.source: c for c in check_leakage(library, keys, related)}
    assert not any(c.leaked for c in checks.values())
    new = synthetic_formulas(500, seed=7)[-40:]
    unseen = [k for k in composition_features(new)[0] if k is not None]
    fresh = {c.source: c for c in check_leakage(library, unseen)}
    assert all(c.overlap < 1.0 for c in fresh.values())


def test_a_closely_correlated_other_property_is_not_taken_for_the_target(
    library: SourceLibrary, tables: dict[str, pd.DataFrame]
) -> None:
    """Same materials, labels that rank almost alike (Spearman above the old 0.95 rule, as
    AFLOW bulk and shear moduli on a small fold) but are not one another's transform."""
    from scipy.stats import spearmanr

    own = tables["prop_a"].sample(40, random_state=1)
    keys = composition_features(list(own.formula))[0]
    rng = np.random.default_rng(0)
    related = own.target.to_numpy() + 0.2 * own.target.std() * rng.normal(size=len(own))
    assert spearmanr(related, own.target).statistic > 0.95
    check = {c.source: c for c in check_leakage(library, keys, related)}["prop_a"]
    assert check.overlap == 1.0 and not check.leaked and check.rank_corr < 0.9


def test_transfer_encoder_embeds_one_or_all_sources(library_dir: Path) -> None:
    one = get_encoder(f"transfer:sources=prop_a:library={library_dir}")
    both = get_encoder(f"transfer:library={library_dir}")
    assert one.dim == 16 and both.dim == 32 and one.pretrained
    block = both.encode_block(["SiO2", "NaCl", "Xx2O"])
    assert block.values.shape == (3, 32)
    assert block.valid.tolist() == [True, True, False] and block.errors[2]
    np.testing.assert_allclose(block.values[:2, :16], one.transform(["SiO2", "NaCl"]), rtol=1e-6)
    assert both.get_feature_names_out()[16] == "transfer_prop_c_0"
    with pytest.raises(ValueError, match="unknown transfer source"):
        _ = get_encoder(f"transfer:sources=nope:library={library_dir}").dim


def test_transfer_encoder_in_a_fused_model_saves_and_loads(
    library_dir: Path, tmp_path: Path
) -> None:
    formulas = synthetic_formulas(120, seed=3)
    y = property_of(formulas, "b")
    spec = f"transfer:library={library_dir}"
    pm = PropertyModel(encoders=["composition", spec], model="rf", input_type="composition")
    pm.fit(formulas[:100], y[:100])
    pred = pm.predict(formulas[100:])
    pm.save(tmp_path / "m")
    np.testing.assert_array_equal(PropertyModel.load(tmp_path / "m").predict(formulas[100:]), pred)


def test_transfer_mlp_excludes_the_target_own_source_and_round_trips(
    library_dir: Path, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    own = tables["prop_a"].iloc[:60]
    params = {"library": str(library_dir), "max_epochs": 40}
    pm = PropertyModel(model="transfer-mlp", model_params=params, input_type="composition")
    pm.fit(list(own.formula) + ["Xx2O"], list(own.target) + [1.0])  # a bad row is skipped
    net = pm.target_models_[0]
    assert net.source_ == "prop_c" and set(net.excluded_) == {"prop_a"}
    new = synthetic_formulas(480, seed=5)[-30:]
    pred = pm.predict(new + ["Xx2O"])
    assert np.isfinite(pred[:-1]).all() and np.isnan(pred[-1]).all()
    pm.save(tmp_path / "m")
    np.testing.assert_array_equal(PropertyModel.load(tmp_path / "m").predict(new + ["Xx2O"]), pred)
    forced = PropertyModel(
        model="transfer-mlp", model_params={**params, "source": "prop_a"}, input_type="composition"
    )
    with pytest.raises(ValueError, match="built from the target's data"):
        forced.fit(list(own.formula), list(own.target))
    # the shotgun's CV fits skip the check (it vetted the sources on the whole target)
    unchecked = PropertyModel(
        model="transfer-mlp",
        model_params={**params, "source": "prop_a", "leakage_check": False},
        input_type="composition",
    ).fit(list(own.formula), list(own.target))
    assert unchecked.target_models_[0].source_ == "prop_a"


def test_fine_tuning_from_a_related_source_beats_training_the_net_from_scratch(
    library: SourceLibrary, library_dir: Path
) -> None:
    """The point of transfer: 40 labels of a property related to a source's."""
    from matfuse.transfer.finetune import finetune_source

    formulas = synthetic_formulas(420, seed=11)
    _, X, _ = composition_features(formulas)
    y = property_of(formulas, "b")
    train, test = slice(0, 40), slice(200, 420)
    tuned = finetune_source(library.sources["prop_a"], X[train], y[train], random_state=0)
    scratch = SourceMLP(hidden=(32, 16), max_epochs=300, patience=30, validation_fraction=0.2)
    scratch.fit(X[train], y[train])
    assert _mae(tuned.predict(X[test]), y[test]) < _mae(scratch.predict(X[test]), y[test])


def test_tampered_transfer_mlp_weights_are_refused(library_dir: Path, tmp_path: Path) -> None:
    formulas = synthetic_formulas(60, seed=4)
    params = {"library": str(library_dir), "source": "prop_c", "max_epochs": 5}
    pm = PropertyModel(model="transfer-mlp", model_params=params, input_type="composition")
    pm.fit(formulas, property_of(formulas, "b")).save(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeModelError, match="model.safetensors"):
        PropertyModel.load(tmp_path / "m")


def test_the_shipped_library_loads_and_is_small() -> None:
    from matfuse.foundation.weights import shipped_models, weights_dir

    root = weights_dir("transfer-compositions")
    size = sum(p.stat().st_size for p in root.iterdir())
    assert size < 50 * 2**20
    lib = load_library()  # the default: the shipped one, manifest verified
    assert len(lib.names) >= 6 and lib.encoder == "composition"
    for source in lib.sources.values():
        info = source.info
        assert info["test_mae"] < info["baseline_mae"] and info["command"].startswith("matfuse")
        assert len(source.row_keys) > 0 and source.embedding_dim == 64
    assert get_encoder("transfer").dim == 64 * len(lib.names)
    assert "transfer-compositions" not in shipped_models()  # not a foundation model
    assert (root / "MODEL_CARD.md").exists()


def test_transfer_models_are_offered_for_compositions_only() -> None:
    from matfuse.encoders import list_encoders
    from matfuse.models import list_models

    assert "transfer-mlp" in [s.name for s in list_models(kind="composition")]
    assert "transfer-mlp" not in [s.name for s in list_models(kind="molecule")]
    assert "transfer-mlp" not in [s.name for s in list_models(task="classification")]
    assert "transfer" in [s.name for s in list_encoders("composition")]
