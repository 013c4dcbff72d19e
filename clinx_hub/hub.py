"""Model names: the CLIN-X short names, local folders and Hub ids, with a clear error offline."""

from __future__ import annotations

import os
import socket
from pathlib import Path
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


class ModelNotAvailable(OSError):
    """A model name that is neither a local folder nor reachable on the Hub."""


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
        if not any((Path(resolved) / name).is_file() for name in MODEL_FILES):
            raise ModelNotAvailable(
                f"{resolved} is a folder but has neither config.json nor ensemble.json: not a model folder"
            )
        return resolved
    from huggingface_hub import constants, hf_hub_download

    for name in MODEL_FILES:
        try:
            hf_hub_download(resolved, name, local_files_only=True)
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
        raise ModelNotAvailable(
            f"model {str(name)!r} (Hub id {resolved!r}) cannot be loaded: {error}. Without access to the "
            "Hugging Face Hub, download it on a connected machine "
            f"(`hf download {resolved} --local-dir ./{folder}`) and pass that local folder: --model ./{folder}"
        ) from error
    return resolved


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
