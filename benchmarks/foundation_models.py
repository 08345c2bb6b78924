"""Our foundation models on MOSES: reconstruction, sampling, and encoding speed.

For each shipped model (or model directories given with ``--model-dir name=DIR``):

- on ``--n-test`` held-out MOSES test molecules: teacher-forced token accuracy, exact
  reconstruction of the canonical SMILES with greedy decoding (molecules the model cannot
  read count as failures), and validity of the decoded strings;
- ``--n-samples`` draws from the aggregate posterior (a Gaussian fitted to training latents),
  decoded greedily: validity, uniqueness and novelty against the MOSES training set (its
  SMILES are RDKit-canonical: 99.98% unchanged by re-canonicalisation);
- encoding throughput (molecules/s, parsing and tokenising included) with ``--threads``
  threads, and the transformer vs. state-space encoder at equal width on synthetic batches
  of increasing length, in the same process.

Writes ``benchmarks/results/foundation_models.json`` (+ ``.md``); with ``--update-cards`` it
also appends the figures to each shipped model's ``MODEL_CARD.md``.

    python benchmarks/foundation_models.py [--data DIR] [--n-test 10000] [--n-samples 10000]

``--speed-only`` keeps the stored quality figures and re-measures only speed: every model's
encoding throughput and the equal-width comparison, in one process with ``--threads`` threads,
so the numbers are comparable with each other (stored under ``"speed"``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from _data import RESULTS, data_root, provenance, write_json
from matfuse.encoders import get_encoder
from matfuse.foundation.autoencoder import ModelConfig, SequenceEncoder
from matfuse.foundation.encoders import FoundationEncoder
from matfuse.foundation.inference import decode_latents, encode_examples, examples_for
from matfuse.foundation.inference import token_accuracy as teacher_forced_accuracy
from matfuse.foundation.tokenizers import canonical_smiles
from matfuse.foundation.weights import shipped_models, weights_dir
from matfuse.pretrain.trainer import model_card


def moses(root: Path, split: str) -> pd.Series:
    return pd.read_csv(root / "molecules" / "moses" / f"{split}.csv.gz")["SMILES"]


def reconstruction(enc: FoundationEncoder, smiles: list[str]) -> dict[str, Any]:
    lm = enc.loaded()
    truth = [canonical_smiles(s) for s in smiles]
    examples = examples_for(truth, lm.tokenizer, lm.model, truncate=False)
    ok = [i for i, e in enumerate(examples) if e is not None]
    usable = [examples[i] for i in ok]
    start = time.perf_counter()
    Z = encode_examples(lm.model, usable)
    decoded = decode_latents(lm.model, lm.tokenizer, Z)
    seconds = time.perf_counter() - start
    exact = sum(d == truth[i] for d, i in zip(decoded, ok, strict=True))
    return {
        "n": len(smiles),
        "n_readable": len(ok),
        "token_accuracy": teacher_forced_accuracy(lm.model, usable),
        "exact_match": exact / len(smiles),
        "validity": float(np.mean([d is not None for d in decoded])),
        "encode_decode_seconds": round(seconds, 1),
    }


def sampling(enc: FoundationEncoder, n: int, train: set[str], seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    samples = enc.sample(n, seed=seed)
    seconds = time.perf_counter() - start
    valid = [s for s in samples if s is not None]
    unique = set(valid)
    novel = unique - train
    return {
        "n": n,
        "validity": len(valid) / n,
        "uniqueness": len(unique) / max(len(valid), 1),
        "novelty": len(novel) / max(len(unique), 1),
        "seconds": round(seconds, 1),
        "examples": sorted(novel)[:10],
    }


def throughput(enc: FoundationEncoder, smiles: list[str]) -> float:
    """Molecules per second of ``encode`` (parse, tokenise, forward), cache off."""
    enc.set_params(cache=False)
    enc.encode(smiles[:64])  # warm-up (loading the model is not timed)
    start = time.perf_counter()
    enc.encode(smiles)
    return len(smiles) / (time.perf_counter() - start)


@torch.inference_mode()
def equal_width_speed(d_model: int, layers: int, lengths: list[int], batch: int = 64) -> dict:
    """Encoder-only molecules/s of the transformer and the state-space stack, same width."""
    out: dict[str, dict[str, float]] = {}
    for kind in ("ted", "ssed"):
        cfg = ModelConfig(encoder=kind, d_model=d_model, encoder_layers=layers, max_len=1024)
        net = SequenceEncoder(cfg, vocab_size=64).eval()
        out[kind] = {}
        for length in lengths:
            tokens = torch.randint(5, 64, (batch, length))
            net(tokens)  # warm-up
            reps = max(1, 2048 // (batch * max(1, length // 64)))
            start = time.perf_counter()
            for _ in range(reps):
                net(tokens)
            out[kind][str(length)] = round(reps * batch / (time.perf_counter() - start), 1)
        out[kind]["n_parameters"] = sum(p.numel() for p in net.parameters())
    out["ssed_over_ted"] = {k: round(out["ssed"][k] / out["ted"][k], 2) for k in map(str, lengths)}
    return out


def equal_width_comparison(d_model: int = 128, layers: int = 3) -> dict:
    """The stored speed comparison: both encoder stacks at one width, four lengths."""
    return {
        "d_model": d_model,
        "layers": layers,
        **equal_width_speed(d_model, layers, [32, 64, 128, 256]),
    }


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Foundation models on MOSES",
        "",
        f"{payload['n_test']} held-out MOSES test molecules; {payload['n_samples']} samples "
        "from the aggregate posterior, greedy decoding. The encode mol/s column comes from each "
        "model's own quality run, whose thread count may differ; the throughput table below, when "
        "present, measures every model in one run.",
        "",
        "| model | token acc | exact recon | recon validity | sample validity | uniqueness "
        "| novelty | encode mol/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in payload["models"].items():
        rec, smp = r["reconstruction"], r["sampling"]
        lines.append(
            f"| {name} | {rec['token_accuracy']:.4f} | {rec['exact_match']:.4f} | "
            f"{rec['validity']:.4f} | {smp['validity']:.4f} | {smp['uniqueness']:.4f} | "
            f"{smp['novelty']:.4f} | {r['encode_mol_per_s']:.0f} |"
        )
    if "speed" in payload:
        run = payload["speed"]
        lines += [
            "",
            f"## Encoding throughput, all models in one run ({run['threads']} CPU threads)",
            "",
            "| model | encode mol/s |",
            "|---|---|",
        ]
        lines += [f"| {name} | {rate:.0f} |" for name, rate in run["encode_mol_per_s"].items()]
    speed = payload["equal_width"]
    lines += [
        "",
        f"## Encoder speed at equal width (d={speed['d_model']}, "
        f"{speed['layers']} layers), molecules/s",
        "",
        "| length | transformer | state-space | ratio |",
        "|---|---|---|---|",
    ]
    for k in speed["ssed_over_ted"]:
        lines.append(
            f"| {k} | {speed['ted'][k]} | {speed['ssed'][k]} | {speed['ssed_over_ted'][k]} |"
        )
    return "\n".join(lines) + "\n"


def measure_speed(
    args: argparse.Namespace, names: list[str], overrides: dict[str, str], test: list[str]
) -> None:
    """Throughput of every model plus the equal-width comparison, in one process."""
    out = Path(args.out)
    payload = json.loads(out.read_text())
    rates = {}
    for name in names:
        enc = get_encoder(name, **({"path": overrides[name]} if name in overrides else {}))
        assert isinstance(enc, FoundationEncoder)
        rates[name] = round(throughput(enc, test[:2000]), 1)
        print(f"{name}: {rates[name]} mol/s", flush=True)
    payload["equal_width"] = equal_width_comparison()
    payload["speed"] = {
        "threads": args.threads,
        "encode_mol_per_s": rates,
        "provenance": provenance(),
    }
    write_json(out, payload)
    out.with_suffix(".md").write_text(markdown(payload))
    print(markdown(payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--models", default=None, help="comma list (default: all shipped)")
    parser.add_argument("--model-dir", action="append", default=[], help="name=DIR override")
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-cards", action="store_true")
    parser.add_argument(
        "--skip-equal-width", action="store_true", help="keep the stored speed comparison"
    )
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="re-measure throughput of every model and the equal-width comparison; keep the rest",
    )
    parser.add_argument("--out", default=str(RESULTS / "foundation_models.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = data_root(args.data)
    overrides = dict(item.split("=", 1) for item in args.model_dir)
    names = (
        args.models.split(",") if args.models else sorted(set(shipped_models()) | set(overrides))
    )
    rng = np.random.default_rng(args.seed)
    test_all = moses(root, "test")
    test = test_all.iloc[rng.choice(len(test_all), args.n_test, replace=False)].tolist()
    if args.speed_only:
        measure_speed(args, names, overrides, test)
        return
    print("loading MOSES train set for novelty", flush=True)
    train = set(moses(root, "train"))
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    payload: dict[str, Any] = {
        "n_test": args.n_test,
        "n_samples": args.n_samples,
        "threads": args.threads,
        # rerunning some models keeps the others' results (each carries its own command)
        "models": previous.get("models", {}) if args.models else {},
    }
    for name in names:
        print(f"== {name}", flush=True)
        enc = get_encoder(name, **({"path": overrides[name]} if name in overrides else {}))
        assert isinstance(enc, FoundationEncoder)
        lm = enc.loaded()
        payload["models"][name] = {
            "architecture": lm.config.to_dict(),
            "training": {
                k: lm.meta.get(k)
                for k in ("steps", "molecules_seen", "wall_time_s", "hardware", "n_parameters")
            },
            "reconstruction": reconstruction(enc, test),
            "sampling": sampling(enc, args.n_samples, train, args.seed),
            "encode_mol_per_s": round(throughput(enc, test[:2000]), 1),
            "command": provenance()["command"],
        }
        print(payload["models"][name], flush=True)
    if args.skip_equal_width and "equal_width" in previous:
        payload["equal_width"] = previous["equal_width"]
    else:
        payload["equal_width"] = equal_width_comparison()
    payload["provenance"] = provenance()
    write_json(out, payload)
    out.with_suffix(".md").write_text(markdown(payload))
    print(markdown(payload))
    if args.update_cards:
        for name, result in payload["models"].items():
            target = Path(overrides.get(name, weights_dir(name)))
            lm = get_encoder(name, path=str(target)).loaded()  # type: ignore[attr-defined]
            card = model_card(name, lm.config.to_dict(), lm.meta, extra_metrics=result)
            (target / "MODEL_CARD.md").write_text(card)


if __name__ == "__main__":
    main()
