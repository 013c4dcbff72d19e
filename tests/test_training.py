"""The recipe on tiny models: folds, first-n, voting, single and ensemble runs, transfer, resume."""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import note

from clinx_hub import Span
from clinx_hub.ensemble import ClinXEnsemble, Extractor, ensemble_vote, load_extractor
from clinx_hub.formats.brat import write_brat
from clinx_hub.model_card import render_model_card
from clinx_hub.modeling_clinx import ClinXForTokenClassification
from clinx_hub.recipe import (
    first_n_sentences,
    initial_model,
    random_folds,
    score_task_model,
    train_one,
    train_recipe,
    train_task,
)
from clinx_hub.run_state import ensemble_progress
from clinx_hub.tagging import scheme_labels
from clinx_hub.trainer import ClinXTrainer
from clinx_hub.training_args import TrainingSetupError, default_arguments

TYPES = ["NOMBRE", "LUGAR"]


@pytest.fixture(scope="module")
def notes():
    return [note(f"n{i:02d}", 2 + i % 3, offset=i) for i in range(24)]


def tiny_args(out: Path, **overrides):
    settings = dict(
        num_train_epochs=4,
        learning_rate=5e-3,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        window_length=64,
        context_size=8,
        disable_tqdm=True,
        seed=0,
    )
    settings.update(overrides)
    return default_arguments(out, **settings)


def test_random_folds_are_disjoint_covering_and_deterministic() -> None:
    ids = [f"d{i}" for i in range(23)]
    folds = random_folds(ids, 5, seed=3)
    assert sorted(i for fold in folds for i in fold) == sorted(ids)
    assert all(not set(a) & set(b) for n, a in enumerate(folds) for b in folds[n + 1 :])
    assert {len(f) for f in folds} == {4, 5}
    assert folds == random_folds(list(reversed(ids)), 5, seed=3)
    assert folds != random_folds(ids, 5, seed=4)
    with pytest.raises(ValueError):
        random_folds(ids[:3], 5, seed=0)


def test_first_n_sentences_takes_corpus_order_and_cuts_the_last_document(notes) -> None:
    subset = first_n_sentences(list(reversed(notes)), 5)
    assert [d.id for d in subset] == ["n00", "n01"]  # n00 has 2 sentences, n01 has 3
    assert sum(len(d.sentences) for d in subset) == 5
    cut = first_n_sentences(notes, 3)
    assert cut[-1].text == notes[1].text[: notes[1].sentences[0][1]]
    assert all(s.end <= len(cut[-1].text) for s in cut[-1].spans) and len(cut[-1].spans) == 2


def test_majority_vote_is_deterministic_for_ties_and_overlaps() -> None:
    a, b, c = Span(0, 10, "X", score=0.9), Span(0, 4, "X", score=0.8), Span(6, 10, "Y", score=0.7)
    assert ensemble_vote([[a], [a, c], [b, c]]) == [
        Span(0, 10, "X", score=pytest.approx(0.6)),
    ]  # a and c both have 2 votes and overlap: the longer wins
    assert [s.key for s in ensemble_vote([[b], [c], [a]], min_votes=1)] == [("X", 0, 10)]
    assert ensemble_vote([[b], [b], [b]]) == [Span(0, 4, "X", score=pytest.approx(0.8))]
    assert ensemble_vote([[a, a], [], []]) == []  # duplicates in one member are one vote
    members = [[a], [b, c], [c]]
    assert ensemble_vote(members) == ensemble_vote(list(reversed(members)))
    # A full tie (equal votes, equal length): the earlier start, then the label, in any member order.
    x, y, later = Span(0, 4, "X"), Span(0, 4, "Y"), Span(2, 6, "X")
    for order in ([[y], [x], [later]], [[later], [x], [y]], [[x], [later], [y]], [[later], [y], [x]]):
        assert [s.key for s in ensemble_vote(order, min_votes=1)] == [("X", 0, 4)]


def test_single_model_recipe_trains_saves_and_evaluates(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    # One training and one held-out note list a span twice: the record counts the training one only.
    def doubled(d):
        return d.with_spans([*d.spans, d.spans[0]])

    out = train_recipe(
        str(tiny_backbone_dir), [doubled(notes[0]), *notes[1:16]], tmp_path / "single", tiny_args(tmp_path / "single"),
        entity_types=TYPES, validation=[doubled(notes[16]), *notes[17:20]], task="toy",
    )
    assert not (out / "checkpoints").exists()
    record = json.loads((out / "training_record.json").read_text())
    assert record["labels"] == scheme_labels(TYPES) and record["splits"] == 1
    assert record["members"][0]["eval_documents"] == 4 and record["members"][0]["evaluations"]
    assert record["members"][0]["unrepresentable_train_spans"] == 1
    extractor = load_extractor(out)
    assert type(extractor) is Extractor and extractor.config.context_size == 8
    result = extractor.evaluate(notes[20:])
    assert result.micro.f1 > 0.5, result.micro.to_dict()
    assert "Paciente" not in (out / "training_record.json").read_text()  # no note text in the record


def test_ensemble_recipe_saves_one_folder_that_loads_like_a_model(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    out = train_recipe(
        str(tiny_backbone_dir), notes[:18], tmp_path / "ens", tiny_args(tmp_path / "ens", splits=3, num_train_epochs=3),
        entity_types=TYPES, task="toy",
    )
    folds = json.loads((out / "folds.json").read_text())["folds"]
    assert sorted(i for f in folds for i in f) == sorted(d.id for d in notes[:18])
    ensemble = load_extractor(out)
    assert isinstance(ensemble, ClinXEnsemble) and len(ensemble.members) == 3
    record = json.loads((out / "training_record.json").read_text())
    assert [m["fold"] for m in record["members"]] == [0, 1, 2]
    assert all(m["train_documents"] == 12 and m["eval_documents"] == 6 for m in record["members"])
    predictions = ensemble.predict(notes[20:])
    per_member = [m.predict(notes[20:]) for m in ensemble.members]
    for i, spans in enumerate(predictions):
        assert spans == ensemble_vote([m[i] for m in per_member])
    voted, members = ensemble.evaluate_members(notes[20:])
    assert voted.micro == ensemble.evaluate(notes[20:]).micro
    assert [m.micro for m in members] == [m.evaluate(notes[20:]).micro for m in ensemble.members]
    ensemble.save_pretrained(tmp_path / "copy")
    assert load_extractor(tmp_path / "copy").predict(notes[20:]) == predictions


def test_members_trained_by_separate_runs_make_the_same_ensemble(
    tiny_backbone_dir: Path, notes, tmp_path: Path, monkeypatch
) -> None:
    def args(out: Path, **overrides):
        return tiny_args(out / "checkpoints", splits=3, num_train_epochs=2, logging_strategy="no", **overrides)

    def recipe(out: Path, arguments):
        return train_recipe(str(tiny_backbone_dir), notes[:18], out, arguments, entity_types=TYPES, task="toy")

    whole = load_extractor(recipe(tmp_path / "whole", args(tmp_path / "whole")))
    apart = tmp_path / "apart"
    # Two runs, as if side by side on two GPUs: neither assembles the ensemble.
    recipe(apart, args(apart, members=[1]))
    assert ensemble_progress(apart, 3) == {"finished": [1], "missing": [0, 2]}
    assert not (apart / "ensemble.json").exists() and not (apart / "training_record.json").exists()
    assert not (apart / "checkpoints" / "1").exists()  # a finished member keeps no checkpoints
    assert not list((apart / "members_done").glob(".*"))  # no lock or half-written member left
    recipe(apart, args(apart, members=[0, 2]))
    assert ensemble_progress(apart, 3) == {"finished": [0, 1, 2], "missing": []}
    # Settings that differ from a finished member's (here its epochs) are refused, naming them.
    with pytest.raises(TrainingSetupError, match=r"member 0 finished with other settings \(num_train_epochs\)"):
        recipe(apart, tiny_args(apart / "checkpoints", splits=3, num_train_epochs=3, logging_strategy="no"))
    # The run without members trains nothing more and assembles what the two runs left.
    monkeypatch.setattr("clinx_hub.recipe.train_one", lambda *a, **k: pytest.fail("a finished member was retrained"))
    assembled = load_extractor(recipe(apart, args(apart)))
    assert not (apart / "members_done").exists()
    record = json.loads((apart / "training_record.json").read_text())
    assert [m["fold"] for m in record["members"]] == [0, 1, 2]
    # Training time is the members' own, wherever they trained, not the assembling run's.
    assert record["train_seconds"] == round(sum(m["train_seconds"] for m in record["members"]), 1) > 0
    for alone, together in zip(assembled.members, whole.members):
        for (name, a), b in zip(alone.model.state_dict().items(), together.model.state_dict().values()):
            assert torch.equal(a, b), name
    assert assembled.predict(notes[20:]) == whole.predict(notes[20:])
    # Its members are trained: a run for some of them again is refused.
    with pytest.raises(FileExistsError, match="already holds the assembled ensemble"):
        recipe(apart, args(apart, members=[0]))


def test_a_member_is_never_trained_by_two_runs_at_once(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    def recipe(out: Path, **overrides):
        arguments = tiny_args(out / "checkpoints", splits=2, num_train_epochs=1, logging_strategy="no", **overrides)
        return train_recipe(str(tiny_backbone_dir), notes[:8], out, arguments, entity_types=TYPES, task="toy")

    out = tmp_path / "ens"
    lock = out / "members_done" / ".1.lock"
    lock.parent.mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname()}))
        # A run for member 1, or one for all members, is refused before it trains anything.
        for members in ([1], None):
            with pytest.raises(TrainingSetupError, match=rf"training members 1 \(pid {other.pid} on "):
                recipe(out, members=members)
        assert ensemble_progress(out, 2)["finished"] == []
        recipe(out, members=[0])  # another member trains meanwhile
        other.kill()
    # The holder is gone: its lock is stale and the member trains.
    recipe(out, members=[1])
    assert ensemble_progress(out, 2)["finished"] == [0, 1] and not lock.exists()


def test_a_finished_member_without_its_settings_is_refused(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    out = tmp_path / "ens"
    arguments = tiny_args(out / "checkpoints", splits=2, num_train_epochs=1, logging_strategy="no")
    train_recipe(str(tiny_backbone_dir), notes[:8], out, replace(arguments, members=[0]), entity_types=TYPES)
    (out / "members_done" / "0" / "run_settings.json").unlink()  # as a member from an older version
    with pytest.raises(TrainingSetupError, match="holds member 0 without the run_settings.json"):
        train_recipe(str(tiny_backbone_dir), notes[:8], out, arguments, entity_types=TYPES)


def test_a_label_seen_only_in_a_brat_folders_dev_split_is_learnt(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    dev = [d.with_spans([*d.spans, Span(0, 8, "FECHA", d.text[:8])]) for d in notes[10:12]]
    for split, part in (("train", notes[:10]), ("dev", dev), ("test", notes[12:14])):
        write_brat(part, tmp_path / "data" / split)
    out = tmp_path / "model"
    record = train_task("brat", tmp_path / "data", str(tiny_backbone_dir), out, tiny_args(out / "ck", num_train_epochs=1))
    assert record["training_splits"] == ["train"] and record["members"][0]["eval_documents"] == 2
    assert "S-FECHA" in record["labels"] and "S-FECHA" in load_extractor(out).config.label2id


def test_members_name_members_of_an_ensemble(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs splits > 1"):
        tiny_args(tmp_path, members=[0])
    with pytest.raises(ValueError, match=r"members 0 to 2 of the 3-split ensemble, not \[3\]"):
        tiny_args(tmp_path, splits=3, members=[0, 3])
    with pytest.raises(ValueError, match="not none"):
        tiny_args(tmp_path, splits=3, members=[])


def test_task_ensemble_records_each_member_on_the_report_split(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    for split, part in (("train", notes[:10]), ("dev", notes[10:14]), ("test", notes[14:18])):
        write_brat(part, tmp_path / "data" / split)
    out = tmp_path / "model"
    args = tiny_args(out / "checkpoints", splits=3, num_train_epochs=1, logging_strategy="no")
    record = train_task("brat", tmp_path / "data", str(tiny_backbone_dir), out, args)
    assert record["training_splits"] == ["train", "validation"]  # pooled into the folds
    evaluation = record["evaluation"]
    assert evaluation["split"] == "test" and evaluation["documents"] == 4
    ensemble = load_extractor(out)
    alone = [m.evaluate(notes[14:18]).micro.to_dict() for m in ensemble.members]
    assert evaluation["members"] == alone
    assert evaluation["member_median_f1"] == statistics.median(m["f1"] for m in alone)
    assert evaluation["micro"] == ensemble.evaluate(notes[14:18]).micro.to_dict()
    # Scoring cut short (the record written, no scores yet) finishes without training again.
    record.pop("evaluation")
    (out / "training_record.json").write_text(json.dumps(record))
    rescored = score_task_model("brat", tmp_path / "data", out)["evaluation"]
    assert {**rescored, "seconds": None} == {**evaluation, "seconds": None}
    assert json.loads((out / "training_record.json").read_text())["evaluation"] == rescored
    # The model card gives each member's score alone and their median beside the vote's.
    card = render_model_card(out, model_id="toy")
    assert f"the members' median strict F1 is {evaluation['member_median_f1']:.4f}" in card
    assert f"the vote's is {evaluation['micro']['f1']:.4f}" in card
    section = card.split("## Ensemble members")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert [row.split("|")[-2].strip() for row in rows] == [f"{m['f1']:.4f}" for m in alone]


def test_transfer_reuses_head_for_equal_labels_and_resets_it_otherwise(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    source = Extractor(
        initial_model(str(tiny_backbone_dir), scheme_labels(TYPES), tiny_args(tmp_path)),
        __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir),
    )
    with torch.no_grad():
        source.model.crf.transitions.fill_(0.5)
    source.save_pretrained(tmp_path / "source")

    # Equal labels: the head and CRF come along, while the window and context are this run's own.
    same = initial_model(
        "unused", scheme_labels(TYPES),
        tiny_args(tmp_path, init_from=str(tmp_path / "source"), context_size=4, window_length=48),
    )
    assert torch.equal(same.crf.transitions, source.model.crf.transitions)
    assert torch.equal(same.classifier.weight, source.model.classifier.weight)
    assert (same.config.context_size, same.config.window_length) == (4, 48)
    assert (source.config.context_size, source.config.window_length) == (8, 64)
    no_crf = initial_model("unused", scheme_labels(TYPES), tiny_args(tmp_path, init_from=str(tmp_path / "source"), use_crf=False))
    assert no_crf.crf is None and not torch.equal(no_crf.classifier.weight, source.model.classifier.weight)

    other_labels = scheme_labels(["FARMACO"])
    other = initial_model("unused", other_labels, tiny_args(tmp_path, init_from=str(tmp_path / "source")))
    assert other.config.num_labels == len(other_labels) and other.crf.transitions.abs().max() <= 0.1
    encoder_state = source.model.encoder.state_dict()
    assert all(torch.equal(p, encoder_state[n]) for n, p in other.encoder.state_dict().items())


def test_attention_dropout_applies_to_every_attention_layer_and_is_saved(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    # The tiny encoder has no dropout anywhere, so a training-mode forward is deterministic unless
    # the attention probabilities are dropped.
    ids = torch.randint(5, 290, (2, 24), generator=torch.Generator().manual_seed(0))
    labels = scheme_labels(TYPES)
    plain = initial_model(str(tiny_backbone_dir), labels, tiny_args(tmp_path)).train()
    assert torch.equal(plain(input_ids=ids).logits, plain(input_ids=ids).logits)
    dropped = initial_model(str(tiny_backbone_dir), labels, tiny_args(tmp_path, attention_dropout=0.5)).train()
    assert not torch.equal(dropped(input_ids=ids).logits, dropped(input_ids=ids).logits)
    assert [m.dropout.p for m in dropped.encoder.modules() if type(m).__name__.endswith("SelfAttention")] == [0.5, 0.5]
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    Extractor(dropped, tokenizer).save_pretrained(tmp_path / "saved")
    reloaded = load_extractor(tmp_path / "saved").model
    assert reloaded.encoder.config.attention_probs_dropout_prob == 0.5
    with pytest.raises(ValueError, match=r"attention_dropout must be in \[0, 1\)"):
        tiny_args(tmp_path, attention_dropout=1.0)


def test_attention_dropout_names_an_encoder_without_it(tmp_path: Path) -> None:
    from transformers import DistilBertConfig

    from clinx_hub.recipe import set_attention_dropout

    encoder = __import__("transformers").AutoModel.from_config(
        DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=20, max_position_embeddings=32)
    )
    model = ClinXForTokenClassification.from_backbone(encoder, scheme_labels(TYPES))
    with pytest.raises(ValueError, match="distilbert encoder has no attention_probs_dropout_prob"):
        set_attention_dropout(model, 0.0)


def test_no_holdout_is_for_one_model_only(tmp_path: Path) -> None:
    assert tiny_args(tmp_path, holdout=False).holdout is False
    with pytest.raises(ValueError, match="held-out folds"):
        tiny_args(tmp_path, holdout=False, splits=5)


def test_no_holdout_pools_validation_before_the_first_n_cut(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    # n00 (2 sentences) and n01 (3) come first in corpus order, and they are the validation notes.
    args = tiny_args(tmp_path / "all" / "checkpoints", holdout=False, first_n=5, num_train_epochs=1)
    out = train_recipe(
        str(tiny_backbone_dir), notes[4:12], tmp_path / "all", args, entity_types=TYPES, validation=notes[:4], task="toy"
    )
    (member,) = json.loads((out / "training_record.json").read_text())["members"]
    assert (member["train_documents"], member["eval_documents"]) == (2, 0)


def test_a_folder_holding_the_other_kind_of_model_is_refused(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "ensemble.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a trained ensemble"):
        train_recipe(str(tiny_backbone_dir), notes[:8], tmp_path / "ens", tiny_args(tmp_path), entity_types=TYPES)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a trained single model"):
        train_recipe(
            str(tiny_backbone_dir), notes[:8], tmp_path / "one", tiny_args(tmp_path, splits=2), entity_types=TYPES
        )


def test_training_resumes_from_the_last_checkpoint(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    labels = scheme_labels(TYPES)
    args = tiny_args(tmp_path / "run", num_train_epochs=2, load_best_model_at_end=False, save_total_limit=None)
    first = ClinXTrainer(initial_model(str(tiny_backbone_dir), labels, args), args, tokenizer, notes[:8], notes[8:10])
    first.train()
    steps_per_epoch = first.state.global_step // 2
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == [
        f"checkpoint-{steps_per_epoch}", f"checkpoint-{2 * steps_per_epoch}"
    ]
    # "Interrupted" after epoch 1: drop the last checkpoint and go on to 3 epochs.
    shutil.rmtree(tmp_path / "run" / f"checkpoint-{2 * steps_per_epoch}")
    args3 = tiny_args(tmp_path / "run", num_train_epochs=3, load_best_model_at_end=False)

    class CountSteps(__import__("transformers").TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            CountSteps.steps += 1

    resumed = ClinXTrainer(
        initial_model(str(tiny_backbone_dir), labels, args3), args3, tokenizer, notes[:8], notes[8:10],
        callbacks=[CountSteps()],
    )
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 3 * steps_per_epoch
    assert CountSteps.steps == 2 * steps_per_epoch  # epochs 2 and 3 only: epoch 1 came from the checkpoint


def test_a_resume_with_other_settings_is_refused(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    labels = scheme_labels(TYPES)
    args = tiny_args(tmp_path / "run", num_train_epochs=1, load_best_model_at_end=False)
    train_one(str(tiny_backbone_dir), tokenizer, labels, notes[:8], notes[8:10], args)
    settings = json.loads((tmp_path / "run" / "run_settings.json").read_text())
    assert settings["learning_rate"] == 5e-3 and settings["train_documents"]["count"] == 8
    assert "Paciente" not in json.dumps(settings)
    with pytest.raises(TrainingSetupError, match=r"other settings \(eval_documents, learning_rate\)"):
        train_one(
            str(tiny_backbone_dir), tokenizer, labels, notes[:8], notes[8:11],
            tiny_args(tmp_path / "run", num_train_epochs=1, load_best_model_at_end=False, learning_rate=1e-3),
        )
    # A first-n cut that ends in the same documents changes the data all the same.
    with pytest.raises(TrainingSetupError, match=r"other settings \(first_n\)"):
        train_one(
            str(tiny_backbone_dir), tokenizer, labels, notes[:8], notes[8:10],
            tiny_args(tmp_path / "run", num_train_epochs=2, load_best_model_at_end=False, first_n=40),
        )
    # The same settings (more epochs allowed) resume: only the second epoch is trained.
    (checkpoint,) = (tmp_path / "run").glob("checkpoint-*")
    # As if the first run had taken 1000 s to reach its checkpoint: the resumed record counts them.
    (checkpoint / "clinx_train_seconds.json").write_text('{"train_seconds": 1000.0}')
    # Killed while saving the next two: one has no trainer state yet, one has it cut short. Both are passed over.
    step = int(checkpoint.name.split("-")[1])
    for later, state in [(step + 1, None), (step + 2, '{"global_step": ')]:
        half = checkpoint.with_name(f"checkpoint-{later}")
        shutil.copytree(checkpoint, half, ignore=shutil.ignore_patterns("trainer_state.json"))
        if state is not None:
            (half / "trainer_state.json").write_text(state)
    _, record = train_one(
        str(tiny_backbone_dir), tokenizer, labels, notes[:8], notes[8:10],
        tiny_args(tmp_path / "run", num_train_epochs=2, load_best_model_at_end=False),
    )
    assert record.epochs_run == 2
    assert 1000 <= record.train_seconds < 1000 + 120  # a tiny epoch may take under the 0.1 s it is rounded to
    # The held-out curve starts at epoch 1, not at the resume.
    assert [e["epoch"] for e in record.evaluations] == [1, 2]


def test_head_learning_rate_gives_classifier_and_crf_their_own_scheduled_rate(
    tiny_backbone_dir: Path, notes, tmp_path: Path
) -> None:
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    labels = scheme_labels(TYPES)
    args = tiny_args(tmp_path / "lr", num_train_epochs=1, learning_rate=1e-3, head_learning_rate=1e-2, warmup_steps=2)
    model = initial_model(str(tiny_backbone_dir), labels, args)
    trainer = ClinXTrainer(model, args, tokenizer, notes[:8], notes[8:10])
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    head = {id(p) for name, p in model.named_parameters() if name.startswith(("classifier.", "crf."))}
    assert head and len(head) < len(list(model.parameters()))
    seen = set()
    for group in trainer.optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= head or not ids & head  # no group mixes head and encoder
        assert group["initial_lr"] == (1e-2 if ids <= head else 1e-3)
        seen |= ids
    assert seen == {id(p) for p in model.parameters()}
    # Warmup and decay scale both rates alike: after 1 of 2 warmup steps each is half its peak.
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    assert sorted(g["lr"] for g in trainer.optimizer.param_groups)[-1] == pytest.approx(5e-3)
    assert sorted(g["lr"] for g in trainer.optimizer.param_groups)[0] == pytest.approx(5e-4)
    # Without it, the Trainer's own optimizer: one rate everywhere.
    plain_args = tiny_args(tmp_path / "plain")
    plain = ClinXTrainer(initial_model(str(tiny_backbone_dir), labels, plain_args), plain_args, tokenizer, notes[:8], notes[8:10])
    plain.create_optimizer()
    assert {g["lr"] for g in plain.optimizer.param_groups} == {5e-3}


def test_gradient_accumulation_gives_the_loss_and_update_of_one_large_batch(
    tiny_backbone_dir: Path, notes, tmp_path: Path
) -> None:
    # Four copies of one note: windows with equal labelled positions, so that the mean of the
    # micro-batches' losses is the large batch's loss. Plain SGD without clipping: the update
    # is the gradient itself (Adam's first step and clipping would hide its scale).
    copies = [replace(notes[0], id=f"copy{i}") for i in range(4)]
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    labels = scheme_labels(TYPES)

    def one_step(batch: int, accumulation: int):
        args = tiny_args(
            tmp_path / f"{batch}x{accumulation}", max_steps=1, per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation, optim="sgd", max_grad_norm=0.0, eval_strategy="no",
            save_strategy="no", load_best_model_at_end=False, logging_strategy="steps", logging_steps=1,
        )
        torch.manual_seed(0)
        model = initial_model(str(tiny_backbone_dir), labels, args)
        trainer = ClinXTrainer(model, args, tokenizer, copies)
        assert len(trainer.train_dataset) == 4
        assert trainer.model_accepts_loss_kwargs is False  # the Trainer divides by the accumulation steps
        trainer.train()
        (logged,) = [e for e in trainer.state.log_history if "loss" in e]
        return logged, {n: p.detach().clone() for n, p in model.named_parameters()}

    whole, weights = one_step(4, 1)
    for batch, accumulation in ((2, 2), (1, 4)):
        logged, accumulated = one_step(batch, accumulation)
        assert logged["loss"] == pytest.approx(whole["loss"], rel=1e-4), (batch, accumulation)
        assert logged["grad_norm"] == pytest.approx(whole["grad_norm"], rel=1e-4), (batch, accumulation)
        for name, value in weights.items():
            torch.testing.assert_close(accumulated[name], value, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_train_epochs": 0}, "num_train_epochs (--epochs) must be > 0, not 0"),
        ({"num_train_epochs": -1.0}, "num_train_epochs (--epochs) must be > 0, not -1.0"),
        ({"learning_rate": 0.0}, "learning_rate (--lr) must be > 0, not 0.0"),
        ({"head_learning_rate": -1e-3}, "head_learning_rate (--head-lr) must be > 0, not -0.001"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size (--batch-size) must be >= 1, not 0"),
        ({"per_device_eval_batch_size": -2}, "per_device_eval_batch_size (--batch-size) must be >= 1, not -2"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be >= 1, not 0"),
        ({"warmup_steps": -1}, "warmup_steps (--warmup) must be >= 0"),
        ({"splits": 0}, "splits (--splits) must be >= 1"),
        ({"early_stopping_patience": -1}, "early_stopping_patience (--patience) must be >= 1"),
        ({"early_stopping_patience": 0}, "early_stopping_patience (--patience) must be >= 1"),
        ({"context_mode": "sentences"}, "context_mode must be one of window, sentence, not 'sentences'"),
        ({"splits": 1, "members": [0]}, "members (--members) selects ensemble members: it needs splits > 1"),
        ({"splits": 2, "members": [-1, 2]}, "members 0 to 1 of the 2-split ensemble, not [-1, 2]"),
    ],
)
def test_settings_that_cannot_train_are_refused_by_the_arguments(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        tiny_args(tmp_path, **overrides)
    assert message in str(refused.value)
    assert tiny_args(tmp_path, max_steps=3, num_train_epochs=0).max_steps == 3  # a step count instead of epochs


def test_settings_set_after_construction_are_refused_before_anything_loads(notes, tmp_path: Path) -> None:
    args = tiny_args(tmp_path / "m" / "checkpoints")
    args.num_train_epochs = 0
    # No backbone there: the run must stop at the settings, before looking for it.
    with pytest.raises(ValueError, match=r"num_train_epochs \(--epochs\) must be > 0"):
        train_recipe(str(tmp_path / "no-backbone"), notes[:8], tmp_path / "m", args, entity_types=TYPES)
    assert not (tmp_path / "m").exists()


def test_a_finished_model_is_replaced_only_by_its_own_settings_or_overwrite(
    tiny_backbone_dir: Path, notes, tmp_path: Path
) -> None:
    out = tmp_path / "one"

    def recipe(documents=notes[:8], overwrite: bool = False, **overrides):
        arguments = tiny_args(out / "checkpoints", **{"num_train_epochs": 1, "logging_strategy": "no", **overrides})
        return train_recipe(
            str(tiny_backbone_dir), documents, out, arguments, entity_types=TYPES, task="toy", overwrite=overwrite
        )

    recipe()
    weights = (out / "model.safetensors").read_bytes()
    with pytest.raises(TrainingSetupError) as refused:
        recipe(num_train_epochs=2, learning_rate=1e-3)
    message = str(refused.value)
    assert f"{out} holds a finished single model trained with other settings" in message
    assert "(learning_rate, num_train_epochs)" in message
    assert "--overwrite" in message
    # Other documents are other settings too (as counts and digests, no text).
    with pytest.raises(TrainingSetupError, match=r"other settings \(train_documents\)"):
        recipe(notes[:9])
    assert (out / "model.safetensors").read_bytes() == weights
    record = json.loads((out / "training_record.json").read_text())
    assert record["run_settings"]["train_documents"]["count"] == 8 and "Paciente" not in json.dumps(record)
    # The same settings run again, as before (one model, the same one: training is deterministic).
    recipe()
    assert (out / "model.safetensors").read_bytes() == weights
    # A record of an earlier version (no run_settings) is compared by its own fields.
    record.pop("run_settings")
    (out / "training_record.json").write_text(json.dumps(record))
    with pytest.raises(TrainingSetupError, match=r"other settings \(learning_rate\)"):
        recipe(learning_rate=1e-3)
    # An explicit overwrite replaces it, and only what a run writes.
    (out / "README.md").write_text("the old model's card")
    (out / "notes.txt").write_text("the user's own file")
    recipe(learning_rate=1e-3, overwrite=True)
    assert json.loads((out / "training_record.json").read_text())["learning_rate"] == 1e-3
    assert not (out / "README.md").exists() and (out / "notes.txt").read_text() == "the user's own file"
    assert (out / "model.safetensors").read_bytes() != weights


def test_an_unfinished_ensemble_is_finished_only_by_its_own_splits(
    tiny_backbone_dir: Path, notes, tmp_path: Path
) -> None:
    out = tmp_path / "ens"

    def recipe(overwrite: bool = False, **overrides):
        settings = dict(splits=2, num_train_epochs=1, logging_strategy="no")
        arguments = tiny_args(out / "checkpoints", **{**settings, **overrides})
        return train_recipe(str(tiny_backbone_dir), notes[:8], out, arguments, entity_types=TYPES, overwrite=overwrite)

    recipe(members=[0])
    folds = (out / "folds.json").read_text()
    member = (out / "members_done" / "0" / "model.safetensors").read_bytes()
    # A single model would have deleted the finished member at its end; a 3-split run would mix folds.
    with pytest.raises(TrainingSetupError, match=rf"{out} holds an unfinished 2-split ensemble \(members finished: 0\)"
                       r" with other settings \(splits\): rerun with --splits 2"):
        recipe(splits=1)
    for other in ({"splits": 3}, {"splits": 3, "members": [2]}):
        with pytest.raises(TrainingSetupError, match=r"other settings \(splits\)"):
            recipe(**other)
    with pytest.raises(TrainingSetupError, match=r"other settings \(seed\)"):
        recipe(seed=1)
    assert (out / "folds.json").read_text() == folds
    assert (out / "members_done" / "0" / "model.safetensors").read_bytes() == member
    # Its own settings finish it, reusing the finished member.
    recipe()
    record = json.loads((out / "training_record.json").read_text())
    assert [m["fold"] for m in record["members"]] == [0, 1] and not (out / "members_done").exists()
    assert (out / "members" / "0" / "model.safetensors").read_bytes() == member
    with pytest.raises(TrainingSetupError, match=r"finished ensemble trained with other settings \(num_train_epochs\)"):
        recipe(num_train_epochs=2)
    with pytest.raises(TrainingSetupError, match=r"finished ensemble trained with other settings \(.*splits.*\)"):
        recipe(splits=1)
    # Replaced on request: no ensemble file or member is left beside the single model.
    recipe(splits=1, overwrite=True)
    assert type(load_extractor(out)) is Extractor
    assert not (out / "ensemble.json").exists() and not (out / "members").exists() and not (out / "folds.json").exists()


def test_evaluate_scores_the_eval_dataset_it_is_given(tiny_backbone_dir: Path, notes, tmp_path: Path) -> None:
    from clinx_hub.trainer import WindowDataset

    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    args = tiny_args(tmp_path / "ev", num_train_epochs=1, load_best_model_at_end=False, save_strategy="no")
    trainer = ClinXTrainer(
        initial_model(str(tiny_backbone_dir), scheme_labels(TYPES), args), args, tokenizer, notes[:8], notes[8:10]
    )
    trainer.train()
    extractor = Extractor(trainer.model, tokenizer)

    def micro(metrics: dict, prefix: str = "eval") -> tuple:
        return tuple(metrics[f"{prefix}_{name}"] for name in ("precision", "recall", "f1"))

    def expected(documents) -> tuple:
        scores = extractor.evaluate(documents).micro
        return scores.precision, scores.recall, scores.f1

    # As Trainer.evaluate: no argument scores the held-out documents, an argument replaces them.
    assert micro(trainer.evaluate()) == expected(notes[8:10])
    assert micro(trainer.evaluate(eval_dataset=notes[20:])) == expected(notes[20:])
    assert micro(trainer.evaluate(eval_dataset=trainer.eval_dataset)) == expected(notes[8:10])
    named = trainer.evaluate(eval_dataset={"dev": notes[8:10], "test": notes[20:]})
    assert micro(named, "eval_dev") == expected(notes[8:10]) and micro(named, "eval_test") == expected(notes[20:])
    # Windows without their documents cannot be scored as spans: refused, never silently ignored.
    with pytest.raises(TypeError, match="strict span F1 on documents"):
        trainer.evaluate(eval_dataset=WindowDataset(trainer.eval_dataset.windows))


def _stopped_after(callback, f1s: list[float]) -> int | None:
    """Feed held-out F1 values to an early-stopping callback as the Trainer does; the evaluation it stops at."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    args = SimpleNamespace(metric_for_best_model="f1", greater_is_better=True)
    state, control = SimpleNamespace(best_metric=None), TrainerControl()
    for evaluation, f1 in enumerate(f1s, 1):
        callback.on_evaluate(args, state, control, metrics={"eval_f1": f1})
        state.best_metric = f1 if state.best_metric is None else max(state.best_metric, f1)
        if control.should_training_stop:
            return evaluation
    return None


def test_patience_counts_from_the_first_evaluation_above_zero() -> None:
    """A low-resource run at F1 0 for its first epochs is not stopped for it (transformers' callback would)."""
    from transformers import EarlyStoppingCallback

    from clinx_hub.trainer import EarlyStoppingAfterFirstGain

    slow_start = [0.0, 0.0, 0.0, 0.0, 0.12, 0.30, 0.29, 0.30, 0.25]
    assert _stopped_after(EarlyStoppingCallback(early_stopping_patience=2), slow_start) == 3
    assert _stopped_after(EarlyStoppingAfterFirstGain(early_stopping_patience=2), slow_start) == 8
    assert _stopped_after(EarlyStoppingAfterFirstGain(early_stopping_patience=2), [0.0] * 20) is None
    # Once above 0 it is transformers' rule: 2 evaluations without gain stop the run.
    trained = [0.5, 0.6, 0.6, 0.55]
    assert _stopped_after(EarlyStoppingAfterFirstGain(early_stopping_patience=2), trained) == 4
    assert _stopped_after(EarlyStoppingCallback(early_stopping_patience=2), trained) == 4


def test_a_fresh_head_starts_at_the_training_tags_log_frequencies_and_predicts_o(
    tiny_backbone_dir: Path, notes, tmp_path: Path
) -> None:
    from clinx_hub.windows import tokenize_document

    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_backbone_dir)
    labels = scheme_labels(TYPES)
    counts = dict.fromkeys(labels, 0)
    for document in notes[:8]:
        tokenized = tokenize_document(document, tokenizer, {label: i for i, label in enumerate(labels)})
        for tag, labelled in zip(tokenized.tags, tokenized.labelled):
            if labelled:
                counts[tag] += 1
    total = sum(counts.values())
    torch.manual_seed(0)
    model = initial_model(str(tiny_backbone_dir), labels, tiny_args(tmp_path), train_documents=notes[:8], tokenizer=tokenizer)
    expected = torch.tensor([(counts[label] + 1) / (total + len(labels)) for label in labels]).log()
    assert torch.allclose(model.classifier.bias, expected)
    assert int(model.classifier.bias.argmax()) == labels.index("O")

    # Untrained, a bias-0 head lets the CRF's random transitions tag spans all over the notes; the
    # log-prior head predicts (nearly) nothing, as an untrained model should.
    subwords = sum(len(tokenize_document(d, tokenizer).input_ids) for d in notes[8:12])
    torch.manual_seed(0)
    flat = initial_model(str(tiny_backbone_dir), labels, tiny_args(tmp_path))
    flat_spans = sum(map(len, Extractor(flat.eval(), tokenizer).predict(notes[8:12])))
    prior_spans = sum(map(len, Extractor(model.eval(), tokenizer).predict(notes[8:12])))
    assert flat_spans > subwords / 10
    assert prior_spans < subwords / 50

    # A head that comes with its source (transfer with equal labels) keeps its own bias.
    Extractor(flat, tokenizer).save_pretrained(tmp_path / "source")
    transferred = initial_model(
        "unused", labels, tiny_args(tmp_path, init_from=str(tmp_path / "source")), train_documents=notes[:8],
        tokenizer=tokenizer,
    )
    assert torch.equal(transferred.classifier.bias, flat.classifier.bias)


def test_hardware_names_the_cpu_and_its_matrix_units(monkeypatch, tmp_path: Path) -> None:
    from clinx_hub import run_state

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_vnni amx_tile\n"
                    "processor\t: 1\nmodel name\t: Some CPU\nflags\t\t: fpu\n")
    monkeypatch.setattr(run_state, "Path", lambda p: fake if str(p) == "/proc/cpuinfo" else Path(p))
    assert run_state.hardware("cpu").startswith("Some CPU (AVX2, AVX512-VNNI, AMX), ")
    fake.write_text("model name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert run_state.hardware("cpu").startswith("Old CPU, ")
