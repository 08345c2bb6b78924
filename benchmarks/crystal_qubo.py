"""QUBO site-occupancy annealing against exhaustive enumeration: Cu-Au on an fcc lattice.

Part of issue 15 (the QUBO table). The problem: place the Au atoms of CuAu (x = 1/2) and of
Cu3Au (x = 1/4) on the sites of an fcc supercell of N sites, at a fixed lattice (Vegard's
law volume, no relaxation), with CHGNet single-point energies as the potential. For each
cell (the most compact supercell of N sites, :func:`matfuse.crystals.qubo.compact_supercell`)
and each of three seeds:

- a point + pair cluster expansion (3 shells) is fitted to CHGNet energies of ``--n-train``
  random orderings (:func:`~matfuse.crystals.qubo.anneal_ordering`), with its 5-fold CV error;
- (a) the fitted model is solved exhaustively (plain ``itertools.combinations`` over every
  labelled ordering, symmetry-equivalent ones included; only while the count is under
  ``--max-enumerate``) and by simulated annealing (dwave-neal, ``--reads`` reads x
  ``--sweeps`` sweeps) with ``--anneal-seeds`` annealer seeds: the recovery rate is how often
  the annealer's best equals the enumeration minimum;
- (b) CHGNet's energy of the annealed ordering (best of the ``--top-k`` annealed, re-scored)
  against that of the enumerated model ground state, and, for cells with at most
  ``--exhaust-potential`` orderings, against CHGNet's own minimum over every ordering;
- (c) CPU and wall time of annealing and of enumeration as N grows;
- (d) a trivial baseline: the best of random orderings at an equal number of CHGNet calls
  (training set + re-scoring), and, at the model level, the best of ``--reads`` random
  orderings (as many as the annealer's reads).

Published reference: the experimental Cu-Au phase diagram's ordered phases, L1_0 for CuAu
and L1_2 for Cu3Au; we report whether the best annealed ordering matches them
(``StructureMatcher``, MatterGen's settings) and whether the cell can hold them at all.

    nice -n 10 python benchmarks/crystal_qubo.py --max-minutes 40
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from _data import RESULTS, provenance, write_json

logger = logging.getLogger(__name__)

#: formula -> (host, dopant, dopant fraction, known ordered phase)
SYSTEMS = {"CuAu": ("Cu", "Au", 0.5, "L1_0"), "Cu3Au": ("Cu", "Au", 0.25, "L1_2")}
CELLS = [4, 8, 12, 16, 24, 32, 48, 64]
_STARTED = time.monotonic()


def known_ordering(name: str, a: float) -> Any:
    """L1_0 (CuAu: Cu and Au layers alternating along c) or L1_2 (Cu3Au: Au on the cube
    corners, Cu on the face centres), on a cubic fcc lattice of parameter ``a``."""
    from pymatgen.core import Lattice, Structure

    if name == "L1_0":
        return Structure(
            Lattice.tetragonal(a / math.sqrt(2), a), ["Cu", "Au"], [[0, 0, 0], [0.5] * 3]
        )
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), ["Au", "Cu", "Cu", "Cu"], coords)


def commensurate(cell: Any, a: float, name: str) -> bool:
    """Whether the supercell's lattice is a sublattice of the ordered phase's translations
    (in any of its orientations), i.e. whether the cell can hold that ordering."""
    vectors = cell.lattice.matrix / a  # cubic axes, units of the fcc lattice parameter
    if name == "L1_2":
        return bool(np.allclose(vectors, np.round(vectors), atol=1e-4))
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        along = vectors[:, axis]
        in_plane = vectors[:, others].sum(axis=1)
        if np.allclose(along, np.round(along), atol=1e-4) and np.allclose(
            in_plane, np.round(in_plane), atol=1e-4
        ):
            return True
    return False


def _matches(structure: Any, reference: Any) -> bool:
    from matfuse.crystals.matching import mattergen_matcher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(mattergen_matcher().fit(structure, reference))


def conventional_supercell(host: str, a: float, n_sites: int) -> Any:
    """The conventional fcc cube repeated p x q x r times (p <= q <= r, as balanced as
    possible) to ``n_sites`` sites: every such cell holds both L1_0 and L1_2."""
    from pymatgen.core import Lattice, Structure

    if n_sites % 4:
        raise ValueError(f"{n_sites} sites is not a whole number of fcc cubes")
    k = n_sites // 4
    p, q, r = min(
        (
            (p, q, k // (p * q))
            for p in range(1, k + 1)
            for q in range(p, k + 1)
            if k % (p * q) == 0 and k // (p * q) >= q
        ),
        key=lambda t: (t[2] - t[0], t),
    )
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [host] * 4, coords) * (r, q, p)


def run_cell(
    formula: str, n_sites: int, seed: int, args: argparse.Namespace, energy_fn: Any
) -> dict[str, Any]:
    from pymatgen.core import Composition

    from matfuse.crystals import qubo

    host, dopant, fraction, phase = SYSTEMS[formula]
    n_dopant = int(round(fraction * n_sites))
    parent = qubo.default_parent(Composition(formula))
    a = parent.lattice.a * math.sqrt(2)  # primitive fcc vector = a / sqrt(2)
    cell = conventional_supercell(host, a, n_sites)
    sites = list(range(n_sites))
    n_orderings = math.comb(n_sites, n_dopant)
    row: dict[str, Any] = {
        "formula": formula,
        "n_sites": n_sites,
        "n_dopant": n_dopant,
        "seed": seed,
        "n_orderings": n_orderings,
        "known_phase": phase,
        "commensurate": commensurate(cell, a, phase),
    }

    cpu, wall = time.process_time(), time.time()
    result = qubo.anneal_ordering(
        cell,
        host,
        dopant,
        n_dopant,
        energy_fn=energy_fn,
        n_train=args.n_train,
        n_shells=3,
        top_k=args.top_k,
        num_reads=args.reads,
        num_sweeps=args.sweeps,
        seed=seed,
    )
    model = result.expansion
    row |= {
        "pipeline_cpu_s": time.process_time() - cpu,
        "pipeline_wall_s": time.time() - wall,
        "cpu_s_parts": result.cpu_seconds,
        "n_potential_calls": result.n_potential_calls,
        "n_train": model.n_train_,
        "cv_rmse_mev_per_site": 1000 * model.cv_rmse_,
        "ecis": model.ecis_.tolist(),
        "feasible_fraction": result.feasible_fraction,
        "annealed_energy_per_atom": float(result.energies_per_atom[0]),
        "annealed_matches_known": _matches(result.structures[0], known_ordering(phase, a)),
    }

    # (a) + (c): the fitted model, exhaustively and by annealing with several annealer seeds
    bqm = model.to_bqm(n_dopant)
    _, h, q = model.qubo_terms()
    w = q + q.T
    best: dict[str, list[float]] = {"raw": [], "polished": [], "random_polished": []}
    anneal_cpu, anneal_wall = [], []
    for k in range(args.anneal_seeds):
        anneal_seed = 1000 * seed + k
        cpu, wall = time.process_time(), time.time()
        found, _ = qubo.anneal_bqm(
            bqm, n_dopant, num_reads=args.reads, num_sweeps=args.sweeps, seed=anneal_seed
        )
        anneal_cpu.append(time.process_time() - cpu)
        anneal_wall.append(time.time() - wall)
        best["polished"].append(float(model.predict(found[:1])[0]))
        raw, _ = qubo.anneal_bqm(
            bqm,
            n_dopant,
            num_reads=args.reads,
            num_sweeps=args.sweeps,
            seed=anneal_seed,
            polish=False,
        )
        best["raw"].append(float(model.predict(raw[:1])[0]) if len(raw) else math.inf)
        # the same swap descent from random starts, as many as the annealer's reads
        starts = qubo.random_occupancies(n_sites, n_dopant, args.reads, seed=30_000 + anneal_seed)
        descended = np.array([qubo._swap_descent(x, h, w, n_dopant) for x in starts])
        best["random_polished"].append(float(model.predict(descended).min()))
    row |= {"anneal_cpu_s": anneal_cpu, "anneal_wall_s": anneal_wall}
    row |= {f"{key}_model_best": v for key, v in best.items()}
    random_x = qubo.random_occupancies(n_sites, n_dopant, args.reads, seed=20_000 + seed)
    row["random_model_best"] = float(model.predict(random_x).min())
    if n_orderings <= args.max_enumerate:
        cpu, wall = time.process_time(), time.time()
        x_gs, e_gs, count = qubo.enumerate_ground_state(model, n_dopant)
        tol = 1e-6 * max(1.0, abs(e_gs))
        row |= {
            "enumerate_cpu_s": time.process_time() - cpu,
            "enumerate_wall_s": time.time() - wall,
            "model_ground_state": e_gs,
            "random_model_gap_mev_per_site": 1000 * (row["random_model_best"] - e_gs) / n_sites,
        }
        row |= {f"recovered_{key}": [bool(e <= e_gs + tol) for e in v] for key, v in best.items()}
        # (b) the potential's energy of the enumerated model ground state
        gs_structure = qubo.decorate(cell, sites, x_gs, host, dopant)
        row["enumerated_energy_per_atom"] = float(energy_fn([gs_structure])[0])
        row["enumerated_matches_known"] = _matches(gs_structure, known_ordering(phase, a))

    # (d) random orderings at an equal number of potential calls
    baseline = qubo.random_occupancies(
        n_sites, n_dopant, result.n_potential_calls, seed=10_000 + seed
    )
    e_random = energy_fn([qubo.decorate(cell, sites, x, host, dopant) for x in baseline])
    row["random_baseline_energy_per_atom"] = float(np.nanmin(e_random))
    row["random_baseline_calls"] = len(baseline)

    # the potential's own minimum where every ordering can be evaluated
    if n_orderings <= args.exhaust_potential and seed == args.seeds[0]:
        every = [
            qubo.decorate(cell, sites, np.array([int(i in c) for i in sites]), host, dopant)
            for c in itertools.combinations(sites, n_dopant)
        ]
        cpu = time.process_time()
        e_all = energy_fn(every)
        row["potential_exhaustive_energy_per_atom"] = float(np.nanmin(e_all))
        row["potential_exhaustive_cpu_s"] = time.process_time() - cpu
    return row


def _stats(values: list[float]) -> tuple[float, float]:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted(
        {(r["formula"], r["n_sites"]) for r in rows}, key=lambda k: (k[0] != "CuAu", k[1])
    )
    for formula, n in keys:
        sub = [r for r in rows if r["formula"] == formula and r["n_sites"] == n]
        recovered = {
            key: [x for r in sub for x in r.get(f"recovered_{key}", [])]
            for key in ("raw", "polished", "random_polished")
        }
        exhaust = [
            r["potential_exhaustive_energy_per_atom"]
            for r in sub
            if "potential_exhaustive_energy_per_atom" in r
        ]
        s: dict[str, Any] = {
            "formula": formula,
            "n_sites": n,
            "n_orderings": sub[0]["n_orderings"],
            "commensurate": sub[0]["commensurate"],
            "known_phase": sub[0]["known_phase"],
            "n_seeds": len(sub),
            "recovered": {key: sum(v) for key, v in recovered.items()},
            "recovery_runs": len(recovered["polished"]),
            "cv_rmse_mev_per_site": _stats([r["cv_rmse_mev_per_site"] for r in sub]),
            "anneal_cpu_s": _stats([x for r in sub for x in r["anneal_cpu_s"]]),
            "anneal_wall_s": _stats([x for r in sub for x in r["anneal_wall_s"]]),
            "enumerate_cpu_s": _stats([r.get("enumerate_cpu_s", float("nan")) for r in sub]),
            "enumerate_wall_s": _stats([r.get("enumerate_wall_s", float("nan")) for r in sub]),
            "annealed_energy_per_atom": _stats([r["annealed_energy_per_atom"] for r in sub]),
            "enumerated_energy_per_atom": _stats(
                [r.get("enumerated_energy_per_atom", float("nan")) for r in sub]
            ),
            "random_baseline_energy_per_atom": _stats(
                [r["random_baseline_energy_per_atom"] for r in sub]
            ),
            "random_model_gap_mev_per_site": _stats(
                [r.get("random_model_gap_mev_per_site", float("nan")) for r in sub]
            ),
            "potential_exhaustive_energy_per_atom": exhaust[0] if exhaust else None,
            "matches_known": sum(r["annealed_matches_known"] for r in sub),
            "enumerated_matches_known": sum(r.get("enumerated_matches_known", False) for r in sub),
            "n_potential_calls": sub[0]["n_potential_calls"],
            "pipeline_cpu_s": _stats([r["pipeline_cpu_s"] for r in sub]),
        }
        out.append(s)
    return out


def _pm(pair: tuple[float, float], fmt: str = ".3f") -> str:
    mean, std = pair
    return "—" if not np.isfinite(mean) else f"{mean:{fmt}} ± {std:{fmt}}"


def _rate(s: dict[str, Any], key: str) -> str:
    if not s["recovery_runs"]:
        return "not enumerated"
    return f"{s['recovered'][key]}/{s['recovery_runs']}"


def markdown(result: dict[str, Any]) -> str:
    a, prov = result["args"], result["provenance"]
    lines = [
        "# QUBO site-occupancy annealing vs exhaustive enumeration (Cu-Au on fcc)",
        "",
        *[
            f"Earlier run (rows kept): `{e['command']}` ({e['date']})  "
            for e in result.get("earlier_provenance", [])
        ],
        f"Command: `{prov['command']}`  ",
        f"Date: {prov['date']}; machine: {prov['machine']}  ",
        f"Potential (every energy: training set, re-scoring, baselines): {result['potential']}, "
        "single points on a fixed fcc lattice at Vegard's-law volume (no relaxation). Cells: the "
        "conventional fcc cube repeated p x q x r times (all hold L1_0 and L1_2).  ",
        "Model: point + pair cluster expansion, 3 neighbour shells, ridge alpha 1e-6, fitted to "
        f"{a['n_train']} random orderings at the target composition (5-fold CV RMSE). QUBO: the "
        "composition as a quadratic penalty (twice the largest single-flip energy change); "
        f"dwave-neal simulated annealing, {a['reads']} reads x {a['sweeps']} sweeps; every read "
        "then repaired to the composition and refined by A<->B swap descent ('SA + swaps'). "
        f"Seeds {a['seeds']} (training set), {a['anneal_seeds']} annealer seeds per fitted model. "
        "Enumeration: plain `itertools.combinations` over every labelled ordering "
        f"(symmetry-equivalent ones included), run while C(N, n) <= {a['max_enumerate']:.0e}. "
        "Times are CPU seconds (wall in the JSON), mean ± std over runs, on a shared 2-core "
        "machine.",
        "",
        "## (a, c) Solving the fitted model: recovery of the enumeration ground state and time",
        "",
        "| system | N | orderings C(N,n) | CV RMSE (meV/site) | SA alone | SA + swaps | "
        "random starts + swaps | best of random (gap, meV/site) | anneal CPU s | "
        "enumeration CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        lines.append(
            f"| {s['formula']} | {s['n_sites']} | {s['n_orderings']:,} | "
            f"{_pm(s['cv_rmse_mev_per_site'], '.2f')} | {_rate(s, 'raw')} | "
            f"{_rate(s, 'polished')} | {_rate(s, 'random_polished')} | "
            f"{_pm(s['random_model_gap_mev_per_site'], '.1f')} | "
            f"{_pm(s['anneal_cpu_s'], '.3f')} | {_pm(s['enumerate_cpu_s'], '.2f')} |"
        )
    lines += [
        "",
        "SA alone: the best feasible raw read; random starts + swaps: the same swap descent from "
        f"{a['reads']} random orderings (as many starts as the annealer's reads); best of random: "
        f"{a['reads']} random orderings scored by the model.",
        "",
        "## (b, d) The orderings by the potential, and the known ordered phases",
        "",
        "| system | N | E annealed (eV/atom) | E of enumerated model GS | E random, equal calls | "
        "potential's own min (all orderings) | annealed = known phase | enumerated = known phase |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        exh = s["potential_exhaustive_energy_per_atom"]
        known = s["known_phase"]
        enumerated = (
            f"{s['enumerated_matches_known']}/{s['n_seeds']}" if s["recovery_runs"] else "—"
        )
        lines.append(
            f"| {s['formula']} | {s['n_sites']} | {_pm(s['annealed_energy_per_atom'], '.4f')} | "
            f"{_pm(s['enumerated_energy_per_atom'], '.4f')} | "
            f"{_pm(s['random_baseline_energy_per_atom'], '.4f')} | "
            f"{'—' if exh is None else f'{exh:.4f}'} | "
            f"{known}: {s['matches_known']}/{s['n_seeds']} | {enumerated} |"
        )
    lines += [
        "",
        "E annealed: the best of the top-"
        f"{a['top_k']} annealed orderings after re-scoring with the potential; E random, equal "
        f"calls: the best of as many random orderings as the QUBO route made potential calls "
        f"({a['n_train']} training + {a['top_k']} re-scoring); potential's own min: the potential "
        f"on every ordering, where there are at most {a['exhaust_potential']}. Published "
        "reference: the ordered phases of the experimental Cu-Au phase diagram, L1_0 for CuAu "
        "and L1_2 for Cu3Au; 'known phase' counts seeds whose best ordering matches it "
        "(StructureMatcher, MatterGen's settings).",
        "",
        "Caveats: energies are CHGNet's on an unrelaxed cubic lattice (an MLIP proxy, not DFT; "
        "L1_0's tetragonal c/a relaxation is absent); the expansion is pair-only and fitted at one "
        "composition, so its point term is not identified (constant there).",
        "",
    ]
    return "\n".join(lines)


def figure(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for formula, marker in (("CuAu", "o"), ("Cu3Au", "s")):
        sub = [s for s in result["summary"] if s["formula"] == formula]
        n = [s["n_sites"] for s in sub]
        ax1.plot(
            n, [s["anneal_cpu_s"][0] for s in sub], marker=marker, label=f"{formula} annealing"
        )
        en = [
            (s["n_sites"], s["enumerate_cpu_s"][0])
            for s in sub
            if np.isfinite(s["enumerate_cpu_s"][0])
        ]
        if en:
            ax1.plot(
                *zip(*en, strict=True),
                marker=marker,
                linestyle="--",
                label=f"{formula} enumeration",
            )
        ref = [
            min(s["annealed_energy_per_atom"][0], s["random_baseline_energy_per_atom"][0])
            for s in sub
        ]
        ax2.plot(
            n,
            [
                1000 * (s["random_baseline_energy_per_atom"][0] - r)
                for s, r in zip(sub, ref, strict=True)
            ],
            marker=marker,
            linestyle="--",
            label=f"{formula} random (equal calls)",
        )
        ax2.plot(
            n,
            [1000 * (s["annealed_energy_per_atom"][0] - r) for s, r in zip(sub, ref, strict=True)],
            marker=marker,
            label=f"{formula} QUBO annealing",
        )
    ax1.set_yscale("log")
    ax1.set_xlabel("sites N")
    ax1.set_ylabel("CPU s (mean over runs)")
    ax1.set_title("solving the fitted model")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("sites N")
    ax2.set_ylabel("CHGNet E - lower of the two (meV/atom)")
    ax2.set_title("best ordering found, by the potential")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--cells", type=int, nargs="+", default=CELLS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--anneal-seeds", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--max-enumerate", type=float, default=2e7)
    parser.add_argument("--exhaust-potential", type=int, default=1000)
    parser.add_argument("--potential", choices=["chgnet", "sevennet"], default="chgnet")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the rows of the existing results file and run only the missing ones",
    )
    parser.add_argument("--out", default=str(RESULTS / "crystal_qubo"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    from matfuse.crystals.qubo import potential_energy_fn

    torch.set_num_threads(1)
    energy_fn = potential_energy_fn(args.potential)
    potential = {"chgnet": "CHGNet 0.3.0", "sevennet": "SevenNet-0 (7net-0)"}[args.potential]
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    earlier: list[dict[str, Any]] = []
    if args.keep and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        rows = old["rows"]
        earlier = old.get("earlier_provenance", []) + [old["provenance"]]
    done = {(r["formula"], r["n_sites"], r["seed"]) for r in rows}

    def result_record() -> dict[str, Any]:
        """The JSON record of the rows so far: the checkpoint after each cell and the end
        result are the same record, so a killed run leaves a complete, resumable file."""
        return {
            "provenance": provenance(),
            "args": vars(args),
            "potential": potential,
            "earlier_provenance": earlier,
            "rows": rows,
            "summary": summarise(rows),
        }

    for n in sorted(args.cells):
        for formula in args.systems:
            if n * SYSTEMS[formula][2] != int(n * SYSTEMS[formula][2]):
                continue
            for seed in args.seeds:
                if (formula, n, seed) in done:
                    continue
                if args.max_minutes and time.monotonic() - _STARTED > 60 * args.max_minutes:
                    logger.warning("out of time before %s N=%d seed %d", formula, n, seed)
                    break
                rows.append(run_cell(formula, n, seed, args, energy_fn))
                r = rows[-1]
                recovered = sum(r["recovered_polished"]) if "recovered_polished" in r else "n/a"
                print(
                    f"{formula} N={n} seed={seed}: CV {r['cv_rmse_mev_per_site']:.2f} meV/site, "
                    f"recovered {recovered}/{args.anneal_seeds}, "
                    f"E {r['annealed_energy_per_atom']:.4f} "
                    f"vs random {r['random_baseline_energy_per_atom']:.4f}, "
                    f"{r['pipeline_cpu_s']:.1f} CPU s",
                    flush=True,
                )
            write_json(out.with_suffix(".json"), result_record())
    result = result_record()
    write_json(out.with_suffix(".json"), result)
    out.with_suffix(".md").write_text(markdown(result))
    figure(result, out.with_suffix(".png"))
    print(markdown(result))


if __name__ == "__main__":
    main()
