"""The CLIN-X method's knobs, declared once: ``clinx train``'s flags, the model, resume and record read them.

Each knob is a field of :class:`ClinXMethodArguments` (or, for the Trainer's own fields that the
recipe sets, an entry of :data:`TRAINER_KNOBS`) whose metadata says its flag and what reads it:

- ``MODEL``: the model config (``recipe.initial_model``);
- ``RESUME``: what an interrupted run must share with the run that resumes it (``run_state.run_settings``);
- ``FINISHED``: what a finished model must share besides (epochs may grow while resuming, not after);
- ``record``: the key under which the training record keeps it (``records.TrainingRecord.settings``).

Torch-free, so that ``clinx train --help`` is derived without loading torch.

>>> [name for name, _ in knobs(MODEL)]
['context_size', 'context_mode', 'label_scheme', 'use_crf', 'tagging_level', 'window_length']
>>> record_names()["per_device_train_batch_size"]
'batch_size'
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

MODEL = "model"
RESUME = "resume"
FINISHED = "finished"


def knob(
    help: str,
    *,
    flag: str | None = None,
    record: bool | str = False,
    roles: tuple[str, ...] = (),
    cli: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A knob's metadata: its ``help``, ``clinx train`` ``flag`` (with extra argparse ``cli`` options),
    its key in the training record (``True``: its own name) and the ``roles`` that read it."""
    return {"help": help, "flag": flag, "record": record, "roles": frozenset(roles), "cli": dict(cli or {})}


@dataclass
class ClinXMethodArguments:
    """The CLIN-X method's knobs, beside the Trainer's (``ClinXTrainingArguments`` has both)."""

    context_size: int = field(default=100, metadata=knob(
        "subwords of context on each side", flag="--context", record=True, roles=(MODEL, RESUME),
    ))
    context_mode: str = field(default="window", metadata=knob(
        "window | sentence", flag="--context-mode", record=True, roles=(MODEL, RESUME),
        cli={"choices": ["window", "sentence"]},
    ))
    label_scheme: str = field(default="bioes", metadata=knob(
        "bioes | bio", flag="--scheme", record=True, roles=(MODEL, RESUME), cli={"choices": ["bioes", "bio"]},
    ))
    use_crf: bool = field(default=True, metadata=knob(
        "CRF output layer (--no-crf: a softmax head instead, the ablation)", flag="--no-crf", record=True,
        roles=(MODEL, RESUME), cli={"action": "store_false"},
    ))
    tagging_level: str = field(default="subword", metadata=knob(
        "subword | first_subword (--word-level: tag the first subword of each word only, the ablation)",
        flag="--word-level", record=True, roles=(MODEL, RESUME),
        cli={"action": "store_const", "const": "first_subword"},
    ))
    window_length: int = field(default=512, metadata=knob(
        "encoder positions per window", flag="--window-length", roles=(MODEL, RESUME),
    ))
    splits: int = field(default=1, metadata=knob(
        "random splits / ensemble members (1: one model; N > 1 trains an N-member random-split ensemble)",
        flag="--splits", record=True,
    ))
    first_n: int | None = field(default=None, metadata=knob(
        "train on the first N sentences only", flag="--first-n", record=True, roles=(RESUME,),
    ))
    init_from: str | None = field(default=None, metadata=knob(
        "a trained clinx_hub model to start from (transfer)", flag="--init-from", record=True, roles=(RESUME,),
    ))
    early_stopping_patience: int = field(default=3, metadata=knob(
        "evaluations without F1 gain before stopping", flag="--patience", roles=(FINISHED,),
    ))
    head_learning_rate: float | None = field(default=None, metadata=knob(
        "learning rate of the classifier and CRF (None: learning_rate, as for the encoder)", flag="--head-lr",
        record=True, roles=(RESUME,),
    ))
    attention_dropout: float | None = field(default=None, metadata=knob(
        "dropout on the encoder's attention probabilities while training (None: the encoder's own,"
        " 0.1 for BERT/XLM-R). 0 lets PyTorch's fused attention kernel run on CPU: about 2x faster steps"
        " (benchmarks/train_step.py)",
        flag="--attention-dropout", record=True, roles=(RESUME,),
    ))
    members: list[int] | None = field(default=None, metadata=knob(
        "ensemble members (0-based fold numbers) this run trains, and no others (None: all, then the"
        " ensemble is assembled). Runs given different members can go side by side, one per GPU; a last run"
        " without members reuses the finished ones, trains any missing and assembles the ensemble",
        flag="--members", cli={"metavar": "I"},
    ))
    holdout: bool = field(default=True, metadata=knob(
        "one model: hold documents out to early-stop on and keep the best epoch (--no-holdout: train on"
        " every training document, validation included, for the set epochs and keep the last; the paper's"
        " 'All' row; not with splits > 1)",
        flag="--no-holdout", record=True, cli={"action": "store_false"},
    ))


TRAINER_KNOBS: dict[str, dict[str, Any]] = {
    "num_train_epochs": knob(
        "epochs (the most, with early stopping)", flag="--epochs", record="epochs", roles=(FINISHED,),
        cli={"type": float, "default": 20},
    ),
    "learning_rate": knob(
        "learning rate (small encoders want more)", flag="--lr", record=True, roles=(RESUME,),
        cli={"type": float, "default": 2e-5},
    ),
    "warmup_steps": knob(
        "warmup steps, or a fraction of all steps if < 1", flag="--warmup", record=True, roles=(RESUME,),
        cli={"type": float, "default": 0},
    ),
    "per_device_train_batch_size": knob(
        "windows per batch (training and evaluation)", flag="--batch-size", record="batch_size", roles=(RESUME,),
        cli={"type": int, "default": 16},
    ),
    "seed": knob("random seed (member i of an ensemble: seed + i)", flag="--seed", record=True, roles=(RESUME,),
                 cli={"type": int, "default": 42}),
    "bf16": knob(
        "bfloat16 mixed precision (autocast; the CRF stays float32) for training, and the encoder in bf16 when"
        " the report split is scored: on a GPU, or a CPU with AMX/AVX512-BF16,"
        " 1.88x faster steps (MiniLM at 8 x 512, one thread of an AMX CPU; benchmarks/train_step.py --compare"
        " bf16); off by default, since F1 at bf16 is measured per run, not assumed",
        flag="--bf16", record=True, roles=(RESUME,), cli={"action": "store_true", "default": False},
    ),
    "gradient_accumulation_steps": knob("", roles=(RESUME,)),
    "lr_scheduler_type": knob("", roles=(RESUME,)),
    "lr_scheduler_kwargs": knob("", roles=(RESUME,)),
    "weight_decay": knob("", roles=(RESUME,)),
    "eval_strategy": knob("", roles=(RESUME,)),
    "metric_for_best_model": knob("", roles=(RESUME,)),
}
"""The Trainer's own fields that the recipe sets from the command line (with the recipe's defaults
there, not the Trainer's), records or resumes by."""
# `--batch-size` sets the evaluation batch as well.
_FLAG_ALSO = {"per_device_train_batch_size": ("per_device_eval_batch_size",)}


def knobs(role: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, metadata)`` of every knob, the method's first, or of those a ``role`` reads."""
    declared = [(f.name, dict(f.metadata)) for f in fields(ClinXMethodArguments)]
    for name, meta in [*declared, *TRAINER_KNOBS.items()]:
        if role is None or role in meta["roles"]:
            yield name, meta


def record_names() -> dict[str, str]:
    """Each recorded knob's key in the training record, by field name."""
    return {name: name if meta["record"] is True else meta["record"] for name, meta in knobs() if meta["record"]}


_TYPES = {"int": int, "float": float, "str": str, "list[int]": int}


def add_method_flags(parser: argparse.ArgumentParser) -> None:
    """Add a flag for each knob that has one; each stores into the field's own name."""
    method = parser.add_argument_group("the CLIN-X method")
    trainer = parser.add_argument_group("the Trainer")
    types = {f.name: str(f.type) for f in fields(ClinXMethodArguments)}
    defaults = {f.name: f.default for f in fields(ClinXMethodArguments)}
    for name, meta in knobs():
        if not meta["flag"]:
            continue
        options = {"dest": name, "help": meta["help"], **meta["cli"]}
        if "action" not in options:
            if "choices" not in options:
                options.setdefault("metavar", meta["flag"].lstrip("-").replace("-", "_").upper())
            if options.get("default", defaults.get(name)) is not None:
                options["help"] += " (default: %(default)s)"
        if name in defaults:
            options.setdefault("default", defaults[name])
            if "action" not in options:
                annotation = types[name].replace(" | None", "")
                options.setdefault("type", _TYPES[annotation])
                if annotation.startswith("list["):
                    options.setdefault("nargs", "+")
        (method if name in defaults else trainer).add_argument(meta["flag"], **options)


def method_overrides(namespace: argparse.Namespace) -> dict[str, Any]:
    """The arguments ``add_method_flags``'s flags parsed, as ``ClinXTrainingArguments`` fields."""
    overrides = {}
    for name, meta in knobs():
        if meta["flag"]:
            value = getattr(namespace, name)
            for target in (name, *_FLAG_ALSO.get(name, ())):
                overrides[target] = value
    return overrides
