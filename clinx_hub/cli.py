"""The ``clinx`` command line: ``clinx data stats|convert`` (more command groups plug in the same way).

A command group is a function that adds its sub-parser to ``COMMAND_GROUPS``' parent and sets
``handler`` on each command; ``main`` calls the handler with the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from clinx_hub.formats.base import CorpusFormatError


def _data_stats(args: argparse.Namespace) -> int:
    from clinx_hub.stats import format_statistics, task_statistics

    stats = task_statistics(args.task, Path(args.data_dir))
    print(json.dumps(stats, ensure_ascii=False, indent=2) if args.json else format_statistics(stats))
    return 0


def _data_convert(args: argparse.Namespace) -> int:
    from clinx_hub.hub_datasets import convert

    out = convert(args.task, Path(args.data_dir), Path(args.out), overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    """``clinx data stats`` and ``clinx data convert``."""
    from clinx_hub.corpora import task_names

    data = commands.add_parser("data", help="read, check and convert corpora")
    actions = data.add_subparsers(dest="action", required=True)
    stats = actions.add_parser("stats", help="documents, spans and spans a flat tagger cannot represent, per split")
    convert = actions.add_parser("convert", help="write a Hub-ready dataset folder (parquet + dataset card)")
    for parser in (stats, convert):
        parser.add_argument("task", choices=task_names())
        parser.add_argument(
            "--data-dir", required=True,
            help="the corpus folder as distributed (with its split folders), or a plain folder of files (one split)",
        )
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(handler=_data_stats)
    convert.add_argument("--out", required=True, help="folder to write (parquet per split + README.md)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    convert.set_defaults(handler=_data_convert)


def _score(args: argparse.Namespace) -> int:
    from clinx_hub.evaluation import score_folders

    result = score_folders(Path(args.gold), Path(args.pred), common_only=args.common_only)
    print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) if args.json else result.format_table())
    return 0


def add_score_command(commands: argparse._SubParsersAction) -> None:
    """``clinx score``: strict micro P/R/F1 of a folder of predicted ``.ann`` files, as the shared-task scorers."""
    score = commands.add_parser("score", help="strict (label, start, end) micro P/R/F1 of BRAT predictions")
    score.add_argument("--gold", required=True, help="gold BRAT folder (.txt + .ann per document)")
    score.add_argument("--pred", required=True, help="folder of predicted .ann files (.txt optional)")
    score.add_argument("--json", action="store_true", help="print the result as JSON")
    score.add_argument(
        "--common-only", action="store_true",
        help="score only documents present in both folders (MEDDOCAN/PharmaCoNER scripts); "
        "by default a gold document without a prediction counts as all false negatives",
    )
    score.set_defaults(handler=_score)


def _similarity(args: argparse.Namespace) -> int:
    from clinx_hub.corpora import load_task
    from clinx_hub.similarity import rank_sources

    splits = load_task(args.task, Path(args.data_dir), splits=[args.split])
    if args.split not in splits:
        present = ", ".join(splits) or "none"
        print(f"clinx: error: no split {args.split!r} in {args.data_dir} (present: {present})", file=sys.stderr)
        return 2
    candidates = {name: name for name in args.candidates}
    ranking = rank_sources(
        splits[args.split], candidates, args.reference, measure=args.measure, max_tokens=args.max_tokens
    )
    if args.json:
        result = {
            "task": args.task, "split": args.split, "reference": args.reference, "measure": args.measure,
            "ranking": [{"candidate": name, "score": score} for name, score in ranking],
        }
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        score = "disparity (lower = closer)" if args.measure == "procrustes" else "CKA (higher = closer)"
        print(f"{'rank':>4}  {score:<26}  candidate")
        for rank, (name, value) in enumerate(ranking, 1):
            print(f"{rank:>4}  {value:<26.4f}  {name}")
    return 0


def add_similarity_command(commands: argparse._SubParsersAction) -> None:
    """``clinx similarity``: rank candidate source models for transfer by model similarity on the target data."""
    from clinx_hub.corpora import task_names

    similarity = commands.add_parser(
        "similarity", help="rank candidate source models by how alike they represent the target task's texts"
    )
    similarity.add_argument("task", choices=task_names(), help="the target task")
    similarity.add_argument(
        "--data-dir", required=True, help="the target corpus folder, or a plain folder of files (split 'train')"
    )
    similarity.add_argument("--candidates", nargs="+", required=True, help="source model folders or Hub ids")
    # No default: the reference stands for the target task (ideally a model briefly trained on it);
    # guessing one (say the first candidate's backbone) would silently rank by distance from pretraining.
    similarity.add_argument(
        "--reference", required=True,
        help="the target task's model (e.g. briefly trained on the target) or, lacking one, the plain encoder",
    )
    similarity.add_argument("--split", default="train", help="the split whose texts are encoded (default: train)")
    similarity.add_argument(
        "--max-tokens", type=int, default=2000, help="subwords compared (words when the tokenizers differ)"
    )
    similarity.add_argument("--measure", choices=["procrustes", "cka"], default="procrustes")
    similarity.add_argument("--json", action="store_true", help="print the ranking as JSON")
    similarity.set_defaults(handler=_similarity)


COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_score_command,
    add_similarity_command,
]
"""Each adds one top-level command (``data``; later ``train``, ``evaluate``, ``predict``, ``push``...)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clinx", description="CLIN-X clinical concept extraction toolkit")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_group in COMMAND_GROUPS:
        add_group(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clinx`` command line; a corpus that cannot be read exits with status 2 and the reason.

    >>> main(["data", "stats", "meddocan", "--data-dir", "../shared/corpora", "--json"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CorpusFormatError, FileExistsError) as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
