"""A run's state on disk: the settings a resume or rerun must share, the claim of the run folder,
member locks for runs side by side, which ensemble members are finished, and the hardware.

Nothing here trains: the recipe (``recipe.py``) asks these questions before and while it does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .folders import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FOLDS_FILE,
    MEMBERS_DONE,
    RUN_OUTPUTS,
    RUN_SETTINGS,
    TRAINING_RECORD,
)
from .method import RESUME, knobs, record_names
from .records import TrainingRecord
from .training_args import ClinXTrainingArguments, TrainingSetupError

logger = logging.getLogger(__name__)


def run_settings(args: ClinXTrainingArguments, train_documents, eval_documents) -> dict:
    """What an interrupted run must share with the run that resumes it (epochs may grow).

    The knobs that ``method.py`` marks ``RESUME``; the documents enter as counts and a digest of
    their ids (no text).
    """
    def documents(docs):
        ids = sorted(d.id for d in docs)
        return {"count": len(ids), "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}

    settings = {name: getattr(args, name) for name, _ in knobs(RESUME)}
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


def check_run_settings(
    args: ClinXTrainingArguments, train_documents, eval_documents, *, resuming: bool, write: bool = True
) -> None:
    """Write this run's settings beside its checkpoints, or, when resuming, refuse other settings.

    Every process of a data-parallel run checks; only the one that writes (``write``, rank 0) writes.
    """
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
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2) + "\n")


def last_complete_checkpoint(folder: str | Path) -> str | None:
    """The newest checkpoint in ``folder`` that the Trainer finished writing, or None.

    The Trainer writes a checkpoint file by file, ``trainer_state.json`` last; a run killed while
    it saves leaves a folder without that file, or with it cut short. transformers'
    ``get_last_checkpoint`` picks such a folder by its step alone and the resume fails on it.
    Here it is passed over with a warning: the run resumes from the checkpoint before and the
    Trainer writes the half-written step again.
    """
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    folder = Path(folder)
    if not folder.is_dir():
        return None
    prefix = f"{PREFIX_CHECKPOINT_DIR}-"
    steps = sorted(
        (int(p.name.removeprefix(prefix)), p)
        for p in folder.iterdir()
        if p.is_dir() and p.name.startswith(prefix) and p.name.removeprefix(prefix).isdigit()
    )
    for _, path in reversed(steps):
        try:
            json.loads((path / TRAINER_STATE_NAME).read_text())
        except (OSError, ValueError):
            logger.warning("%s was not finished (its run stopped while saving it): resuming from the one before", path)
            continue
        return str(path)
    return None


def hardware(device: str | None = None) -> str:
    """What a figure was measured on: the GPU, or the CPU model, torch threads and cores.

    ``device`` is ``"cuda"`` or ``"cpu"``; by default the GPU when one is visible.
    """
    if device == "cuda" or (device is None and torch.cuda.is_available()):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == (platform.processor() or platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    # The matrix units decide int8 and bf16 speed more than the model name does (the same "Xeon" may have none).
    units = [name for name, flag in CPU_UNITS if flag in flags]
    cpu += f" ({', '.join(units)})" if units else ""
    return f"{cpu}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores (torch {torch.__version__})"


CPU_UNITS = [("AVX2", "avx2"), ("AVX512-VNNI", "avx512_vnni"), ("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_tile")]
"""The x86 vector and matrix extensions named beside the CPU model (from /proc/cpuinfo's flags)."""


# A record written before records kept their run_settings: its fields under their settings' names.
_RECORD_NAMES = {key: name for name, key in record_names().items() if key != name}


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
    replace_it = "train into another --out, or pass --overwrite to replace it"
    record_path = out / TRAINING_RECORD
    if record_path.is_file():
        try:
            record = TrainingRecord.read(out)
        except ValueError:
            return TrainingSetupError(f"{record_path} cannot be read: {replace_it}")
        before = record.run_settings or {_RECORD_NAMES.get(k, k): v for k, v in record.to_json().items()}
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
        other = out / (CONFIG_FILE if args.splits > 1 else ENSEMBLE_FILE)
        if other.is_file():
            kind = "single model" if args.splits > 1 else "ensemble"
            return FileExistsError(f"{out} already holds a trained {kind} ({other.name}): {replace_it}")
    if args.members is not None and (out / ENSEMBLE_FILE).is_file():
        return FileExistsError(f"{out} already holds the assembled ensemble: its members are trained ({replace_it})")
    if record_path.is_file():
        return None
    same = out / (CONFIG_FILE if args.splits <= 1 else ENSEMBLE_FILE)
    if same.is_file() and not (out / (CHECKPOINTS_DIR if args.splits <= 1 else MEMBERS_DONE)).is_dir():
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
    elif args.splits > 1 and (out / CHECKPOINTS_DIR / RUN_SETTINGS).is_file():
        return TrainingSetupError(
            f"{out} holds checkpoints of an unfinished single-model run with other settings (splits):"
            f" rerun it with --splits 1 to finish it, {replace_it}"
        )
    return None


def member_folder(out: str | Path, i: int) -> Path:
    """Where member ``i`` of an ensemble being trained into ``out`` is kept once finished."""
    return Path(out) / MEMBERS_DONE / str(i)


def member_lock_path(out: str | Path, i: int) -> Path:
    """The lock file a run holds while it trains member ``i`` into ``out``."""
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
    done = [i for i in range(splits) if (member_folder(out, i) / CONFIG_FILE).is_file()]
    return {"finished": done, "missing": [i for i in range(splits) if i not in done]}
