"""Push model folders (single, ensemble, transfer source) and converted dataset folders to the Hub.

A folder goes up as it is on disk, in one commit, with its model card: a folder without
``README.md`` gets one rendered in memory (``model_card.py``), so the local folder is never
written to, whether the push succeeds or fails. An ensemble's repo also gets the two
remote-code files at its root, where transformers looks for them when a member is loaded with
``subfolder=``. Before anything is sent the folder is checked (config, weights, tokenizer, the
remote-code files in every model folder, no local path in a config); what fails, on the way or
at the Hub, raises :class:`PushError` with what to do about it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

from .folders import (
    CARD_FILE,
    CONFIG_FILE,
    PRETRAINING_RECORD,
    RELEASE_EXCLUDED,
    REMOTE_CODE_FILES,
    TOKENIZER_FILES,
    ModelFolderError,
    ensemble_members,
    is_ensemble_folder,
    model_folder_problems,
    weight_problems,
)
from .hub import hub_repo_id
from .model_card import CardFieldError, card_files

HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


class PushError(RuntimeError):
    """A push that did not happen: a folder that is not ready, or the Hub refused or could not be reached."""


def push_model(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    **card_fields: Any,
) -> str:
    """Push a model, ensemble or transfer-source folder with its card; returns the repo's URL.

    ``card_fields`` (``language``, ``license``, ``datasets``, ``baseline_f1``, ``intended_use``...) go
    into the card rendered for the push, which goes up with its pictures (``images/``); a folder with
    a ``README.md`` of its own goes up with that card (and its own ``images/``), and card fields for
    it are refused rather than dropped.

    >>> push_model("runs/meddocan", "clinx-hub/clin-x-es-meddocan", language="es")  # doctest: +SKIP
    'https://huggingface.co/clinx-hub/clin-x-es-meddocan'
    """
    folder = Path(model_dir)
    repo_id = hub_repo_id(repo_id)
    check_release_folder(folder)
    extra = {}
    if is_ensemble_folder(folder):
        # transformers looks for remote code at the repo root even when loading with subfolder=
        # ("members/<name>"): the ensemble's repo gets a copy of its first member's two files.
        first = model_folders(folder)[0]
        extra |= {name: (first / name).read_bytes() for name in REMOTE_CODE_FILES if not (folder / name).is_file()}
    if not (folder / CARD_FILE).is_file():
        try:
            extra |= card_files(folder, model_id=repo_id, **card_fields)
        except CardFieldError as error:
            raise PushError(f"{folder}: the model card cannot be rendered: {error}") from None
    elif card_fields:
        raise PushError(
            f"{folder} has its own {CARD_FILE}, which is pushed as it is: {', '.join(sorted(card_fields))} would not "
            f"reach the card; write them into {CARD_FILE}, or move it away to have the card rendered with them"
        )
    message = commit_message or f"Upload {'ensemble' if is_ensemble_folder(folder) else 'model'} with clinx_hub"
    return _push(folder, repo_id, "model", private=private, token=token, message=message, extra=extra)


def push_dataset(
    dataset_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Push a folder written by ``clinx data convert`` (parquet per config + dataset card); returns its URL.

    >>> push_dataset("meddocan-hub", "clinx-hub/meddocan")  # doctest: +SKIP
    'https://huggingface.co/datasets/clinx-hub/meddocan'
    """
    folder = Path(dataset_dir)
    check_dataset_folder(folder)
    return _push(
        folder, repo_id, "dataset", private=private, token=token,
        message=commit_message or "Upload dataset with clinx_hub", extra={},
    )


def model_folders(model_dir: Path) -> list[Path]:
    """The folders that hold a model: the folder itself, or each member of an ensemble (inside it)."""
    if is_ensemble_folder(model_dir):
        try:
            return list(ensemble_members(model_dir).values())
        except ModelFolderError as error:
            raise PushError(f"{error}; it cannot be pushed") from None
    return [model_dir]


def check_release_folder(model_dir: Path) -> None:
    """Fail with the list of what is wrong before anything is sent.

    Each model folder must open in clinx_hub (``hub.model_folder_problems``: a clinx config,
    safetensors weights, a tokenizer), carry the two remote-code files and hold no local path
    in its ``config.json``.
    """
    if not model_dir.is_dir():
        raise PushError(f"{model_dir} is not a folder")
    problems = []
    if (model_dir / PRETRAINING_RECORD).is_file():
        # An encoder `clinx pretrain` wrote: a backbone (no clinx config, no remote code), with its own card.
        problems = [f"the folder: {problem}" for problem in encoder_folder_problems(model_dir)]
        raise_if_problems(model_dir, problems)
        return
    for folder in model_folders(model_dir):
        where = folder.relative_to(model_dir).as_posix() if folder != model_dir else "the folder"
        problems += [f"{where}: {problem}" for problem in model_folder_problems(folder)]
        missing_code = [name for name in REMOTE_CODE_FILES if not (folder / name).is_file()]
        if missing_code:
            problems.append(
                f"missing {', '.join(missing_code)} in {where} (plain transformers needs them to load the model with "
                "trust_remote_code=True; saving the model again with clinx_hub imported writes them)"
            )
        problems += [f"{where}: {problem}" for problem in config_path_problems(folder / CONFIG_FILE)]
    raise_if_problems(model_dir, problems)


def raise_if_problems(model_dir: Path, problems: list[str]) -> None:
    if problems:
        raise PushError(f"{model_dir} cannot be pushed: " + "; ".join(problems))


def encoder_folder_problems(folder: Path) -> list[str]:
    """What keeps an encoder folder of ``clinx pretrain`` from going up: config, safetensors, tokenizer, card, paths."""
    problems = [] if (folder / CONFIG_FILE).is_file() else [f"no {CONFIG_FILE}"]
    problems += weight_problems(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    if not (folder / CARD_FILE).is_file():
        problems.append(f"no {CARD_FILE} (the card `clinx pretrain` writes)")
    return problems + config_path_problems(folder / CONFIG_FILE)


def config_path_problems(config_file: Path) -> list[str]:
    """Paths of this machine in a ``config.json`` (``_name_or_path`` of a local encoder, any absolute path)."""
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # a missing or unreadable config is reported by model_folder_problems
    found = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and value and _is_local_path(value, key.endswith("_name_or_path")):
            found.append(f"config.json holds a path of this machine ({key}: {value!r})")

    walk(config, "")
    if found:
        found[-1] += (
            "; clinx_hub saves configs without such paths: open the model with load_extractor and "
            "save_pretrained it to a new folder, then push that"
        )
    return found


def _is_local_path(value: str, name_or_path: bool) -> bool:
    if value.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", value):
        return True
    # A model's name elsewhere is fine as a Hub id; a relative folder name is a path all the same.
    return name_or_path and (value.startswith(".") or not HUB_ID.fullmatch(value) or Path(value).exists())


def check_dataset_folder(dataset_dir: Path) -> None:
    if not dataset_dir.is_dir():
        raise PushError(f"{dataset_dir} is not a folder")
    if not (dataset_dir / CARD_FILE).is_file():
        raise PushError(f"{dataset_dir} has no README.md (dataset card with configs): write it with `clinx data convert`")
    if not any(dataset_dir.rglob("*.parquet")):
        raise PushError(f"{dataset_dir} holds no parquet files: write it with `clinx data convert`")


def folder_files(folder: Path) -> list[str]:
    """Paths (relative, POSIX) of the files that go up, in a stable order."""
    paths = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(relative, pattern) for pattern in RELEASE_EXCLUDED):
            paths.append(relative)
    return paths


def _push(
    folder: Path, repo_id: str, repo_type: str, *, private: bool, token: str | None, message: str, extra: dict[str, bytes]
) -> str:
    # One create_commit rather than upload_folder: the card rendered in memory goes up in the same
    # commit as the files, without a copy of (possibly gigabytes of) weights or a write to the folder.
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    operations = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path))
        for path in folder_files(folder)
        if path not in extra
    ]
    operations += [CommitOperationAdd(path_in_repo=path, path_or_fileobj=content) for path, content in extra.items()]
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type)
    except Exception as error:  # noqa: BLE001 - every client failure becomes one clear message
        raise PushError(_explain(error, repo_id, repo_type, api.endpoint)) from error
    return str(url)


def _explain(error: Exception, repo_id: str, repo_type: str, endpoint: str) -> str:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    what = f"pushing {repo_type} {repo_id} to {endpoint} failed"
    if isinstance(error, OfflineModeIsEnabled):
        return f"{what}: HF_HUB_OFFLINE is set; unset it on a machine that can reach the Hub"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(error, HfHubHTTPError) and status in (401, 403):
        return (
            f"{what}: authentication refused (HTTP {status}); pass a token with write access to "
            f"{repo_id.split('/')[0]} (--token, HF_TOKEN or `hf auth login`)"
        )
    if isinstance(error, HfHubHTTPError):
        return f"{what}: the Hub answered HTTP {status}: {error}"
    if _is_connection_error(error):
        return f"{what}: network error, the Hub cannot be reached ({type(error).__name__}: {error})"
    return f"{what}: {type(error).__name__}: {error}"


def _is_connection_error(error: BaseException) -> bool:
    try:
        import httpx

        transport = (httpx.TransportError,)
    except ImportError:  # pragma: no cover - huggingface_hub 1.x and later depend on httpx
        transport = ()
    while error is not None:
        if isinstance(error, (ConnectionError, TimeoutError, *transport)):
            return True
        error = error.__cause__ or error.__context__
    return False
