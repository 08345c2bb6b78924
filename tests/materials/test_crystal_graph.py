"""The end-to-end crystal graph regressor: learns, stays row-aligned, saves without pickle."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from matfuse.materials.crystal_graph import CrystalGraphRegressor, crystal_graph


def _data(build, n=40, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(3.6, 4.4, n)
    structures = [build.perovskite(float(x), ("Sr", "Ti", "O")) for x in a]
    return structures, 3.0 * (a - 4.0)  # a property of the geometry alone


def test_graph_has_nearest_neighbours_with_images(build):
    g = crystal_graph(build.rocksalt(5.64), cutoff=4.5, max_neighbors=6)
    assert g.numbers.tolist() == [11] * 4 + [17] * 4
    assert g.centers.size == 8 * 6
    np.testing.assert_allclose(g.distances, 2.82, atol=1e-6)  # six Cl around each Na


def test_learns_lattice_dependence_and_keeps_rows(build, tmp_path):
    X, y = _data(build)
    reg = CrystalGraphRegressor(hidden=32, epochs=40, batch_size=8, lr=5e-3)
    reg.fit(X, y)
    assert reg.loss_curve_[-1] < 0.2 * reg.loss_curve_[0]
    test_X, test_y = _data(build, n=10, seed=1)
    pred = reg.predict([*test_X[:5], "not a crystal", *test_X[5:]])
    assert np.isnan(pred[5]) and np.isfinite(np.delete(pred, 5)).all()
    mae = np.abs(np.delete(pred, 5) - test_y).mean()
    assert mae < 0.5 * np.abs(test_y - y.mean()).mean()  # clearly better than the mean
    reg.save(tmp_path / "cg")
    again = CrystalGraphRegressor.load(tmp_path / "cg")
    np.testing.assert_allclose(again.predict(test_X), np.delete(pred, 5), rtol=1e-5)
    assert clone(reg).get_params() == reg.get_params()


def test_seed_makes_fits_reproducible(build):
    X, y = _data(build, n=16)
    a = CrystalGraphRegressor(hidden=16, epochs=3, batch_size=8).fit(X, y).predict(X)
    b = CrystalGraphRegressor(hidden=16, epochs=3, batch_size=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_needs_two_labelled_structures(build):
    with pytest.raises(ValueError, match="fewer than two"):
        CrystalGraphRegressor(epochs=1).fit([build.perovskite(), "junk"], [1.0, 2.0])
