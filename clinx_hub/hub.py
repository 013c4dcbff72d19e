"""Model names on the Hub: the CLIN-X short names, Hub ids and local folders, with a clear error offline.

The Hub naming rule lives here only; what a folder holds, and the check every loader makes before
transformers opens one (safetensors only), is :mod:`clinx_hub.folders`."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from .folders import MODEL_FILES, ModelNotAvailable, check_model_folder, is_model_folder

MODEL_ALIASES = {
    "clin-x-es": "llange/xlm-roberta-large-spanish-clinical",
    "clin-x-en": "llange/xlm-roberta-large-english-clinical",
}
"""The CLIN-X encoders (Lange et al. 2022) by their short names."""

DEFAULT_ORGANISATION = os.environ.get("CLINX_HUB_ORG", "clinx-hub")
"""Where fine-tuned models are named (``clinx-hub/clin-x-es-meddocan``); set ``CLINX_HUB_ORG``."""


SHORT_NAME_PREFIXES = ("clin-x-es-", "clin-x-en-")
"""A bare name that starts so (``clin-x-es-meddocan``) is a fine-tuned model of ``DEFAULT_ORGANISATION``."""


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
    return hub_repo_id(text)


def hub_repo_id(name: str) -> str:
    """A CLIN-X short name (``clin-x-es-meddocan``) gets the default organisation; any other name stays.

    >>> hub_repo_id("clin-x-es-meddocan")
    'clinx-hub/clin-x-es-meddocan'
    >>> hub_repo_id("me/my-model")
    'me/my-model'
    """
    if "/" not in name and name.startswith(SHORT_NAME_PREFIXES):
        return f"{DEFAULT_ORGANISATION}/{name}"
    return name


def available_model(name: str | Path) -> str:
    """Resolve ``name`` and make sure its files can be had now, or say how to proceed.

    A local folder is always fine; a Hub id must be in the local cache or reachable. Offline,
    this fails at once with a message that names the way out (a local folder).
    """
    resolved = resolve_model_name(name)
    if Path(resolved).exists():
        if not is_model_folder(resolved):
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
    return check_model_folder(local_model_folder(name), ensemble=ensemble)


def local_model_folder(name: str | Path) -> Path:
    """``name`` itself when it exists here, else the snapshot of the Hub repo it names (not checked)."""
    folder = Path(name).expanduser()
    return folder if folder.exists() else download_model(str(name))


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
