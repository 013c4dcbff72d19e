"""Training-step speed: the encoder's own attention dropout against ``--attention-dropout 0``.

One full training step (forward with the CRF loss, backward, AdamW) of clinx_hub's model on the
MiniLM encoder that installs from PyPI, at the accuracy benchmark's shape (batch 8 x 512 subwords,
100 context subwords on each side unlabelled, PharmaCoNER's 17 BIOES tags). Both settings run in
the same process, alternating round by round, so that they share the machine's state; the table
gives each one's median step time and their ratio per round. On CPU, PyTorch's
``scaled_dot_product_attention`` takes its fused kernel only without dropout; with it, the
attention probabilities are materialised and masked with ``bernoulli`` (8 x 12 x 512 x 512 per layer).

    python benchmarks/train_step.py                 # writes benchmarks/results/train-step-cpu-<n>-threads.{md,json}
    python benchmarks/train_step.py --device cuda   # the same on a GPU
    python benchmarks/train_step.py --compare bf16  # fp32 against bfloat16 autocast (clinx train --bf16), dropout 0

With ``--compare bf16`` both settings use attention dropout 0 and the second runs under
``torch.autocast(dtype=torch.bfloat16)`` as the Trainer's ``bf16=True`` does (the CRF casts to float32
itself); on a CPU that pays only where it has bf16 matrix units (AMX, AVX512-BF16). Results go to
``train-step-bf16-<device>...``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

# The accuracy rows' encoder (CLINX_BACKBONE's copy on a device machine); benchmarks/ is on sys.path.
from accuracy import alternating_rounds, command_line, load_average, minilm_folder

from clinx_hub.corpora import get_task
from clinx_hub.modeling_clinx import ClinXForTokenClassification
from clinx_hub.recipe import set_attention_dropout
from clinx_hub.run_state import hardware
from clinx_hub.tagging import scheme_labels

RESULTS = Path(__file__).resolve().parent / "results"


def make_step(attention_dropout: float | None, batch: int, length: int, context: int, device: str, bf16: bool = False):
    """A closure running one training step; the model starts from the same weights either way."""
    torch.manual_seed(0)
    tags = scheme_labels(get_task("pharmaconer").labels, "bioes")
    model = ClinXForTokenClassification.from_backbone(str(minilm_folder()), tags)
    if attention_dropout is not None:
        set_attention_dropout(model, attention_dropout)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1000, model.config.encoder["vocab_size"], (batch, length), generator=generator)
    labels = torch.zeros(batch, length, dtype=torch.long)  # all O: a path the BIOES constraints allow
    labels[:, : context + 1] = -100  # [CLS] and the left context
    labels[:, length - context - 1 :] = -100  # the right context and [SEP]
    inputs = {"input_ids": input_ids.to(device), "attention_mask": torch.ones_like(input_ids).to(device),
              "labels": labels.to(device)}

    def step() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return model, step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--context", type=int, default=100)
    parser.add_argument("--compare", choices=["dropout", "bf16"], default="dropout",
                        help="dropout: 0.1 against 0 (fp32); bf16: fp32 against bfloat16 autocast (dropout 0)")
    args = parser.parse_args(argv)
    load_start = load_average()
    if args.compare == "bf16":
        settings = {"fp32, attention dropout 0": (0.0, False), "bf16 autocast, attention dropout 0": (0.0, True)}
    else:
        settings = {"encoder's own (0.1)": (None, False), "attention dropout 0": (0.0, False)}
    steps = {name: make_step(p, args.batch, args.length, args.context, args.device, bf16)
             for name, (p, bf16) in settings.items()}
    times = alternating_rounds({name: step for name, (_, step) in steps.items()}, args.rounds)
    baseline, fast = (times[name] for name in settings)
    ratios = [b / f for b, f in zip(baseline, fast)]
    rows = [
        {"setting": name, "attention_probs_dropout_prob": steps[name][0].encoder.config.attention_probs_dropout_prob,
         "median_step_s": round(statistics.median(t), 3), "steps_s": [round(x, 3) for x in t]}
        for name, t in times.items()
    ]
    command = command_line("train_step.py", argv)
    result = {
        "benchmark": "train_step", "date": datetime.date.today().isoformat(), "hardware": hardware(args.device),
        "threads_env": os.environ.get("OMP_NUM_THREADS"), "command": command,
        "load_start": load_start, "load_end": load_average(),
        "shape": {"batch": args.batch, "length": args.length, "context": args.context, "tags": 17},
        "rows": rows, "speedup_median": round(statistics.median(ratios), 2),
        "speedup_per_round": [round(r, 2) for r in ratios],
    }
    title = ("fp32 against bfloat16 autocast" if args.compare == "bf16"
             else "attention dropout 0.1 (the encoder's own) against 0")
    lines = [
        f"# Training step: {title}",
        "",
        f"{result['date']}, {result['hardware']}; `{command}`; load average {load_start} at the start,"
        f" {result['load_end']} at the end. MiniLM-L6 + CRF, one step = forward with the CRF",
        f"loss, backward and AdamW at batch {args.batch} x {args.length} subwords ({args.context} of context on each side);",
        f"{args.rounds} alternating rounds after a warm-up.",
        "",
        "| setting | median step (s) | steps (s) |",
        "|---|---:|---|",
        *(f"| {r['setting']} | {r['median_step_s']:.2f} | {', '.join(f'{x:.2f}' for x in r['steps_s'])} |" for r in rows),
        "",
        (
            f"Speed-up with {list(settings)[1]}: {result['speedup_median']:.2f}x (median of the per-round ratios"
            f" {', '.join(f'{r:.2f}' for r in result['speedup_per_round'])})."
        ),
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = f"cpu-{torch.get_num_threads()}-threads" if args.device == "cpu" else args.device.split(":")[0]
    if args.compare == "bf16":
        suffix = f"bf16-{suffix}"
    (RESULTS / f"train-step-{suffix}.md").write_text(text)
    (RESULTS / f"train-step-{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
