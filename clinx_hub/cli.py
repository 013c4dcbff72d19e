"""The ``clinx`` command line: ``clinx data stats|convert`` (more command groups plug in the same way).

A command group is a function that adds its sub-parser to ``COMMAND_GROUPS``' parent and sets
``handler`` on each command; ``main`` calls the handler with the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from clinx_hub.devices import DeviceError
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
    if args.plot:
        from clinx_hub.similarity import pyplot

        try:
            pyplot()  # before the models load
        except ImportError as err:
            print(f"clinx: error: {err}", file=sys.stderr)
            return 2
    with progress_bar(len(candidates) + 1, "encoding models", unit="model") as bar:
        ranking = rank_sources(
            splits[args.split], candidates, reference, measure=args.measure, max_tokens=args.max_tokens, progress=bar
        )
    if args.plot:
        from clinx_hub.similarity import plot_similarity_heatmap

        plot_similarity_heatmap({args.task: dict(ranking)}, args.plot, measure=args.measure)
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
    similarity.add_argument("--plot", default=None, metavar="PNG", help="also draw the scores as a heatmap (matplotlib)")
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
    backbone = available_model(args.backbone)
    if args.init_from:
        arguments.init_from = available_model(args.init_from)
    try:
        record = train_task(
            args.task, Path(args.data_dir), backbone, Path(args.out), arguments, overwrite=args.overwrite
        )
    except TrainingSetupError as err:  # e.g. too few documents for the folds, a resume with other settings
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    if args.json:  # the training record (statistics only, never text) or the members' progress
        print(json.dumps(record, ensure_ascii=False, indent=2, default=str))
        return 0
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
    extractor = load_extractor(model, device=args.device, dtype=args.dtype)
    predictions = _predict_with_progress(extractor, documents, args.batch_size)
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
    if args.engine:
        return _predict_batch(args, model)
    documents = _read_inputs(source)
    out = Path(args.out)
    jsonl = out / "predictions.jsonl"
    files = [path for d in documents for path in brat_paths(d.id, out)] if args.format == "brat" else [jsonl]
    inputs = [source, *(Path(d.metadata["source"]) for d in documents)]
    # Before the model loads: a wrong --out must fail now, not after every note is done.
    prepare_output_folder(out, files, inputs=inputs, overwrite=args.overwrite)
    extractor = load_extractor(model, device=args.device, dtype=args.dtype)
    predictions = _predict_with_progress(extractor, documents, args.batch_size)
    if args.format == "brat":
        write_brat([d.with_spans(p) for d, p in zip(documents, predictions)], out)
    else:
        lines = jsonl_lines([d.id for d in documents], predictions)
        write_text_atomic(jsonl, "".join(line + "\n" for line in lines))
    spans = sum(map(len, predictions))
    if args.json:
        print(json.dumps({"documents": len(documents), "spans": spans, "out": str(out), "format": args.format}))
    else:
        print(f"{spans} spans in {len(documents)} documents written to {out}")
    return 0


def progress_bar(total: int | None, description: str, unit: str = "char"):
    """A tqdm bar on stderr (silent with ``-q`` or where stderr is not a terminal and CLINX_PROGRESS is unset).

    >>> with progress_bar(10, "notes", unit="note") as bar:
    ...     bar.update(10)
    """
    from tqdm.auto import tqdm

    quiet = os.environ.get("CLINX_NO_PROGRESS") == "1"
    shown = not quiet and (sys.stderr.isatty() or os.environ.get("CLINX_PROGRESS") == "1")
    return tqdm(total=total, desc=description, unit=unit, unit_scale=True, disable=not shown, file=sys.stderr)


def _predict_with_progress(extractor, documents: list, batch_size: int) -> list:
    # Every member reads every note: the bar counts members x characters.
    total = len(extractor.members) * sum(len(d.text) for d in documents)
    with progress_bar(total, "extracting") as bar:
        return extractor.predict(documents, batch_size=batch_size, progress=bar)


def _predict_batch(args: argparse.Namespace, model: str) -> int:
    from clinx_hub.batch_extraction import extract_batch

    threads = args.threads_per_worker or (1 if args.engine == "ray" else None)
    summary = extract_batch(
        model, args.input, args.out, engine=args.engine, num_workers=args.num_workers, threads_per_worker=threads,
        address=args.address, id_column=args.id_column, text_column=args.text_column, max_chars=args.max_chars,
        shard_size=args.shard_size, batch_size=args.batch_size, device=getattr(args, "device", None),
        dtype=getattr(args, "dtype", None), overwrite=args.overwrite, progress=True,
    )
    print(
        f"{summary.notes} notes in {summary.shards} shards written to {args.out} ({summary.shards_done} now,"
        f" {summary.shards_skipped} done before); {summary.errors} notes in errors.jsonl"
    )
    if summary.shards_failed:
        failed = ", ".join(map(str, summary.shards_failed))
        print(f"clinx: error: shards {failed} failed (see manifest.json); rerun the same command to redo them",
              file=sys.stderr)
        return 1
    return 0


def add_model_commands(commands: argparse._SubParsersAction) -> None:
    """``clinx train``, ``clinx evaluate`` and ``clinx predict``."""
    from clinx_hub.corpora import task_names
    from clinx_hub.devices import add_device_flags
    from clinx_hub.method import add_method_flags

    train = commands.add_parser("train", help="train one model or a random-split ensemble the CLIN-X way")
    train.add_argument("task", choices=task_names())
    train.add_argument("--data-dir", required=True, help="the corpus folder as distributed, or a folder of BRAT files")
    add_backbone_flag(train, required=True, help="the encoder to start from: a local folder, a Hub id, clin-x-es or clin-x-en")
    train.add_argument("--out", required=True, help="folder for the trained model (or ensemble)")
    # The method's and the Trainer's flags, from their one declaration (clinx_hub/method.py; torch-free).
    add_method_flags(train)
    train.add_argument(
        "--overwrite", action="store_true",
        help="replace what an earlier run left in --out (a finished model or ensemble, or an unfinished one);"
        " without it, a folder holding a run with other settings is refused",
    )
    train.add_argument("--json", action="store_true", help="print the training record as JSON")
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
    add_device_flags(evaluate)
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
    predict.add_argument("--json", action="store_true", help="print what was written as JSON (documents, spans, out)")
    predict.add_argument("--batch-size", type=int, default=16)
    add_device_flags(predict)
    _batch_engine_flags(predict)
    predict.set_defaults(handler=_predict)


def _batch_engine_flags(predict: argparse.ArgumentParser) -> None:
    """``clinx predict --engine``: parquet shards over an archive of notes (clinx_hub/batch_extraction.py)."""
    batch = predict.add_argument_group(
        "batch extraction", "with --engine: INPUT is a folder (or file) of .txt, .jsonl or .parquet notes; --out gets"
        " parquet shards, manifest.json and errors.jsonl; a rerun skips finished shards (--format is not used)"
    )
    batch.add_argument("--engine", choices=["local", "ray"], default=None, help="local: this process; ray: Ray Data actors")
    batch.add_argument("--num-workers", type=int, default=1, help="Ray actors, each loading the model once (default 1)")
    batch.add_argument("--threads-per-worker", type=int, default=None, help="CPU threads per worker (default: 1 with ray)")
    batch.add_argument("--address", default=None, help="a Ray cluster to join (default: start Ray on this machine)")
    batch.add_argument("--id-column", default="id", help="id field of .jsonl/.parquet notes (default: id)")
    batch.add_argument("--text-column", default="text", help="text field of .jsonl/.parquet notes (default: text)")
    batch.add_argument(
        "--max-chars", type=int, default=1_000_000, help="longer notes go to errors.jsonl (default 1,000,000)"
    )
    batch.add_argument("--shard-size", type=int, default=256, help="notes per parquet shard (default 256)")


def _quickstart(args: argparse.Namespace) -> int:
    from clinx_hub.hub import available_model
    from clinx_hub.quickstart import quickstart, summary

    model = available_model(args.backbone) if args.backbone else None
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
    add_backbone_flag(quick, required=False, help="the encoder to start from instead of MiniLM")
    quick.set_defaults(handler=_quickstart)


def _push(args: argparse.Namespace) -> int:
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


def _push_arguments(parser: argparse.ArgumentParser, folder: str, help_text: str) -> None:
    parser.add_argument("folder", metavar=folder, help=help_text)
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Hub repo to create or update (owner/name)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", default=None, help="a Hub token with write access (default: HF_TOKEN or `hf auth login`)")
    parser.add_argument("--message", default=None, help="commit message")
    parser.add_argument("--json", action="store_true", help="print the folder, repo id and URL as JSON")


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
    push.set_defaults(handler=_push)


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


def _export_onnx(args: argparse.Namespace) -> int:
    from clinx_hub.hub import available_model
    from clinx_hub.onnx_export import export_onnx

    out = export_onnx(available_model(args.model), Path(args.out), quantize=args.quantize, overwrite=args.overwrite)
    precision = args.quantize or "fp32"
    print(f"exported {args.model} ({precision}) to {out}; check: {out}/README.md; use it as any model folder")
    return 0


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """``clinx export onnx``: a model or ensemble as ONNX (encoder + emission layer) with its CRF beside it."""
    export = commands.add_parser("export", help="export a model or ensemble for fast inference (ONNX)")
    formats = export.add_subparsers(dest="export_format", required=True)
    onnx = formats.add_parser(
        "onnx", help="encoder + emission layer as ONNX (dynamic batch and length), the CRF beside it; a folder "
        "that predict/evaluate/demo/load_extractor open with onnxruntime"
    )
    onnx.add_argument("model", help="a model or ensemble folder, or a Hub id")
    onnx.add_argument("out", help="the folder to write (an ensemble keeps its layout: ensemble.json + members/)")
    onnx.add_argument(
        "--quantize", choices=["int8"], default=None,
        help="int8 dynamic quantization of the encoder (onnxruntime): smaller and faster on the CPU",
    )
    onnx.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT")
    onnx.set_defaults(handler=_export_onnx)


def _pretrain(args: argparse.Namespace) -> int:
    from clinx_hub.hub import available_model
    from clinx_hub.pretraining import PretrainingCorpus, PretrainingSettings, pretrain
    from clinx_hub.training_args import TrainingSetupError

    names = ("max_steps", "epochs", "max_length", "batch_size", "gradient_accumulation_steps", "learning_rate",
             "warmup", "weight_decay", "mlm_probability", "whole_word_mask", "validation_documents",
             "max_validation_sequences", "eval_steps", "shuffle_buffer", "seed", "bf16", "fp16", "logging_steps",
             "attention_dropout")
    try:
        settings = PretrainingSettings(**{name: getattr(args, name) for name in names})
        settings.check()  # before anything is read or loaded
        corpus = PretrainingCorpus(
            texts=args.text or (), tasks=args.task or (), data_dir=args.data_dir, splits=args.split,
            text_column=args.text_column, decontaminate=args.decontaminate or (),
        )
        record = pretrain(available_model(args.backbone), corpus, args.out, settings, overwrite=args.overwrite)
    except TrainingSetupError as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    print(
        f"{record.steps} steps; validation perplexity {record.perplexity_before:.2f} -> {record.perplexity_after:.2f};"
        f" encoder saved to {args.out} (a backbone for `clinx train --backbone {args.out}`)"
    )
    return 0


def add_pretrain_command(commands: argparse._SubParsersAction) -> None:
    """``clinx pretrain``: domain-adaptive (continued masked-LM) pre-training of an encoder on clinical text."""
    pretrain = commands.add_parser(
        "pretrain", help="continue masked-language-model pre-training of an encoder on clinical text (CLIN-X 3.1)"
    )
    add_backbone_flag(pretrain, required=True, help="the encoder: a local folder or Hub id AutoModelForMaskedLM loads")
    pretrain.add_argument("--out", required=True, help="folder for the adapted encoder (checkpoints go to OUT/checkpoints)")
    text = pretrain.add_argument_group("text (training side only: a task's report split is refused)")
    text.add_argument("--text", nargs="+", metavar="INPUT", help="files or folders of .txt, .jsonl or .parquet")
    text.add_argument("--text-column", default="text", help="the text field of JSON lines and parquet (default: text)")
    text.add_argument("--task", nargs="+", metavar="TASK", help="tasks whose training side is read from --data-dir")
    text.add_argument("--data-dir", default=None, help="the corpus folder of --task (as distributed)")
    text.add_argument("--split", nargs="+", default=None, help="training-side splits of --task (default: all of them)")
    text.add_argument(
        "--decontaminate", nargs="+", metavar="TASK",
        help="also leave out documents sharing a sentence with these tasks' report splits (--task ones always)",
    )
    run = pretrain.add_argument_group("the run (HF Trainer)")
    run.add_argument("--max-steps", type=int, default=None, help="optimizer steps (or --epochs)")
    run.add_argument("--epochs", type=float, default=None, help="passes over the training side (or --max-steps)")
    run.add_argument("--max-length", type=int, default=512, help="subwords per packed sequence (default: 512)")
    run.add_argument("--batch-size", type=int, default=16, help="sequences per device and step (default: 16)")
    run.add_argument("--gradient-accumulation", dest="gradient_accumulation_steps", type=int, default=1)
    run.add_argument("--lr", dest="learning_rate", type=float, default=5e-5, help="peak learning rate (default: 5e-5)")
    run.add_argument("--warmup", type=float, default=0.06, help="warmup steps, or a fraction if < 1 (default: 0.06)")
    run.add_argument("--weight-decay", type=float, default=0.01)
    run.add_argument("--mlm-probability", type=float, default=0.15, help="share of subwords masked (default: 0.15)")
    run.add_argument("--whole-word-mask", action="store_true", help="mask every subword of a chosen word together")
    run.add_argument("--validation-documents", type=int, default=100, help="held-out documents for perplexity")
    run.add_argument("--max-validation-sequences", type=int, default=200)
    run.add_argument("--eval-steps", type=int, default=500, help="evaluate and checkpoint every N steps (default: 500)")
    run.add_argument("--logging-steps", type=int, default=50)
    run.add_argument("--shuffle-buffer", type=int, default=1000, help="packed sequences shuffled together (default: 1000)")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument(
        "--attention-dropout", type=float, default=None,
        help="attention dropout while pre-training (default: the encoder's; 0 runs ~2x faster on CPU, kept out of OUT)",
    )
    run.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    run.add_argument("--fp16", action="store_true", help="fp16 mixed precision (GPU)")
    pretrain.add_argument(
        "--overwrite", action="store_true",
        help="replace what an earlier run left in --out; without it, a folder holding other settings is refused",
    )
    pretrain.set_defaults(handler=_pretrain)


def _study_transfer(args: argparse.Namespace) -> int:
    from clinx_hub.hub import available_model
    from clinx_hub.study import StudyError, run_study, study_from_arguments

    args.backbone = available_model(args.backbone)
    try:
        study = study_from_arguments(args, lambda a: {
            "num_train_epochs": a.epochs, "learning_rate": a.lr, "head_learning_rate": a.head_lr,
            "warmup_steps": a.warmup, "per_device_train_batch_size": a.batch_size,
            "early_stopping_patience": a.patience, "attention_dropout": a.attention_dropout,
        })
        table = run_study(
            study, Path(args.out), processes=args.processes, threads=args.threads, plots=not args.no_plots,
            meta={"command": "clinx " + " ".join(sys.argv[1:])},
        )
    except (StudyError, ImportError) as err:
        print(f"clinx: error: {err}", file=sys.stderr)
        return 2
    print(f"{len(table['runs'])} runs ({len(table['meta']['trained_now'])} run now); wrote {Path(args.out).with_suffix('.json')}"
          f" and {Path(args.out).with_suffix('.md')}")
    return 0


def add_study_command(commands: argparse._SubParsersAction) -> None:
    """``clinx study transfer``: the cross-task transfer study (no transfer vs each source, first n sentences)."""
    from clinx_hub.study import STUDY_SETTINGS

    study = commands.add_parser("study", help="studies over many training runs (resumable)")
    actions = study.add_subparsers(dest="action", required=True)
    transfer = actions.add_parser(
        "transfer", help="train targets on their first n sentences with and without transfer from each source; "
        "rank the sources by model similarity; write one results table",
    )
    transfer.add_argument(
        "--target", action="append", required=True, metavar="TASK|NAME=TASK:DIR",
        help="a target task (its corpus in --data-dir), or NAME=TASK:DIR; repeatable",
    )
    transfer.add_argument("--data-dir", default=None, help="the corpora folder the targets' tasks are read from")
    transfer.add_argument(
        "--source", action="append", default=None, metavar="TASK=MODEL_DIR",
        help="a source task's trained model; repeatable (a source named like a target is not used for it)",
    )
    add_backbone_flag(transfer, required=True, help="the encoder every run starts from (sources: their own)")
    transfer.add_argument("--n", type=int, nargs="+", required=True, help="training sentences per run (first n)")
    transfer.add_argument("--seeds", type=int, nargs="+", default=[42], help="seeds, one run each (default: 42)")
    transfer.add_argument(
        "--follow-up-n", type=int, nargs="*", default=None,
        help="sizes trained with no transfer and the predicted and best source of the first --n",
    )
    transfer.add_argument("--follow-up-seeds", type=int, nargs="+", default=None, help="(default: the first seed)")
    transfer.add_argument("--work", required=True, help="folder of the runs (one per cell; a rerun skips finished cells)")
    transfer.add_argument("--out", required=True, help="results table: OUT.json, OUT.md and OUT-*.png")
    transfer.add_argument("--processes", type=int, default=1, help="cells trained side by side, one process each")
    transfer.add_argument("--threads", type=int, default=None, help="torch threads per cell")
    transfer.add_argument("--measure", choices=["procrustes", "cka"], default="procrustes")
    transfer.add_argument("--max-tokens", type=int, default=2000, help="subwords the similarity compares")
    transfer.add_argument("--no-plots", action="store_true", help="skip the PNGs (which need matplotlib)")
    training = transfer.add_argument_group("training (every cell alike)")
    training.add_argument("--epochs", type=float, default=STUDY_SETTINGS["num_train_epochs"])
    training.add_argument("--lr", type=float, default=STUDY_SETTINGS["learning_rate"])
    training.add_argument("--head-lr", type=float, default=STUDY_SETTINGS["head_learning_rate"])
    training.add_argument("--warmup", type=float, default=STUDY_SETTINGS["warmup_steps"])
    training.add_argument("--batch-size", type=int, default=STUDY_SETTINGS["per_device_train_batch_size"])
    training.add_argument("--patience", type=int, default=STUDY_SETTINGS["early_stopping_patience"])
    training.add_argument("--attention-dropout", type=float, default=STUDY_SETTINGS["attention_dropout"])
    transfer.set_defaults(handler=_study_transfer)


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


class _DefaultsFormatter(argparse.HelpFormatter):
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


class _DeprecatedSpelling(argparse.Action):
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
        "--backbone", "--model", dest="backbone", required=required, action=_DeprecatedSpelling, new="--backbone",
        metavar="BACKBONE", help=help,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from clinx_hub import __version__

    parts = []
    for name in ("transformers", "torch"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"clinx_hub {__version__} ({', '.join(parts)}, Python {sys.version.split()[0]})"


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinx", description="CLIN-X clinical concept extraction toolkit", formatter_class=_DefaultsFormatter
    )
    parser.add_argument("--version", action="version", version=_version())
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
    for sub in _subparsers(parser):
        sub.formatter_class = _DefaultsFormatter
        for action in sub._actions:  # argparse shows nothing for an option without help, its default neither
            if action.help is None and action.option_strings and action.default not in (None, False):
                action.help = "default: %(default)s"
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
