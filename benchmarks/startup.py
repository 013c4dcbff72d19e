"""Start-up time of the commands that need no model, before and after the lazy package face.

Each command runs in a fresh interpreter and is timed from start to exit (wall clock): ``clinx
--help``, ``clinx score`` and ``clinx data stats`` on a tiny invented BRAT folder (two notes),
``import clinx_hub``, ``import clinx_hub.documents``, and the collection of ``tests/`` (``pytest
--collect-only -q tests``). "before" is the tree of git revision ``--before`` (default b605140, the
package as it was before the face became lazy), extracted with ``git archive`` and put first on
``PYTHONPATH``; "after" is this working tree, the same way. Runs are interleaved (before, after,
after, before, ...) and the median of ``--repeats`` counts: the machine is shared, so compare the
two columns by their ratio within one run, next to the load average recorded with them.

    python benchmarks/startup.py                      # 5 runs of each, collection included
    python benchmarks/startup.py --repeats 3 --no-collect
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/ is on sys.path when this script runs.
from accuracy import ROOT, load_average, run_meta, write_results
from sentences import hardware

RESULTS = Path(__file__).resolve().parent / "results"
BEFORE = "b605140"
TARGET_SECONDS = 1.0
"""The issue's target for ``clinx --help``, ``clinx score`` and ``clinx data stats`` on this machine."""
CLI = "import sys; from clinx_hub.cli import main; sys.exit(main())"
"""What the ``clinx`` console script runs; arguments follow it on the command line."""


def invented_brat(folder: Path) -> tuple[Path, Path]:
    """Two invented notes with their gold spans, and a prediction folder that misses one span."""
    gold, pred = folder / "gold", folder / "pred"
    notes = {
        "a": ("Paciente de 45 años ingresado el 3 de mayo.\n", ["T1\tEDAD 12 19\t45 años", "T2\tFECHAS 33 42\t3 de mayo"]),
        "b": ("Alta el 20 de marzo de 2019.\n", ["T1\tFECHAS 8 27\t20 de marzo de 2019"]),
    }
    for out in (gold, pred):
        out.mkdir(parents=True)
        for name, (text, lines) in notes.items():
            (out / f"{name}.txt").write_text(text, encoding="utf-8")
            kept = lines if out == gold else lines[:1]
            (out / f"{name}.ann").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return gold, pred


def commands(gold: Path, pred: Path, collect: bool) -> dict[str, list[str]]:
    """Label -> argv after the interpreter; pytest's collection runs in the tree's own folder."""
    python = {
        "clinx --help": ["-c", CLI, "--help"],
        "clinx score --gold G --pred P": ["-c", CLI, "score", "--gold", str(gold), "--pred", str(pred)],
        "clinx data stats brat --data-dir G": ["-c", CLI, "data", "stats", "brat", "--data-dir", str(gold)],
        "import clinx_hub": ["-c", "import clinx_hub"],
        "import clinx_hub.documents": ["-c", "import clinx_hub.documents"],
    }
    if collect:
        # tests/ in both trees (the after tree's default run also collects the package's doctests).
        python["pytest --collect-only -q tests"] = ["-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"]
    return python


def timed(argv: list[str], tree: Path, scratch: Path) -> float:
    """Wall seconds of ``python argv`` with ``tree`` first on the path; a failing command stops the benchmark."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # pytest collects the tree's own tests; the other commands start outside both trees.
    cwd = tree if "pytest" in argv else scratch
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {tree}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def bench(trees: dict[str, Path], runs: dict[str, list[str]], repeats: int, scratch: Path) -> list[dict]:
    rows = []
    for label, argv in runs.items():
        seconds: dict[str, list[float]] = {side: [] for side in trees}
        for i in range(repeats):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for side in order:
                seconds[side].append(timed(argv, trees[side], scratch))
        before, after = (statistics.median(seconds[side]) for side in ("before", "after"))
        rows.append({"command": label, "before_seconds": before, "after_seconds": after, "ratio": after / before,
                     "runs": seconds})
        print(f"{label}: before {before:.2f} s, after {after:.2f} s", file=sys.stderr)
    return rows


def render(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Start-up time of commands that need no model (CPU)",
        "",
        f"- date: {meta['date']}",
        f"- hardware: {meta['hardware']}",
        f"- command: `{meta['command']}`",
        f"- load average at start / end: {meta['load_start']} / {meta['load_end']} (the machine is shared:"
        " compare the columns by their ratio)",
        f"- before: git revision {meta['before']} (`git archive`); after: this working tree; each on PYTHONPATH,"
        f" a fresh interpreter per run, runs interleaved, median of {meta['repeats']}",
        f"- target: `clinx --help`, `clinx score`, `clinx data stats` under {TARGET_SECONDS:g} s",
        "",
        "| command | before s | after s | after / before |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['command']}` | {r['before_seconds']:.2f} | {r['after_seconds']:.2f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the git revision to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-collect", action="store_true", help="skip the (slow) pytest collection")
    parser.add_argument("--out", type=Path, default=RESULTS / "startup-cpu", help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)

    load_start = load_average()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        before = scratch / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        gold, pred = invented_brat(scratch / "brat")
        runs = commands(gold, pred, collect=not args.no_collect)
        rows = bench({"before": before, "after": ROOT}, runs, args.repeats, scratch)
    meta = run_meta("startup.py", argv, hardware(), load_start, repeats=args.repeats, before=args.before)
    write_results(args.out, render(rows, meta), meta, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
