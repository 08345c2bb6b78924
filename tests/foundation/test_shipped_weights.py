"""The weights shipped in ``matfuse/weights/<name>/`` pass their manifest and encode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matfuse.encoders import get_encoder
from matfuse.foundation.model_dir import MODEL_KIND, load_model_dir
from matfuse.foundation.weights import shipped_models, weights_dir

SHIPPED = ["graph-ged", "selfies-ted", "smi-ssed", "smi-ted"]


def test_the_four_models_ship():
    assert shipped_models() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_through_its_manifest_and_encodes(name):
    manifest = json.loads((weights_dir(name) / "manifest.json").read_text())
    assert manifest["kind"] == MODEL_KIND
    loaded = load_model_dir(weights_dir(name))
    assert loaded.name == name and loaded.config.latent_dim == 128
    Z = get_encoder(name).encode(["CCO", "not a molecule"])
    assert Z.shape == (2, 128) and np.isfinite(Z[0]).all() and np.isnan(Z[1]).all()
