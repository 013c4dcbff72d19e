"""The CLIN-X Trainer and its data: documents -> labelled windows -> padded batches (as SpanMarker's ``trainer.py``).

``ClinXTrainer`` is a ``transformers.Trainer`` fed with documents; its evaluation is strict span F1
on documents (``evaluation.py``), so early stopping follows the shared tasks' measure.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .documents import Document
from .encoding import pad_windows
from .evaluation import score_documents
from .extraction import extract_documents
from .folders import TRAIN_SECONDS_FILE
from .modeling_clinx import ClinXForTokenClassification
from .windows import Window, build_windows, tokenize_document

# Modules of ClinXForTokenClassification trained from scratch on top of the encoder.
HEAD_MODULES = ("classifier", "crf")


class WindowDataset(torch.utils.data.Dataset):
    """Labelled windows as a map-style dataset for the Trainer, with the documents they were cut from."""

    def __init__(self, windows: Sequence[Window], documents: Sequence[Document] | None = None):
        self.windows = list(windows)
        self.documents = None if documents is None else list(documents)
        """What strict span F1 scores (``ClinXTrainer.evaluate``); None for windows alone."""

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
            train_dataset=WindowDataset(train_windows, train_documents),
            eval_dataset=WindowDataset(eval_windows, self.eval_documents) if eval_windows else None,
            data_collator=WindowCollator(pad_id),
            processing_class=tokenizer,
            **kwargs,
        )
        # One clean line per evaluation (and the step bar) instead of the Trainer's raw log dicts.
        bar = self.pop_callback(ProgressCallback) is not None
        self.pop_callback(PrinterCallback)
        self.add_callback(EvaluationLines(bar=bar))

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

    def evaluate(
        self,
        eval_dataset: Sequence[Document] | WindowDataset | Mapping[str, Sequence[Document] | WindowDataset] | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Strict micro P/R/F1 of the current model: on the held-out documents, or on ``eval_dataset``.

        As ``Trainer.evaluate``: ``eval_dataset`` (documents, or a ``WindowDataset`` that keeps its
        documents) replaces the held-out documents for this call; a mapping of names to them scores
        each, its name added to the metric prefix (``eval_dev_f1``).
        """
        if isinstance(eval_dataset, Mapping):
            metrics = {}
            for name, dataset in eval_dataset.items():
                metrics.update(self.evaluate(dataset, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        documents = self.eval_documents if eval_dataset is None else _scored_documents(eval_dataset)
        start = time.time()
        predictions = self._distributed_predictions(documents)
        scores = score_documents(documents, [d.with_spans(p) for d, p in zip(documents, predictions)])
        metrics = {
            f"{metric_key_prefix}_precision": scores.micro.precision,
            f"{metric_key_prefix}_recall": scores.micro.recall,
            f"{metric_key_prefix}_f1": scores.micro.f1,
            f"{metric_key_prefix}_runtime": round(time.time() - start, 3),
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


    def _distributed_predictions(self, documents: Sequence[Document]) -> list:
        """Viterbi spans of ``documents`` (no marginals: F1 needs the path only), shared out over the processes.

        In a data-parallel run each process decodes every world_size-th document and all gather the
        spans, so the documents are decoded once in all, and every process scores the same F1 (early
        stopping and the best checkpoint must agree across processes).
        """
        world, rank = self.args.world_size, self.args.process_index
        distributed = world > 1 and torch.distributed.is_initialized()
        mine = documents[rank::world] if distributed else documents
        predictions = extract_documents(
            self.model, self.processing_class, mine, batch_size=self.args.per_device_eval_batch_size, with_scores=False
        )
        if not distributed:
            return predictions
        gathered: list = [None] * world
        torch.distributed.all_gather_object(gathered, predictions)
        merged: list = [None] * len(documents)
        for r, part in enumerate(gathered):
            merged[r::world] = part
        return merged


def _scored_documents(eval_dataset: Sequence[Document] | WindowDataset) -> list[Document]:
    """The documents ``ClinXTrainer.evaluate`` scores for an ``eval_dataset`` given to it."""
    documents = eval_dataset.documents if isinstance(eval_dataset, WindowDataset) else list(eval_dataset)
    if documents is None or not all(isinstance(d, Document) for d in documents):
        raise TypeError(
            "ClinXTrainer.evaluate scores strict span F1 on documents: pass a list of Document (or a"
            " WindowDataset made with its documents), not windows alone"
        )
    return documents


class EarlyStoppingAfterFirstGain(EarlyStoppingCallback):
    """Early stopping whose patience starts at the first evaluation that scores above 0.

    A short low-resource run (a few hundred sentences, a fold of three documents) scores strict
    F1 0 for its first evaluations: the model predicts no span right yet. Counted as evaluations
    without gain, they ended a 250-sentence MEDDOPROF-NER run after 4 of 20 epochs, at F1 0.
    Once any evaluation has scored above 0, this is transformers' ``EarlyStoppingCallback``.

    >>> from types import SimpleNamespace
    >>> stop = EarlyStoppingAfterFirstGain(early_stopping_patience=2)
    >>> args = SimpleNamespace(greater_is_better=True)
    >>> stop.check_metric_value(args, SimpleNamespace(best_metric=0.0), None, 0.0)
    >>> stop.early_stopping_patience_counter
    0
    """

    def check_metric_value(self, args, state, control, metric_value):
        if args.greater_is_better and metric_value <= 0 and not (state.best_metric or 0) > 0:
            self.early_stopping_patience_counter = 0
            return
        super().check_metric_value(args, state, control, metric_value)


class EvaluationLines(ProgressCallback):
    """The step bar (where the Trainer would show one) and, per evaluation, one readable line.

    ``epoch 2/3  step 120/180  held-out P 72.3  R 65.8  F1 68.9  (best 70.1)  loss 0.031``; nothing
    else of the Trainer's logs is printed (they stay in ``trainer_state.json`` and the record).
    """

    def __init__(self, bar: bool = True) -> None:
        super().__init__()
        self.bar = bar
        self.best: float | None = None
        self.loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.bar:
            super().on_train_begin(args, state, control, **kwargs)
        self.current_step = 0

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        super().on_evaluate(args, state, control, **kwargs)
        if not state.is_world_process_zero or not metrics or "eval_f1" not in metrics:
            return
        f1 = metrics["eval_f1"]
        self.best = f1 if self.best is None else max(self.best, f1)
        epochs = f"{state.epoch:.3g}/{args.num_train_epochs:g}" if state.epoch is not None else "-"
        line = (
            f"epoch {epochs}  step {state.global_step}/{state.max_steps}  held-out P {100 * metrics['eval_precision']:.1f}"
            f"  R {100 * metrics['eval_recall']:.1f}  F1 {100 * f1:.1f}  (best {100 * self.best:.1f})"
        )
        if self.loss is not None:
            line += f"  loss {self.loss:.4g}"
        # stderr, with the bar: stdout stays for a command's result (`clinx train --json`).
        if self.training_bar is not None:
            self.training_bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)


class TrainingTime(TrainerCallback):
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
        if folder.is_dir() and state.is_world_process_zero:  # the checkpoint is rank 0's
            (folder / TRAIN_SECONDS_FILE).write_text(json.dumps({"train_seconds": round(self.seconds, 1)}) + "\n")

    @classmethod
    def resuming(cls, checkpoint: str | None) -> TrainingTime:
        """The clock of a run resuming from ``checkpoint`` (time before it counts; 0 if unrecorded)."""
        path = Path(checkpoint) / TRAIN_SECONDS_FILE if checkpoint else None
        return cls(json.loads(path.read_text())["train_seconds"] if path and path.is_file() else 0.0)
