"""The one registry of downstream model names and their default hyperparameters.

Every downstream estimator in matfuse is created here, by name, so that the CLI, the pipeline,
tuning and persistence agree on what ``"xgboost"`` or ``"gp"`` means. The defaults are what users
actually run, so each builder documents why its values were chosen. Every returned estimator
accepts NaN in X: the tree boosters natively, everything else through
:func:`~matfuse.models.preprocessing.nan_safe_pipeline`.

Keyword ``params`` given to :func:`make_estimator` override the hyperparameters of the *core*
model (the final step, e.g. ``n_estimators`` or ``C``), not of the preprocessing around it; the
few model-specific exceptions are documented on the builders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator

from matfuse.models.preprocessing import nan_safe_pipeline
from matfuse.models.subsample import SubsampledEstimator
from matfuse.registry import Registry

__all__ = [
    "AUTO_SMALL_DATA",
    "GP_MAX_SAMPLES",
    "MODELS",
    "TASKS",
    "Builder",
    "ModelSpec",
    "Task",
    "get_spec",
    "list_models",
    "make_estimator",
    "register_model",
    "resolve_model_name",
]

Task = Literal["regression", "classification"]
TASKS: tuple[str, ...] = ("regression", "classification")

#: Below this many labelled rows ``auto`` switches from XGBoost to a random forest.
AUTO_SMALL_DATA = 200
#: Row cap for exact Gaussian processes (O(n^3) time, O(n^2) memory).
GP_MAX_SAMPLES = 2000


#: ``builder(task, n_samples, random_state, n_jobs, params)`` -> an unfitted estimator
Builder = Callable[[str, int | None, int, int, dict[str, Any]], BaseEstimator]


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: what the model is and the builder that makes it.

    ``native_uncertainty`` lists the tasks for which the fitted model itself provides a predictive
    spread (GP posterior std, random-forest per-tree spread) without refitting. ``input_kinds``
    is set for an *end-to-end* model, which learns from inputs of those kinds directly instead
    of from encoded features (``crystal-graph``: structures; see :mod:`matfuse.pipeline`).
    ``builder`` is None only for ``auto``, which names another entry. ``block_aware`` marks a
    model of encoded features that needs to know which columns form which encoder block
    (the learned fusion models): the pipeline passes its late fusion's ``block_slices_`` to
    the builder as the ``blocks`` parameter.
    """

    name: str
    description: str
    regression: bool
    classification: bool
    native_uncertainty: tuple[str, ...] = ()
    input_kinds: tuple[str, ...] = ()
    builder: Builder | None = field(default=None, repr=False, compare=False)
    block_aware: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this model can be built for, in :data:`TASKS` order."""
        return tuple(t for t in TASKS if self.supports(t))

    def applies_to(self, kind: str) -> bool:
        """Whether the model can learn from inputs of ``kind`` (feature models: any kind)."""
        return not self.end_to_end or kind in self.input_kinds

    @property
    def end_to_end(self) -> bool:
        """Whether the model reads inputs itself (no encoders, no fused feature matrix)."""
        return bool(self.input_kinds)

    def supports(self, task: str) -> bool:
        """Whether this model can be built for ``task``."""
        return {"regression": self.regression, "classification": self.classification}.get(
            task, False
        )

    def has_native_uncertainty(self, task: str) -> bool:
        """Whether the model reports a predictive std for ``task`` on its own."""
        return task in self.native_uncertainty


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _build_xgboost(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """XGBoost tuned for wide, sparse fused fingerprints.

    500 trees at learning rate 0.05 is a slow-and-steady schedule that rarely needs early stopping
    on QSAR-sized data; depth 6 captures substructure interactions without memorising;
    ``colsample_bytree=0.4`` decorrelates trees when thousands of bits are redundant (and speeds
    fitting up), ``subsample=0.8`` adds bagging noise, ``min_child_weight=2`` and L2
    ``reg_lambda=1`` stop leaves that are justified by a single molecule. NaN is routed natively
    (learned default direction), which is exactly right for whole-block missingness.
    """
    import xgboost as xgb

    defaults: dict[str, Any] = {
        "n_estimators": 500,
        "learning_rate": 0.05,
        "max_depth": 6,
        "min_child_weight": 2.0,
        "subsample": 0.8,
        "colsample_bytree": 0.4,
        "reg_lambda": 1.0,
        "tree_method": "hist",
        "random_state": random_state,
        "n_jobs": n_jobs,
    }
    if task == "classification":
        defaults["eval_metric"] = "logloss"
        return xgb.XGBClassifier(**{**defaults, **params})
    return xgb.XGBRegressor(**{**defaults, **params})


def _lightgbm_min_child_samples(n_samples: int | None) -> int:
    """LightGBM's default of 20 rows per leaf forbids most splits on a few hundred molecules."""
    if n_samples is None or n_samples >= 1000:
        return 20
    return max(3, n_samples // 50)


def _build_lightgbm(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """LightGBM with the same schedule as the XGBoost entry (500 x 0.05, bagging 0.8, features
    0.4, L2 1.0) and 31 leaves; ``min_child_samples`` shrinks on small data (see
    :func:`_lightgbm_min_child_samples`). NaN is handled natively."""
    import lightgbm as lgb

    defaults: dict[str, Any] = {
        "n_estimators": 500,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": _lightgbm_min_child_samples(n_samples),
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.4,
        "reg_lambda": 1.0,
        "random_state": random_state,
        "n_jobs": n_jobs,
        "verbose": -1,
    }
    if task == "classification":
        return lgb.LGBMClassifier(**{**defaults, **params})
    return lgb.LGBMRegressor(**{**defaults, **params})


def _build_rf(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """Random forest, 500 fully grown trees.

    ``max_features`` follows Breiman's rules (a third of the features for regression, sqrt for
    classification), which are robust without tuning; this makes regression forests on 2048-bit
    fingerprints noticeably slower than boosting, so raise ``n_jobs`` on large data.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    defaults: dict[str, Any] = {
        "n_estimators": 500,
        "min_samples_leaf": 1,
        "random_state": random_state,
        "n_jobs": n_jobs,
    }
    if task == "classification":
        model = RandomForestClassifier(**{**defaults, "max_features": "sqrt", **params})
    else:
        model = RandomForestRegressor(**{**defaults, "max_features": 0.3, **params})
    return nan_safe_pipeline(model, scale=False)


def _scaled_target(regressor: BaseEstimator) -> BaseEstimator:
    """Standardise y for models with no intercept or with y-unit hyperparameters.

    Kernel ridge has no intercept, and SVR's ``epsilon`` and ``C`` are in units of y, so without
    this their defaults would mean something different for logS and for a melting point in K.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def _build_svr(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """RBF support vector machine on standardised features.

    Regression: ``SVR(C=5, epsilon=0.1, gamma="scale")`` on standardised y (see
    :func:`_scaled_target`); C=5 fits QSAR signal more closely than the library default of 1.
    Classification: ``SVC(C=1, gamma="scale")`` with Platt (sigmoid) probabilities from 5-fold
    ``CalibratedClassifierCV(ensemble=False)``, which is what ``SVC(probability=True)`` did and
    what scikit-learn recommends now that that flag is deprecated. Both are O(n^2)-O(n^3), so
    prefer boosting above ~20k molecules.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, SVR

    if task == "classification":
        svc = SVC(**{"C": 1.0, "gamma": "scale", **params})
        model = CalibratedClassifierCV(svc, method="sigmoid", cv=5, ensemble=False)
        return nan_safe_pipeline(model, scale=True)
    svr = SVR(**{"C": 5.0, "epsilon": 0.1, "gamma": "scale", **params})
    return _scaled_target(nan_safe_pipeline(svr, scale=True))


def _build_krr(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """RBF kernel ridge regression; kernel logistic regression for classification.

    Regression: ``KernelRidge(kernel="rbf", alpha=0.1, gamma=1/n_features)`` on standardised X
    and y. Kernel ridge has no probabilistic output, so for classification the equivalent model
    with the logistic loss is used: an RBF Nystroem feature map (``min(500, n)`` landmarks, the
    same default gamma) followed by ``LogisticRegression(C=1/alpha)``, i.e. approximate kernel
    logistic regression. It keeps the meaning of ``alpha`` and ``gamma`` across tasks and gives
    probabilities without an extra calibration fit.
    """
    from sklearn.kernel_approximation import Nystroem
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    params = dict(params)
    alpha = float(params.pop("alpha", 0.1))
    gamma = params.pop("gamma", None)
    if task == "classification":
        n_components = int(
            params.pop("n_components", 500 if n_samples is None else min(500, n_samples))
        )
        model = Pipeline(
            [
                (
                    "kernel_map",
                    Nystroem(
                        kernel="rbf",
                        gamma=gamma,
                        n_components=n_components,
                        random_state=random_state,
                    ),
                ),
                ("logistic", LogisticRegression(C=1.0 / alpha, max_iter=2000, **params)),
            ]
        )
        return nan_safe_pipeline(model, scale=True)
    krr = KernelRidge(kernel="rbf", alpha=alpha, gamma=gamma, **params)
    return _scaled_target(nan_safe_pipeline(krr, scale=True))


def _build_gp(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """Exact Gaussian process with an isotropic RBF kernel.

    Regression: ``ConstantKernel * RBF + WhiteKernel`` with ``normalize_y=True`` and two optimiser
    restarts; the white-noise term lets the GP explain assay noise instead of overfitting it, and
    its posterior std (which includes that noise) is the native uncertainty. Inputs are
    standardised and divided by sqrt(d) (:class:`~matfuse.models.preprocessing.ScaleByDimension`)
    so a unit length scale is a sensible start for any fused width. Classification uses
    ``GaussianProcessClassifier`` (Laplace approximation) with ``ConstantKernel * RBF``.
    The model is wrapped in :class:`~matfuse.models.subsample.SubsampledEstimator` capped at
    ``max_samples`` (default :data:`GP_MAX_SAMPLES`) rows, with a warning when it subsamples.
    """
    from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    params = dict(params)
    max_samples = int(params.pop("max_samples", GP_MAX_SAMPLES))
    if task == "classification":
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(1.0, (1e-2, 1e2))
        defaults: dict[str, Any] = {
            "kernel": kernel,
            "n_restarts_optimizer": 1,
            "random_state": random_state,
        }
        model: BaseEstimator = GaussianProcessClassifier(**{**defaults, **params})
    else:
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(1.0, (1e-2, 1e2)) + WhiteKernel(
            0.1, (1e-5, 1e1)
        )
        defaults = {
            "kernel": kernel,
            "normalize_y": True,
            "n_restarts_optimizer": 2,
            "random_state": random_state,
        }
        model = GaussianProcessRegressor(**{**defaults, **params})
    pipe = nan_safe_pipeline(model, scale=True, per_dimension=True)
    return SubsampledEstimator(pipe, max_samples=max_samples, random_state=random_state)


def _build_linear(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """Regularised linear baseline whose strength is chosen by internal cross-validation.

    A fixed penalty is wrong for either 20 descriptors or 4000 fingerprint bits, so regression
    uses ``RidgeCV`` (efficient leave-one-out over 15 alphas in [1e-3, 1e4]) and classification
    ``LogisticRegressionCV`` (stratified 3-fold, log-loss, 13 Cs in [1e-4, 1e2], L2).
    """
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import StratifiedKFold

    if task == "classification":
        defaults: dict[str, Any] = {
            "Cs": np.logspace(-4, 2, 13),
            "cv": StratifiedKFold(3, shuffle=True, random_state=random_state),
            "scoring": "neg_log_loss",
            "l1_ratios": (0.0,),
            "use_legacy_attributes": False,
            "max_iter": 2000,
        }
        model: BaseEstimator = LogisticRegressionCV(**{**defaults, **params})
    else:
        model = RidgeCV(**{"alphas": np.logspace(-3, 4, 15), **params})
    return nan_safe_pipeline(model, scale=True)


def _build_crystal_graph(
    task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
) -> BaseEstimator:
    """CGCNN-style crystal graph network, trained end to end on structures (regression).

    Not a model of encoded features: :class:`~matfuse.pipeline.PropertyModel` hands it the
    parsed structures. Defaults are the regressor's (64 hidden, 3 convolutions, 60 epochs).
    Imported here, lazily, because it needs torch.
    """
    from matfuse.models.crystal_graph import CrystalGraphRegressor

    return CrystalGraphRegressor(**{"random_state": random_state, "n_threads": n_jobs, **params})


def _build_learned_fusion(fusion: str) -> Builder:
    """A builder of :mod:`matfuse.fusion.learned` models with ``fusion`` = moe / attention.

    Defaults (width 64, 5-member ensemble, modality dropout 0.2, early stopping on 15 % of
    the rows, class-balanced loss for classification) are the module's; ``blocks`` comes
    from the pipeline (see ``block_aware``).
    Imported lazily: torch.
    """

    def build(
        task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
    ) -> BaseEstimator:
        from matfuse.fusion.learned import LearnedFusionClassifier, LearnedFusionRegressor

        cls = LearnedFusionClassifier if task == "classification" else LearnedFusionRegressor
        defaults = {"fusion": fusion, "random_state": random_state, "n_threads": n_jobs}
        return cls(**{**defaults, **params})

    return build


def _build_finetuned_encoder(encoder: str) -> Builder:
    """A builder of :mod:`matfuse.foundation.finetune` models that fine-tune ``encoder``.

    End to end over molecules (the pipeline hands them the parsed SMILES). Defaults are the
    module's: head at lr 1e-3, encoder at 1e-4 after one head-only epoch, early stopping on
    10 % of the rows, at most 30 epochs, a class-balanced loss for classification;
    ``predict_std`` is MC dropout in the head. Imported lazily: torch.
    """

    def build(
        task: str, n_samples: int | None, random_state: int, n_jobs: int, params: dict[str, Any]
    ) -> BaseEstimator:
        from matfuse.foundation.finetune import (
            FinetunedEncoderClassifier,
            FinetunedEncoderRegressor,
        )

        cls = FinetunedEncoderClassifier if task == "classification" else FinetunedEncoderRegressor
        defaults = {"encoder": encoder, "random_state": random_state, "n_threads": n_jobs}
        return cls(**{**defaults, **params})

    return build


def _build_transfer_mlp(random_state: int, n_jobs: int, params: dict[str, Any]) -> BaseEstimator:
    """:class:`~matfuse.transfer.finetune.TransferMLPRegressor`: a source net of the shipped
    library (``source="auto"``: the best by 5-fold CV) fine-tuned end to end on compositions,
    body at lr 1e-4, new head at 1e-3, early stopping on 20 % of the rows. Lazy: torch."""
    from matfuse.transfer.finetune import TransferMLPRegressor

    return TransferMLPRegressor(**{"random_state": random_state, "n_threads": n_jobs, **params})


#: Every downstream model by name, in the order front ends list them (``auto`` last).
MODELS: Registry[ModelSpec] = Registry("model")


def register_model(
    name: str,
    builder: Builder | None,
    *,
    description: str,
    regression: bool = True,
    classification: bool = True,
    native_uncertainty: Iterable[str] = (),
    input_kinds: Iterable[str] = (),
    tags: Iterable[str] = (),
    aliases: Iterable[str] = (),
    overwrite: bool = False,
    block_aware: bool = False,
) -> ModelSpec:
    """Register a downstream model under ``name`` and return its :class:`ModelSpec`.

    Tags, which front ends filter on, are the supported tasks, ``native-uncertainty``,
    ``end-to-end`` plus the input kinds for a model that reads inputs itself (``features``
    otherwise), and any extra ``tags`` (a model family: ``trees``, ``kernel``...).
    """
    spec = ModelSpec(
        name,
        description,
        regression,
        classification,
        tuple(native_uncertainty),
        tuple(input_kinds),
        builder,
        block_aware=block_aware,
    )
    derived = set(spec.tasks) | set(spec.input_kinds)
    derived.add("end-to-end" if spec.end_to_end else "features")
    if spec.native_uncertainty:
        derived.add("native-uncertainty")
    MODELS.add(
        name,
        spec,
        description=description,
        tags=derived | set(tags),
        aliases=aliases,
        overwrite=overwrite,
    )
    return spec


register_model(
    "xgboost",
    _build_xgboost,
    description="XGBoost gradient-boosted trees (native NaN handling)",
    tags={"trees", "boosting"},
    aliases=("xgb",),
)
register_model(
    "lightgbm",
    _build_lightgbm,
    description="LightGBM gradient-boosted trees (native NaN handling)",
    tags={"trees", "boosting"},
    aliases=("lgbm",),
)
register_model(
    "rf",
    _build_rf,
    description="Random forest; per-tree spread as native uncertainty",
    native_uncertainty=("regression", "classification"),
    tags={"trees"},
    aliases=("random-forest",),
)
register_model(
    "svr",
    _build_svr,
    description="RBF support vector machine (SVR / Platt-calibrated SVC)",
    tags={"kernel"},
    aliases=("svm",),
)
register_model(
    "krr",
    _build_krr,
    description="RBF kernel ridge / Nystroem kernel logistic regression",
    tags={"kernel"},
)
register_model(
    "gp",
    _build_gp,
    description="Gaussian process (RBF + noise); posterior std as native uncertainty; O(n^3)",
    native_uncertainty=("regression",),
    tags={"kernel"},
    aliases=("gaussian-process",),
)
register_model(
    "linear",
    _build_linear,
    description="RidgeCV / LogisticRegressionCV baseline",
    tags={"linear"},
)
register_model(
    "crystal-graph",
    _build_crystal_graph,
    description="Crystal graph network (CGCNN-style) trained end to end on structures; regression",
    classification=False,
    input_kinds=("structure",),
    tags={"neural", "torch"},
    aliases=("cgcnn",),
)
register_model(
    "fusion-moe",
    _build_learned_fusion("moe"),
    description="Learned fusion: gated mixture of experts over encoder blocks (torch ensemble)",
    native_uncertainty=("regression", "classification"),
    block_aware=True,
    tags={"neural", "torch", "fusion"},
)
register_model(
    "fusion-attention",
    _build_learned_fusion("attention"),
    description="Learned fusion: a query attending over encoder blocks (torch ensemble)",
    native_uncertainty=("regression", "classification"),
    block_aware=True,
    tags={"neural", "torch", "fusion"},
)
for _encoder in ("selfies-ted", "smi-ted", "smi-ssed", "graph-ged"):
    register_model(
        f"finetune-{_encoder}",
        _build_finetuned_encoder(_encoder),
        description=f"Pretrained {_encoder} encoder fine-tuned end to end with a small head",
        native_uncertainty=("regression", "classification"),
        input_kinds=("molecule",),
        tags={"neural", "torch", "foundation"},
    )
register_model(
    "transfer-mlp",
    lambda task, n, seed, n_jobs, params: _build_transfer_mlp(seed, n_jobs, params),
    description="Source property MLP (transfer library) fine-tuned on the target; regression",
    classification=False,
    input_kinds=("composition",),
    tags={"neural", "torch", "transfer"},
)
register_model(
    "auto",
    None,
    description=f"rf below {AUTO_SMALL_DATA} labelled rows, xgboost otherwise",
    tags={"auto"},
)


def list_models(kind: str | None = None, task: str | None = None) -> list[ModelSpec]:
    """Registry entries in a stable order (``auto`` last), optionally only those that learn
    from inputs of ``kind`` and can be built for ``task`` (what a dropdown should offer).

    >>> [s.name for s in list_models(kind="molecule", task="regression")][-1]
    'auto'
    """
    if task is not None:
        _check_task(task)
    specs = [e.obj for e in MODELS.entries(sort=False)]
    return [
        s
        for s in specs
        if (kind is None or s.applies_to(kind)) and (task is None or s.supports(task))
    ]


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` (or an alias); an unknown name raises
    :class:`~matfuse.registry.UnknownNameError`, a ``ValueError`` naming the valid choices."""
    return MODELS.get(name)


def resolve_model_name(name: str, task: str, n_samples: int | None = None) -> str:
    """Turn ``"auto"`` into a concrete registry name; other names are returned unchanged.

    Why these choices: gradient boosting (XGBoost) is the most reliable off-the-shelf learner on
    fused fingerprint + descriptor matrices from a few hundred molecules upwards, handles NaN
    blocks natively and is fast on wide sparse input. Below :data:`AUTO_SMALL_DATA` labelled rows
    there is not enough data to validate a 500-tree boosting schedule and its variance dominates;
    a random forest is then the safer default: it has no learning-rate/depth trade-off to get
    wrong, averages away variance, works for both tasks, and provides per-tree spread as native
    uncertainty. A GP was considered for small regression sets but an isotropic RBF over thousands
    of standardised bits weighs every bit equally, which makes it fragile on fingerprints; it
    remains available as ``"gp"``. With ``n_samples=None`` (size unknown) XGBoost is chosen.
    How a heavy-tailed regression target is fitted (the loss-side half of ``auto``) is decided
    per target from its labels by ``PropertyEstimator(target_transform="auto")``, see
    :mod:`matfuse.models.transforms`.
    """
    _check_task(task)
    spec = get_spec(name)
    if spec.name != "auto":
        return spec.name
    if n_samples is not None and n_samples < AUTO_SMALL_DATA:
        return "rf"
    return "xgboost"


def make_estimator(
    name: str,
    task: str,
    n_samples: int | None = None,
    random_state: int = 0,
    n_jobs: int = 1,
    **params: Any,
) -> BaseEstimator:
    """Build an unfitted, NaN-tolerant sklearn estimator for registry entry ``name``.

    Parameters
    ----------
    name:
        A registry name (see :func:`list_models`), including ``"auto"``.
    task:
        ``"regression"`` or ``"classification"``.
    n_samples:
        Number of training rows, if known: used by ``auto`` and to size a few data-dependent
        defaults (LightGBM leaf size, Nystroem landmarks).
    random_state:
        Seed passed to every stochastic component, so fits are reproducible.
    n_jobs:
        Threads for models that parallelise; 1 by default because matfuse usually runs several
        targets or CV folds side by side.
    **params:
        Overrides for the core model's hyperparameters (see the module docstring).
    """
    _check_task(task)
    resolved = resolve_model_name(name, task, n_samples)
    spec = MODELS.get(resolved)
    if not spec.supports(task):
        raise ValueError(f"model {resolved!r} does not support {task}")
    assert spec.builder is not None  # only "auto" has no builder and it was resolved above
    return spec.builder(task, n_samples, random_state, n_jobs, dict(params))
