"""The CLIN-X recipe on the Trainer: folds, first-n sentences, initialisation and transfer, one model,
an ensemble's members, and a task's run from its corpus to its scores.

Data flows one way: documents -> windows (``windows.py``) -> model, trained by ``trainer.py`` with
``training_args.py``'s arguments -> spans (``extraction.py``) -> strict scores (``evaluation.py``);
what a run leaves on disk to resume or to refuse another run is ``run_state.py``'s, and what it
records is ``records.py``'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from .documents import Document
from .folders import CHECKPOINTS_DIR, CONFIG_FILE, FOLDS_FILE, MEMBERS_DONE, RUN_SETTINGS, TRAINING_RECORD
from .formats.base import TEXT_MISMATCH
from .method import FINISHED, MODEL, knobs, record_names
from .modeling_clinx import ClinXForTokenClassification
from .records import MemberRecord, TrainingRecord
from .registration import register
from .run_state import (
    changed_settings,
    check_run_settings,
    claim_run_folder,
    ensemble_progress,
    hardware,
    last_complete_checkpoint,
    lock_holder,
    member_folder,
    member_lock,
    member_lock_path,
    run_settings,
)
from .tagging import scheme_labels
from .trainer import HEAD_MODULES, ClinXTrainer, EarlyStoppingAfterFirstGain, TrainingTime
from .training_args import ClinXTrainingArguments, TrainingSetupError
from .windows import SpecialTokens, tokenize_document

logger = logging.getLogger(__name__)


def random_folds(doc_ids: Sequence[str], n: int, seed: int) -> list[list[str]]:
    """Document-level random folds: disjoint, covering, deterministic for a seed.

    >>> random_folds(["a", "b", "c", "d", "e"], 2, seed=0)
    [['a', 'c', 'd'], ['b', 'e']]
    """
    if n < 2:
        raise ValueError("random folds need n >= 2")
    if len(doc_ids) < n:
        raise TrainingSetupError(
            f"{len(doc_ids)} training documents cannot make {n} folds (fewer documents than --splits, a --first-n"
            " that leaves too few, or, for one model without a validation split, fewer than 5 to hold one fifth out)"
        )
    ids = sorted(doc_ids)
    random.Random(seed).shuffle(ids)
    return [sorted(ids[i::n]) for i in range(n)]


def first_n_sentences(documents: Sequence[Document], n: int) -> list[Document]:
    """The first ``n`` sentences of the training side in corpus order (documents by id).

    The last document is cut after its n-th sentence overall; spans past the cut are left out
    of this training subset (the report split never changes).

    >>> from clinx_hub.documents import Span
    >>> doc = Document("d1", "Uno. Dos tres.", [Span(5, 8, "X")], sentences=[(0, 4), (5, 14)])
    >>> [d.text for d in first_n_sentences([doc], 1)]
    ['Uno.']
    """
    result = []
    remaining = n
    for doc in sorted(documents, key=lambda d: d.id):
        if remaining <= 0:
            break
        sentences = doc.sentences or [(0, len(doc.text))]
        if len(sentences) <= remaining:
            result.append(doc)
            remaining -= len(sentences)
            continue
        cut = sentences[remaining - 1][1]
        spans = [s for s in doc.spans if s.end <= cut]
        result.append(replace(doc, text=doc.text[:cut], spans=spans, sentences=sentences[:remaining], findings=[]))
        remaining = 0
    return result


def initial_model(
    backbone: str,
    labels: list[str],
    args: ClinXTrainingArguments,
    *,
    train_documents: Sequence[Document] | None = None,
    tokenizer=None,
) -> ClinXForTokenClassification:
    """A model to train: from ``args.init_from`` (transfer) or a fresh head on ``backbone``.

    The encoder always comes from the source. Its classifier and CRF come too when its labels
    equal the target's and both use (or both skip) the CRF; otherwise they start fresh. The
    context, window and tagging settings are always this run's, never the source's. A fresh
    head given ``train_documents`` (and their ``tokenizer``) starts its emission bias at their
    tags' log-frequencies (``set_emission_prior``), so that an under-trained model predicts O.

    >>> model = initial_model("runs/minilm", labels, args, train_documents=docs, tokenizer=tok)  # doctest: +SKIP
    """
    register()  # --init-from opens with the Auto classes; checkpoints get auto_map and the model files
    settings = {name: getattr(args, name) for name, _ in knobs(MODEL)}
    fresh_head = True
    if args.init_from:
        from .hub import open_model_folder

        source = AutoModelForTokenClassification.from_pretrained(open_model_folder(args.init_from, ensemble=False))
        if not isinstance(source, ClinXForTokenClassification):
            raise TrainingSetupError(f"--init-from {args.init_from} is not a clinx_hub model")
        model = ClinXForTokenClassification.from_backbone(source.encoder, labels, **settings)
        source_labels = [source.config.id2label[i] for i in range(source.config.num_labels)]
        if source_labels == labels and source.config.use_crf == args.use_crf:
            for name in HEAD_MODULES:
                if getattr(model, name) is not None:
                    getattr(model, name).load_state_dict(getattr(source, name).state_dict())
            fresh_head = False
    else:
        model = ClinXForTokenClassification.from_backbone(backbone, labels, **settings)
    if fresh_head and train_documents:
        if tokenizer is None:
            raise ValueError("initial_model: train_documents need their tokenizer to count tags")
        model.set_emission_prior(training_tag_counts(train_documents, tokenizer, labels, args))
    if args.attention_dropout is not None:
        set_attention_dropout(model, args.attention_dropout)
    return model


def training_tag_counts(
    documents: Sequence[Document], tokenizer, labels: list[str], args: ClinXTrainingArguments
) -> list[int]:
    """How often each tag (in ``labels`` order) labels a position of ``documents``, as training tags them."""
    label2id = {label: i for i, label in enumerate(labels)}
    counts = [0] * len(labels)
    for document in documents:
        tokenized = tokenize_document(
            document, tokenizer, label2id, scheme=args.label_scheme, first_subword=args.tagging_level == "first_subword"
        )
        for tag, labelled in zip(tokenized.tags or [], tokenized.labelled):
            if labelled and tag is not None:
                counts[label2id[tag]] += 1
    return counts


def set_attention_dropout(model: ClinXForTokenClassification, p: float) -> None:
    """Set the dropout on the encoder's attention probabilities (``attention_probs_dropout_prob``).

    BERT-family attention (BERT, RoBERTa, XLM-R and so CLIN-X) reads it from each self-attention
    module's ``dropout`` at every forward; the encoder config is updated too, so the saved model
    says how it was trained. With 0, ``scaled_dot_product_attention`` may take its fused kernel,
    which on CPU it does only without dropout.
    """
    encoder_config = model.encoder.config
    if not hasattr(encoder_config, "attention_probs_dropout_prob"):
        raise TrainingSetupError(
            f"attention_dropout: the {encoder_config.model_type} encoder has no attention_probs_dropout_prob"
        )
    modules = [
        m for m in model.encoder.modules()
        if type(m).__name__.endswith("SelfAttention") and isinstance(getattr(m, "dropout", None), torch.nn.Dropout)
    ]
    if not modules:
        raise TrainingSetupError(
            f"attention_dropout: found no self-attention dropout in the {encoder_config.model_type} encoder"
        )
    for module in modules:
        module.dropout.p = p
    encoder_config.attention_probs_dropout_prob = p
    model.config.encoder["attention_probs_dropout_prob"] = p


def train_one(
    backbone: str,
    tokenizer,
    labels: list[str],
    train_documents: Sequence[Document],
    eval_documents: Sequence[Document],
    args: ClinXTrainingArguments,
) -> tuple[ClinXForTokenClassification, MemberRecord]:
    """Train one model with early stopping on ``eval_documents``; returns it and its record."""
    torch.manual_seed(args.seed)
    model = initial_model(backbone, labels, args, train_documents=train_documents, tokenizer=tokenizer)
    room = model.config.max_window_length() - SpecialTokens(tokenizer).count
    if room <= 2 * model.config.context_size:
        raise TrainingSetupError(
            f"{backbone} leaves {room} subwords per window besides its special tokens (window_length"
            f" {args.window_length}, capped by its positions): no room for a centre between two contexts of"
            f" {model.config.context_size}; lower --context"
        )
    last = last_complete_checkpoint(args.output_dir)
    clock = TrainingTime.resuming(last)
    callbacks = [clock]
    if eval_documents and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingAfterFirstGain(early_stopping_patience=args.early_stopping_patience))
    check_run_settings(args, train_documents, eval_documents, resuming=last is not None, write=is_main_process(args))
    trainer = ClinXTrainer(model, args, tokenizer, train_documents, eval_documents, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=last)
    record = MemberRecord(
        train_documents=len(train_documents),
        train_windows=len(trainer.train_dataset),
        eval_documents=len(eval_documents),
        unrepresentable_train_spans=sum(1 for f in trainer.findings if f.reason != "aligned"),
        aligned_train_spans=sum(1 for f in trainer.findings if f.reason == "aligned"),
        # From the Trainer's log, which a resumed run restores: the curve from epoch 1, not from the resume.
        evaluations=[e for e in trainer.state.log_history if "eval_f1" in e],
        best_eval_f1=trainer.state.best_metric,
        epochs_run=trainer.state.epoch,
        steps=trainer.state.global_step,
        # Including the interrupted runs' time up to the checkpoint this one resumed from.
        train_seconds=round(clock.seconds, 1),
        seed=args.seed,
    )
    return trainer.model, record


def is_main_process(args: ClinXTrainingArguments) -> bool:
    """Whether this process writes the run's files: rank 0 of a ``torchrun``/``accelerate launch`` run (or the only one).

    Every process trains (data-parallel, as the Trainer does); only this one writes models, records,
    settings, folds, locks and cards, and scores the report split.
    """
    return args.process_index == 0


def _wait_for_all(args: ClinXTrainingArguments) -> None:
    """All processes of a data-parallel run meet here (nothing to wait for with one)."""
    if args.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def finished_settings(args: ClinXTrainingArguments, train_documents, eval_documents) -> dict:
    """What a finished model must share with a run that would reuse it: its resume settings
    (``run_settings``) and the knobs ``method.py`` marks ``FINISHED`` (epochs, patience)."""
    return {
        **{name: getattr(args, name) for name, _ in knobs(FINISHED)},
        **run_settings(args, train_documents, eval_documents),
    }


def recipe_settings(record: TrainingRecord, args: ClinXTrainingArguments, documents, validation) -> dict:
    """What a run into a folder holding a finished run must share with it (kept in its record).

    The finished-model settings of the whole training side (``finished_settings``), plus what else
    decides the model: task, backbone, labels, splits, holdout. Documents as counts and id digests.
    """
    settings = {
        "task": record.task,
        "backbone": record.backbone,
        "labels": record.labels,
        "splits": args.splits,
        "holdout": args.holdout,
        **finished_settings(args, documents, validation or []),
    }
    return json.loads(json.dumps(settings, default=str))


# Finding reasons as the user reads them; {n} spans, {are}: agreeing in number.
SPAN_FINDING_LINES = {
    "nested": "{n} nested {spans} cannot be tagged flat and {are} left out of training",
    "crossing": "{n} crossing {spans} (overlapping another span) cannot be tagged flat and {are} left out of training",
    "shares-subword": "{n} {spans} sharing a subword with another span {are} left out of training",
    "duplicate": "{n} duplicate {spans} (the offsets and label of another span) {are} left out of training",
    "no-subword": "{n} {spans} covering no labelled subword {are} left out of training",
    "aligned": "{n} {spans} with an edge inside a subword {are} trained on the whole subwords",
    "text_mismatch": "{n} {spans} whose annotated text differs from the text at their offsets {are} trained at"
    " those offsets",
    "discontinuous": "{n} discontinuous {spans} {are} trained as one span from the first fragment to the last",
}


def span_findings(
    documents: Sequence[Document], tokenizer, labels: list[str], args: ClinXTrainingArguments
) -> dict[str, int]:
    """Training spans that are not trained as annotated, counted by reason (counts only, never text).

    The tagger's findings (``tagging.spans_to_tags``: left out, or edges moved), the reader's
    text mismatches (trained at their offsets) and discontinuous spans (tagged whole).
    """
    label2id = {label: i for i, label in enumerate(labels)}
    counts: Counter[str] = Counter()
    for document in documents:
        tokenized = tokenize_document(
            document, tokenizer, label2id, scheme=args.label_scheme, first_subword=args.tagging_level == "first_subword"
        )
        counts.update(f.reason for f in tokenized.findings)
        counts.update(f.reason for f in document.findings if f.reason == TEXT_MISMATCH)
        counts["discontinuous"] += sum(1 for s in document.spans if len(s.fragments) > 1)
    return {reason: n for reason, n in sorted(counts.items()) if n}


def span_finding_lines(counts: dict[str, int]) -> list[str]:
    """One line per reason of ``span_findings``.

    >>> span_finding_lines({"nested": 3})
    ['3 nested spans cannot be tagged flat and are left out of training']
    """
    lines = []
    for reason, n in sorted(counts.items()):
        line = SPAN_FINDING_LINES.get(reason, "{n} {spans} (" + reason + ") {are} left out of training")
        lines.append(line.format(n=n, spans="span" if n == 1 else "spans", are="is" if n == 1 else "are"))
    return lines


def train_recipe(
    backbone: str,
    training_side: Sequence[Document],
    out: str | Path,
    args: ClinXTrainingArguments,
    *,
    entity_types: Sequence[str],
    validation: Sequence[Document] | None = None,
    task: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Train one model (``args.splits == 1``) or a random-split ensemble into ``out``.

    With one split, the model early-stops on ``validation`` or, without one, on a held-out
    random fifth of the training side; with ``args.holdout`` False it trains on all of them
    (``validation`` too) for the set epochs and keeps the last. With n splits, the training
    side is cut into n document-level folds; member i trains on the others and early-stops on
    fold i; the members are saved under ``out/members`` with ``ensemble.json`` and the fold
    lists in ``folds.json``. With ``args.members`` only those members are trained (see
    ``train_members``), and the ensemble is left to a later run without ``members``.

    A folder that holds a finished run (or an unfinished one) is only trained into again with the
    same settings: other settings are refused, naming them, before anything loads, unless
    ``overwrite`` (``clinx train --overwrite``) replaces what the earlier run wrote.
    """
    from .ensemble import ClinXEnsemble, Extractor

    args.check_settings()
    out = Path(out)
    labels = scheme_labels(list(entity_types), args.label_scheme)
    documents = list(training_side)
    if not args.holdout and validation:
        # Nothing is held out: validation is training data like the rest (and first-n counts it).
        documents, validation = documents + list(validation), None
    if args.first_n:
        documents = first_n_sentences(documents, args.first_n)
    folds = random_folds([d.id for d in documents], args.splits, args.seed) if args.splits > 1 else None
    record = TrainingRecord(
        task=task,
        backbone=backbone,
        labels=labels,
        settings={key: getattr(args, name) for name, key in record_names().items()},
        hardware=hardware(args.device.type),  # where the Trainer ran, not merely what is visible
        world_size=args.world_size,  # processes training it data-parallel (torchrun --nproc_per_node)
    )
    # Each member of an ensemble trains on all but its fold: the whole training side is trained on.
    trained_on = documents
    if args.splits <= 1:
        member_args = replace(args, output_dir=str(out / CHECKPOINTS_DIR))
        if not args.holdout:
            # The paper's "All": every training document, a fixed schedule, the last epoch is the model.
            train_docs, eval_docs = documents, []
            member_args = replace(member_args, eval_strategy="no", load_best_model_at_end=False)
        elif validation:
            train_docs, eval_docs = documents, list(validation)
        else:
            held_out = set(random_folds([d.id for d in documents], 5, args.seed)[0])
            train_docs = [d for d in documents if d.id not in held_out]
            eval_docs = [d for d in documents if d.id in held_out]
        trained_on = train_docs
    record.run_settings = recipe_settings(record, args, documents, validation)
    main = is_main_process(args)
    # Rank 0 claims (with overwrite: clears) the folder first; the others then find it as it left it.
    with args.main_process_first(local=False, desc="claiming the run folder"):
        claim_run_folder(out, record.run_settings, folds, args, overwrite=overwrite and main)
        out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(args.init_from or backbone)
    # Said at the start, where the user sees it (counts and reasons only, never text).
    record.train_span_findings = span_findings(trained_on, tokenizer, labels, args)
    for line in span_finding_lines(record.train_span_findings) if main else []:
        logger.warning("%s (see %s)", line, TRAINING_RECORD)
    if args.splits <= 1:
        model, member_record = train_one(backbone, tokenizer, labels, train_docs, eval_docs, member_args)
        if not main:
            return out
        Extractor(model, tokenizer).save_pretrained(out)
        record.members.append(member_record)
        record.train_seconds = member_record.train_seconds  # interrupted runs' time included
    else:
        if main:
            (out / FOLDS_FILE).write_text(json.dumps({"seed": args.seed, "folds": folds}, indent=2) + "\n")
        finished = train_members(backbone, tokenizer, labels, documents, folds, out, args)
        if args.members is not None or not main:
            # Other members may be training side by side: a run without members assembles them.
            return out
        members = []
        for i in range(len(folds)):
            members.append(Extractor.from_pretrained(finished[i]))
            record.members.append(MemberRecord.read(finished[i]))
        ClinXEnsemble(members).save_pretrained(out)
        # The members may have trained in other runs, elsewhere: their own time and hardware count.
        record.hardware = "; ".join(sorted({m.hardware or record.hardware for m in record.members}))
        record.train_seconds = round(sum(m.train_seconds for m in record.members), 1)
    # The record is written last of what ships: with it, the run is done (score_task_model may
    # finish it). Only then go the checkpoints and finished members, which served to resume it
    # (members only by the ensemble they were trained for).
    record.write(out)
    shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)
    if args.splits > 1:
        shutil.rmtree(out / MEMBERS_DONE, ignore_errors=True)
    return out


def train_members(
    backbone: str,
    tokenizer,
    labels: list[str],
    documents: Sequence[Document],
    folds: list[list[str]],
    out: Path,
    args: ClinXTrainingArguments,
) -> dict[int, Path]:
    """Train the ensemble members ``args.members`` selects (all by default) that are not finished yet.

    Member i trains on the other folds and early-stops on fold i, into ``out/members_done/i`` with its
    record and settings. A member finished earlier (by an interrupted run, or by another run side by
    side) is reused when its settings, epochs included, are this run's, and refused otherwise. A
    member another live run is training (its lock file says so) is refused up front, never trained
    twice at once. Returns the folders of the finished members, by fold number.
    """
    from .ensemble import Extractor

    selected = range(len(folds)) if args.members is None else args.members
    missing = ensemble_progress(out, len(folds))["missing"]
    busy = [
        f"{i} ({holder})"
        for i in sorted(set(selected) & set(missing))
        if (holder := lock_holder(member_lock_path(out, i)))
    ]
    if busy:
        raise TrainingSetupError(
            f"another run is training members {', '.join(busy)} into {out}: let it finish (then rerun to"
            " assemble), or give this run other --members"
        )
    # Every process has looked for other runs' locks before rank 0 takes its own.
    _wait_for_all(args)
    main = is_main_process(args)
    finished = {}
    for i, fold in enumerate(folds):
        folder = member_folder(out, i)
        held_out = set(fold)
        train_docs = [d for d in documents if d.id not in held_out]
        eval_docs = [d for d in documents if d.id in held_out]
        member_args = replace(args, output_dir=str(out / CHECKPOINTS_DIR / str(i)), seed=args.seed + i)
        settings = finished_settings(member_args, train_docs, eval_docs)
        if (folder / CONFIG_FILE).is_file():
            if not (folder / RUN_SETTINGS).is_file():
                raise TrainingSetupError(
                    f"{folder} holds member {i} without the {RUN_SETTINGS} that says how it was trained:"
                    " delete that folder to train the member again, or train into another --out"
                )
            changed = changed_settings(folder / RUN_SETTINGS, settings)
            if changed:
                raise TrainingSetupError(
                    f"{folder} holds member {i} finished with other settings ({', '.join(changed)}):"
                    " rerun with the same settings, or train into another --out"
                )
            finished[i] = folder
            continue
        if i not in selected:
            continue
        # Each member trains on every process (data-parallel), one member after another; rank 0 holds
        # its lock and writes it. (Members side by side: one `clinx train --members i` per GPU.)
        with member_lock(member_lock_path(out, i)) if main else contextlib.nullcontext():
            model, member_record = train_one(backbone, tokenizer, labels, train_docs, eval_docs, member_args)
            if not main:
                finished[i] = folder
                continue
            # Written aside and renamed: a run side by side never sees a member half written.
            partial = folder.with_name(f".{i}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            Extractor(model, tokenizer).save_pretrained(partial)
            replace(member_record, fold=i, hardware=hardware(args.device.type)).write(partial)
            (partial / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
            shutil.rmtree(folder, ignore_errors=True)  # what a crash left of an earlier attempt
            partial.rename(folder)
            # Its checkpoints only served to resume it.
            shutil.rmtree(member_args.output_dir, ignore_errors=True)
        finished[i] = folder
    return finished


def train_task(
    task_name: str,
    data_dir: str | Path,
    backbone: str,
    out: str | Path,
    args: ClinXTrainingArguments,
    *,
    overwrite: bool = False,
) -> dict:
    """Train on a task's training side as PROTOCOL.md says and score the report split.

    With one split the standard train/validation division is kept where the task has one;
    with n splits, or one split and ``args.holdout`` False, all training-side documents are
    pooled (into the random folds, or into one training set). The report
    split's strict scores go into ``training_record.json`` (statistics only, never text).
    An ``out`` that holds another run is refused unless ``overwrite`` (see ``train_recipe``).

    >>> train_task("pharmaconer", "../shared/corpora", "runs/minilm", "runs/ph", args)  # doctest: +SKIP
    """
    from .corpora import get_task, load_task

    args.check_settings()  # before the corpus is read
    task = get_task(task_name)
    splits = load_task(task_name, Path(data_dir))
    training = [s for s in task.train_splits if s in splits and s != task.report_split]
    if not training:
        raise TrainingSetupError(f"{data_dir} holds none of {task_name}'s training splits {task.train_splits}")
    # A user's own BRAT folder declares no label set: it is read from every training-side split,
    # validation included (a label seen only there would otherwise stop early stopping's windows).
    entity_types = task.labels or sorted({s.label for name in training for d in splits[name] for s in d.spans})
    validation = None
    if args.splits <= 1 and args.holdout and "validation" in training and len(training) > 1:
        validation = splits["validation"]
        training = [s for s in training if s != "validation"]
    documents = [d for s in training for d in splits[s]]
    out = train_recipe(
        backbone, documents, out, args, entity_types=entity_types, validation=validation, task=task_name,
        overwrite=overwrite,
    )
    if not is_main_process(args):
        # The model, its record and its scores are rank 0's (scored once, on one process).
        return {"task": task_name, "out": str(out), "process_index": args.process_index}
    if args.members is not None:
        # Some members only: nothing to score until a run without members assembles the ensemble.
        return {"task": task_name, "out": str(out), "members": ensemble_progress(out, args.splits)}
    record = TrainingRecord.read(out)
    record.training_splits = training
    record.write(out)
    return score_task_model(task_name, data_dir, out, args.device, splits=splits, dtype=scoring_dtype(args))


def scoring_dtype(args: ClinXTrainingArguments) -> str:
    """The precision a run's report split is scored in: bf16 for a model trained in bf16, else fp32."""
    return "bf16" if args.bf16 else "fp32"


def score_task_model(
    task_name: str,
    data_dir: str | Path,
    out: str | Path,
    device: str | torch.device | None = None,
    *,
    splits: dict | None = None,
    dtype: str | None = None,
) -> dict:
    """Score the model ``train_task`` left in ``out`` on the task's report split, into its training record.

    Also what finishes a run whose scoring was cut short: training need not be repeated.
    ``dtype`` (``fp32``/``bf16``/``fp16``, default fp32) is the encoder's precision while it scores;
    a model trained with ``--bf16`` is scored in bf16. The record names it.

    >>> score_task_model("pharmaconer", "../shared/corpora", "runs/ph")["evaluation"]["micro"]  # doctest: +SKIP
    """
    from .corpora import get_task, load_task
    from .ensemble import ClinXEnsemble, load_extractor

    task = get_task(task_name)
    dtype = dtype or "fp32"
    splits = splits if splits is not None else load_task(task_name, Path(data_dir))
    record = TrainingRecord.read(out)
    if task.report_split in splits:
        started = time.time()
        # Scored where it was trained (the GPU when the Trainer used one).
        extractor = load_extractor(out, dtype=dtype)
        if device is not None:
            extractor = extractor.to(device)
        member_results = []
        if isinstance(extractor, ClinXEnsemble):
            result, member_results = extractor.evaluate_members(splits[task.report_split])
        else:
            result = extractor.evaluate(splits[task.report_split])
        record.evaluation = {
            "split": task.report_split,
            "documents": result.documents,
            "seconds": round(time.time() - started, 1),
            "dtype": dtype,
            **result.to_dict(),
        }
        if member_results:
            # Each member alone on the report split: the paper's "Random splits: Median" row.
            record.evaluation["members"] = [m.micro.to_dict() for m in member_results]
            record.evaluation["member_median_f1"] = statistics.median(m.micro.f1 for m in member_results)
    record.write(out)
    return record.to_json()
