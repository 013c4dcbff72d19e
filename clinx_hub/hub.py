"""Model names and folders: the CLIN-X short names, local folders and Hub ids, with a clear error
offline, and the check every loader makes before transformers opens a folder (safetensors only)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path, PureWindowsPath
from urllib.parse import urlparse

MODEL_ALIASES = {
    "clin-x-es": "llange/xlm-roberta-large-spanish-clinical",
    "clin-x-en": "llange/xlm-roberta-large-english-clinical",
}
"""The CLIN-X encoders (Lange et al. 2022) by their short names."""

DEFAULT_ORGANISATION = os.environ.get("CLINX_HUB_ORG", "clinx-hub")
"""Where fine-tuned models are named (``clinx-hub/clin-x-es-meddocan``); set ``CLINX_HUB_ORG``."""


MODEL_FILES = ("config.json", "ensemble.json")
"""A model folder has the first, an ensemble folder the second (its members hold the configs)."""


ENSEMBLE_FILE = MODEL_FILES[1]
MEMBERS_DIR = "members"
"""An ensemble folder's members are ``members/<name>`` for each name in its ``ensemble.json``."""
MODEL_TYPE = "clinx"
"""``ClinXConfig.model_type`` (not imported: this module stays torch-free)."""
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
CONVERT_PICKLE = (
    "convert them once, where you trust the file: load the model with transformers "
    "(`AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=False)`) and save it, with its "
    "tokenizer, to a new folder (`save_pretrained(new_folder)`, `safe_serialization=True` on transformers 4)"
)


class ModelNotAvailable(OSError):
    """A model name that is neither a local folder nor reachable on the Hub."""


class ModelFolderError(ModelNotAvailable):
    """A folder that clinx_hub will not open as a model: the message names it and what is missing or wrong."""


def resolve_model_name(name: str | Path) -> str:
    """A local folder as it is; a short name (``clin-x-es``) as its Hub id; else the Hub id given.

    >>> resolve_model_name("clin-x-es")
    'llange/xlm-roberta-large-spanish-clinical'
    >>> resolve_model_name("clin-x-es-meddocan")
    'clinx-hub/clin-x-es-meddocan'
    """
    text = str(name)
    if Path(text).expanduser().exists():
        return str(Path(text).expanduser())
    if text in MODEL_ALIASES:
        return MODEL_ALIASES[text]
    if text.startswith(("clin-x-es-", "clin-x-en-")) and "/" not in text:
        return f"{DEFAULT_ORGANISATION}/{text}"
    return text


def available_model(name: str | Path) -> str:
    """Resolve ``name`` and make sure its files can be had now, or say how to proceed.

    A local folder is always fine; a Hub id must be in the local cache or reachable. Offline,
    this fails at once with a message that names the way out (a local folder).
    """
    resolved = resolve_model_name(name)
    if Path(resolved).exists():
        if not any((Path(resolved) / filename).is_file() for filename in MODEL_FILES):
            raise ModelNotAvailable(
                f"{resolved} is a folder but has neither config.json nor ensemble.json: not a model folder"
            )
        return resolved
    from huggingface_hub import constants, hf_hub_download

    for filename in MODEL_FILES:
        try:
            hf_hub_download(resolved, filename, local_files_only=True)
            return resolved
        except Exception:  # not cached: the Hub must be reachable
            pass
    try:
        if constants.HF_HUB_OFFLINE:
            raise ConnectionError("HF_HUB_OFFLINE is set")
        # One quick connection attempt: the client itself would retry for half a minute.
        _reachable(constants.ENDPOINT)
        _download_first(resolved)
    except Exception as error:  # offline, no route, unknown repo: all end the same way
        folder = resolved.split("/")[-1]
        # Commands take the model positionally (predict, evaluate) or as --model (train, demo): the
        # way out names the folder to pass in place of the name, whatever the command.
        raise ModelNotAvailable(
            f"model {str(name)!r} (Hub id {resolved!r}) cannot be loaded: {error}. Without access to the "
            "Hugging Face Hub, download it on a connected machine "
            f"(`hf download {resolved} --local-dir ./{folder}`) and pass that local folder, ./{folder}, "
            f"in place of {str(name)!r}"
        ) from error
    return resolved


def download_model(name: str) -> Path:
    """The local snapshot of a Hub model repo, ensemble members included (from the cache when offline)."""
    from huggingface_hub import snapshot_download

    repo_id = resolve_model_name(name)
    try:
        return Path(snapshot_download(repo_id))
    except Exception as error:  # offline and not cached, no route, unknown repo: all end the same way
        raise ModelNotAvailable(
            f"model {name!r} is not a local folder and Hub repo {repo_id!r} cannot be downloaded: {error}. "
            f"Download it where the Hub is reachable (`hf download {repo_id} --local-dir ./{repo_id.split('/')[-1]}`) "
            f"and pass that folder in place of {name!r}."
        ) from error


def open_model_folder(name: str | Path, *, ensemble: bool = True) -> Path:
    """The checked local folder of a model: ``name`` itself, or the snapshot of the Hub repo it names.

    ``load_extractor``, ``Extractor``, ``ClinXEnsemble`` and ``--init-from`` open folders through
    here, before transformers opens anything. ``ensemble=False`` asks for one model (``--init-from``).

    >>> open_model_folder("runs/meddocan")  # doctest: +SKIP
    PosixPath('runs/meddocan')
    """
    folder = Path(name).expanduser()
    if not folder.exists():
        folder = download_model(str(name))
    return check_model_folder(folder, ensemble=ensemble)


def check_model_folder(folder: str | Path, *, ensemble: bool = True) -> Path:
    """``folder`` if it opens as a clinx_hub model (or, with ``ensemble``, an ensemble); else ModelFolderError.

    One line names the folder and each thing missing or wrong: no or unreadable ``config.json``,
    a ``model_type`` other than ``clinx`` (a plain encoder), weights that are not safetensors,
    no tokenizer; for an ensemble, a member that is missing, broken or outside the folder.

    >>> check_model_folder("runs/meddocan")  # doctest: +SKIP
    PosixPath('runs/meddocan')
    """
    folder = Path(folder)
    if ensemble and (folder / ENSEMBLE_FILE).is_file():
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


def ensemble_members(folder: Path) -> dict[str, Path]:
    """Each member's folder by name, from ``ensemble.json``; every one stays inside the ensemble folder.

    An absolute name, a ``..`` in it or a link under ``members/`` that leads elsewhere is refused:
    an ensemble folder (downloaded, say) must not make clinx_hub open a model outside it.
    """
    try:
        spec = json.loads((folder / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFolderError(f"{folder}: {ENSEMBLE_FILE} is not valid JSON ({error})") from None
    names = spec.get("members") if isinstance(spec, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) and str(n) for n in names):
        raise ModelFolderError(f"{folder}: {ENSEMBLE_FILE} needs 'members', a list of folder names under {MEMBERS_DIR}/")
    root = folder.resolve()
    members = {}
    for name in map(str, names):
        written = PureWindowsPath(name)  # both separators: a name must not climb out on any system
        if written.anchor or ".." in written.parts:
            raise ModelFolderError(
                f"{folder}: {ENSEMBLE_FILE} lists member {name!r}; a member is a folder under {MEMBERS_DIR}/ "
                "(no absolute path, no '..')"
            )
        member = folder / MEMBERS_DIR / name
        if not member.resolve().is_relative_to(root):
            raise ModelFolderError(
                f"{folder}: member {name!r} ({MEMBERS_DIR}/{name}) leads outside the ensemble folder (a link); "
                "copy the member into the folder instead"
            )
        members[name] = member
    return members


def model_folder_problems(folder: Path) -> list[str]:
    """What keeps ``folder`` from opening as one clinx_hub model, each as a short phrase (none: it opens)."""
    if not folder.is_dir():
        return ["no such folder" if not folder.exists() else "not a folder"]
    problems = []
    config_file = folder / "config.json"
    if not config_file.is_file():
        problems.append(
            f"it is an ensemble ({ENSEMBLE_FILE}), not one model: pass one of its {MEMBERS_DIR}/ folders"
            if (folder / ENSEMBLE_FILE).is_file() else "no config.json"
        )
    else:
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            config = None
            problems.append(f"config.json is not valid JSON ({error})")
        model_type = config.get("model_type") if isinstance(config, dict) else None
        if isinstance(config, dict) and model_type != MODEL_TYPE:
            problems.append(
                (f"config.json has model_type {model_type!r}, not {MODEL_TYPE!r}" if model_type else "config.json has no model_type")
                + " (a plain encoder, or another kind of model: an encoder is a backbone for `clinx train --model`)"
            )
    problems += weight_problems(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"no tokenizer ({' or '.join(TOKENIZER_FILES)}; save it with `tokenizer.save_pretrained(folder)`)")
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


def _download_first(repo_id: str) -> None:
    """Fetch the file that makes ``repo_id`` a model (a single model's config or an ensemble's spec)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for name in MODEL_FILES[:-1]:
        try:
            hf_hub_download(repo_id, name)
            return
        except EntryNotFoundError:
            continue
    hf_hub_download(repo_id, MODEL_FILES[-1])


def _reachable(endpoint: str, timeout: float = 3.0) -> None:
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with socket.create_connection((parsed.hostname, port), timeout=timeout):
        pass
