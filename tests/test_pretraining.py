"""Domain-adaptive pre-training (``clinx pretrain``): packing, masking, resume, the report split, the output."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SYNTHETIC_SENTENCES, note

from clinx_hub.cli import main
from clinx_hub.folders import CHECKPOINTS_DIR, PRETRAINING_RECORD
from clinx_hub.formats.base import CorpusFormatError
from clinx_hub.pretraining import (
    PretrainingCorpus,
    PretrainingProgress,
    PretrainingRecord,
    PretrainingSettings,
    PretrainingText,
    TokenizedText,
    corpus_statistics,
    masking_collator,
    pack_sequences,
    pretrain,
    tokenize_texts,
)
from clinx_hub.training_args import TrainingSetupError


def invented_notes(n: int, seed: int = 0) -> list[str]:
    """``n`` notes of 2-4 invented sentences each (never corpus text)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYNTHETIC_SENTENCES) for _ in range(rng.randint(2, 4))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_mlm_dir(tiny_backbone_dir: Path) -> Path:
    """The tiny random XLM-R encoder: a plain encoder, so its MLM head is new, as MiniLM's is."""
    return tiny_backbone_dir


@pytest.fixture(scope="module")
def notes_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notes")
    for i, text in enumerate(invented_notes(30)):
        (folder / f"note-{i:02d}.txt").write_text(text, encoding="utf-8")
    return folder


SMALL = dict(max_length=32, batch_size=4, validation_documents=3, eval_steps=3, logging_steps=1, shuffle_buffer=8)


def test_packing_puts_a_separator_between_documents_and_keeps_every_subword(tiny_tokenizer):
    notes = invented_notes(12, seed=1)
    tokenized = list(tokenize_texts([PretrainingText(str(i), t) for i, t in enumerate(notes)], tiny_tokenizer))
    assert [len(t.ids) for t in tokenized] == [len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in notes]
    cls, sep = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    sequences = list(pack_sequences(tokenized, tiny_tokenizer, 24, keep_last=True))
    assert all(s["input_ids"][0] == cls and s["input_ids"][-1] == sep for s in sequences)
    assert all(len(s["input_ids"]) == 24 for s in sequences[:-1])
    # Between CLS and SEP, the sequences hold every subword in order, each document closed by a separator.
    stream = [i for s in sequences for i in s["input_ids"][1:-1]]
    assert stream == [i for t in tokenized for i in [*t.ids, sep]]
    assert len(sequences) == -(-(sum(len(t.ids) for t in tokenized) + len(notes)) // 22)
    for s in sequences:
        assert [m for i, m in zip(s["input_ids"], s["special_tokens_mask"]) if i == sep] == [1] * s["input_ids"].count(sep)


def test_a_sequence_never_joins_two_documents_without_the_separator(tiny_tokenizer):
    a, b = TokenizedText([10, 11, 12]), TokenizedText([20, 21])
    sequences = list(pack_sequences([a, b, a], tiny_tokenizer, 6, keep_last=True))
    cls, sep = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    assert [s["input_ids"] for s in sequences] == [
        [cls, 10, 11, 12, sep, sep], [cls, 20, 21, sep, 10, sep], [cls, 11, 12, sep, sep]
    ]


def test_readers_txt_jsonl_and_parquet_give_the_same_documents(tmp_path, notes_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    notes = [p.read_text(encoding="utf-8") for p in sorted(notes_dir.glob("*.txt"))]
    (tmp_path / "notes.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in notes), encoding="utf-8")
    pq.write_table(pa.table({"body": notes}), tmp_path / "notes.parquet")
    from_txt = [d.text for d in PretrainingCorpus(texts=[notes_dir]).documents()]
    from_jsonl = [d.text for d in PretrainingCorpus(texts=[tmp_path / "notes.jsonl"]).documents()]
    from_parquet = [d.text for d in PretrainingCorpus(texts=[tmp_path / "notes.parquet"], text_column="body").documents()]
    assert from_txt == from_jsonl == from_parquet == notes


def test_bad_input_names_the_file_and_line_without_its_text(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Paciente uno."}\n{"texto": "Paciente Juan García"}\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"bad.jsonl: line 2 has no 'text' field \(has: texto\)") as error:
        list(PretrainingCorpus(texts=[bad]).documents())
    assert "García" not in str(error.value)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "Paciente"\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"broken.jsonl:1: not valid JSON"):
        list(PretrainingCorpus(texts=[broken]).documents())


def test_the_collator_masks_about_15_percent_and_labels_nothing_else(tiny_tokenizer, notes_dir):
    corpus = PretrainingCorpus(texts=[notes_dir])
    settings = PretrainingSettings(max_steps=1, **SMALL)
    sequences = list(pack_sequences(tokenize_texts(corpus.documents(), tiny_tokenizer), tiny_tokenizer, 32)) * 20
    torch.manual_seed(0)
    originals = torch.tensor([s["input_ids"] for s in sequences])
    batch = masking_collator(tiny_tokenizer, settings)(sequences)
    labels, special = batch["labels"], torch.tensor([s["special_tokens_mask"] for s in sequences]).bool()
    masked = labels != -100
    assert not masked[special].any()  # CLS, separators and SEP are never masked
    assert torch.equal(labels[masked], originals[masked])
    share = masked.sum().item() / (~special).sum().item()
    assert 0.13 < share < 0.17, share
    assert (batch["input_ids"][masked] == tiny_tokenizer.mask_token_id).float().mean() > 0.7


def test_whole_word_masking_masks_every_piece_of_a_chosen_word(tiny_tokenizer, notes_dir):
    corpus = PretrainingCorpus(texts=[notes_dir])
    settings = PretrainingSettings(max_steps=1, whole_word_mask=True, **SMALL)
    tokenized = tokenize_texts(corpus.documents(), tiny_tokenizer, offsets=True)
    sequences = list(pack_sequences(tokenized, tiny_tokenizer, 32))
    torch.manual_seed(1)
    batch = masking_collator(tiny_tokenizer, settings)([dict(s) for s in sequences])
    words_seen = split_words = 0
    for sequence, labels in zip(sequences, batch["labels"].tolist()):
        words, previous_end = [], None
        for k, ((start, end), special) in enumerate(zip(sequence["offset_mapping"], sequence["special_tokens_mask"])):
            if special:
                previous_end = None
                continue
            if previous_end is None or start != previous_end:
                words.append([])
            words[-1].append(k)
            previous_end = end
        for word in words[1:-1]:  # a word cut by a sequence edge may be whole only in its other part
            flags = {labels[k] != -100 for k in word}
            words_seen += len(word) > 1
            split_words += len(flags) > 1
    assert words_seen > 20 and split_words == 0
    assert (batch["labels"] != -100).any()


def test_a_report_split_is_refused(tmp_path):
    layout = tmp_path / "pharmaconer"
    report_sentence = "Se administra paracetamol 1 g cada 8 horas durante 5 días."
    texts = {
        "train/subtrack1": {"a": "Paciente con paracetamol.", "b": f"Ingresa con fiebre. {report_sentence}"},
        "dev/subtrack1": {"a": f"Paciente con paracetamol. {report_sentence}"},
    }
    for split, documents in texts.items():
        (layout / split).mkdir(parents=True)
        for name, text in documents.items():
            (layout / split / f"{name}.txt").write_text(text, encoding="utf-8")
            (layout / split / f"{name}.ann").write_text("T1\tNORMALIZABLES 13 24\tparacetamol\n", encoding="utf-8")
    with pytest.raises(TrainingSetupError, match="'validation' is pharmaconer's report split"):
        PretrainingCorpus(tasks=["pharmaconer"], data_dir=tmp_path, splits=["validation"])
    for path in (layout / "dev/subtrack1", layout / "dev/subtrack1/a.txt", layout):
        with pytest.raises(TrainingSetupError, match="pharmaconer's report split"):
            PretrainingCorpus(texts=[path])
    # b shares a sentence with a dev document: left out and counted, from the task and from --text alike.
    corpus = PretrainingCorpus(tasks=["pharmaconer"], data_dir=tmp_path)
    assert [d.id for d in corpus.documents()] == ["pharmaconer/train/a"] and corpus.excluded == 1
    plain = PretrainingCorpus(texts=[layout / "train/subtrack1"], decontaminate=["pharmaconer"], data_dir=tmp_path)
    assert [d.id for d in plain.documents()] == ["a.txt"] and plain.excluded == 1
    assert len(list(PretrainingCorpus(texts=[layout / "train/subtrack1"]).documents())) == 2


@pytest.mark.corpus
def test_the_real_corpora_give_only_their_training_sides(corpora_dir):
    from clinx_hub.corpora import load_task

    corpus = PretrainingCorpus(tasks=["pharmaconer", "meddoprof-ner", "meddoprof-class"], data_dir=corpora_dir)
    ids = [d.id for d in corpus.documents()]
    assert {i.split("/")[1] for i in ids} == {"train"}
    assert not any(i.startswith("meddoprof-class/") for i in ids)  # the same documents as -ner: read once
    held_out = {d.id for d in load_task("meddoprof-ner", corpora_dir)["test"]}
    assert not held_out & {i.split("/", 2)[2] for i in ids if i.startswith("meddoprof-ner/")}
    with pytest.raises(TrainingSetupError, match="report split"):
        PretrainingCorpus(texts=[corpora_dir / "meddoprof"])


def test_statistics_count_documents_characters_and_subwords(tiny_tokenizer, notes_dir):
    notes = [p.read_text(encoding="utf-8") for p in sorted(notes_dir.glob("*.txt"))]
    stats = corpus_statistics(PretrainingCorpus(texts=[notes_dir]), tiny_tokenizer, 3)
    subwords = sum(len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in notes)
    assert stats.documents + stats.validation_documents == 30 and stats.validation_documents == 3
    assert stats.characters + stats.validation_characters == sum(map(len, notes))
    assert stats.subwords + stats.validation_subwords == subwords
    again = corpus_statistics(PretrainingCorpus(texts=[notes_dir]), tiny_tokenizer, 3)
    assert again.held_out == stats.held_out  # deterministic


def card_text(folder: Path) -> str:
    return (folder / "README.md").read_text(encoding="utf-8")


def run_pretrain(backbone, notes_dir, out, **changes) -> PretrainingRecord:
    settings = PretrainingSettings(**{**SMALL, "max_steps": 6, **changes})
    return pretrain(str(backbone), PretrainingCorpus(texts=[notes_dir]), out, settings)


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_final_state(tiny_mlm_dir, notes_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    whole = run_pretrain(tiny_mlm_dir, notes_dir, tmp_path / "whole")
    original = PretrainingProgress.on_step_end

    def stop_at_step_4(self, args, state, control, **kwargs):
        if state.global_step == 4:
            raise Interrupted
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(PretrainingProgress, "on_step_end", stop_at_step_4)
    with pytest.raises(Interrupted):
        run_pretrain(tiny_mlm_dir, notes_dir, tmp_path / "resumed")
    assert (tmp_path / "resumed" / CHECKPOINTS_DIR / "checkpoint-3").is_dir()
    assert not (tmp_path / "resumed" / PRETRAINING_RECORD).exists()
    # As if killed while saving step 4's checkpoint: a folder without its trainer state is passed over.
    half = tmp_path / "resumed" / CHECKPOINTS_DIR / "checkpoint-4"
    shutil.copytree(half.with_name("checkpoint-3"), half, ignore=shutil.ignore_patterns("trainer_state.json"))
    monkeypatch.undo()
    resumed = run_pretrain(tiny_mlm_dir, notes_dir, tmp_path / "resumed")
    assert resumed.steps == whole.steps == 6
    assert [e["step"] for e in resumed.evaluations] == [e["step"] for e in whole.evaluations] == [3, 6]
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed.perplexity_before == pytest.approx(whole.perplexity_before)
    assert not (tmp_path / "resumed" / CHECKPOINTS_DIR).exists()
    # A finished folder with the same settings is returned as it is; other settings are refused.
    assert run_pretrain(tiny_mlm_dir, notes_dir, tmp_path / "resumed").steps == 6
    with pytest.raises(TrainingSetupError, match="other settings \\(learning_rate\\)"):
        run_pretrain(tiny_mlm_dir, notes_dir, tmp_path / "resumed", learning_rate=1e-3)


def test_the_encoder_trains_with_clinx_train_and_its_card_holds_no_text(
    tiny_mlm_dir, notes_dir, tmp_path, capsys, local_hub
):
    from clinx_hub.formats.brat import write_brat

    out = tmp_path / "encoder"
    assert main([
        "pretrain", "--backbone", str(tiny_mlm_dir), "--text", str(notes_dir), "--out", str(out), "--max-steps", "4",
        "--max-length", "32", "--batch-size", "4", "--validation-documents", "3", "--eval-steps", "2",
    ]) == 0
    assert "perplexity" in capsys.readouterr().out
    record = PretrainingRecord.read(out)
    assert record.steps == 4 and record.statistics["validation_documents"] == 3
    assert record.perplexity_before > 1 and record.perplexity_after > 1
    assert "lm_head.dense.weight" in record.new_weights and "lm_head.dense.weight" in card_text(out)
    card = card_text(out)
    assert "perplexity before / after" in card and f"{record.statistics['subwords']:,}" in card
    for sentence in SYNTHETIC_SENTENCES:
        words = sentence.split()
        assert not any(" ".join(words[i:i + 4]) in card for i in range(len(words) - 3)), sentence
    assert str(tmp_path) not in card and str(tmp_path) not in (out / "config.json").read_text()
    assert main(["push", str(out), "clinx/tiny-encoder"]) == 0  # to the loopback Hub, with its own card
    pushed = local_hub.files("clinx/tiny-encoder")
    assert pushed["README.md"].decode() == card and "model.safetensors" in pushed
    assert not any(name.startswith(CHECKPOINTS_DIR) for name in pushed)
    brat = tmp_path / "brat"
    write_brat([note(f"n{i}", 2, offset=i) for i in range(6)], brat)
    model = tmp_path / "model"
    assert main([
        "train", "brat", "--data-dir", str(brat), "--backbone", str(out), "--out", str(model), "--epochs", "1",
        "--batch-size", "4", "--window-length", "64", "--context", "8",
    ]) == 0
    assert (model / "training_record.json").is_file()


def test_settings_that_cannot_train_are_refused_before_anything_loads(tmp_path, notes_dir, capsys):
    assert main(["pretrain", "--backbone", str(tmp_path / "nowhere"), "--text", str(notes_dir), "--out",
                 str(tmp_path / "o")]) == 2
    assert "one of --max-steps and --epochs" in capsys.readouterr().err

def test_an_out_inside_an_input_is_refused(tiny_mlm_dir, notes_dir, capsys):
    assert main(["pretrain", "--backbone", str(tiny_mlm_dir), "--text", str(notes_dir), "--out", str(notes_dir / "x"),
                 "--max-steps", "2"]) == 2
    assert "lies inside an input" in capsys.readouterr().err
    assert not (notes_dir / "x").exists()


def test_epochs_become_the_steps_of_that_many_passes(tiny_mlm_dir, notes_dir, tmp_path, tiny_tokenizer):
    import math

    record = run_pretrain(tiny_mlm_dir, notes_dir, tmp_path / "epochs", max_steps=None, epochs=2, eval_steps=100)
    stats = corpus_statistics(PretrainingCorpus(texts=[notes_dir]), tiny_tokenizer, 3)
    assert record.steps == math.ceil(2 * (stats.subwords + stats.documents) / 30 / 4)
    assert record.passes == pytest.approx(2, abs=4 * 30 / (stats.subwords + stats.documents))


def _tiny_mlm(kind: str):
    from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    shape = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20,
                 max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if kind == "bert":
        return BertForMaskedLM(BertConfig(**shape))
    return XLMRobertaForMaskedLM(XLMRobertaConfig(pad_token_id=1, **shape))


@pytest.mark.parametrize("kind", ["bert", "xlm-roberta"])
def test_the_head_on_masked_positions_only_gives_the_dense_loss_and_gradients(kind):
    from clinx_hub.pretraining import predict_masked_only

    dense, sparse = _tiny_mlm(kind), _tiny_mlm(kind)
    sparse.load_state_dict(dense.state_dict())
    assert predict_masked_only(sparse)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 50, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape, generator=generator) < 0.3
    chosen[0, 1] = True
    labels[chosen & mask.bool()] = ids[chosen & mask.bool()]
    a = dense(input_ids=ids, attention_mask=mask, labels=labels)
    b = sparse(input_ids=ids, attention_mask=mask, labels=labels)
    assert b.logits.shape == (int((labels != -100).sum()), 50)  # the head ran on the masked positions only
    torch.testing.assert_close(b.loss, a.loss)
    a.loss.backward()
    b.loss.backward()
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)
    # The Trainer's count of masked positions over an accumulated batch divides the summed loss.
    items = int((labels != -100).sum()) * 2
    c = sparse(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=items)
    torch.testing.assert_close(c.loss, a.loss / 2)
    # Without labels (inference) the head runs everywhere, as the model's own forward does.
    everywhere = sparse(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(everywhere, dense(input_ids=ids, attention_mask=mask).logits)
    # The instance changed, not the class: a fresh model and a saved folder are the model's own.
    assert type(sparse).forward is type(dense).forward


def test_a_head_that_is_not_one_module_keeps_the_dense_forward():
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    from clinx_hub.pretraining import predict_masked_only

    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=20))
    assert not predict_masked_only(model)
    assert "forward" not in vars(model)
