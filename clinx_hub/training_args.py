"""The arguments of a CLIN-X run: the Trainer's plus the method's knobs, and the checks that refuse
settings that cannot train (as setfit's ``training_args.py``).

The knobs themselves are declared once, torch-free, in ``method.py``; ``clinx train``'s flags are
derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainingArguments

from .method import ClinXMethodArguments, knobs

_FLAGS = {name: meta["flag"] for name, meta in knobs() if meta["flag"]}
_FLAGS["per_device_eval_batch_size"] = _FLAGS["per_device_train_batch_size"]  # --batch-size sets both


def _named(name: str) -> str:
    """A field as an error names it: with its ``clinx train`` flag where it has one."""
    return f"{name} ({_FLAGS[name]})" if name in _FLAGS else name


class TrainingSetupError(ValueError):
    """The training data or a source model cannot serve the requested settings (the CLI exits 2)."""


@dataclass
class ClinXTrainingArguments(ClinXMethodArguments, TrainingArguments):
    """``TrainingArguments`` plus the CLIN-X method's knobs (``method.ClinXMethodArguments``; the model is
    configured from them)."""

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
            raise ValueError(f"{_named('num_train_epochs')} must be > 0, not {self.num_train_epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"{_named('learning_rate')} must be > 0, not {self.learning_rate}")
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:
            raise ValueError(f"{_named('head_learning_rate')} must be > 0, not {self.head_learning_rate}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{_named(name)} must be >= 1, not {getattr(self, name)}")
        if not self.warmup_steps >= 0:
            raise ValueError(
                f"{_named('warmup_steps')} must be >= 0 (steps, or a fraction of all steps if < 1),"
                f" not {self.warmup_steps}"
            )
        if self.splits < 1:
            raise ValueError(
                f"{_named('splits')} must be >= 1 (1: one model, N > 1: an N-member ensemble), not {self.splits}"
            )
        # Patience 0 would stop after the first evaluation whatever it scores.
        if self.early_stopping_patience < 1:
            raise ValueError(
                f"{_named('early_stopping_patience')} must be >= 1 (evaluations without F1 gain before stopping),"
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
                f"holdout=False ({_FLAGS['holdout']}) trains one model on every training document; an ensemble of"
                f" {self.splits} random splits needs its held-out folds (use splits=1)"
            )
        if self.members is not None:
            if self.splits <= 1:
                raise ValueError(f"{_named('members')} selects ensemble members: it needs splits > 1 ({_FLAGS['splits']})")
            outside = sorted({m for m in self.members if not 0 <= m < self.splits})
            if not self.members or outside:
                raise ValueError(
                    f"{_named('members')} must name members 0 to {self.splits - 1} of the {self.splits}-split ensemble,"
                    f" not {outside or 'none'}"
                )


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
