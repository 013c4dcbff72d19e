"""Two models on one task's report split: strict F1 of each and a paired bootstrap over documents.

A difference of a few tenths of F1 between two rows of the accuracy table may be noise: this says
how often the first model stays ahead when the report split's documents are resampled with
replacement (the same draw for both models), and the 95% interval of the difference.

    python benchmarks/compare.py runs/accuracy/pharmaconer-ensemble-6-epochs-attention-dropout-0 \\
        runs/accuracy/pharmaconer-all-6-epochs-attention-dropout-0 pharmaconer \\
        --name pharmaconer-ensemble-vs-all-6-epochs

Writes ``benchmarks/results/compare/<name>.json`` and ``.md`` (statistics only, no text) and
prints the table. Models are folders ``clinx_hub.ensemble.load_extractor`` opens (an ensemble
folder too); the corpora come from ``CLINX_CORPORA`` as in accuracy.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

# benchmarks/ is on sys.path when this script runs.
from accuracy import CORPORA, command_line

from clinx_hub.corpora import get_task, load_task
from clinx_hub.ensemble import load_extractor
from clinx_hub.evaluation import paired_bootstrap, score_documents
from clinx_hub.run_state import hardware

RESULTS = Path(__file__).resolve().parent / "results" / "compare"


def predict(model: str, documents: list, device: str) -> tuple[list, float]:
    """The model's predictions as documents, and the seconds they took."""
    extractor = load_extractor(model).to(device)
    started = time.time()
    spans = extractor.predict(documents)
    return [d.with_spans(s) for d, s in zip(documents, spans)], time.time() - started


def table(result: dict) -> str:
    a, b, boot = result["a"], result["b"], result["bootstrap"]
    lines = [
        f"# {result['name']}: {result['task']} {result['split']} ({boot['documents']} documents)",
        "",
        "| model | P | R | F1 | predict seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for side in (a, b):
        m = side["micro"]
        lines.append(
            f"| {side['model']} | {m['precision'] * 100:.2f} | {m['recall'] * 100:.2f} | {m['f1'] * 100:.2f}"
            f" | {side['predict_seconds']:.0f} |"
        )
    lines += [
        "",
        f"Paired bootstrap over documents ({boot['samples']} resamples, seed {result['seed']}): F1 difference"
        f" (first minus second) {boot['difference'] * 100:+.2f}, 95% interval"
        f" [{boot['difference_95_low'] * 100:+.2f}, {boot['difference_95_high'] * 100:+.2f}];"
        f" the first is ahead in {boot['a_better_share'] * 100:.1f}% of resamples"
        f" (tied in {boot['tie_share'] * 100:.1f}%).",
        "",
        f"Command: `{result['command']}`. Hardware: {result['hardware']}. Date: {result['date']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("task")
    parser.add_argument("--split", help="default: the task's report split (PROTOCOL.md)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", help="result file name (default: <a>-vs-<b>)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    task = get_task(args.task)
    split = args.split or task.report_split
    gold = load_task(args.task, CORPORA)[split]
    sides, predictions = {}, {}
    for side, model in (("a", args.model_a), ("b", args.model_b)):
        predictions[side], seconds = predict(model, gold, args.device)
        micro = score_documents(gold, predictions[side]).micro.to_dict()
        sides[side] = {"model": model, "micro": micro, "predict_seconds": seconds}
    boot = paired_bootstrap(gold, predictions["a"], predictions["b"], samples=args.samples, seed=args.seed)
    name = args.name or f"{Path(args.model_a).name}-vs-{Path(args.model_b).name}"
    result = {
        "name": name, "task": args.task, "split": split, **sides, "seed": args.seed,
        "bootstrap": boot.to_dict(), "hardware": hardware(args.device),
        "date": datetime.date.today().isoformat(),
        "command": command_line("compare.py", argv),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = table(result)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
