"""Model cards: what they say (YAML, model-index, pictures, transfer, how to use an ensemble), and never
a sentence of training text; the released cards in model_cards/ quote no run of corpus text."""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version as metadata_version
from pathlib import Path

import pytest
import test_push
from test_push import SENTINEL, TYPES, front_matter, is_png, python_blocks

from clinx_hub.card_figures import IMAGES
from clinx_hub.model_card import (
    WIDGET_EXAMPLES,
    CardFieldError,
    ClinXCardData,
    card_files,
    render_model_card,
    save_model_card,
)

CARDS = sorted((Path(__file__).resolve().parents[1] / "model_cards").glob("clinx-minilm-*.md"))
# Each released card's corpus folder under the shared corpora (the study card's source and target are both MEDDOPROF).
CORPUS_OF_CARD = {
    "clinx-minilm-meddocan": "meddocan",
    "clinx-minilm-meddoprof-ner-250-from-meddoprof-class": "meddoprof",
    "clinx-minilm-pharmaconer-ensemble": "pharmaconer",
    "clinx-minilm-pharmaconer": "pharmaconer",
}
WINDOW = 6  # words: longer than any label name or phrase a card shares with a corpus by chance


def word_windows(text: str) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    return {hash(" ".join(words[i : i + WINDOW])) for i in range(len(words) - WINDOW + 1)}


@pytest.mark.corpus
@pytest.mark.parametrize("card", CARDS, ids=[c.stem for c in CARDS])
def test_a_released_card_quotes_no_corpus_text(card: Path, corpora_dir: Path) -> None:
    corpus_dir = corpora_dir / CORPUS_OF_CARD[card.stem]
    texts = sorted(corpus_dir.rglob("*.txt"))
    assert len(texts) > 500, f"{card.stem}: corpus texts not found under {corpus_dir}"
    corpus = set()
    for path in texts:
        corpus |= word_windows(path.read_text(encoding="utf-8"))
    card_windows = word_windows(card.read_text(encoding="utf-8"))
    # The Hub widget's example is the project's own invented sentence, whose stock phrases ("amoxicilina 500 mg
    # cada 8 horas") a corpus may share by chance: its windows are set aside; the rest must share none.
    invented = set().union(*(word_windows(text) for text in WIDGET_EXAMPLES.values()))
    assert card_windows and not (card_windows - invented) & corpus


def test_every_released_card_is_checked() -> None:
    assert [c.stem for c in CARDS] == list(CORPUS_OF_CARD)


# --- cards rendered from tiny models built here -----------------------------------------------------
# (The fixtures are test_push's: tiny models trained on invented notes, one of them with SENTINEL in it.)

# test_push's fixtures: tiny models trained on invented notes (module-scoped, so built again for this module).
notes_dir, trained, transferred, ensemble_dir = (
    test_push.notes_dir, test_push.trained, test_push.transferred, test_push.ensemble_dir
)
SECTIONS = (
    "## Intended use", "## How to use it", "## Labels", "## Training set-up", "## Evaluation", "## Pictures",
    "## Limitations", "## Framework versions", "## Citation",
)


def card_of(markdown: str):  # noqa: ANN201 - huggingface_hub.ModelCard
    """The card as the Hub client parses it (YAML metadata, model-index as EvalResults)."""
    from huggingface_hub import ModelCard

    return ModelCard(markdown)


def test_card_of_a_trained_model_has_metadata_sections_widget_versions_and_pictures(
    trained: Path, notes_dir: Path
) -> None:
    record = json.loads((trained / "training_record.json").read_text())
    files = card_files(trained, model_id="clinx/tiny-notes", language="es", license="cc-by-4.0", datasets=["clinx/notes"])
    assert set(files) == {"README.md", *IMAGES.values()} and all(is_png(files[p]) for p in IMAGES.values())
    markdown = files["README.md"].decode()
    card = card_of(markdown)
    metadata = card.data.to_dict()
    assert (metadata["license"], metadata["language"], metadata["datasets"]) == ("cc-by-4.0", ["es"], ["clinx/notes"])
    assert {"clinical", "ner", "crf", "clin-x", "token-classification"} <= set(metadata["tags"])
    assert metadata["widget"] == [{"text": WIDGET_EXAMPLES["es"]}]
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"f1", "precision", "recall"}
    f1 = results["f1"]
    assert f1.metric_value == round(record["evaluation"]["micro"]["f1"], 4) and f1.metric_name == "Strict micro F1"
    assert (f1.dataset_type, f1.dataset_split, f1.task_type) == ("clinx/notes", "test", "token-classification")
    body = card.text
    assert all(section in body for section in SECTIONS)
    assert "| `NOMBRE` |" in body and "| **micro** |" in body and "trust_remote_code=True" in body
    assert "not CLIN-X-large" in body and "nested" in body and "Lange" in body and "Bioinformatics" in body
    assert "![Held-out strict F1 per epoch](images/training_curve.png)" in body
    assert "(images/per_label_f1.png)" in body
    for name in ("transformers", "torch", "tokenizers", "clinx_hub", "datasets"):
        assert f"- {name} {metadata_version(name)}\n" in body
    # The curve is the record's: two epochs of held-out F1.
    assert [e["epoch"] for e in record["members"][0]["evaluations"]] == [1.0, 2.0]
    assert ClinXCardData.from_folder(trained).training_curves == {
        "0": [(e["epoch"], e["eval_f1"]) for e in record["members"][0]["evaluations"]]
    }


def test_no_sentence_span_or_sentinel_of_the_training_notes_reaches_a_card_or_its_pictures(
    trained: Path, transferred: Path, notes_dir: Path
) -> None:
    from clinx_hub.corpora import load_task

    assert SENTINEL in (notes_dir / "train" / "train-sentinel.txt").read_text(encoding="utf-8")
    documents = [d for split in load_task("brat", notes_dir).values() for d in split]
    for folder in (trained, transferred):
        files = card_files(folder, model_id="clinx/x", language="es")
        card = files["README.md"].decode()
        assert all(SENTINEL.encode() not in content and SENTINEL.lower().encode() not in content
                   for content in files.values())
        for document in documents:
            for start, end in document.sentences:
                assert document.text[start:end].strip() not in card
            for span in document.spans:
                assert span.text not in card, span.text
        # The widget's example is the invented sentence of the code, not a note's.
        assert card_of(card).data.to_dict()["widget"] == [{"text": WIDGET_EXAMPLES["es"]}]


def test_without_matplotlib_the_card_renders_and_says_it_has_no_pictures(trained: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    files = card_files(trained, model_id="clinx/tiny-notes")
    assert set(files) == {"README.md"}
    body = card_of(files["README.md"].decode()).text
    assert "rendered without its pictures" in body and "clinx_hub[plots]" in body and "images/" not in body


def test_a_card_without_hub_datasets_says_what_it_was_trained_on_without_an_id(trained: Path) -> None:
    card = card_of(render_model_card(trained, model_id="clinx/tiny-notes"))
    metadata = card.data.to_dict()
    assert "datasets" not in metadata and "widget" not in metadata  # no language given: no example to show
    [dataset_type] = {r.dataset_type for r in card.data.eval_results}
    assert dataset_type == "brat"  # the task, where no Hub dataset id is given
    assert ("- **Training data:** a local BRAT folder (train): 9 documents, 2 more held out for early stopping; "
            "not a Hub dataset, so the card names no dataset id") in card.text


@pytest.mark.parametrize(("fields", "message"), [
    ({"datasets": ["/data/notes"]}, "is not a Hub dataset id"),
    ({"datasets": ["a/b/c"]}, "is not a Hub dataset id"),
    ({"baseline_f1": 1.5}, "between 0 and 1"),
])
def test_card_fields_that_cannot_be_published_are_refused(trained: Path, fields: dict, message: str) -> None:
    with pytest.raises(CardFieldError, match=message):
        render_model_card(trained, **fields)


def test_a_baseline_f1_needs_a_transfer_model_and_can_come_from_the_record(
    trained: Path, transferred: Path, tmp_path: Path
) -> None:
    import shutil

    with pytest.raises(CardFieldError, match="not trained with --init-from"):
        render_model_card(trained, baseline_f1=0.5)
    assert len(card_of(render_model_card(transferred)).data.eval_results) == 3  # no baseline: this model's P/R/F1
    folder = Path(shutil.copytree(transferred, tmp_path / "study"))
    record = json.loads((folder / "training_record.json").read_text())
    (folder / "training_record.json").write_text(json.dumps({**record, "baseline_f1": 0.125}))
    baseline = [r for r in card_of(render_model_card(folder)).data.eval_results if r.dataset_config]
    assert [(r.metric_type, r.metric_value) for r in baseline] == [("f1", 0.125)]
    # Given on the command line it wins over the record's.
    baseline = [r for r in card_of(render_model_card(folder, baseline_f1=0.5)).data.eval_results if r.dataset_config]
    assert [r.metric_value for r in baseline] == [0.5]


def test_a_transfer_source_on_the_hub_is_named_by_its_id_and_is_the_base_model(transferred: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(transferred, tmp_path / "from-hub"))
    record = json.loads((folder / "training_record.json").read_text())
    (folder / "training_record.json").write_text(json.dumps({**record, "init_from": "clin-x-es-meddocan"}))
    card = card_of(render_model_card(folder, source_task="meddocan"))
    metadata = card.data.to_dict()
    assert metadata["base_model"] == "clinx-hub/clin-x-es-meddocan" and metadata["base_model_relation"] == "finetune"
    assert "[clinx-hub/clin-x-es-meddocan](https://huggingface.co/clinx-hub/clin-x-es-meddocan)" in card.text
    assert card.data.eval_results[0].task_name == (
        "Clinical concept extraction (transfer from clinx-hub/clin-x-es-meddocan, a meddocan model)"
    )


def test_card_of_an_ensemble_lists_members_says_how_to_use_it_and_save_writes_readme(
    ensemble_dir: Path, tmp_path: Path
) -> None:
    import shutil

    folder = shutil.copytree(ensemble_dir, tmp_path / "ensemble")
    data = ClinXCardData.from_folder(folder, model_id="tiny-ensemble", organisation="clinx", datasets=["clinx/notes"])
    assert data.is_ensemble and data.member_names == ["a", "b"] and data.entity_types == sorted(TYPES)
    path = save_model_card(folder, model_id="clinx/tiny-ensemble")
    assert path == folder / "README.md" and not (folder / "images").exists()  # nothing recorded: nothing to draw
    metadata, body = front_matter(path.read_text(encoding="utf-8"))
    assert "ensemble" in metadata["tags"] and "model-index" not in metadata  # no evaluation recorded
    assert "## Ensemble members" in body and "`a`" in body and "## Pictures" not in body
    assert "not one transformers model" in body and "from clinx_hub import load_extractor" in body
    plain = python_blocks(body)[1]
    assert 'from_pretrained(repo, subfolder=f"members/{member}", trust_remote_code=True)' in plain
    assert plain.count('subfolder=f"members/{member}"') == 2  # the tokenizer too
    assert "clinx/notes" in data.render()


def test_save_model_card_writes_the_pictures_beside_the_card(trained: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(trained, tmp_path / "model"))
    path = save_model_card(folder, model_id="clinx/tiny-notes")
    assert all(is_png((folder / p).read_bytes()) for p in IMAGES.values())
    assert "](images/training_curve.png)" in path.read_text(encoding="utf-8")
    assert not list(folder.rglob(".*.tmp"))
