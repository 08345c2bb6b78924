"""The search loop: budget, failures, ranking, and exact resume from the journal.

A fake relaxer (no network) stands in for CHGNet so that these run in a second: it returns
the structure unchanged with an energy that favours dense cells, and counts its calls.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pyxtal")

from matfuse.crystals.journal import JOURNAL_NAME, Journal  # noqa: E402
from matfuse.crystals.search import crystal_structure_prediction  # noqa: E402
from matfuse.materials.energy import RelaxResult  # noqa: E402


class FakeRelaxer:
    """Energy per atom = -(atoms per volume) * 10; fails on every ``fail_every``-th call."""

    def __init__(self, formula: str = "NaCl", fail_every: int = 0) -> None:
        self.formula = formula
        self.fail_every = fail_every
        self.candidate_calls = 0
        self.reference_calls = 0

    def __call__(self, structure, relax_cell=True):
        if structure.composition.reduced_formula != self.formula:
            self.reference_calls += 1  # elemental references
            return RelaxResult(structure.copy(), 0.0, True, 1)
        self.candidate_calls += 1
        if self.fail_every and self.candidate_calls % self.fail_every == 0:
            raise RuntimeError("exploded")
        energy = -10.0 * len(structure) / structure.volume
        return RelaxResult(structure.copy(), energy, True, 1)


class Interrupted(Exception):
    pass


def _run(out, relaxer, budget=4, on_progress=None, strategy="random"):
    return crystal_structure_prediction(
        "NaCl",
        z=(1, 2),
        strategy=strategy,
        budget=budget,
        seed=3,
        out_dir=out,
        on_progress=on_progress,
        relaxer=relaxer,
        potential="fake",
        write_outputs=False,
    )


def test_ranked_by_energy_with_failures_counted_not_fatal(tmp_path):
    relaxer = FakeRelaxer(fail_every=2)
    result = _run(tmp_path / "run", relaxer, budget=4)
    assert result.n_relaxations == 4 and relaxer.candidate_calls == 4
    assert result.n_failed == 2
    ok = [c for c in result.candidates if c.error is None]
    assert [c.energy_per_atom for c in ok] == sorted(c.energy_per_atom for c in ok)
    assert all(c.error.startswith("relaxation failed") for c in result.candidates[2:])
    assert result.best.e_above_hull == pytest.approx(0.0, abs=1e-9)
    table = result.table()
    assert {
        "cif",
        "energy_per_atom",
        "e_above_hull",
        "spacegroup",
        "formula",
        "origin",
        "rmsd",
        "potential",
    } <= set(table.columns)
    assert table["potential"].eq("fake").all()


def test_resume_after_interruption_relaxes_each_candidate_once(tmp_path):
    full = _run(tmp_path / "full", FakeRelaxer(), budget=4)

    relaxer = FakeRelaxer()

    def stop_after_two(n, budget, best, origin):
        if n == 2:
            raise Interrupted  # as a kill right after the second record hit the disk

    with pytest.raises(Interrupted):
        _run(tmp_path / "resumed", relaxer, budget=4, on_progress=stop_after_two)
    journal = tmp_path / "resumed" / JOURNAL_NAME
    assert len(Journal(journal).of_kind("candidate")) == 2
    # a kill -9 in the middle of a write leaves half a line: it is dropped on reopening
    with journal.open("a") as fh:
        fh.write('{"kind": "candidate", "index": 2, "orig')
    result = _run(tmp_path / "resumed", relaxer, budget=4)
    assert relaxer.candidate_calls == 4  # 2 before the interruption + 2 after, none twice
    assert result.n_resumed == 2 and result.n_relaxations == 4
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [r["index"] for r in records if r["kind"] == "candidate"] == [0, 1, 2, 3]
    assert sorted(c.origin for c in result.candidates) == sorted(c.origin for c in full.candidates)
    # a larger budget continues the same search; other options are refused
    again = _run(tmp_path / "resumed", relaxer, budget=5)
    assert relaxer.candidate_calls == 5 and again.n_resumed == 4
    with pytest.raises(ValueError, match="different search"):
        _run(tmp_path / "resumed", relaxer, strategy="mixed")


def test_substitution_stops_when_its_prototypes_run_out(tmp_path):
    relaxer = FakeRelaxer()
    result = _run(tmp_path / "sub", relaxer, budget=50, strategy="substitution")
    assert 1 <= result.n_relaxations == relaxer.candidate_calls < 50


# ------------------------------------------------------------------- parallel (dask)


@pytest.fixture(scope="module")
def dask_pool():
    pytest.importorskip("distributed")
    import sys

    import cloudpickle

    from matfuse.crystals.parallel import DaskPool

    # the workers cannot import this test module: send FakeRelaxer by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with DaskPool(workers=2) as pool:  # two process workers, as on a laptop
        yield pool


class StatelessRelaxer(FakeRelaxer):
    """As FakeRelaxer, but failing by the structure (4-atom cells), not by a call count:
    each worker process has its own copy, so a counter would differ between runs."""

    def __call__(self, structure, relax_cell=True):
        if structure.composition.reduced_formula == self.formula and len(structure) == 4:
            raise RuntimeError("exploded")
        return super().__call__(structure, relax_cell)


def _fingerprint(result):
    return [
        (c.index, c.origin, None if c.error else c.energy_per_atom, c.error)
        for c in result.by_evaluation()
    ]


def _search(out, pool=None, strategy="random", budget=6, batch_size=None, on_progress=None):
    return crystal_structure_prediction(
        "NaCl",
        z=(1, 2),
        strategy=strategy,
        budget=budget,
        seed=5,
        out_dir=out,
        relaxer=StatelessRelaxer(),
        potential="fake",
        write_outputs=False,
        pool=pool,
        batch_size=batch_size,
        on_progress=on_progress,
    )


def test_dask_workers_give_the_serial_results(tmp_path, dask_pool):
    assert dask_pool.n_workers == 2
    serial = _search(tmp_path / "serial")
    parallel = _search(tmp_path / "parallel", pool=dask_pool)
    assert _fingerprint(parallel) == _fingerprint(serial)
    assert parallel.n_relaxations == 6  # the budget counts relaxations exactly
    assert 0 < parallel.n_failed < 6  # failures recorded, not fatal
    records = Journal(tmp_path / "parallel" / JOURNAL_NAME).of_kind("candidate")
    assert sorted(r["index"] for r in records) == list(range(6))


def test_learning_generator_in_batches_matches_serial_batches(tmp_path, dask_pool):
    pytest.importorskip("ase_ga")
    # ea proposes from the results it has seen: a batch of 2 is the unit of the search
    serial = _search(tmp_path / "serial", strategy="ea", budget=9, batch_size=2)
    parallel = _search(tmp_path / "parallel", pool=dask_pool, strategy="ea", budget=9)
    assert _fingerprint(parallel) == _fingerprint(serial)
    assert any(":init:" not in c.origin for c in parallel.candidates)  # offspring happened
    params = json.loads((tmp_path / "parallel" / "run.json").read_text())
    assert params["batch_size"] == 2
    with pytest.raises(ValueError, match="batch_size"):
        _search(tmp_path / "parallel", strategy="ea", budget=9)  # serial resume refused


def test_parallel_run_resumes_after_interruption(tmp_path, dask_pool):
    full = _search(tmp_path / "full")

    def stop_after_three(n, budget, best, origin):
        if n == 3:
            raise Interrupted  # in the middle of the second batch of two

    with pytest.raises(Interrupted):
        _search(tmp_path / "cut", pool=dask_pool, on_progress=stop_after_three)
    journal = tmp_path / "cut" / JOURNAL_NAME
    assert len(Journal(journal).of_kind("candidate")) == 3
    resumed = _search(tmp_path / "cut", pool=dask_pool)
    assert resumed.n_resumed == 3
    assert _fingerprint(resumed) == _fingerprint(full)
    indices = [r["index"] for r in Journal(journal).of_kind("candidate")]
    assert sorted(indices) == list(range(6))  # nothing relaxed twice


def test_an_existing_scheduler_is_used_by_address(tmp_path):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from matfuse.crystals.parallel import DaskPool, make_pool

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster:
        with DaskPool(scheduler=cluster.scheduler_address) as pool:
            assert pool.n_workers == 2 and "scheduler" in pool.description
            result = _search(tmp_path / "remote", pool=pool, budget=4)
    assert _fingerprint(result) == _fingerprint(_search(tmp_path / "serial", budget=4))
    with pytest.raises(ValueError, match="at least 1"):
        make_pool(workers=0)
