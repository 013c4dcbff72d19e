"""The clinx command line end to end on tiny models and synthetic notes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from clinx_hub.cli import main
from clinx_hub.model_card import render_model_card
from clinx_hub.synthetic import write_synthetic_corpus

TINY = ["--epochs", "3", "--lr", "5e-3", "--window-length", "96", "--context", "16", "--batch-size", "8"]


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("notes"), n_train=16, n_dev=4, n_test=6, seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_dir: Path, tiny_backbone_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("model")
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--model", str(tiny_backbone_dir),
                 "--out", str(out), *TINY, "--head-lr", "2e-2", "--warmup", "0.1", "--attention-dropout", "0"]) == 0
    return out


def test_train_writes_a_model_and_scores_the_report_split(trained: Path, capsys) -> None:
    record = json.loads((trained / "training_record.json").read_text())
    assert record["evaluation"]["split"] == "test" and record["evaluation"]["documents"] == 6
    assert record["training_splits"] == ["train"] and record["members"][0]["eval_documents"] == 4
    assert (record["learning_rate"], record["head_learning_rate"], record["warmup_steps"]) == (5e-3, 2e-2, 0.1)
    assert record["attention_dropout"] == 0.0
    assert json.loads((trained / "config.json").read_text())["encoder"]["attention_probs_dropout_prob"] == 0.0
    assert "| Attention dropout while training | 0.0 |" in render_model_card(trained, model_id="toy")
    assert {"config.json", "model.safetensors", "modeling_clinx.py", "tokenizer.json"} <= {p.name for p in trained.iterdir()}


def test_too_few_documents_for_the_folds_is_a_clear_error(synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys) -> None:
    # The first 3 sentences come from one or two notes: not enough for 3 folds.
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--model", str(tiny_backbone_dir),
                 "--out", str(tmp_path / "m"), *TINY, "--splits", "3", "--first-n", "3"]) == 2
    assert "cannot make 3 folds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--attention-dropout", "1.5"], "attention_dropout must be in [0, 1), not 1.5"),
        (["--context", "-1"], "context_size must be >= 0, not -1"),
        (["--context", "48"], "window_length 96 leaves no room for a centre between two contexts of 48"),
        (["--first-n", "0"], "first_n must be a number of sentences >= 1, not 0"),
        # Passes the arguments' check; the encoder's 2 special tokens leave 94 subwords, 47 per side.
        (["--context", "47"], "leaves 94 subwords per window besides its special tokens"),
    ],
)
def test_settings_that_cannot_train_are_a_clear_error(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys, options: list[str], message: str
) -> None:
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--model", str(tiny_backbone_dir),
                 "--out", str(tmp_path / "m"), *TINY, *options]) == 2
    assert message in capsys.readouterr().err


def test_no_holdout_trains_one_model_on_train_and_dev_for_the_set_epochs(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "all"
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--model", str(tiny_backbone_dir),
                 "--out", str(out), *TINY, "--epochs", "2", "--no-holdout"]) == 0
    record = json.loads((out / "training_record.json").read_text())
    assert record["holdout"] is False and record["training_splits"] == ["train", "validation"]
    (member,) = record["members"]
    assert (member["train_documents"], member["eval_documents"]) == (20, 0)  # 16 train + 4 dev, none held out
    assert member["evaluations"] == [] and member["best_eval_f1"] is None and member["epochs_run"] == 2
    assert record["evaluation"]["split"] == "test" and record["evaluation"]["documents"] == 6
    assert "No documents were held out" in render_model_card(out, model_id="toy")
    # An ensemble cannot go without its held-out folds: refused before anything is loaded.
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--model", str(tiny_backbone_dir),
                 "--out", str(tmp_path / "ens"), *TINY, "--no-holdout", "--splits", "3"]) == 2
    assert "--no-holdout" in capsys.readouterr().err and not (tmp_path / "ens").exists()


def test_members_train_apart_and_a_last_run_assembles_the_ensemble(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ens"
    command = ["train", "brat", "--data-dir", str(synthetic_dir), "--model", str(tiny_backbone_dir),
               "--out", str(out), *TINY, "--epochs", "1", "--splits", "2"]
    assert main([*command, "--members", "1"]) == 0
    printed = capsys.readouterr().out
    assert "members finished: 1; still to train: 0; run `clinx train` again" in printed and "F1" not in printed
    assert main([*command, "--members", "2"]) == 2
    assert "members 0 to 1 of the 2-split ensemble, not [2]" in capsys.readouterr().err
    assert main(command) == 0
    assert "brat test: P" in capsys.readouterr().out
    record = json.loads((out / "training_record.json").read_text())
    assert [m["fold"] for m in record["members"]] == [0, 1] and len(record["evaluation"]["members"]) == 2


def test_score_of_predicted_brat_equals_evaluate(trained: Path, synthetic_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["predict", str(trained), str(synthetic_dir / "test"), "--out", str(tmp_path / "pred")]) == 0
    assert len(list((tmp_path / "pred").glob("*.ann"))) == 6
    capsys.readouterr()
    assert main(["score", "--gold", str(synthetic_dir / "test"), "--pred", str(tmp_path / "pred"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(trained), "brat", "--data-dir", str(synthetic_dir), "--split", "test", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert scored["micro"] == evaluated["micro"]


def test_predict_jsonl_for_one_file(trained: Path, synthetic_dir: Path, tmp_path: Path, capsys) -> None:
    note = sorted((synthetic_dir / "test").glob("*.txt"))[0]
    assert main(["predict", str(trained), str(note), "--out", str(tmp_path), "--format", "jsonl"]) == 0
    [line] = (tmp_path / "predictions.jsonl").read_text().splitlines()
    row = json.loads(line)
    text = note.read_text(encoding="utf-8")
    assert row["id"] == note.stem
    assert all(text[s["start"] : s["end"]] == s["text"] and 0 <= s["score"] <= 1 for s in row["spans"])
    assert main(["predict", str(trained), str(tmp_path / "missing.txt"), "--out", str(tmp_path)]) == 2
    assert f"{tmp_path / 'missing.txt'}: no such file or folder" in capsys.readouterr().err


def test_a_hub_id_offline_fails_at_once_with_the_way_out(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    started = time.time()
    code = main(["train", "meddocan", "--data-dir", str(tmp_path), "--model", "clin-x-es", "--out", str(tmp_path / "o")])
    assert code == 2 and time.time() - started < 10
    message = capsys.readouterr().err
    assert "llange/xlm-roberta-large-spanish-clinical" in message and "local folder" in message
    # Similarity checks every candidate (and the reference) before loading anything.
    started = time.time()
    code = main(["similarity", "meddocan", "--data-dir", str(tmp_path), "--reference", str(tmp_path),
                 "--candidates", "clin-x-en"])
    assert code == 2 and time.time() - started < 10
    assert "llange/xlm-roberta-large-english-clinical" in capsys.readouterr().err


def test_labels_outside_the_task_are_a_clear_error(synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys) -> None:
    code = main(["train", "pharmaconer", "--data-dir", str(synthetic_dir / "train"), "--model", str(tiny_backbone_dir),
                 "--out", str(tmp_path), *TINY])
    assert code == 2
    assert "not in the model's label set" in capsys.readouterr().err


def test_quickstart_trains_and_scores_a_small_ensemble(tiny_backbone_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["quickstart", "--out", str(tmp_path), "--model", str(tiny_backbone_dir)]) == 0
    printed = capsys.readouterr().out
    assert "strict micro F1 on 15 test notes" in printed and "3-member ensemble" in printed
    assert f"clinx demo --model {tmp_path / 'model'}" in printed
    assert (tmp_path / "model" / "ensemble.json").is_file() and len(list((tmp_path / "model" / "members").iterdir())) == 3
    record = json.loads((tmp_path / "quickstart.json").read_text())
    assert record["splits"] == 3 and record["evaluation"]["micro"]["support"] > 0
    median = record["evaluation"]["member_median_f1"]
    assert len(record["evaluation"]["members"]) == 3 and f"members alone score a median F1 of {median * 100:.1f}" in printed
    notes = [p.read_text(encoding="utf-8") for p in (tmp_path / "data" / "train").glob("*.txt")]
    record_text = (tmp_path / "quickstart.json").read_text()
    assert not any(sentence in record_text for text in notes for sentence in text.split(". ") if len(sentence) > 20)


def test_available_model_accepts_model_and_ensemble_folders(trained: Path, tmp_path: Path) -> None:
    from clinx_hub.ensemble import ClinXEnsemble, load_extractor
    from clinx_hub.hub import ModelNotAvailable, available_model

    single = load_extractor(trained)
    ClinXEnsemble([single, single]).save_pretrained(tmp_path / "ensemble")
    assert available_model(trained) == str(trained)
    assert available_model(tmp_path / "ensemble") == str(tmp_path / "ensemble")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match="neither config.json nor ensemble.json"):
        available_model(tmp_path / "empty")
