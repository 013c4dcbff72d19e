"""What every command shares: defaults shown in ``--help``, old spellings that still work, the
backbone flag, progress bars, log levels and the version line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings


class DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default where it has one and its help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text or default in (None, False, argparse.SUPPRESS) or action.option_strings == []
            or isinstance(action, (argparse._VersionAction, argparse._HelpAction))
        ):
            return text
        return f"{text} (default: %(default)s)"


class DeprecatedSpelling(argparse.Action):
    """An option's old spelling: still works, and says which spelling replaces it."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string != self.new:
            print(f"clinx: warning: {option_string} is deprecated here, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_backbone_flag(parser: argparse.ArgumentParser, *, required: bool, help: str) -> None:
    """``--backbone`` (the encoder a run starts from); ``--model`` is the old spelling.

    Commands that use a *trained* model take it as their first argument (``clinx predict MODEL``);
    ``--backbone`` names what training starts from, so the two are never confused.
    """
    parser.add_argument(
        "--backbone", "--model", dest="backbone", required=required, action=DeprecatedSpelling, new="--backbone",
        metavar="BACKBONE", help=help,
    )


def version_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from clinx_hub import __version__

    parts = []
    for name in ("transformers", "torch"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"clinx_hub {__version__} ({', '.join(parts)}, Python {sys.version.split()[0]})"


def subparsers_of(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from subparsers_of(sub)


def configure_logging(quiet: bool = False, verbose: int = 0) -> int:
    """Log levels for clinx_hub and the Hugging Face libraries; returns the level set.

    Set before those libraries are imported (the command line imports them lazily), through the
    environment variables they read at import, and through ``logging`` for clinx_hub itself.

    >>> configure_logging(verbose=1) == logging.INFO
    True
    """
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    names = {logging.ERROR: "error", logging.WARNING: "warning", logging.INFO: "info", logging.DEBUG: "debug"}
    os.environ["TRANSFORMERS_VERBOSITY"] = names[level]
    os.environ["DATASETS_VERBOSITY"] = names[level]
    if quiet:
        for variable in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "CLINX_NO_PROGRESS"):
            os.environ[variable] = "1"
        warnings.simplefilter("ignore")
    logger = logging.getLogger("clinx_hub")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("clinx: %(message)s"))
        logger.addHandler(handler)
    for name in ("transformers", "datasets", "huggingface_hub"):
        if name in sys.modules:  # already imported (the Python API, tests): their own loggers
            logging.getLogger(name).setLevel(level)
    return level


def progress_bar(total: int | None, description: str, unit: str = "char"):
    """A tqdm bar on stderr (silent with ``-q`` or where stderr is not a terminal and CLINX_PROGRESS is unset).

    >>> with progress_bar(10, "notes", unit="note") as bar:
    ...     bar.update(10)
    """
    from tqdm.auto import tqdm

    quiet = os.environ.get("CLINX_NO_PROGRESS") == "1"
    shown = not quiet and (sys.stderr.isatty() or os.environ.get("CLINX_PROGRESS") == "1")
    return tqdm(total=total, desc=description, unit=unit, unit_scale=True, disable=not shown, file=sys.stderr)
