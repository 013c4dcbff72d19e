"""Sentence splitting speed: seconds per MB of one-line text against the same text with its line breaks.

The text is invented: ``clinx_hub.synthetic`` notes (Spanish and English), joined and repeated up
to each size. "line breaks" is that text as generated; "one line" is the same text with every line
break replaced by a space, the shape of a note exported without line breaks (splitting was once
quadratic on it: a 16 MB one-line note took 76 s). A MB here is 10^6 characters. Each size is
split ``--repeats`` times and the fastest run counts: on a shared machine the load changes from
minute to minute. ``--before REV`` also times ``clinx_hub/sentences.py`` as of git revision REV,
once per size up to ``--before-max-mb``, and checks that both give the same sentences.

    python benchmarks/sentences.py                            # 1, 8 and 32 MB
    python benchmarks/sentences.py --sizes 1 2 --repeats 1    # quicker
    python benchmarks/sentences.py --before b78ae56 --before-max-mb 8
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# benchmarks/ is on sys.path when this script runs.
from accuracy import ROOT, load_average, run_meta, write_results

from clinx_hub.sentences import split_sentences
from clinx_hub.synthetic import synthetic_documents

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1_000_000
Splitter = Callable[[str], list[tuple[int, int]]]


def invented_text(characters: int, one_line: bool) -> str:
    """``characters`` characters of synthetic notes, with or without their line breaks."""
    notes = "\n\n".join(d.text for language in ("es", "en") for d in synthetic_documents(40, language=language))
    text = ("\n\n".join([notes] * (characters // len(notes) + 1)))[:characters]
    return text.replace("\n", " ") if one_line else text


def revision_splitter(revision: str) -> Splitter:
    """``split_sentences`` from ``clinx_hub/sentences.py`` as it was at git ``revision``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:clinx_hub/sentences.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sentences_before.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("sentences_before", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.split_sentences


def fastest(split: Splitter, text: str, repeats: int) -> tuple[float, list[tuple[int, int]]]:
    """The fastest of ``repeats`` wall times of ``split(text)`` in seconds, and its sentences."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sentences = split(text)
        best = min(best, time.perf_counter() - start)
    return best, sentences


def bench(sizes: list[float], repeats: int, before: Splitter | None, before_max_mb: float) -> list[dict]:
    rows = []
    for one_line in (True, False):
        first = None
        for size in sizes:
            text = invented_text(int(size * MB), one_line)
            seconds, sentences = fastest(split_sentences, text, repeats)
            first = first or (size, seconds)
            row = {
                "text": "one line" if one_line else "line breaks",
                "mb": size,
                "characters": len(text),
                "utf8_bytes": len(text.encode("utf-8")),
                "sentences": len(sentences),
                "seconds": seconds,
                "seconds_per_mb": seconds / size,
                "time_ratio": seconds / first[1],
                "size_ratio": size / first[0],
                "before_seconds": None,
            }
            if before is not None and size <= before_max_mb:
                row["before_seconds"], expected = fastest(before, text, 1)
                if expected != sentences:
                    raise SystemExit(f"the sentences differ from the --before revision at {size} MB, {row['text']}")
            rows.append(row)
            print(f"{row['text']}, {size:g} MB: {seconds:.2f} s", file=sys.stderr)
    return rows


def render(rows: list[dict], meta: dict) -> str:
    before = meta["before"]
    lines = [
        "# Sentence splitting speed (CPU)",
        "",
        f"- date: {meta['date']}",
        f"- hardware: {meta['hardware']}",
        f"- command: `{meta['command']}`",
        f"- load average at start / end: {meta['load_start']} / {meta['load_end']}",
        f"- `split_sentences` on invented notes (clinx_hub.synthetic) repeated to each size; 1 MB = 10^6 characters;"
        f" fastest of {meta['repeats']} runs",
        "",
        "| text | MB | sentences | seconds | s / MB | time ratio | size ratio |"
        + (f" before ({before}) seconds | before s / MB |" if before else ""),
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if before else ""),
    ]
    for r in rows:
        line = (
            f"| {r['text']} | {r['mb']:g} | {r['sentences']:,} | {r['seconds']:.3f} | {r['seconds_per_mb']:.3f}"
            f" | {r['time_ratio']:.2f} | {r['size_ratio']:g} |"
        )
        if before:
            seconds = r["before_seconds"]
            line += " - | - |" if seconds is None else f" {seconds:.3f} | {seconds / r['mb']:.3f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def hardware() -> str:
    """The CPU model and core count (splitting is single-threaded Python)."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores (Python {platform.python_version()})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 8, 32], help="sizes in MB (10^6 characters)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", help="also time clinx_hub/sentences.py as of this git revision")
    parser.add_argument("--before-max-mb", type=float, default=8, help="the largest size to time --before on")
    parser.add_argument("--out", type=Path, default=RESULTS / "sentences-cpu", help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)

    before = revision_splitter(args.before) if args.before else None
    load_start = load_average()
    rows = bench(args.sizes, args.repeats, before, args.before_max_mb)
    meta = run_meta("sentences.py", argv, hardware(), load_start, repeats=args.repeats, before=args.before)
    write_results(args.out, render(rows, meta), meta, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
