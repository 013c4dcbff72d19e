"""The training record (``training_record.json``) as typed data: what a run trained, how, where, and its scores.

A :class:`TrainingRecord` is written by the recipe when a run is done and read by the model card,
the benchmarks and a rerun into the same folder. It holds statistics only, never a sentence or a
span of text. The method's settings are kept under the keys ``method.record_names`` gives (flat
in the JSON, beside the run's own fields); keys this version does not know are kept as they are,
so records of other versions load and write back unchanged.

>>> record = TrainingRecord.from_json({"task": "toy", "epochs": 3, "members": [{"seed": 0}], "note": 1})
>>> record.settings["epochs"], record.members[0].seed, record.to_json()["note"]
(3, 0, 1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .folders import TRAINING_RECORD
from .method import record_names

# Written only once known (``None`` is then left out of the JSON).
_OPTIONAL = {"omit_none": True}


@dataclass
class MemberRecord:
    """One trained model of a run: its data, its held-out curve and its time (an ensemble member has a fold)."""

    fold: int | None = field(default=None, metadata=_OPTIONAL)
    train_documents: int | None = None
    train_windows: int | None = None
    eval_documents: int | None = None
    unrepresentable_train_spans: int | None = None
    aligned_train_spans: int | None = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    """The Trainer's evaluation log entries (``eval_f1`` and so on), from epoch 1."""
    best_eval_f1: float | None = None
    epochs_run: float | None = None
    steps: int | None = field(default=None, metadata=_OPTIONAL)
    train_seconds: float | None = None
    """Including interrupted runs' time up to the checkpoint this one resumed from."""
    seed: int | None = None
    hardware: str | None = field(default=None, metadata=_OPTIONAL)
    extra: dict[str, Any] = field(default_factory=dict, metadata={"extra": True})

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemberRecord:
        return _from_json(cls, data)

    def write(self, folder: str | Path) -> Path:
        return _write_record(folder, json.dumps(self.to_json(), default=str))

    @classmethod
    def read(cls, folder: str | Path) -> MemberRecord:
        return cls.from_json(json.loads((Path(folder) / TRAINING_RECORD).read_text()))


@dataclass
class TrainingRecord:
    """A run's record: task, backbone, labels, the method's settings, members, findings, time and scores."""

    task: str | None = None
    backbone: str | None = None
    labels: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict, metadata={"flat": True})
    """The method's knobs under their record keys (``epochs``, ``learning_rate``, ``batch_size``...)."""
    hardware: str | None = None
    world_size: int | None = field(default=None, metadata=_OPTIONAL)
    """Processes that trained it data-parallel (``torchrun --nproc_per_node``); 1 for one process."""
    members: list[MemberRecord] = field(default_factory=list)
    run_settings: dict[str, Any] | None = field(default=None, metadata=_OPTIONAL)
    """What a run into the same folder must share with this one (``recipe.recipe_settings``)."""
    train_span_findings: dict[str, int] | None = field(default=None, metadata=_OPTIONAL)
    """Training spans not trained as annotated, counted by reason."""
    train_seconds: float | None = field(default=None, metadata=_OPTIONAL)
    training_splits: list[str] | None = field(default=None, metadata=_OPTIONAL)
    evaluation: dict[str, Any] | None = field(default=None, metadata=_OPTIONAL)
    """The report split's strict scores (``score_task_model``), members alone included for an ensemble."""
    extra: dict[str, Any] = field(default_factory=dict, metadata={"extra": True})

    @property
    def is_ensemble(self) -> bool:
        return (self.settings.get("splits") or 1) > 1

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingRecord:
        record = _from_json(cls, data)
        record.members = [m if isinstance(m, MemberRecord) else MemberRecord.from_json(m) for m in record.members]
        return record

    @classmethod
    def read(cls, folder: str | Path) -> TrainingRecord:
        """The record in a model folder (an empty one where the folder has none)."""
        path = Path(folder) / TRAINING_RECORD
        return cls.from_json(json.loads(path.read_text())) if path.is_file() else cls()

    def write(self, folder: str | Path) -> Path:
        return _write_record(folder, json.dumps(self.to_json(), indent=2, default=str))


def _write_record(folder: str | Path, text: str) -> Path:
    """A member's or a model's record, written whole or not at all (a run stopped mid-write keeps the old one)."""
    from .formats.base import write_text_atomic

    path = Path(folder) / TRAINING_RECORD
    write_text_atomic(path, text + "\n")
    return path


def _to_json(record: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.metadata.get("flat") or f.metadata.get("extra"):
            data.update(value)
        elif not (value is None and f.metadata.get("omit_none")):
            data[f.name] = [v.to_json() if isinstance(v, MemberRecord) else v for v in value] if f.name == "members" else value
    return data


def _from_json(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} is a JSON object, not {type(data).__name__}")
    names = {f.name for f in fields(cls) if not (f.metadata.get("flat") or f.metadata.get("extra"))}
    flat = "settings" in {f.name for f in fields(cls)}
    settings_keys = set(record_names().values()) if flat else set()
    known = {k: v for k, v in data.items() if k in names}
    settings = {k: v for k, v in data.items() if k in settings_keys and k not in names}
    extra = {k: v for k, v in data.items() if k not in names and k not in settings}
    record = cls(**known, extra=extra)
    if flat:
        record.settings = settings
    return record
