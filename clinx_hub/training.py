"""The CLIN-X recipe on the Hugging Face Trainer: windows, strict-F1 early stopping, random-split
ensembles, transfer initialisation and first-n-sentence low-resource runs.

Data flows one way: documents -> windows (``windows.py``) -> model -> spans (``extraction.py``)
-> strict scores (``evaluation.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import random
import shutil
import socket
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from .documents import Document
from .extraction import extract_documents, pad_windows
from .formats.base import TEXT_MISMATCH
from .modeling_clinx import ClinXForTokenClassification
from .tagging import scheme_labels
from .windows import SpecialTokens, Window, build_windows, tokenize_document

TRAINING_RECORD = "training_record.json"
# Modules of ClinXForTokenClassification trained from scratch on top of the encoder.
HEAD_MODULES = ("classifier", "crf")
FOLDS_FILE = "folds.json"
# Beside a run's checkpoints: the settings a resumed run must share (see check_run_settings).
RUN_SETTINGS = "run_settings.json"
# In each checkpoint: the training seconds that led to it, so that a resumed run's time is whole.
TRAIN_SECONDS_FILE = "clinx_train_seconds.json"
# Ensemble members finished by a run that is not over (or one of several runs side by side).
MEMBERS_DONE = "members_done"

logger = logging.getLogger(__name__)


class TrainingSetupError(ValueError):
    """The training data or a source model cannot serve the requested settings (the CLI exits 2)."""


@dataclass
class ClinXTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the CLIN-X method's knobs (the model is configured from them)."""

    context_size: int = field(default=100, metadata={"help": "subwords of context on each side"})
    context_mode: str = field(default="window", metadata={"help": "window | sentence"})
    label_scheme: str = field(default="bioes", metadata={"help": "bioes | bio"})
    use_crf: bool = field(default=True, metadata={"help": "CRF output layer (False: softmax ablation)"})
    tagging_level: str = field(default="subword", metadata={"help": "subword | first_subword"})
    window_length: int = field(default=512, metadata={"help": "encoder positions per window"})
    splits: int = field(default=1, metadata={"help": "random splits / ensemble members (1: one model)"})
    first_n: int | None = field(default=None, metadata={"help": "train on the first n sentences only"})
    init_from: str | None = field(default=None, metadata={"help": "source-task model to start from (transfer)"})
    early_stopping_patience: int = field(default=3, metadata={"help": "evaluations without F1 gain before stopping"})
    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "learning rate of the classifier and CRF (None: learning_rate, as for the encoder)"},
    )
    attention_dropout: float | None = field(
        default=None,
        metadata={
            "help": "dropout on the encoder's attention probabilities while training (None: the encoder's own,"
            " 0.1 for BERT/XLM-R). 0 lets PyTorch's fused attention kernel run on CPU: about 2x faster steps"
        },
    )
    members: list[int] | None = field(
        default=None,
        metadata={
            "help": "ensemble members (0-based fold numbers) this run trains, and no others (None: all, then the"
            " ensemble is assembled). Runs given different members can go side by side, one per GPU; a last run"
            " without members reuses the finished ones, trains any missing and assembles the ensemble"
        },
    )
    holdout: bool = field(
        default=True,
        metadata={
            "help": "one model: hold documents out to early-stop on and keep the best epoch (False: train on the"
            " whole training side, validation included, for the set epochs and keep the last; the paper's 'All' row)"
        },
    )

    def __post_init__(self):
        self.check_settings()
        super().__post_init__()

    def check_settings(self) -> None:
        """Refuse settings that cannot train, naming the field (and its ``clinx train`` flag).

        Run on construction, and again by ``train_recipe`` (fields may be set afterwards), so that
        nothing is loaded for a run that cannot train. ``not x > 0`` also refuses NaN.

        >>> default_arguments("runs/x", num_train_epochs=0)
        Traceback (most recent call last):
        ...
        ValueError: num_train_epochs (--epochs) must be > 0, not 0
        """
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ValueError(f"num_train_epochs (--epochs) must be > 0, not {self.num_train_epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate (--lr) must be > 0, not {self.learning_rate}")
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:
            raise ValueError(f"head_learning_rate (--head-lr) must be > 0, not {self.head_learning_rate}")
        for name, flag in (
            ("per_device_train_batch_size", " (--batch-size)"),
            ("per_device_eval_batch_size", " (--batch-size)"),
            ("gradient_accumulation_steps", ""),
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}{flag} must be >= 1, not {getattr(self, name)}")
        if not self.warmup_steps >= 0:
            raise ValueError(
                "warmup_steps (--warmup) must be >= 0 (steps, or a fraction of all steps if < 1),"
                f" not {self.warmup_steps}"
            )
        if self.splits < 1:
            raise ValueError(
                f"splits (--splits) must be >= 1 (1: one model, N > 1: an N-member ensemble), not {self.splits}"
            )
        # Patience 0 would stop after the first evaluation whatever it scores.
        if self.early_stopping_patience < 1:
            raise ValueError(
                "early_stopping_patience (--patience) must be >= 1 (evaluations without F1 gain before stopping),"
                f" not {self.early_stopping_patience}"
            )
        for name, allowed in (
            ("context_mode", ("window", "sentence")),
            ("label_scheme", ("bioes", "bio")),
            ("tagging_level", ("subword", "first_subword")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.attention_dropout is not None and not 0 <= self.attention_dropout < 1:
            raise ValueError(f"attention_dropout must be in [0, 1), not {self.attention_dropout}")
        if self.context_size < 0:
            raise ValueError(f"context_size must be >= 0, not {self.context_size}")
        # Checked here, before any corpus or encoder is loaded (the encoder's special tokens take more).
        if self.window_length <= 2 * self.context_size:
            raise ValueError(
                f"window_length {self.window_length} leaves no room for a centre between two contexts of"
                f" {self.context_size} subwords: make it larger than {2 * self.context_size} plus the special tokens"
            )
        if self.first_n is not None and self.first_n < 1:
            raise ValueError(f"first_n must be a number of sentences >= 1, not {self.first_n}")
        if not self.holdout and self.splits > 1:
            raise ValueError(
                "holdout=False (--no-holdout) trains one model on every training document; an ensemble of"
                f" {self.splits} random splits needs its held-out folds (use splits=1)"
            )
        if self.members is not None:
            if self.splits <= 1:
                raise ValueError("members (--members) selects ensemble members: it needs splits > 1 (--splits)")
            outside = sorted({m for m in self.members if not 0 <= m < self.splits})
            if not self.members or outside:
                raise ValueError(
                    f"members (--members) must name members 0 to {self.splits - 1} of the {self.splits}-split ensemble,"
                    f" not {outside or 'none'}"
                )


class WindowDataset(torch.utils.data.Dataset):
    """Labelled windows as a map-style dataset for the Trainer."""

    def __init__(self, windows: Sequence[Window]):
        self.windows = list(windows)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> Window:
        return self.windows[index]


class WindowCollator:
    """Pads windows into ``input_ids``/``attention_mask``/``labels`` tensors."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, windows: Sequence[Window]) -> dict[str, torch.Tensor]:
        batch = pad_windows(windows, self.pad_id, with_labels=True)
        batch.pop("label_mask")
        return batch


class ClinXTrainer(Trainer):
    """A ``Trainer`` fed with documents; evaluation is strict span F1 on held-out documents.

    The training documents become labelled windows exactly as the model config says (context,
    mode, scheme, tagging level), so training and inference always see the same inputs.

    >>> trainer = ClinXTrainer(model, args, tokenizer, train_documents, eval_documents)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: ClinXForTokenClassification,
        args: TrainingArguments,
        tokenizer,
        train_documents: Sequence[Document],
        eval_documents: Sequence[Document] | None = None,
        **kwargs,
    ):
        config = model.config
        self.eval_documents = list(eval_documents or [])
        # What tokenisation found in the training spans (aligned, or not representable).
        self.findings = []
        train_windows = self._windows(config, tokenizer, train_documents, self.findings)
        # The Trainer wants an eval dataset for epoch-wise evaluation; evaluate() scores documents.
        eval_windows = self._windows(config, tokenizer, self.eval_documents, []) if self.eval_documents else None
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        super().__init__(
            model=model,
            args=args,
            train_dataset=WindowDataset(train_windows),
            eval_dataset=WindowDataset(eval_windows) if eval_windows else None,
            data_collator=WindowCollator(pad_id),
            processing_class=tokenizer,
            **kwargs,
        )

    def _windows(self, config, tokenizer, documents: Sequence[Document], findings: list) -> list[Window]:
        first_subword = config.tagging_level == "first_subword"
        tokenized = [
            tokenize_document(d, tokenizer, config.label2id, scheme=config.label_scheme, first_subword=first_subword)
            for d in documents
        ]
        for t in tokenized:
            findings.extend(t.findings)
        return build_windows(
            tokenized,
            tokenizer,
            max_length=config.max_window_length(),
            context=config.context_size,
            mode=config.context_mode,
            label2id=config.label2id,
        )

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """The Trainer's optimizer, with the classifier and CRF in groups of their own learning rate.

        A freshly initialised head (and the CRF's transitions) may want a higher rate than the
        encoder's fine-tuning rate. The scheduler scales every group alike, so the head keeps its
        ratio to the encoder. (With MiniLM at 3 epochs, 10x for the head moved PharmaCoNER dev F1
        by +0.4 only; on MEDDOCAN, together with a third epoch, labels with under ~100 training
        spans came in: benchmarks/results/accuracy.md.)
        """
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        head_lr = getattr(self.args, "head_learning_rate", None)
        if not (fresh and head_lr):
            return optimizer
        # Split each of the Trainer's groups (its weight-decay split and options kept) in two.
        opt_model = self.model if model is None else model
        head = {id(p) for name, p in opt_model.named_parameters() if name.split(".", 1)[0] in HEAD_MODULES}
        for group in list(optimizer.param_groups):
            moved = [p for p in group["params"] if id(p) in head]
            if moved:
                group["params"] = [p for p in group["params"] if id(p) not in head]
                optimizer.add_param_group({**group, "params": moved, "lr": head_lr})
        optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
        return optimizer

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Strict micro P/R/F1 of the current model on the held-out documents."""
        from .evaluation import score_documents

        start = time.time()
        # F1 needs the Viterbi path only: no marginals.
        predictions = extract_documents(
            self.model,
            self.processing_class,
            self.eval_documents,
            batch_size=self.args.per_device_eval_batch_size,
            with_scores=False,
        )
        scores = score_documents(self.eval_documents, [d.with_spans(p) for d, p in zip(self.eval_documents, predictions)])
        metrics = {
            f"{metric_key_prefix}_precision": scores.micro.precision,
            f"{metric_key_prefix}_recall": scores.micro.recall,
            f"{metric_key_prefix}_f1": scores.micro.f1,
            f"{metric_key_prefix}_runtime": round(time.time() - start, 3),
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class _TrainingTime(TrainerCallback):
    """Training seconds across interrupted runs: each checkpoint keeps the time spent up to it."""

    def __init__(self, before: float = 0.0) -> None:
        self.before = before
        self.started = time.time()

    @property
    def seconds(self) -> float:
        return self.before + time.time() - self.started

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            (folder / TRAIN_SECONDS_FILE).write_text(json.dumps({"train_seconds": round(self.seconds, 1)}) + "\n")

    @classmethod
    def resuming(cls, checkpoint: str | None) -> _TrainingTime:
        """The clock of a run resuming from ``checkpoint`` (time before it counts; 0 if unrecorded)."""
        path = Path(checkpoint) / TRAIN_SECONDS_FILE if checkpoint else None
        return cls(json.loads(path.read_text())["train_seconds"] if path and path.is_file() else 0.0)


def random_folds(doc_ids: Sequence[str], n: int, seed: int) -> list[list[str]]:
    """Document-level random folds: disjoint, covering, deterministic for a seed.

    >>> random_folds(["a", "b", "c", "d", "e"], 2, seed=0)
    [['a', 'd', 'e'], ['b', 'c']]
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
) -> ClinXForTokenClassification:
    """A model to train: from ``args.init_from`` (transfer) or a fresh head on ``backbone``.

    The encoder always comes from the source. Its classifier and CRF come too when its labels
    equal the target's and both use (or both skip) the CRF; otherwise they start fresh. The
    context, window and tagging settings are always this run's, never the source's.
    """
    settings = dict(
        label_scheme=args.label_scheme,
        use_crf=args.use_crf,
        context_size=args.context_size,
        context_mode=args.context_mode,
        tagging_level=args.tagging_level,
        window_length=args.window_length,
    )
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
    else:
        model = ClinXForTokenClassification.from_backbone(backbone, labels, **settings)
    if args.attention_dropout is not None:
        set_attention_dropout(model, args.attention_dropout)
    return model


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


def run_settings(args: ClinXTrainingArguments, train_documents, eval_documents) -> dict:
    """What an interrupted run must share with the run that resumes it (epochs may grow).

    The documents enter as counts and a digest of their ids (no text).
    """
    def documents(docs):
        ids = sorted(d.id for d in docs)
        return {"count": len(ids), "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}

    fields = (
        "context_size", "context_mode", "label_scheme", "use_crf", "tagging_level", "window_length", "init_from",
        "learning_rate", "head_learning_rate", "warmup_steps", "per_device_train_batch_size",
        "gradient_accumulation_steps", "lr_scheduler_type", "lr_scheduler_kwargs", "weight_decay", "seed",
        "attention_dropout", "eval_strategy", "metric_for_best_model", "first_n",
    )
    settings = {name: getattr(args, name) for name in fields}
    settings["train_documents"] = documents(train_documents)
    settings["eval_documents"] = documents(eval_documents)
    return json.loads(json.dumps(settings, default=str))


def changed_settings(path: Path, settings: dict) -> list[str]:
    """The fields where ``settings`` differ from those stored at ``path`` (none when nothing is stored).

    Fields that only one side records (one added by a later version of clinx_hub) are not compared.
    """
    if not path.is_file():
        return []
    before = json.loads(path.read_text())
    return sorted(k for k in settings.keys() & before.keys() if settings[k] != before[k])


def check_run_settings(args: ClinXTrainingArguments, train_documents, eval_documents, *, resuming: bool) -> None:
    """Write this run's settings beside its checkpoints, or, when resuming, refuse other settings."""
    path = Path(args.output_dir) / RUN_SETTINGS
    settings = run_settings(args, train_documents, eval_documents)
    if resuming and path.is_file():
        changed = changed_settings(path, settings)
        if changed:
            raise TrainingSetupError(
                f"{args.output_dir} holds checkpoints of an interrupted run with other settings ({', '.join(changed)}):"
                " rerun with the same settings to resume it, or train into another --out"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def train_one(
    backbone: str,
    tokenizer,
    labels: list[str],
    train_documents: Sequence[Document],
    eval_documents: Sequence[Document],
    args: ClinXTrainingArguments,
) -> tuple[ClinXForTokenClassification, dict]:
    """Train one model with early stopping on ``eval_documents``; returns it and its record."""
    torch.manual_seed(args.seed)
    model = initial_model(backbone, labels, args)
    room = model.config.max_window_length() - SpecialTokens(tokenizer).count
    if room <= 2 * model.config.context_size:
        raise TrainingSetupError(
            f"{backbone} leaves {room} subwords per window besides its special tokens (window_length"
            f" {args.window_length}, capped by its positions): no room for a centre between two contexts of"
            f" {model.config.context_size}; lower --context"
        )
    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    clock = _TrainingTime.resuming(last)
    callbacks = [clock]
    if eval_documents and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    check_run_settings(args, train_documents, eval_documents, resuming=last is not None)
    trainer = ClinXTrainer(model, args, tokenizer, train_documents, eval_documents, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=last)
    record = {
        "train_documents": len(train_documents),
        "train_windows": len(trainer.train_dataset),
        "eval_documents": len(eval_documents),
        "unrepresentable_train_spans": sum(1 for f in trainer.findings if f.reason != "aligned"),
        "aligned_train_spans": sum(1 for f in trainer.findings if f.reason == "aligned"),
        # From the Trainer's log, which a resumed run restores: the curve from epoch 1, not from the resume.
        "evaluations": [e for e in trainer.state.log_history if "eval_f1" in e],
        "best_eval_f1": trainer.state.best_metric,
        "epochs_run": trainer.state.epoch,
        # Including the interrupted runs' time up to the checkpoint this one resumed from.
        "train_seconds": round(clock.seconds, 1),
        "seed": args.seed,
    }
    return trainer.model, record


def hardware(device: str | None = None) -> str:
    """What a figure was measured on: the GPU, or the CPU model, torch threads and cores.

    ``device`` is ``"cuda"`` or ``"cpu"``; by default the GPU when one is visible.
    """
    if device == "cuda" or (device is None and torch.cuda.is_available()):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores (torch {torch.__version__})"


def default_arguments(output_dir: str | Path, **overrides) -> ClinXTrainingArguments:
    """Arguments for CLIN-X runs: epoch-wise strict-F1 evaluation, best model kept, no reporting."""
    settings = dict(
        output_dir=str(output_dir),
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="f1",
        greater_is_better=True,
        logging_strategy="epoch",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        save_only_model=False,
    )
    settings.update(overrides)
    return ClinXTrainingArguments(**settings)


def recipe_settings(record: dict, args: ClinXTrainingArguments, documents, validation) -> dict:
    """What a run into a folder holding a finished run must share with it (kept in its record).

    The resume settings of the whole training side (``run_settings``), plus what else decides the
    model: task, backbone, labels, splits, epochs, patience. Documents as counts and id digests.
    """
    settings = {
        **{name: record[name] for name in ("task", "backbone", "labels", "splits", "holdout")},
        "num_train_epochs": args.num_train_epochs,
        "early_stopping_patience": args.early_stopping_patience,
        **run_settings(args, documents, validation or []),
    }
    return json.loads(json.dumps(settings, default=str))


# A record written before records kept their run_settings: its fields under their settings' names.
_RECORD_NAMES = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size"}
# What runs write into their folder: model or ensemble, tokenizer, remote code, card, record and
# resume state. `overwrite` removes these, and leaves anything else in the folder alone.
RUN_OUTPUTS = (
    TRAINING_RECORD, FOLDS_FILE, "ensemble.json", "members", MEMBERS_DONE, "checkpoints", "README.md",
    "config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model.bin",
    "modeling_clinx.py", "configuration_clinx.py", "tokenizer*", "special_tokens_map.json", "added_tokens.json",
    "chat_template.*", "sentencepiece.bpe.model", "spiece.model", "vocab.*", "merges.txt",
)


def claim_run_folder(
    out: Path,
    settings: dict,
    folds: list[list[str]] | None,
    args: ClinXTrainingArguments,
    *,
    overwrite: bool = False,
) -> None:
    """Refuse to train into ``out`` over another run's work; with ``overwrite``, remove that work first.

    A finished model or ensemble is trained into again only with the settings it was trained with
    (the run is then repeated, as before); an unfinished ensemble only by runs of its own splits,
    so that its finished members are never mixed with, or deleted by, another run.
    """
    if overwrite:
        sources = {Path(p).resolve() for p in (settings["backbone"], settings["init_from"]) if p}
        if out.resolve() in sources:
            raise TrainingSetupError(f"{out} is this run's backbone or source model: train into another --out")
        busy = [
            f"{lock.name} ({holder})"
            for lock in sorted((out / MEMBERS_DONE).glob(".*.lock"))
            if (holder := lock_holder(lock))
        ]
        if busy:
            raise TrainingSetupError(f"another run is training members into {out} ({', '.join(busy)}): not replaced")
        for pattern in RUN_OUTPUTS:
            for path in out.glob(pattern):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        return
    conflict = _run_folder_conflict(out, settings, folds, args)
    if conflict:
        raise conflict


def _run_folder_conflict(out: Path, settings: dict, folds, args: ClinXTrainingArguments) -> Exception | None:
    from .ensemble import ENSEMBLE_FILE

    replace_it = "train into another --out, or pass --overwrite to replace it"
    record_path = out / TRAINING_RECORD
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except ValueError:
            return TrainingSetupError(f"{record_path} cannot be read: {replace_it}")
        before = record.get("run_settings") or {_RECORD_NAMES.get(k, k): v for k, v in record.items()}
        changed = sorted(k for k in settings.keys() & before.keys() if settings[k] != before[k])
        if changed:
            kind = "ensemble" if (before.get("splits") or 1) > 1 else "single model"
            return TrainingSetupError(
                f"{out} holds a finished {kind} trained with other settings ({', '.join(changed)}):"
                f" rerun with its settings, {replace_it}"
            )
    else:
        # A finished model of the other kind would outlive this run in the same folder (load_extractor
        # and AutoModel would open whichever they find first): refuse instead of mixing the two.
        other = out / ("config.json" if args.splits > 1 else ENSEMBLE_FILE)
        if other.is_file():
            kind = "single model" if args.splits > 1 else "ensemble"
            return FileExistsError(f"{out} already holds a trained {kind} ({other.name}): {replace_it}")
    if args.members is not None and (out / ENSEMBLE_FILE).is_file():
        return FileExistsError(f"{out} already holds the assembled ensemble: its members are trained ({replace_it})")
    if record_path.is_file():
        return None
    same = out / ("config.json" if args.splits <= 1 else ENSEMBLE_FILE)
    if same.is_file() and not (out / ("checkpoints" if args.splits <= 1 else MEMBERS_DONE)).is_dir():
        # Not one of ours left unfinished (that keeps what resumes it): a model saved here otherwise.
        return FileExistsError(
            f"{out} holds a model ({same.name}) without the {TRAINING_RECORD} of a run: {replace_it}"
        )
    folds_path = out / FOLDS_FILE
    if folds_path.is_file():
        try:
            earlier = json.loads(folds_path.read_text())
            n = len(earlier["folds"])
        except (ValueError, KeyError, TypeError):
            return TrainingSetupError(f"{folds_path} cannot be read: {replace_it}")
        if folds is None or len(folds) != n:
            changed = ["splits"]
        elif earlier.get("seed") != args.seed:
            changed = ["seed"]
        else:
            changed = ["train_documents"] if earlier["folds"] != folds else []
        if changed:
            finished = ", ".join(map(str, ensemble_progress(out, n)["finished"])) or "none"
            return TrainingSetupError(
                f"{out} holds an unfinished {n}-split ensemble (members finished: {finished}) with other settings"
                f" ({', '.join(changed)}): rerun with --splits {n} and its settings to finish it, {replace_it}"
            )
    elif args.splits > 1 and (out / "checkpoints" / RUN_SETTINGS).is_file():
        return TrainingSetupError(
            f"{out} holds checkpoints of an unfinished single-model run with other settings (splits):"
            f" rerun it with --splits 1 to finish it, {replace_it}"
        )
    return None


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
    record = {
        "task": task,
        "backbone": backbone,
        "labels": labels,
        "splits": args.splits,
        "holdout": args.holdout,
        "context_size": args.context_size,
        "context_mode": args.context_mode,
        "label_scheme": args.label_scheme,
        "use_crf": args.use_crf,
        "tagging_level": args.tagging_level,
        "first_n": args.first_n,
        "init_from": args.init_from,
        "epochs": args.num_train_epochs,
        "learning_rate": args.learning_rate,
        "head_learning_rate": args.head_learning_rate,
        "attention_dropout": args.attention_dropout,
        "warmup_steps": args.warmup_steps,
        "batch_size": args.per_device_train_batch_size,
        "seed": args.seed,
        "hardware": hardware(args.device.type),  # where the Trainer ran, not merely what is visible
        "members": [],
    }
    # Each member of an ensemble trains on all but its fold: the whole training side is trained on.
    trained_on = documents
    if args.splits <= 1:
        member_args = replace(args, output_dir=str(out / "checkpoints"))
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
    record["run_settings"] = recipe_settings(record, args, documents, validation)
    claim_run_folder(out, record["run_settings"], folds, args, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(args.init_from or backbone)
    # Said at the start, where the user sees it (counts and reasons only, never text).
    record["train_span_findings"] = span_findings(trained_on, tokenizer, labels, args)
    for line in span_finding_lines(record["train_span_findings"]):
        logger.warning("%s (see %s)", line, TRAINING_RECORD)
    if args.splits <= 1:
        model, member_record = train_one(backbone, tokenizer, labels, train_docs, eval_docs, member_args)
        Extractor(model, tokenizer).save_pretrained(out)
        record["members"].append(member_record)
        record["train_seconds"] = member_record["train_seconds"]  # interrupted runs' time included
    else:
        (out / FOLDS_FILE).write_text(json.dumps({"seed": args.seed, "folds": folds}, indent=2) + "\n")
        finished = train_members(backbone, tokenizer, labels, documents, folds, out, args)
        if args.members is not None:
            # Other members may be training side by side: a run without members assembles them.
            return out
        members = []
        for i in range(len(folds)):
            members.append(Extractor.from_pretrained(finished[i]))
            record["members"].append(json.loads((finished[i] / TRAINING_RECORD).read_text()))
        ClinXEnsemble(members).save_pretrained(out)
        # The members may have trained in other runs, elsewhere: their own time and hardware count.
        record["hardware"] = "; ".join(sorted({m.get("hardware") or record["hardware"] for m in record["members"]}))
        record["train_seconds"] = round(sum(m["train_seconds"] for m in record["members"]), 1)
    # The record is written last of what ships: with it, the run is done (score_task_model may
    # finish it). Only then go the checkpoints and finished members, which served to resume it
    # (members only by the ensemble they were trained for).
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n")
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
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
        if (holder := lock_holder(_member_lock_path(out, i)))
    ]
    if busy:
        raise TrainingSetupError(
            f"another run is training members {', '.join(busy)} into {out}: let it finish (then rerun to"
            " assemble), or give this run other --members"
        )
    finished = {}
    for i, fold in enumerate(folds):
        folder = _member_folder(out, i)
        held_out = set(fold)
        train_docs = [d for d in documents if d.id not in held_out]
        eval_docs = [d for d in documents if d.id in held_out]
        member_args = replace(args, output_dir=str(out / "checkpoints" / str(i)), seed=args.seed + i)
        settings = {
            **run_settings(member_args, train_docs, eval_docs),
            "num_train_epochs": args.num_train_epochs,
            "early_stopping_patience": args.early_stopping_patience,
        }
        if (folder / "config.json").is_file():
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
        with member_lock(_member_lock_path(out, i)):
            model, member_record = train_one(backbone, tokenizer, labels, train_docs, eval_docs, member_args)
            # Written aside and renamed: a run side by side never sees a member half written.
            partial = folder.with_name(f".{i}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            Extractor(model, tokenizer).save_pretrained(partial)
            record = {"fold": i, **member_record, "hardware": hardware(args.device.type)}
            (partial / TRAINING_RECORD).write_text(json.dumps(record, default=str) + "\n")
            (partial / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
            shutil.rmtree(folder, ignore_errors=True)  # what a crash left of an earlier attempt
            partial.rename(folder)
            # Its checkpoints only served to resume it.
            shutil.rmtree(member_args.output_dir, ignore_errors=True)
        finished[i] = folder
    return finished


def _member_folder(out: str | Path, i: int) -> Path:
    return Path(out) / MEMBERS_DONE / str(i)


def _member_lock_path(out: str | Path, i: int) -> Path:
    return Path(out) / MEMBERS_DONE / f".{i}.lock"


def lock_holder(path: Path) -> str | None:
    """Which live run holds the member lock at ``path`` ("pid N on HOST"), if any.

    A lock left by a run on this machine that is no longer running is removed.
    """
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # being written this instant, or damaged: taken all the same
        return f"see {path}"
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            return None
        except PermissionError:  # alive, another user's
            pass
    return f"pid {holder.get('pid')} on {holder.get('host')}"


@contextmanager
def member_lock(path: Path) -> Iterator[None]:
    """Hold the lock file at ``path`` (created exclusively) while a member trains."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            holder = lock_holder(path)
            if holder:
                raise TrainingSetupError(
                    f"another run ({holder}) is training this member ({path}); delete the lock only if it is not"
                ) from None
    with os.fdopen(descriptor, "w") as file:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, file)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def ensemble_progress(out: str | Path, splits: int) -> dict[str, list[int]]:
    """Which members of an ensemble being trained into ``out`` are finished and which are not."""
    done = [i for i in range(splits) if (_member_folder(out, i) / "config.json").is_file()]
    return {"finished": done, "missing": [i for i in range(splits) if i not in done]}


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
    if args.members is not None:
        # Some members only: nothing to score until a run without members assembles the ensemble.
        return {"task": task_name, "out": str(out), "members": ensemble_progress(out, args.splits)}
    record_path = Path(out) / TRAINING_RECORD
    record = json.loads(record_path.read_text())
    record["training_splits"] = training
    record_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return score_task_model(task_name, data_dir, out, args.device, splits=splits)


def score_task_model(
    task_name: str,
    data_dir: str | Path,
    out: str | Path,
    device: str | torch.device | None = None,
    *,
    splits: dict | None = None,
) -> dict:
    """Score the model ``train_task`` left in ``out`` on the task's report split, into its training record.

    Also what finishes a run whose scoring was cut short: training need not be repeated.

    >>> score_task_model("pharmaconer", "../shared/corpora", "runs/ph")["evaluation"]["micro"]  # doctest: +SKIP
    """
    from .corpora import get_task, load_task
    from .ensemble import ClinXEnsemble, load_extractor

    task = get_task(task_name)
    splits = splits if splits is not None else load_task(task_name, Path(data_dir))
    record_path = Path(out) / TRAINING_RECORD
    record = json.loads(record_path.read_text())
    if task.report_split in splits:
        started = time.time()
        # Scored where it was trained (the GPU when the Trainer used one).
        extractor = load_extractor(out)
        if device is not None:
            extractor = extractor.to(device)
        member_results = []
        if isinstance(extractor, ClinXEnsemble):
            result, member_results = extractor.evaluate_members(splits[task.report_split])
        else:
            result = extractor.evaluate(splits[task.report_split])
        record["evaluation"] = {
            "split": task.report_split,
            "documents": result.documents,
            "seconds": round(time.time() - started, 1),
            **result.to_dict(),
        }
        if member_results:
            # Each member alone on the report split: the paper's "Random splits: Median" row.
            record["evaluation"]["members"] = [m.micro.to_dict() for m in member_results]
            record["evaluation"]["member_median_f1"] = statistics.median(m.micro.f1 for m in member_results)
    record_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record
