"""Pickle-free persistence: bit-identical round trips for every model, and refusal of bad files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from matfuse.models import PropertyEstimator, UnsafeModelError, list_models
from matfuse.models.manifest import write_manifest
from matfuse.models.persistence import CONFIG_NAME, FORMAT_NAME, check_trusted_types

#: the models of encoded features (end-to-end ones are PropertyModel's, see tests/materials)
ALL_MODELS = [spec.name for spec in list_models() if not spec.end_to_end]
SMALL = {"n_estimators": 25}


class NotAllowed:
    """A class from a module outside the allowlist (this test module)."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def _small_params(model: str) -> dict[str, int] | None:
    return SMALL if model in ("xgboost", "lightgbm", "rf", "auto") else None


def _targets(scenario: str, X: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x0, x1 = np.nan_to_num(X[:, 0]), np.nan_to_num(X[:, 1])
    y_reg = 2.0 * x0 - x1 + 0.2 * rng.normal(size=len(X))
    y_clf = (x0 + x1 > 0).astype(float)
    if scenario == "regression":
        return y_reg
    if scenario == "classification":
        return y_clf
    Y = np.column_stack([y_reg, y_clf, -y_reg])
    Y[rng.random(Y.shape) < 0.3] = np.nan
    return Y


def _assert_same_outputs(a: PropertyEstimator, b: PropertyEstimator, X: np.ndarray) -> None:
    np.testing.assert_array_equal(a.predict(X), b.predict(X), strict=True)
    std_a, std_b = a.predict_std(X), b.predict_std(X)
    assert (std_a is None) == (std_b is None)
    if std_a is not None:
        np.testing.assert_array_equal(std_a, std_b, strict=True)
    np.testing.assert_array_equal(a.predict_interval(X), b.predict_interval(X), strict=True)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("scenario", ["regression", "classification", "multitask"])
@pytest.mark.parametrize("model", ALL_MODELS)
def test_roundtrip_is_bit_identical_for_every_model(
    model: str,
    scenario: str,
    tmp_path: Path,
    make_regression: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    X, _ = make_regression(90, d=6, seed=11)
    est = PropertyEstimator(model=model, model_params=_small_params(model))
    est.fit(X[:70], _targets(scenario, X[:70]))
    est.save(tmp_path / "m")

    loaded = PropertyEstimator.load(tmp_path / "m")
    assert loaded.get_params() == est.get_params()
    assert loaded.task_types_ == est.task_types_ and loaded.n_targets_ == est.n_targets_
    assert loaded.models_ == est.models_ and loaded.uncertainty_ == est.uncertainty_
    _assert_same_outputs(est, loaded, X[70:])

    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert CONFIG_NAME in names
    assert not any(n.endswith((".pkl", ".pickle", ".joblib")) for n in names)
    if est.models_[0] == "xgboost":
        assert any(n.endswith(".json") and "booster" in n for n in names)
    if est.models_[0] == "lightgbm":
        assert any(n.endswith(".txt") and "booster" in n for n in names)


@pytest.mark.parametrize("model", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("uncertainty", ["ensemble", "conformal-split"])
def test_roundtrip_of_booster_ensembles_and_split_conformal(
    model: str,
    uncertainty: str,
    tmp_path: Path,
    make_regression: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    X, y = make_regression(120, d=6, seed=12)
    est = PropertyEstimator(
        model=model,
        uncertainty=uncertainty.split("-")[0],
        conformal="split",
        ensemble_size=3,
        model_params=SMALL,
    ).fit(X[:100], y[:100])
    loaded = PropertyEstimator.load(est.save(tmp_path / "m"))
    _assert_same_outputs(est, loaded, X[100:])
    config = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    n_boosters = len(config["targets"][0]["boosters"])
    assert n_boosters == (3 if uncertainty == "ensemble" else 1)
    assert {"numpy", "scikit-learn", "mapie", "xgboost", "lightgbm"} <= set(config["versions"])


@pytest.fixture
def saved_dir(tmp_path: Path, regression_split: tuple[np.ndarray, ...]) -> Path:
    X_train, y_train, _, _ = regression_split
    est = PropertyEstimator(model="linear", uncertainty="none").fit(X_train, y_train)
    return est.save(tmp_path / "m")


def _replace_components(directory: Path, payload: object) -> None:
    """Overwrite target_0.skops and fix its checksums, as a malicious author would."""
    path = directory / "target_0.skops"
    sio.dump(payload, path)
    config = json.loads((directory / CONFIG_NAME).read_text())
    config["files"]["target_0.skops"]["sha256"] = (
        __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    )
    (directory / CONFIG_NAME).write_text(json.dumps(config))
    write_manifest(directory, FORMAT_NAME)


def test_disallowed_type_in_skops_file_is_refused(saved_dir: Path) -> None:
    _replace_components(saved_dir, {"estimator": NotAllowed(), "replicas": [], "conformal": None})
    with pytest.raises(UnsafeModelError, match="NotAllowed"):
        PropertyEstimator.load(saved_dir)


def test_function_from_allowed_package_is_refused(saved_dir: Path) -> None:
    # numpy.dtype is allowed, but a *function* such as numpy.load must never be trusted.
    payload = {"estimator": FunctionTransformer(func=np.load), "replicas": [], "conformal": None}
    _replace_components(saved_dir, payload)
    with pytest.raises(UnsafeModelError, match="numpy"):
        PropertyEstimator.load(saved_dir)
    with pytest.raises(UnsafeModelError):
        check_trusted_types(["builtins.eval"])
    check_trusted_types(["sklearn.tree._tree.Tree", "collections.OrderedDict"])


def test_tampered_file_fails_checksum(saved_dir: Path) -> None:
    with (saved_dir / "target_0.skops").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UnsafeModelError, match="sha256"):
        PropertyEstimator.load(saved_dir)


def test_save_refuses_to_clobber_unless_asked(
    saved_dir: Path, regression_split: tuple[np.ndarray, ...]
) -> None:
    X_train, y_train, X_test, _ = regression_split
    other = PropertyEstimator(model="krr", uncertainty="none").fit(X_train, y_train)
    with pytest.raises(FileExistsError):
        other.save(saved_dir)
    (saved_dir / "notes.txt").write_text("kept")
    other.save(saved_dir, overwrite=True)
    assert (saved_dir / "notes.txt").read_text() == "kept"
    np.testing.assert_array_equal(
        PropertyEstimator.load(saved_dir).predict(X_test), other.predict(X_test)
    )


def test_unfitted_estimator_cannot_be_saved(tmp_path: Path) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PropertyEstimator().save(tmp_path / "m")
