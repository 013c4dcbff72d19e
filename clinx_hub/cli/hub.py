"""``clinx push``, ``demo`` and ``space build``: what goes to the Hub and the demo."""

from __future__ import annotations

import argparse
import json
import sys


def run_push(args: argparse.Namespace) -> int:
    from clinx_hub.push import PushError, push_dataset, push_model

    options = dict(private=args.private, token=args.token, commit_message=args.message)
    try:
        if args.command == "push":
            # Only the fields the user set: the others come from the folder (the task's licence...).
            card = {"license": args.license, "language": args.language, "datasets": args.dataset,
                    "baseline_f1": args.baseline_f1, "source_task": args.source_task}
            url = push_model(args.folder, args.repo_id, **options, **{k: v for k, v in card.items() if v is not None})
        else:
            url = push_dataset(args.folder, args.repo_id, **options)
    except PushError as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"folder": str(args.folder), "repo_id": args.repo_id, "url": str(url)}))
        return 0
    print(f"pushed {args.folder} to {url}")
    return 0


def push_arguments(parser: argparse.ArgumentParser, folder: str, help_text: str) -> None:
    parser.add_argument("folder", metavar=folder, help=help_text)
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Hub repo to create or update (owner/name)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", default=None, help="a Hub token with write access (default: HF_TOKEN or `hf auth login`)")
    parser.add_argument("--message", default=None, help="commit message")
    parser.add_argument("--json", action="store_true", help="print the folder, repo id and URL as JSON")


def add_push_command(commands: argparse._SubParsersAction) -> None:
    """``clinx push``: a model, ensemble or transfer-source folder, with its model card, to the Hub."""
    push = commands.add_parser("push", help="push a model or ensemble folder (with its card) to the Hub")
    push_arguments(push, "MODEL_DIR", "a model or ensemble folder written by `clinx train`")
    card = push.add_argument_group("model card", "fields of the card rendered for the push (a folder without README.md)")
    card.add_argument("--license", default=None, metavar="ID", help="a Hub licence id (default: the task's licence)")
    card.add_argument(
        "--language", action="append", default=None, metavar="CODE", help="language code, repeatable (default: the task's)"
    )
    card.add_argument(
        "--dataset", action="append", default=None, metavar="REPO_ID",
        help="Hub dataset id of the training data, repeatable; the first is the model-index dataset",
    )
    card.add_argument(
        "--baseline-f1", type=float, default=None, metavar="F1",
        help="a transfer model's no-transfer strict F1 (0-1, same recipe without --init-from, same split): a "
        "second model-index result (default: the training record's baseline_f1, else none)",
    )
    card.add_argument(
        "--source-task", default=None, metavar="TASK", help="a transfer model's source task, where its record is not here"
    )
    push.set_defaults(handler=run_push)


def _demo(args: argparse.Namespace) -> int:
    from clinx_hub.demo import serve

    serve(args.model, host=args.host, port=args.port, device=args.device, dtype=args.dtype)
    return 0


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    """``clinx demo``: the Hugging Face Space's Gradio app, run locally."""
    demo = commands.add_parser("demo", help="open the Gradio demo (the Space's app) on this machine")
    demo.add_argument(
        "--model", action="append", default=None,
        help="a model or ensemble folder, or a Hub id; repeat for a dropdown of several "
        "(default: $CLINX_DEMO_MODELS, else runs/quickstart/model)",
    )
    demo.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 opens it to the network)")
    from clinx_hub.devices import add_device_flags

    add_device_flags(demo)
    demo.set_defaults(handler=_demo)


def _space_build(args: argparse.Namespace) -> int:
    from clinx_hub.space_build import SpaceBuildError, build_space

    try:
        built = build_space(args.out, space_id=args.space_id, overwrite=args.overwrite)
    except SpaceBuildError as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote the Space folder {built.folder} ({built.wheel.name}); the Space installs the wheel from {built.wheel_url}")
    print(f"push it (the Space must be public): hf upload {args.space_id} {built.folder} --repo-type space")
    return 0


def add_space_commands(commands: argparse._SubParsersAction) -> None:
    """``clinx space build``: a demo Space folder that installs on the Hub as it is (clinx_hub/space_build.py)."""
    from clinx_hub.space_build import DEFAULT_SPACE_ID

    space = commands.add_parser("space", help="the Hugging Face Space of the demo")
    actions = space.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build", help="write a pushable Space folder: the Space's files, this checkout's wheel, requirements that install it"
    )
    build.add_argument("out", metavar="OUT", help="the folder to write (empty, or with --overwrite)")
    build.add_argument(
        "--space-id", default=DEFAULT_SPACE_ID,
        help="the Space the folder will be pushed to (owner/name): its requirements install the wheel from there",
    )
    build.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    build.set_defaults(handler=_space_build)
