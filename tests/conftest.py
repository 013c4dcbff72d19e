"""Shared fixtures: the real corpora (skipped where absent) and tiny models built in code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPORA = Path(os.environ.get("CLINX_CORPORA", Path(__file__).resolve().parents[1].parent / "shared" / "corpora"))


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """``../shared/corpora`` (or ``$CLINX_CORPORA``); tests that need it skip cleanly without it."""
    if not (CORPORA / "README.md").is_file():
        pytest.skip(f"real corpora not found at {CORPORA}")
    return CORPORA
