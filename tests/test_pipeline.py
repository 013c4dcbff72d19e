"""pipeline("clinx-extraction") = extract_documents; token-classification with viterbi_logits = the CRF path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import note
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

import clinx_hub  # noqa: F401  (registers the task)
from clinx_hub import ClinXForTokenClassification
from clinx_hub.extraction import extract_documents
from clinx_hub.outputs import deidentify, span_records
from clinx_hub.tagging import scheme_labels, tag_positions
from clinx_hub.windows import build_windows, tokenize_document

LABELS = scheme_labels(["NOMBRE", "LUGAR"], "bioes")
SHORT = "Paciente Juan García ingresa en Madrid con dolor. Alta el 20 de marzo."


def tiny_model(backbone: Path, seed: int) -> ClinXForTokenClassification:
    """A tiny CLIN-X model whose random head gives varied emissions (entities of both types)."""
    torch.manual_seed(seed)
    model = ClinXForTokenClassification.from_backbone(str(backbone), LABELS, context_size=16, window_length=64)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    torch.nn.init.normal_(model.classifier.bias, std=0.5)
    torch.nn.init.normal_(model.crf.transitions, std=0.5)
    return model.eval()


def saved_tiny_model(folder: Path, backbone: Path) -> Path:
    """``tiny_model(backbone, 0)`` saved with its tokenizer, as training saves a model folder."""
    tiny_model(backbone, seed=0).save_pretrained(folder)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path) -> Path:
    return saved_tiny_model(tmp_path_factory.mktemp("clinx-pipeline-model"), tiny_backbone_dir)


@pytest.fixture(scope="module")
def loaded(model_dir: Path):
    return AutoModelForTokenClassification.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def extractor(model_dir: Path):
    return pipeline("clinx-extraction", model=str(model_dir), device="cpu")


def as_records(spans) -> list[dict]:
    return span_records(spans)


def assert_same_spans(got: list, expected: list) -> None:
    """Exactly the same spans; scores equal up to float noise (batch composition changes padding)."""
    assert [[{k: v for k, v in e.items() if k != "score"} for e in doc] for doc in got] == [
        [{k: v for k, v in e.items() if k != "score"} for e in doc] for doc in expected
    ]
    for doc_got, doc_expected in zip(got, expected):
        assert [e["score"] for e in doc_got] == pytest.approx([e["score"] for e in doc_expected], rel=1e-5)


def long_text() -> str:
    return note("long", 14).text


def test_long_text_needs_several_windows(loaded) -> None:
    model, tokenizer = loaded
    tokenized = tokenize_document(note("long", 14), tokenizer)
    windows = build_windows([tokenized], tokenizer, max_length=model.config.max_window_length(), context=16)
    assert len(windows) >= 4


def test_one_text_a_list_and_a_long_text_give_extract_documents_spans(extractor, loaded) -> None:
    model, tokenizer = loaded
    texts = [SHORT, "", long_text(), "Sin hallazgos."]
    expected = [as_records(spans) for spans in extract_documents(model, tokenizer, texts)]
    assert extractor(SHORT) == as_records(extract_documents(model, tokenizer, [SHORT])[0])
    assert extractor(texts) == expected
    assert_same_spans(extractor(texts, batch_size=3), expected)
    assert list(extractor(text for text in texts)) == expected  # a stream comes back lazily, in order
    assert sum(len(spans) for spans in expected) > 5


def test_bioes_groups_into_whole_mentions(extractor, loaded) -> None:
    """E-/S- never surface as entity types; B..E and S tags each give one span."""
    _, tokenizer = loaded
    text = long_text()
    spans = extractor(text)
    assert {s["label"] for s in spans} == {"NOMBRE", "LUGAR"}
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    subwords = [sum(1 for a, b in offsets if a < s["end"] and b > s["start"]) for s in spans]
    assert min(subwords) == 1 and max(subwords) > 1
    assert all(s["text"] == text[s["start"] : s["end"]] for s in spans)


@pytest.mark.parametrize("mode", ["label", "surrogate"])
def test_deidentify_is_its_own_call_returning_the_masked_text(extractor, loaded, mode: str) -> None:
    model, tokenizer = loaded
    spans = extract_documents(model, tokenizer, [SHORT])[0]
    assert extractor.deidentify(SHORT, mode=mode) == deidentify(SHORT, spans, mode=mode) != SHORT
    assert extractor.deidentify([SHORT, SHORT], mode=mode) == [deidentify(SHORT, spans, mode=mode)] * 2
    kept = [s for s in spans if s.label != "NOMBRE"]
    assert extractor.deidentify(SHORT, mode=mode, ignore_labels=["NOMBRE"]) == deidentify(SHORT, kept, mode=mode)
    with pytest.raises(ValueError, match="mode='hash'"):
        extractor.deidentify(SHORT, mode="hash")
    # The call itself never returns another type.
    with pytest.raises(TypeError, match=r"pipe.deidentify\(texts, mode='label'\)"):
        extractor(SHORT, deidentify="label")


def test_token_classification_options_are_understood(extractor, loaded) -> None:
    model, tokenizer = loaded
    texts = [SHORT, long_text()]
    spans = extract_documents(model, tokenizer, texts)
    expected = [as_records(doc) for doc in spans]
    for strategy in ("simple", "first", "max", "average", "SIMPLE"):
        assert extractor(texts, aggregation_strategy=strategy) == expected  # the CRF's spans are whole already
    with pytest.raises(ValueError, match="one entity per subword"):
        extractor(texts, aggregation_strategy="none")
    with pytest.raises(ValueError, match="expected one of"):
        extractor(texts, aggregation_strategy="longest")
    assert extractor(texts, ignore_labels=["LUGAR", "O"]) == [[r for r in doc if r["label"] != "LUGAR"] for doc in expected]
    with pytest.raises(TypeError, match="a list of labels"):
        extractor(texts, ignore_labels="LUGAR")
    scores = sorted(r["score"] for doc in expected for r in doc)
    cut = scores[len(scores) // 2]
    above = extractor(texts, threshold=cut)
    assert above == [[r for r in doc if r["score"] >= cut] for doc in expected]
    assert 0 < sum(map(len, above)) < len(scores)
    with pytest.raises(ValueError, match="between 0 and 1"):
        extractor(texts, threshold=1.5)
    with pytest.raises(TypeError, match="unexpected options \\['stride'\\]"):
        extractor(texts, stride=16)


def test_call_defaults_given_when_the_pipeline_is_built(model_dir: Path, loaded) -> None:
    model, tokenizer = loaded
    spans = extract_documents(model, tokenizer, [SHORT])[0]
    strict = pipeline("clinx-extraction", model=str(model_dir), device="cpu", ignore_labels=["NOMBRE"])
    assert strict(SHORT) == [r for r in as_records(spans) if r["label"] != "NOMBRE"]
    assert strict(SHORT, ignore_labels=[]) == as_records(spans)  # a call's option wins


def test_saved_folders_declare_the_pipeline_and_carry_its_files(model_dir: Path) -> None:
    import json

    from transformers.dynamic_module_utils import get_relative_import_files

    config = json.loads((model_dir / "config.json").read_text())
    declared = config["custom_pipelines"]["clinx-extraction"]
    assert declared["impl"] == "pipeline.ClinXExtractionPipeline"
    assert declared["pt"] == ["AutoModelForTokenClassification"]
    needed = {Path(p).name for p in get_relative_import_files(str(model_dir / "pipeline.py"))}
    assert {"extraction.py", "windows.py", "streaming.py", "modeling_clinx.py"} <= needed
    assert needed <= {p.name for p in model_dir.iterdir()}
    # With clinx_hub imported the registered task serves it: no trust_remote_code needed (see the fixture).
    assert AutoModelForTokenClassification.from_pretrained(model_dir).config.custom_pipelines == {}


def test_a_plain_encoder_is_refused_not_given_a_random_head(tiny_backbone_dir: Path) -> None:
    from clinx_hub.extractor_pipeline import extraction_pipeline
    from clinx_hub.folders import ModelFolderError

    with pytest.raises(ValueError, match="model_type 'xlm-roberta', not 'clinx'"):
        pipeline("clinx-extraction", model=str(tiny_backbone_dir), device="cpu")
    with pytest.raises(ModelFolderError, match="model_type 'xlm-roberta', not 'clinx'"):
        extraction_pipeline(tiny_backbone_dir)


def test_ensemble_folder_through_the_pipeline_factory(tmp_path: Path, tiny_backbone_dir: Path) -> None:
    from clinx_hub.ensemble import ClinXEnsemble, Extractor
    from clinx_hub.extractor_pipeline import extraction_pipeline

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_dir)
    members = [Extractor(tiny_model(tiny_backbone_dir, seed), tokenizer) for seed in (0, 1, 2)]
    ClinXEnsemble(members).save_pretrained(tmp_path)
    expected = ClinXEnsemble.from_pretrained(tmp_path).predict([SHORT, long_text()])
    got = extraction_pipeline(tmp_path, device="cpu")([SHORT, long_text()])
    assert got == [as_records(spans) for spans in expected]
    # README's line: pipeline() itself on the ensemble folder, every member voting.
    assert pipeline("clinx-extraction", model=str(tmp_path), device="cpu")([SHORT, long_text()]) == got
    assert_same_spans([pipeline("clinx-extraction", model=tmp_path)(SHORT)], got[:1])
    # A folder saved before ensembles carried the members' config at the top: extraction_pipeline opens it.
    (tmp_path / "config.json").unlink()
    assert extraction_pipeline(tmp_path, device="cpu")([SHORT, long_text()]) == got


def test_token_classification_with_viterbi_logits_gives_the_crf_spans(model_dir: Path, loaded) -> None:
    """On a one-window text whose emission argmax is not the Viterbi path.

    The text has no bare ``▁`` subword: extraction leaves those out of the chain
    (``tagging.tag_positions``), forward cannot see offsets and keeps them in (a known limit).
    """
    model, tokenizer = loaded
    text = "Paciente con dolor abdominal"
    encoded = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    assert all(tag_positions(encoded.pop("offset_mapping")[0].tolist()[1:-1])[0])
    emissions = model(**encoded).logits
    labelled = torch.zeros_like(encoded["attention_mask"], dtype=torch.bool)
    labelled[0, 1:-1] = True
    viterbi = model.decode(logits=emissions, label_mask=labelled)[0, 1:-1]
    assert not torch.equal(emissions[0, 1:-1].argmax(-1), viterbi)

    crf_spans = extract_documents(model, tokenizer, [text])[0]
    assert crf_spans
    crf_keys = [(s.label, s.start, s.end) for s in crf_spans]

    def keys(entities: list[dict]) -> list[tuple]:
        return [(e["entity_group"], e["start"], e["end"]) for e in entities]

    plain = pipeline("token-classification", model=str(model_dir), aggregation_strategy="simple", device="cpu")
    assert keys(plain(text)) != crf_keys  # the argmax, with E-/S- read as entity types of their own

    fixed = pipeline(
        "token-classification",
        model=str(model_dir),
        aggregation_strategy="simple",
        device="cpu",
        model_kwargs={"viterbi_logits": True},
    )
    entities = fixed(text)
    assert keys(entities) == crf_keys
    # Scores are the mean marginal, as in extract_documents, except that a subword's marginal
    # below 1/num_labels is raised to it (a softmax cannot put its maximum lower).
    floor = 1 / len(LABELS) + 1e-3
    for entity, span in zip(entities, crf_spans):
        assert span.score - 1e-5 <= float(entity["score"]) <= span.score + floor


def test_viterbi_logits_leave_training_and_extraction_alone(loaded) -> None:
    model, tokenizer = loaded
    encoded = tokenizer(SHORT, return_tensors="pt")
    raw = model(**encoded).logits
    labels = torch.zeros_like(encoded["input_ids"])
    labels[0, 0] = labels[0, -1] = -100
    expected = extract_documents(model, tokenizer, [SHORT, long_text()])
    model.config.viterbi_logits = True
    try:
        assert not torch.equal(model(**encoded).logits, raw)
        assert torch.equal(model(**encoded, labels=labels).logits, raw)
        assert torch.equal(model(**encoded, viterbi_logits=False).logits, raw)
        model.train()
        torch.testing.assert_close(model(**encoded).logits, raw)  # dropout is 0 in the tiny encoder
        model.eval()
        assert extract_documents(model, tokenizer, [SHORT, long_text()]) == expected
    finally:
        model.config.viterbi_logits = False
        model.eval()


def test_pipeline_dtype_reaches_the_encoder_and_the_crf_stays_float32(model_dir: Path, loaded) -> None:
    model, tokenizer = loaded
    extract = pipeline("clinx-extraction", model=str(model_dir), device="cpu", dtype="bfloat16")
    assert next(extract.model.encoder.parameters()).dtype == torch.bfloat16
    assert extract.model.crf.transitions.dtype == torch.float32
    got = extract([SHORT, long_text()])
    assert sum(map(len, got)) > 0 and all(isinstance(r["score"], float) for doc in got for r in doc)
    # fp16 on the CPU is refused by the loader; pipeline() then falls back to float32, its own rule for any model.
    half = pipeline("clinx-extraction", model=str(model_dir), device="cpu", dtype="float16")
    assert next(half.model.encoder.parameters()).dtype == torch.float32
