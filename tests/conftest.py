"""Shared fixtures: the real corpora (skipped where absent) and tiny models built in code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hub_server import local_hub  # noqa: F401  (the loopback Hub fixture, for every test module)

CORPORA = Path(os.environ.get("CLINX_CORPORA", Path(__file__).resolve().parents[1].parent / "shared" / "corpora"))


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """``../shared/corpora`` (or ``$CLINX_CORPORA``); tests that need it skip cleanly without it."""
    if not (CORPORA / "README.md").is_file():
        pytest.skip(f"real corpora not found at {CORPORA}")
    return CORPORA


# Invented sentences (never corpus text) to train a tiny XLM-R-style Unigram tokenizer on.
SYNTHETIC_SENTENCES = [
    "Paciente de 45 años con dolor abdominal y fiebre de 38,5 ºC.",
    "Se administra paracetamol 1 g cada 8 horas durante 5 días.",
    "Dr. Juan García López, Hospital Universitario La Paz, Madrid.",
    "Fecha de ingreso: 12/03/2019. Alta el 20 de marzo de 2019.",
    "Carcinoma ductal infiltrante de mama izquierda, grado 2.",
    "Patient is a 67-year-old man with chest pain and dyspnea.",
    "Metformin 500 mg twice daily; lisinopril 10 mg once daily.",
    "CT scan of the abdomen showed no acute abnormality.",
    "Trabaja como enfermera en el centro de salud de Alcalá.",
    "Correo: paciente@example.com, teléfono 612 345 678.",
]


def unigram_tokenizer(texts: list[str], vocab_size: int):
    """An XLM-R-style fast tokenizer (Unigram, ``<s> <pad> </s> <unk> <mask>``) trained on ``texts``."""
    import json

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import XLMRobertaTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>"
    )
    tokenizer.train_from_iterator(texts, trainer)
    vocab = [tuple(piece) for piece in json.loads(tokenizer.to_str())["model"]["vocab"]]
    return XLMRobertaTokenizerFast(vocab=vocab)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny XLM-R-style tokenizer (vocabulary 300, invented sentences), saved to disk."""
    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    unigram_tokenizer(SYNTHETIC_SENTENCES * 5, vocab_size=300).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def tiny_encoder_config(kind: str, vocab_size: int = 300):
    """A 2-layer, hidden-32 encoder config of the named architecture."""
    from transformers import BertConfig, RobertaConfig, XLMRobertaConfig

    sizes = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=160,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    config_class = {"xlm-roberta": XLMRobertaConfig, "roberta": RobertaConfig, "bert": BertConfig}[kind]
    return config_class(**sizes)


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A saved tiny random XLM-R encoder with the tiny tokenizer beside it (stands in for CLIN-X)."""
    import shutil

    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-xlmr")
    AutoModel.from_config(tiny_encoder_config("xlm-roberta")).save_pretrained(folder)
    for item in tiny_tokenizer_dir.iterdir():
        shutil.copy(item, folder / item.name)
    return folder


# The suite's quickstart: the recipe of `clinx quickstart` (a 3-member random-split ensemble on
# synthetic notes, trained, scored, its summary printed, a folder the demo opens) at a size that
# trains in seconds on the tiny encoder. The full-size default runs behind the `slow` marker.
SMALL_QUICKSTART = dict(
    train_notes=9, dev_notes=2, test_notes=4, splits=3, epochs=1, batch_size=8, window_length=64, context=8
)


@pytest.fixture(scope="session")
def small_quickstart(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path) -> tuple[Path, str]:
    """``clinx quickstart --model TINY`` with ``SMALL_QUICKSTART``: its output folder and what it printed."""
    import contextlib
    import importlib
    import io

    from clinx_hub.cli import main

    quickstart = importlib.import_module("clinx_hub.quickstart")
    out = tmp_path_factory.mktemp("quickstart")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(quickstart, "DEFAULT_SETTINGS", quickstart.QuickstartSettings(**SMALL_QUICKSTART))
        assert main(["quickstart", "--out", str(out), "--backbone", str(tiny_backbone_dir)]) == 0
    return out, printed.getvalue()


def note(doc_id: str, sentences: int, offset: int = 0):
    """An invented note of ``sentences`` sentences, each with a NOMBRE and a LUGAR span."""
    from clinx_hub import Document, Span
    from clinx_hub.sentences import split_sentences

    names, places = ["Juan García", "Ana López Pérez", "Luis"], ["Madrid", "La Paz", "Alcalá de Henares"]
    text, spans = "", []
    for i in range(sentences):
        name, place = names[(i + offset) % 3], places[(i + offset) % 3]
        sentence = f"Paciente {name} ingresa en {place} con dolor. "
        spans.append(Span(len(text) + 9, len(text) + 9 + len(name), "NOMBRE", name))
        at = len(text) + sentence.index(place)
        spans.append(Span(at, at + len(place), "LUGAR", place))
        text += sentence
    return Document(doc_id, text, spans, split_sentences(text))
