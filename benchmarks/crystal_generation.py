"""The learned crystal generator's benchmark report (issue 16): every section, one page.

Each section is measured by its own script, resumable and with its own command recorded
in its JSON; this script runs the ones asked for (``--run``) and then assembles
``benchmarks/results/crystal_generation.{json,md}`` with one figure per section, the
published figures and the trivial baselines beside ours:

========================  =================================================================
section                   measured by
========================  =================================================================
``csp``                   ``crystal_diffusion.py`` (DiffCSP's CSP protocol, k = 1 and 20)
``denovo``                ``crystal_diffusion.py --task denovo`` (DiffCSP Table 4 metrics)
``condition``             ``crystal_diffusion.py --task condition`` (guidance on heat_ref)
``adapters``              ``crystal_adapters.py`` (space group / chemical system adapters)
``sun``                   ``crystal_search.py --task explore --strategies random
                          substitution diffusion`` (SUN at equal relaxation budget)
========================  =================================================================

    OMP_NUM_THREADS=1 python benchmarks/crystal_generation.py            # assemble only
    OMP_NUM_THREADS=1 python benchmarks/crystal_generation.py --run sun  # measure, assemble

A section whose JSON is missing is listed as not measured, never filled in.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _data import REPO, RESULTS, provenance, write_json

HERE = Path(__file__).resolve().parent
#: The command that measures each section (its defaults are the reported settings).
COMMANDS: dict[str, list[str]] = {
    "csp": [
        "crystal_diffusion.py", "--model", "perov5", "--n-compositions", "60", "--k", "20",
        "--seeds", "0", "1", "2", "--random-seeds", "0",
    ],
    "denovo": [
        "crystal_diffusion.py", "--task", "denovo", "--model", "perov5", "--n-samples", "400",
        "--seeds", "0", "1", "2", "--baseline-seeds", "0", "--n-reference", "500",
    ],
    "condition": [
        "crystal_diffusion.py", "--task", "condition", "--model", "perov5", "--n-samples",
        "300", "--seeds", "0", "1", "2", "--target", "0.3", "--window", "0.2",
        "--guidance", "1", "2",
    ],
    "adapters": [
        "crystal_adapters.py", "--n-labelled", "500", "--adapter-steps", "3000", "--lr", "5e-3",
        "--n-samples", "60", "--seeds", "0", "1", "2",
    ],
    "sun": [
        "crystal_search.py", "--task", "explore", "--budget", "12", "--seeds", "0", "1", "2",
        "--strategies", "random", "substitution", "diffusion",
        "--out", "benchmarks/results/crystal_search_explore_diffusion",
    ],
}  # fmt: skip
FILES = {
    "csp": "crystal_diffusion.json",
    "denovo": "crystal_diffusion_denovo.json",
    "condition": "crystal_diffusion_condition.json",
    "adapters": "crystal_adapters.json",
    "sun": "crystal_search_explore_diffusion.json",
}


def _load(section: str) -> dict[str, Any] | None:
    path = RESULTS / FILES[section]
    return json.loads(path.read_text()) if path.exists() else None


def _pm(d: dict[str, Any] | None, digits: int = 1) -> str:
    if not d or d.get("mean") is None:
        return "-"
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}"


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _bars(path: Path, groups: dict[str, dict[str, float]], ylabel: str, title: str) -> str | None:
    """Grouped bars: ``groups[method][metric] = value``; returns the file name."""
    plt = _plt()
    if plt is None or not groups:
        return None
    metrics = list(next(iter(groups.values())))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(metrics))
    width = 0.8 / len(groups)
    for k, (method, values) in enumerate(groups.items()):
        ax.bar(x + k * width, [values.get(m, np.nan) for m in metrics], width, label=method)
    ax.set_xticks(x + 0.4 - width / 2, metrics, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name


def csp_section(data: dict[str, Any]) -> tuple[list[str], str | None]:
    lines = [
        "| method | match k=1 % | RMSE k=1 | match k=20 % | RMSE k=20 | CPU s / structure |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[str, dict[str, float]] = {}
    for method, res in data["results"].items():
        s = res["summary"]
        lines.append(
            f"| {method} | {_pm(s['match_rate_k1'])} | {_pm(s['rmse_k1'], 4)} | "
            f"{_pm(s['match_rate_k20'])} | {_pm(s['rmse_k20'], 4)} | "
            f"{res.get('cpu_s_per_structure', float('nan')):.3f} |"
        )
        groups[method.split(" (")[0]] = {
            "k=1": s["match_rate_k1"]["mean"],
            "k=20": s["match_rate_k20"]["mean"],
        }
    for row in data["published"]["rows"]:
        lines.append(
            f"| {row['method']} (published, k={row['k']}) | "
            + (f"{row['match_rate']} | {row['rmse']} | | | |" if row["k"] == 1 else " | | "
               f"{row['match_rate']} | {row['rmse']} | |")
        )  # fmt: skip
        groups.setdefault(f"{row['method']} (published)", {})[f"k={row['k']}"] = row["match_rate"]
    figure = _bars(
        RESULTS / "crystal_generation_csp.png", groups, "match rate (%)", "CSP on perov_5"
    )
    model = data.get("model", {})
    lines += [
        "",
        f"Model `{model.get('name')}` ({model.get('steps')} steps, sha256 "
        f"{model.get('sha256')}); {data['n_compositions']} test compositions, seeds "
        f"{data['seeds']}. Published rows: the whole test set; {data['published']['source']}.",
    ]
    return lines, figure


def denovo_section(data: dict[str, Any]) -> tuple[list[str], str | None]:
    keys = ["struct_valid", "comp_valid", "cov_r", "cov_p"]
    dist = ["w_density", "w_heat_ref_judge", "w_n_elements"]
    lines = [
        "| method | struct valid % | comp valid % | COV-R % | COV-P % | dρ | dE | d_elem |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[str, dict[str, float]] = {}
    for method, res in data["results"].items():
        s = res["summary"]
        cells = [_pm(s[k]) for k in keys] + [_pm(s[k], 4) for k in dist]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
        groups[method] = {k: s[k]["mean"] for k in keys}
    for row in data["published"]["rows"]:
        lines.append(
            f"| {row['method']} (published) | "
            + " | ".join(str(row[k]) for k in keys + dist)
            + " |"
        )
        groups[f"{row['method']} (published)"] = {k: float(row[k]) for k in keys}
    model = data["model"]
    lines += [
        "",
        f"Model `{model['name']}` ({model.get('steps')} steps, sha256 {model.get('sha256')}); "
        f"{data['n_samples_per_seed']} samples per seed, seeds {data['seeds']}; "
        f"{data['published']['source']}.",
    ]
    figure = _bars(
        RESULTS / "crystal_generation_denovo.png", groups, "%", "De novo generation on perov_5"
    )
    return lines, figure


def condition_section(data: dict[str, Any]) -> tuple[list[str], str | None]:
    lines = ["| sampling | valid % | hit rate % | mean judge-predicted heat_ref |"]
    lines.append("|---|---|---|---|")
    for label, res in data["results"].items():
        s = res["summary"]
        lines.append(
            f"| {label} | {_pm(s['valid'])} | {_pm(s['hit_rate'])} | {_pm(s['mean_pred'], 3)} |"
        )
    lines.append(
        f"| training rows (trivial baseline) | 100 | {data['training_rate_in_window']:.1f} | - |"
    )
    lo, hi = data["window"]
    lines += [
        "",
        f"Target heat_ref = {data['target']} eV/atom, window [{lo:.2f}, {hi:.2f}]; judge: "
        f"{data['judge']['model']} (test MAE {data['judge']['test_mae']:.3f}).",
    ]
    figure = RESULTS / "crystal_diffusion_condition.png"
    return lines, figure.name if figure.exists() else None


def adapters_section(data: dict[str, Any]) -> tuple[list[str], str | None]:
    ft = data["fine_tune"]
    lines = [
        f"Base `{ft['base']}` frozen; adapters trained on {ft['labelled_rows']} labelled rows, "
        f"{ft['steps']} steps, {ft['cpu_seconds']} CPU s. Hit rates % (valid and on target, "
        "over all samples), mean over targets of the per-target means:",
        "",
        "| target kind | arm | mean hit rate % |",
        "|---|---|---|",
    ]
    for kind in ("space_groups", "chemical_systems"):
        rows = data["results"][kind]
        if not rows:
            continue
        arms = list(next(iter(rows.values()))["hit_rate"])
        for arm in arms:
            mean = float(np.mean([r["hit_rate"][arm]["mean"] for r in rows.values()]))
            lines.append(f"| {kind.replace('_', ' ')} | {arm} | {mean:.1f} |")
        if kind == "space_groups":
            share = float(np.mean([r["training_share"] for r in rows.values()]))
            lines.append(f"| space groups | training share (trivial) | {share:.1f} |")
    lines += ["", "Per target: `crystal_adapters.md`."]
    figure = RESULTS / "crystal_adapters.png"
    return lines, figure.name if figure.exists() else None


def sun_section(data: dict[str, Any]) -> tuple[list[str], str | None]:
    lines = [
        "| system | strategy | relaxations | unique | SUN (pooled hull) | CPU s relaxing |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[str, dict[str, float]] = {}
    for key, s in data["summary"].items():
        system, strategy = key.split("/")
        lines.append(
            f"| {system} | {strategy} | {_pm(s['n_relaxations'])} | {_pm(s['n_unique'])} | "
            f"{_pm(s['n_sun_pooled_hull'])} | {_pm(s['cpu_s_relaxations'], 0)} |"
        )
        groups.setdefault(strategy, {})[system] = s["n_sun_pooled_hull"]["mean"]
    lines += [
        "",
        f"Potential: {data['potential']}; MatterGen's published SUN rates (DFT, MP hull, "
        "different budgets): "
        + ", ".join(f"{k} {v}" for k, v in data["published"].items())
        + ". Full table: `crystal_search_explore_diffusion.md`.",
    ]
    figure = _bars(
        RESULTS / "crystal_generation_sun.png",
        groups,
        "SUN structures (mean over seeds)",
        "SUN at equal relaxation budget",
    )
    return lines, figure


SECTIONS = {
    "csp": ("Crystal structure prediction (perov_5, DiffCSP protocol)", csp_section),
    "denovo": ("De novo generation (perov_5, DiffCSP Table 4)", denovo_section),
    "condition": (
        "Property conditioning (classifier-free guidance on heat_ref)",
        condition_section,
    ),
    "adapters": ("Adapter fine-tuning (space group, chemical system)", adapters_section),
    "sun": ("SUN at equal relaxation budget (CHGNet)", sun_section),
}


def speed(payloads: dict[str, dict[str, Any] | None]) -> list[str]:
    """Sampling speed on one core, from the sections' own CPU measurements."""
    lines = []
    denovo = payloads.get("denovo")
    if denovo:
        per = denovo["results"]["ours"]["sampling_cpu_s_per_structure"]
        lines.append(
            f"- de novo, default steps: {per:.3f} CPU s per structure = {1 / per:.1f} "
            "structures/s per core (CPU time of one process; two processes on two cores "
            "were not timed)"
        )
    csp = payloads.get("csp")
    if csp:
        for method, res in csp["results"].items():
            if "ours" in method:
                per = res["cpu_s_per_structure"]
                lines.append(
                    f"- CSP, {csp.get('flow_steps')} steps: {per:.3f} CPU s per structure = "
                    f"{1 / per:.1f} structures/s per core"
                )
    return lines


def assemble() -> dict[str, Any]:
    payloads = {name: _load(name) for name in SECTIONS}
    lines = [
        "# The learned crystal generator: benchmark report",
        "",
        f"Assembled by `{provenance()['command']}` from the sections' own results; each "
        "section's JSON records the command that measured it.",
    ]
    report: dict[str, Any] = {"provenance": provenance(), "sections": {}}
    for name, (title, render) in SECTIONS.items():
        lines += ["", f"## {title}", ""]
        data = payloads[name]
        if data is None:
            lines.append(f"Not measured yet: `python benchmarks/{' '.join(COMMANDS[name])}`.")
            report["sections"][name] = None
            continue
        body, figure = render(data)
        lines += body
        if figure:
            lines += ["", f"![{name}]({figure})"]
        report["sections"][name] = {
            "file": FILES[name],
            "command": data.get("provenance", {}).get("command"),
            "figure": figure,
        }
    lines += ["", "## Sampling speed (2-core laptop-class CPU, one torch thread)", ""]
    lines += speed(payloads) or ["Not measured yet."]
    (RESULTS / "crystal_generation.md").write_text("\n".join(lines) + "\n")
    write_json(RESULTS / "crystal_generation.json", report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", nargs="*", default=[], choices=list(SECTIONS))
    args = parser.parse_args()
    for name in args.run:
        cmd = [sys.executable, str(HERE / COMMANDS[name][0]), *COMMANDS[name][1:]]
        print("running", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
    assemble()
    print((RESULTS / "crystal_generation.md").read_text())


if __name__ == "__main__":
    main()
