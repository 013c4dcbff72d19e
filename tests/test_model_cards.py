"""The released cards in model_cards/ hold statistics only: no run of corpus text appears in them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CARDS = sorted((Path(__file__).resolve().parents[1] / "model_cards").glob("clinx-minilm-*.md"))
WINDOW = 6  # words: longer than any label name or phrase a card shares with a corpus by chance


def word_windows(text: str) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    return {hash(" ".join(words[i : i + WINDOW])) for i in range(len(words) - WINDOW + 1)}


@pytest.mark.corpus
@pytest.mark.parametrize("card", CARDS, ids=[c.stem for c in CARDS])
def test_a_released_card_quotes_no_corpus_text(card: Path, corpora_dir: Path) -> None:
    task = card.stem.removeprefix("clinx-minilm-").removesuffix("-ensemble")
    texts = sorted((corpora_dir / task).rglob("*.txt"))
    assert len(texts) > 500, f"{task}: corpus texts not found under {corpora_dir / task}"
    corpus = set()
    for path in texts:
        corpus |= word_windows(path.read_text(encoding="utf-8"))
    card_windows = word_windows(card.read_text(encoding="utf-8"))
    assert card_windows and not card_windows & corpus


def test_every_released_card_is_checked() -> None:
    assert [c.stem for c in CARDS] == ["clinx-minilm-meddocan", "clinx-minilm-pharmaconer-ensemble", "clinx-minilm-pharmaconer"]
