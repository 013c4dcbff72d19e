"""``clinx data stats|convert|push`` and ``clinx score``: corpora and the official scorers' metric."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .hub import push_arguments, run_push
from .options import progress_bar


def _data_stats(args: argparse.Namespace) -> int:
    from clinx_hub.stats import format_statistics, task_statistics

    stats = task_statistics(args.task, Path(args.data_dir), with_text=args.show_text)
    print(json.dumps(stats, ensure_ascii=False, indent=2) if args.json else format_statistics(stats))
    return 0


def _data_convert(args: argparse.Namespace) -> int:
    from clinx_hub.hub_datasets import convert

    with progress_bar(None, "converting", unit="doc") as bar:  # the total is known once the corpus is read
        out = convert(
            args.task, Path(args.data_dir), Path(args.out), overwrite=args.overwrite, license=args.license, progress=bar
        )
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
    stats.add_argument(
        "--show-text", action="store_true",
        help="also print the annotated and actual text of mismatched spans (document text: off by default)",
    )
    stats.set_defaults(handler=_data_stats)
    convert.add_argument("--out", required=True, help="folder to write (parquet per split + README.md)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    convert.add_argument(
        "--license", default=None, metavar="ID",
        help="the data's licence as a Hub licence id (cc-by-4.0, other, ...) for the card; default: the task's",
    )
    convert.set_defaults(handler=_data_convert)
    push = actions.add_parser("push", help="push a converted dataset folder to the Hub (clinx_hub/push.py)")
    push_arguments(push, "DATASET_DIR", "a folder written by `clinx data convert`")
    push.set_defaults(handler=run_push)


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
