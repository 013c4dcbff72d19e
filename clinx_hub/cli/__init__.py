"""The ``clinx`` command line: one module per family of commands, each adding its command groups.

A command group is a function that adds its sub-parser to ``COMMAND_GROUPS``' parent and sets
``handler`` on each command; ``main`` calls the handler with the parsed arguments. This package and
its modules import no torch at the top: each handler imports what it runs.

| module | commands |
|---|---|
| ``data.py`` | ``data stats``, ``data convert``, ``data push``, ``score`` |
| ``models.py`` | ``train``, ``evaluate``, ``predict`` (``--engine`` batch extraction), ``quickstart``, ``export onnx`` |
| ``hub.py`` | ``push``, ``demo``, ``space build`` |
| ``studies.py`` | ``similarity``, ``pretrain``, ``study transfer`` |
| ``options.py`` | what they share: ``--help`` defaults, ``--backbone``, progress bars, ``-q``/``-v``, ``--version`` |
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from clinx_hub.devices import DeviceError
from clinx_hub.folders import ModelNotAvailable
from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.outputs import OutputFolderError
from clinx_hub.windows import UnknownLabelError

from .data import add_data_commands, add_score_command
from .hub import add_demo_command, add_push_command, add_space_commands
from .models import add_export_command, add_model_commands, add_quickstart_command
from .options import DefaultsFormatter, add_backbone_flag, configure_logging, progress_bar, subparsers_of, version_line
from .studies import add_pretrain_command, add_similarity_command, add_study_command

COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_score_command,
    add_similarity_command,
    add_model_commands,
    add_quickstart_command,
    add_push_command,
    add_demo_command,
    add_export_command,
    add_pretrain_command,
    add_study_command,
    add_space_commands,
]
"""Each adds one top-level command (``data``; later ``train``, ``evaluate``, ``predict``, ``push``...)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinx", description="CLIN-X clinical concept extraction toolkit", formatter_class=DefaultsFormatter
    )
    parser.add_argument("--version", action="version", version=version_line())
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="errors only: no warnings, progress bars or library notices"
    )
    loudness.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail: -v informational messages, -vv debugging"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add_group in COMMAND_GROUPS:
        add_group(commands)
    for sub in subparsers_of(parser):
        sub.formatter_class = DefaultsFormatter
        for action in sub._actions:  # argparse shows nothing for an option without help, its default neither
            if action.help is None and action.option_strings and action.default not in (None, False):
                action.help = "default: %(default)s"
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clinx`` command line; a corpus that cannot be read exits with status 2 and the reason.

    >>> main(["data", "stats", "meddocan", "--data-dir", "../shared/corpora", "--json"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet, args.verbose)
    try:
        return args.handler(args)
    except (
        CorpusFormatError, DeviceError, FileExistsError, ModelNotAvailable, OutputFolderError, UnknownLabelError
    ) as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2


__all__ = ["COMMAND_GROUPS", "add_backbone_flag", "build_parser", "configure_logging", "main", "progress_bar"]
