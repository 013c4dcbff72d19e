"""``clinx similarity``, ``pretrain`` and ``study transfer``: the paper's transfer study and how CLIN-X was made."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import add_backbone_flag, progress_bar


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


def study_settings(args: argparse.Namespace) -> dict:
    """Every cell's training settings from ``clinx study transfer``'s flags (bf16 and no holdout only when asked for)."""
    return {
        "num_train_epochs": args.epochs, "learning_rate": args.lr, "head_learning_rate": args.head_lr,
        "warmup_steps": args.warmup, "per_device_train_batch_size": args.batch_size,
        "early_stopping_patience": args.patience, "attention_dropout": args.attention_dropout,
        **({"bf16": True} if args.bf16 else {}),
        **({} if args.holdout else {"holdout": False}),
    }


def _study_transfer(args: argparse.Namespace) -> int:
    from clinx_hub.hub import available_model
    from clinx_hub.study import StudyError, run_study, study_from_arguments

    args.backbone = available_model(args.backbone)
    try:
        study = study_from_arguments(args, study_settings)
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
    training.add_argument(
        "--no-holdout", dest="holdout", action="store_false",
        help="a fixed budget: every cell trains --epochs epochs on all n sentences and keeps the last (default:"
        " early stopping on held-out documents, best epoch kept)",
    )
    training.add_argument(
        "--bf16", action="store_true",
        help="train and score every cell in bf16 mixed precision (a GPU, or a CPU with AMX/AVX512-BF16)",
    )
    transfer.set_defaults(handler=_study_transfer)
