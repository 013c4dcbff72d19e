"""What a saved clinx_hub folder holds: its file names, the ensemble spec, and the check before opening.

One torch-free place for the names that training writes and loading, cards, pushing and the demo
read: a model folder (``config.json``, safetensors weights, tokenizer, the two remote-code files,
``training_record.json``, the card), an ensemble folder (``ensemble.json`` and ``members/<name>``)
and a run's resume state (``checkpoints/``, ``members_done/``, ``folds.json``, ``run_settings.json``).

>>> EnsembleSpec(["0", "1"]).to_dict()
{'members': ['0', '1'], 'min_votes': None, 'vote': 'span-level majority'}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

CONFIG_FILE = "config.json"
ENSEMBLE_FILE = "ensemble.json"
MODEL_FILES = (CONFIG_FILE, ENSEMBLE_FILE)
"""A model folder has the first, an ensemble folder the second (its members hold the configs)."""
MEMBERS_DIR = "members"
"""An ensemble folder's members are ``members/<name>`` for each name in its ``ensemble.json``."""
TRAINING_RECORD = "training_record.json"
"""What a run did and scored (statistics only, never text)."""
PRETRAINING_RECORD = "pretraining_record.json"
"""In an encoder folder ``clinx pretrain`` wrote: what it trained on and how (statistics only, never text)."""
CARD_FILE = "README.md"
"""The model card (a dataset folder's card has the same name)."""
MODEL_TYPE = "clinx"
"""``ClinXConfig.model_type`` (not imported: this module stays torch-free)."""
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
REMOTE_CODE_FILES = ("configuration_clinx.py", "modeling_clinx.py")
"""Copied into every model folder: plain transformers loads it with ``trust_remote_code=True``."""
ONNX_MANIFEST = "onnx_export.json"
"""An exported ONNX model folder (``clinx export onnx``) has this instead of safetensors weights."""
ONNX_FILE = "model.onnx"
"""The exported encoder + emission layer (fp32, or int8 with ``--quantize int8``)."""
CRF_FILE = "crf.safetensors"
"""Beside ``model.onnx``: the CRF's transitions and its scheme constraints (a model with a CRF)."""

# A run's resume state, beside what it saves.
CHECKPOINTS_DIR = "checkpoints"
FOLDS_FILE = "folds.json"
RUN_SETTINGS = "run_settings.json"
"""Beside a run's checkpoints: the settings a resumed run must share."""
TRAIN_SECONDS_FILE = "clinx_train_seconds.json"
"""In each checkpoint: the training seconds that led to it, so that a resumed run's time is whole."""
MEMBERS_DONE = "members_done"
"""Ensemble members finished by a run that is not over (or one of several runs side by side)."""
RUN_OUTPUTS = (
    TRAINING_RECORD, FOLDS_FILE, ENSEMBLE_FILE, MEMBERS_DIR, MEMBERS_DONE, CHECKPOINTS_DIR, CARD_FILE,
    CONFIG_FILE, "generation_config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model.bin",
    *REMOTE_CODE_FILES, "tokenizer*", "special_tokens_map.json", "added_tokens.json",
    "chat_template.*", "sentencepiece.bpe.model", "spiece.model", "vocab.*", "merges.txt",
)
"""What runs write into their folder; ``overwrite`` removes these and leaves anything else alone."""
RELEASE_EXCLUDED = (f"{CHECKPOINTS_DIR}/*", f"{MEMBERS_DONE}/*", ".cache/*", "*/.cache/*", ".git/*", "*.lock")
"""Resume state of an interrupted run and local caches: never part of a released model."""

CONVERT_PICKLE = (
    "convert them once, where you trust the file: load the model with transformers "
    "(`AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=False)`) and save it, with its "
    "tokenizer, to a new folder (`save_pretrained(new_folder)`, `safe_serialization=True` on transformers 4)"
)


class ModelNotAvailable(OSError):
    """A model name that is neither a local folder nor reachable on the Hub."""


class ModelFolderError(ModelNotAvailable):
    """A folder that clinx_hub will not open as a model: the message names it and what is missing or wrong."""


@dataclass
class EnsembleSpec:
    """``ensemble.json``: the members' folder names under ``members/`` and the vote's threshold.

    >>> EnsembleSpec(["a", "b", "c"], min_votes=2).member_folder(Path("runs/x"), "b").as_posix()
    'runs/x/members/b'
    """

    members: list[str]
    min_votes: int | None = None
    vote: str = "span-level majority"

    @classmethod
    def read(cls, folder: str | Path) -> EnsembleSpec:
        """The spec of an ensemble folder, checked: a list of member names none of which climbs out."""
        folder = Path(folder)
        try:
            spec = json.loads((folder / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ModelFolderError(f"{folder}: {ENSEMBLE_FILE} is not valid JSON ({error})") from None
        names = spec.get("members") if isinstance(spec, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) and str(n) for n in names):
            raise ModelFolderError(f"{folder}: {ENSEMBLE_FILE} needs 'members', a list of folder names under {MEMBERS_DIR}/")
        for name in map(str, names):
            written = PureWindowsPath(name)  # both separators: a name must not climb out on any system
            if written.anchor or ".." in written.parts:
                raise ModelFolderError(
                    f"{folder}: {ENSEMBLE_FILE} lists member {name!r}; a member is a folder under {MEMBERS_DIR}/ "
                    "(no absolute path, no '..')"
                )
        return cls([str(n) for n in names], spec.get("min_votes"), spec.get("vote", cls.vote))

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / ENSEMBLE_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def to_dict(self) -> dict:
        return {"members": list(self.members), "min_votes": self.min_votes, "vote": self.vote}

    @staticmethod
    def member_folder(folder: Path, name: str) -> Path:
        return Path(folder) / MEMBERS_DIR / name


def is_ensemble_folder(folder: str | Path) -> bool:
    return (Path(folder) / ENSEMBLE_FILE).is_file()


def is_onnx_folder(folder: str | Path) -> bool:
    """A folder that ``clinx export onnx`` wrote for one model (an exported ensemble's members are such folders)."""
    return (Path(folder) / ONNX_MANIFEST).is_file()


def is_model_folder(folder: str | Path) -> bool:
    """A folder that holds one model or an ensemble (by its ``config.json`` or ``ensemble.json``)."""
    return any((Path(folder) / name).is_file() for name in MODEL_FILES)


def ensemble_members(folder: str | Path) -> dict[str, Path]:
    """Each member's folder by name, from ``ensemble.json``; every one stays inside the ensemble folder.

    An absolute name, a ``..`` in it or a link under ``members/`` that leads elsewhere is refused:
    an ensemble folder (downloaded, say) must not make clinx_hub open a model outside it.
    """
    folder = Path(folder)
    root = folder.resolve()
    members = {}
    for name in EnsembleSpec.read(folder).members:
        member = EnsembleSpec.member_folder(folder, name)
        if not member.resolve().is_relative_to(root):
            raise ModelFolderError(
                f"{folder}: member {name!r} ({MEMBERS_DIR}/{name}) leads outside the ensemble folder (a link); "
                "copy the member into the folder instead"
            )
        members[name] = member
    return members


def check_model_folder(folder: str | Path, *, ensemble: bool = True) -> Path:
    """``folder`` if it opens as a clinx_hub model (or, with ``ensemble``, an ensemble); else ModelFolderError.

    One line names the folder and each thing missing or wrong: no or unreadable ``config.json``,
    a ``model_type`` other than ``clinx`` (a plain encoder), weights that are not safetensors,
    no tokenizer; for an ensemble, a member that is missing, broken or outside the folder.

    >>> check_model_folder("runs/meddocan")  # doctest: +SKIP
    PosixPath('runs/meddocan')
    """
    folder = Path(folder)
    if ensemble and is_ensemble_folder(folder):
        problems = [
            f"member {name!r} ({MEMBERS_DIR}/{name}): {problem}"
            for name, member in ensemble_members(folder).items()
            for problem in model_folder_problems(member)
        ]
    else:
        problems = model_folder_problems(folder)
    if problems:
        raise ModelFolderError(f"{folder} is not a clinx_hub model folder: " + "; ".join(problems))
    return folder


def model_folder_problems(folder: Path) -> list[str]:
    """What keeps ``folder`` from opening as one clinx_hub model, each as a short phrase (none: it opens)."""
    if not folder.is_dir():
        return ["no such folder" if not folder.exists() else "not a folder"]
    problems = []
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        problems.append(
            f"it is an ensemble ({ENSEMBLE_FILE}), not one model: pass one of its {MEMBERS_DIR}/ folders"
            if is_ensemble_folder(folder) else f"no {CONFIG_FILE}"
        )
    else:
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            config = None
            problems.append(f"{CONFIG_FILE} is not valid JSON ({error})")
        model_type = config.get("model_type") if isinstance(config, dict) else None
        if isinstance(config, dict) and model_type != MODEL_TYPE:
            found = f"model_type {model_type!r}, not {MODEL_TYPE!r}" if model_type else "no model_type"
            problems.append(
                f"{CONFIG_FILE} has {found}"
                + " (a plain encoder, or another kind of model: an encoder is a backbone for `clinx train --backbone`)"
            )
    problems += onnx_problems(folder) if is_onnx_folder(folder) else weight_problems(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"no tokenizer ({' or '.join(TOKENIZER_FILES)}; save it with `tokenizer.save_pretrained(folder)`)")
    return problems


def onnx_problems(folder: Path) -> list[str]:
    """What an exported ONNX folder lacks: its manifest's encoder file and, for a CRF model, the CRF file."""
    try:
        manifest = json.loads((folder / ONNX_MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        return [f"{ONNX_MANIFEST} is not valid JSON ({error})"]
    if not isinstance(manifest, dict):
        return [f"{ONNX_MANIFEST} is not a JSON object"]
    problems = []
    for key, default in (("encoder_file", ONNX_FILE), ("crf_file", None)):
        name = manifest.get(key, default)
        if name is None:
            continue
        written = PureWindowsPath(str(name))
        if written.anchor or ".." in written.parts or len(written.parts) != 1:
            problems.append(f"{ONNX_MANIFEST} names {key} {name!r}; it must be a file name in the folder")
        elif not (folder / str(name)).is_file():
            problems.append(f"no {name} (named by {ONNX_MANIFEST}; export the model again with `clinx export onnx`)")
    return problems


def weight_problems(folder: Path) -> list[str]:
    """Empty when ``folder`` holds safetensors weights; else what it holds instead (pickle files, nothing)."""
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        return []
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles:
        listed = ", ".join(pickles[:3]) + (", ..." if len(pickles) > 3 else "")
        return [f"weights only as pickle ({listed}), which clinx_hub never loads (unpickling can run code); {CONVERT_PICKLE}"]
    return [f"no weights ({SAFE_WEIGHTS[0]})"]
