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

from clinx_hub.folders import ModelNotAvailable
from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.outputs import OutputFolderError
from clinx_hub.windows import UnknownLabelError


def _data_stats(args: argparse.Namespace) -> int:
    from clinx_hub.stats import format_statistics, task_statistics

    stats = task_statistics(args.task, Path(args.data_dir), with_text=args.show_text)
    print(json.dumps(stats, ensure_ascii=False, indent=2) if args.json else format_statistics(stats))
    return 0


def _data_convert(args: argparse.Namespace) -> int:
    from clinx_hub.hub_datasets import convert

    out = convert(args.task, Path(args.data_dir), Path(args.out), overwrite=args.overwrite, license=args.license)
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
    _push_arguments(push, "DATASET_DIR", "a folder written by `clinx data convert`")
    push.set_defaults(handler=_push)


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
    from clinx_hub.hub import available_model
    from clinx_hub.similarity import rank_sources

    # Every model is checked before any is loaded: an offline Hub id fails at once, with the way out.
    candidates = {name: available_model(name) for name in args.candidates}
    reference = available_model(args.reference)
    splits = load_task(args.task, Path(args.data_dir), splits=[args.split])
    if args.split not in splits:
        present = ", ".join(splits) or "none"
        print(f"clinx: error: no split {args.split!r} in {args.data_dir} (present: {present})", file=sys.stderr)
        return 2
    if not any(d.text.strip() for d in splits[args.split]):
        print(f"clinx: error: the {args.split!r} split in {args.data_dir} has no text to encode", file=sys.stderr)
        return 2
    ranking = rank_sources(splits[args.split], candidates, reference, measure=args.measure, max_tokens=args.max_tokens)
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


def _train(args: argparse.Namespace) -> int:
    from clinx_hub.folders import CHECKPOINTS_DIR, TRAINING_RECORD
    from clinx_hub.hub import available_model
    from clinx_hub.method import method_overrides
    from clinx_hub.recipe import span_finding_lines, train_task
    from clinx_hub.training_args import TrainingSetupError, default_arguments

    # Settings are checked first: nothing is looked up or loaded for a run that cannot train.
    try:
        arguments = default_arguments(Path(args.out) / CHECKPOINTS_DIR, **method_overrides(args))
    except ValueError as err:  # settings that cannot train or go together: --epochs 0, --no-holdout --splits 2
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    backbone = available_model(args.model)
    if args.init_from:
        arguments.init_from = available_model(args.init_from)
    try:
        record = train_task(
            args.task, Path(args.data_dir), backbone, Path(args.out), arguments, overwrite=args.overwrite
        )
    except TrainingSetupError as err:  # e.g. too few documents for the folds, a resume with other settings
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    if args.members is not None:
        progress = record["members"]
        missing = ", ".join(map(str, progress["missing"]))
        print(
            f"members finished: {', '.join(map(str, progress['finished']))}; "
            + (f"still to train: {missing}; " if missing else "")
            + f"run `clinx train` again with the same settings and no --members to assemble the ensemble in {args.out}"
        )
        return 0
    evaluation = record.get("evaluation")
    if evaluation:
        micro = evaluation["micro"]
        print(
            f"{args.task} {evaluation['split']}: P {micro['precision']:.4f}  R {micro['recall']:.4f}"
            f"  F1 {micro['f1']:.4f}  ({evaluation['documents']} documents)"
        )
    for line in span_finding_lines(record.get("train_span_findings", {})):
        print(f"{line} (see {TRAINING_RECORD})")
    print(f"model saved to {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from clinx_hub.corpora import get_task, load_task, locate_splits
    from clinx_hub.ensemble import load_extractor
    from clinx_hub.formats.brat import brat_paths, write_brat
    from clinx_hub.hub import available_model
    from clinx_hub.outputs import prepare_output_folder

    model = available_model(args.model)
    data_dir = Path(args.data_dir)
    # load_task refuses a split that is not there, naming those that are.
    documents = load_task(args.task, data_dir, splits=[args.split])[args.split]
    if args.pred_out:
        # Every split's files count as inputs: predictions must not land in (or over) any gold folder.
        root, layout = locate_splits(get_task(args.task), data_dir)
        inputs = [path for paths in layout.values() for path in paths] or [root]
        out = Path(args.pred_out)
        files = [path for d in documents for path in brat_paths(d.id, out)]
        prepare_output_folder(out, files, inputs=inputs, overwrite=args.overwrite)
    extractor = load_extractor(model)
    predictions = extractor.predict(documents, batch_size=args.batch_size)
    from clinx_hub.evaluation import score_documents

    result = score_documents(documents, [d.with_spans(p) for d, p in zip(documents, predictions)])
    if args.pred_out:
        write_brat([d.with_spans(p) for d, p in zip(documents, predictions)], Path(args.pred_out))
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.format_table())
    return 0


def _read_inputs(path: Path) -> list:
    """The notes at ``path``: the file itself, or every ``*.txt`` under the folder, sub-folders included.

    A note's id is its path below the folder without ``.txt`` (``a/b``), a plain stem at the top.
    """
    from clinx_hub.documents import Document
    from clinx_hub.formats.base import read_text

    if not path.exists():
        raise CorpusFormatError("no such file or folder", path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    for file in files:
        if not file.is_file():
            raise CorpusFormatError("matches *.txt but is not a file (a folder?); rename it or move it out", file)
    if not files:
        raise CorpusFormatError("no .txt files to read (sub-folders included)", path)
    ids = [f.relative_to(path).with_suffix("").as_posix() if path.is_dir() else f.stem for f in files]
    return [Document(i, read_text(f), metadata={"source": str(f)}) for i, f in zip(ids, files)]


def _predict(args: argparse.Namespace) -> int:
    from clinx_hub.ensemble import load_extractor
    from clinx_hub.formats.base import write_text_atomic
    from clinx_hub.formats.brat import brat_paths, write_brat
    from clinx_hub.hub import available_model
    from clinx_hub.outputs import jsonl_lines, prepare_output_folder

    model = available_model(args.model)
    source = Path(args.input)
    documents = _read_inputs(source)
    out = Path(args.out)
    jsonl = out / "predictions.jsonl"
    files = [path for d in documents for path in brat_paths(d.id, out)] if args.format == "brat" else [jsonl]
    inputs = [source, *(Path(d.metadata["source"]) for d in documents)]
    # Before the model loads: a wrong --out must fail now, not after every note is done.
    prepare_output_folder(out, files, inputs=inputs, overwrite=args.overwrite)
    extractor = load_extractor(model)
    predictions = extractor.predict(documents, batch_size=args.batch_size)
    if args.format == "brat":
        write_brat([d.with_spans(p) for d, p in zip(documents, predictions)], out)
    else:
        lines = jsonl_lines([d.id for d in documents], predictions)
        write_text_atomic(jsonl, "".join(line + "\n" for line in lines))
    print(f"{sum(map(len, predictions))} spans in {len(documents)} documents written to {out}")
    return 0


def add_model_commands(commands: argparse._SubParsersAction) -> None:
    """``clinx train``, ``clinx evaluate`` and ``clinx predict``."""
    from clinx_hub.corpora import task_names
    from clinx_hub.method import add_method_flags

    train = commands.add_parser("train", help="train one model or a random-split ensemble the CLIN-X way")
    train.add_argument("task", choices=task_names())
    train.add_argument("--data-dir", required=True, help="the corpus folder as distributed, or a folder of BRAT files")
    train.add_argument("--model", required=True, help="backbone: a local folder, a Hub id, clin-x-es or clin-x-en")
    train.add_argument("--out", required=True, help="folder for the trained model (or ensemble)")
    # The method's and the Trainer's flags, from their one declaration (clinx_hub/method.py; torch-free).
    add_method_flags(train)
    train.add_argument(
        "--overwrite", action="store_true",
        help="replace what an earlier run left in --out (a finished model or ensemble, or an unfinished one);"
        " without it, a folder holding a run with other settings is refused",
    )
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="strict micro P/R/F1 of a model on a task split")
    evaluate.add_argument("model", help="a model or ensemble folder, or a Hub id")
    evaluate.add_argument("task", choices=task_names())
    evaluate.add_argument("--data-dir", required=True)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--pred-out", default=None, help="also write the predictions as a BRAT folder")
    evaluate.add_argument(
        "--overwrite", action="store_true", help="write into a --pred-out that already holds .ann/.jsonl files"
    )
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="extract spans from a text file or a folder of .txt files")
    predict.add_argument("model", help="a model or ensemble folder, or a Hub id")
    predict.add_argument("input", help="a .txt file or a folder of .txt files (sub-folders included)")
    predict.add_argument(
        "--out", required=True, help="folder for the predictions (not the input folder; sub-folders are mirrored)"
    )
    predict.add_argument(
        "--overwrite", action="store_true",
        help="write into an --out that already holds .ann/.jsonl files (other files there stay; inputs never change)",
    )
    predict.add_argument("--format", choices=["brat", "jsonl"], default="brat")
    predict.add_argument("--batch-size", type=int, default=16)
    predict.set_defaults(handler=_predict)


def _quickstart(args: argparse.Namespace) -> int:
    from clinx_hub.hub import available_model
    from clinx_hub.quickstart import quickstart, summary

    model = available_model(args.model) if args.model else None
    record = quickstart(Path(args.out), data_dir=Path(args.data_dir) if args.data_dir else None, model=model, task=args.task)
    print(summary(record, Path(args.out)))
    return 0


def add_quickstart_command(commands: argparse._SubParsersAction) -> None:
    """``clinx quickstart``: the main job, on synthetic notes unless told otherwise."""
    from clinx_hub.corpora import task_names
    from clinx_hub.quickstart import DEFAULT_OUT

    quick = commands.add_parser("quickstart", help="train and evaluate a small ensemble end to end (no data needed)")
    quick.add_argument("--out", default=str(DEFAULT_OUT))
    quick.add_argument("--data-dir", default=None, help="real data instead of the synthetic notes")
    quick.add_argument("--task", default="brat", choices=task_names(), help="task of --data-dir (default: any BRAT folder)")
    quick.add_argument("--model", default=None, help="backbone instead of MiniLM")
    quick.set_defaults(handler=_quickstart)


def _push(args: argparse.Namespace) -> int:
    from clinx_hub.push import PushError, push_dataset, push_model

    options = dict(private=args.private, token=args.token, commit_message=args.message)
    try:
        if args.command == "push":
            # Only the fields the user set: the others come from the folder (the task's licence...).
            card = {"license": args.license, "language": args.language, "datasets": args.dataset}
            url = push_model(args.folder, args.repo_id, **options, **{k: v for k, v in card.items() if v})
        else:
            url = push_dataset(args.folder, args.repo_id, **options)
    except PushError as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    print(f"pushed {args.folder} to {url}")
    return 0


def _push_arguments(parser: argparse.ArgumentParser, folder: str, help_text: str) -> None:
    parser.add_argument("folder", metavar=folder, help=help_text)
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Hub repo to create or update (owner/name)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", default=None, help="a Hub token with write access (default: HF_TOKEN or `hf auth login`)")
    parser.add_argument("--message", default=None, help="commit message")


def add_push_command(commands: argparse._SubParsersAction) -> None:
    """``clinx push``: a model, ensemble or transfer-source folder, with its model card, to the Hub."""
    push = commands.add_parser("push", help="push a model or ensemble folder (with its card) to the Hub")
    _push_arguments(push, "MODEL_DIR", "a model or ensemble folder written by `clinx train`")
    card = push.add_argument_group("model card", "fields of the card rendered for the push (a folder without README.md)")
    card.add_argument("--license", default=None, metavar="ID", help="a Hub licence id (default: the task's licence)")
    card.add_argument(
        "--language", action="append", default=None, metavar="CODE", help="language code, repeatable (default: the task's)"
    )
    card.add_argument(
        "--dataset", action="append", default=None, metavar="REPO_ID", help="Hub dataset id of the training data, repeatable"
    )
    push.set_defaults(handler=_push)


def _demo(args: argparse.Namespace) -> int:
    from clinx_hub.demo import serve

    serve(args.model, host=args.host, port=args.port)
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
    demo.set_defaults(handler=_demo)


COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_score_command,
    add_similarity_command,
    add_model_commands,
    add_quickstart_command,
    add_push_command,
    add_demo_command,
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
    except (CorpusFormatError, FileExistsError, ModelNotAvailable, OutputFolderError, UnknownLabelError) as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
