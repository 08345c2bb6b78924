"""Downstream models: registry, the multi-task ``PropertyEstimator``, tuning and safe persistence.

Typical use::

    from matfuse.models import PropertyEstimator
    est = PropertyEstimator(model="auto", uncertainty="auto").fit(X, Y)
    est.predict(X_new), est.predict_interval(X_new)
    est.save("model_dir"); PropertyEstimator.load("model_dir")
"""

from matfuse.models.conformal import CONFORMAL_METHODS
from matfuse.models.estimator import PropertyEstimator
from matfuse.models.persistence import UnsafeModelError, load_estimator, save_estimator
from matfuse.models.registry import (
    ModelSpec,
    get_spec,
    list_models,
    make_estimator,
    resolve_model_name,
)
from matfuse.models.tasks import infer_task_types
from matfuse.models.tuning import tune
from matfuse.models.uncertainty import UNCERTAINTY_MODES

__all__ = [
    "CONFORMAL_METHODS",
    "UNCERTAINTY_MODES",
    "ModelSpec",
    "PropertyEstimator",
    "UnsafeModelError",
    "get_spec",
    "infer_task_types",
    "list_models",
    "load_estimator",
    "make_estimator",
    "resolve_model_name",
    "save_estimator",
    "tune",
]
