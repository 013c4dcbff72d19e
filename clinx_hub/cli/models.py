"""``clinx train``, ``evaluate``, ``predict`` (also ``--engine`` batch extraction), ``quickstart`` and
``export onnx``: the commands that train or run a model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clinx_hub.formats.base import CorpusFormatError

from .options import add_backbone_flag, progress_bar


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
    from clinx_hub.outputs import prepare_output_folder, stale_outputs, warn_stale

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
        stale = stale_outputs(out, files)
    extractor = load_extractor(model, device=args.device, dtype=args.dtype)
    predictions = _predict_with_progress(extractor, documents, args.batch_size)
    from clinx_hub.evaluation import score_documents

    result = score_documents(documents, [d.with_spans(p) for d, p in zip(documents, predictions)])
    if args.pred_out:
        write_brat([d.with_spans(p) for d, p in zip(documents, predictions)], Path(args.pred_out))
        warn_stale(Path(args.pred_out), stale)
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
    from clinx_hub.outputs import jsonl_lines, prepare_output_folder, stale_outputs, warn_stale

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
    stale = stale_outputs(out, files)
    extractor = load_extractor(model, device=args.device, dtype=args.dtype)
    predictions = _predict_with_progress(extractor, documents, args.batch_size)
    if args.format == "brat":
        write_brat([d.with_spans(p) for d, p in zip(documents, predictions)], out)
    else:
        lines = jsonl_lines([d.id for d in documents], predictions)
        write_text_atomic(jsonl, "".join(line + "\n" for line in lines))
    spans = sum(map(len, predictions))
    warn_stale(out, stale)
    if args.json:
        print(json.dumps({"documents": len(documents), "spans": spans, "out": str(out), "format": args.format,
                          "earlier_files_left": len(stale)}))
    else:
        print(f"{spans} spans in {len(documents)} documents written to {out}")
    return 0


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
