"""``clinx export onnx``: an exported folder predicts what the PyTorch model predicts (onnx_export.py, onnx_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import note
from test_streaming import long_note, tiny_model

pytest.importorskip("onnxruntime")

from clinx_hub import streaming  # noqa: E402
from clinx_hub.cli import main  # noqa: E402
from clinx_hub.devices import DeviceError  # noqa: E402
from clinx_hub.ensemble import ClinXEnsemble, Extractor, load_extractor  # noqa: E402
from clinx_hub.folders import ModelFolderError, check_model_folder  # noqa: E402
from clinx_hub.onnx_export import export_onnx  # noqa: E402
from clinx_hub.onnx_model import OnnxClinXModel  # noqa: E402


def saved_model(backbone: Path, folder: Path, seed: int = 0, **config) -> Path:
    from transformers import AutoTokenizer

    Extractor(tiny_model(backbone, seed, **config), AutoTokenizer.from_pretrained(backbone)).save_pretrained(folder)
    return folder


def span_keys(predictions) -> list[list[tuple]]:
    return [[(s.start, s.end, s.label, s.text) for s in spans] for spans in predictions]


def texts() -> list[str]:
    return [note("a", 3).text, "Paciente Ana López ingresa en Madrid.", "", note("b", 6, offset=2).text]


@pytest.fixture(scope="module")
def model_dir(tiny_backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_model(tiny_backbone_dir, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def exported(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(model_dir, tmp_path_factory.mktemp("export") / "onnx")


def test_the_export_holds_the_graph_the_crf_config_tokenizer_and_a_card(exported: Path) -> None:
    names = {p.name for p in exported.iterdir()}
    assert {"model.onnx", "crf.safetensors", "config.json", "onnx_export.json", "README.md"} <= names
    assert "model.safetensors" not in names and not any(n.startswith(".") for n in names)
    manifest = json.loads((exported / "onnx_export.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["crf"] is True
    assert manifest["check"]["viterbi_tags_equal"] == 1.0
    assert manifest["check"]["max_abs_emission_difference"] < 1e-4
    card = (exported / "README.md").read_text()
    assert "random token ids" in card.lower() and "fp32" in card
    assert "Paciente" not in card  # no text from notes
    assert check_model_folder(exported) == exported


def test_the_graph_is_fused_and_the_models_own_attention_is_put_back(model_dir: Path, tmp_path: Path) -> None:
    import onnx

    from clinx_hub.onnx_export import export_member

    extractor = load_extractor(model_dir)
    before = extractor.model.encoder.config._attn_implementation
    manifest = export_member(extractor, tmp_path / "member", None)
    assert extractor.model.encoder.config._attn_implementation == before
    # onnxruntime's fuser made one Attention per layer (the tiny BERT has 2) and fused the layer norms
    layers = extractor.model.config.encoder["num_hidden_layers"]
    assert manifest["fused_operators"]["Attention"] == layers
    assert manifest["fused_operators"]["SkipLayerNormalization"] >= layers
    ops = [node.op_type for node in onnx.load(str(tmp_path / "member" / "model.onnx")).graph.node]
    assert ops.count("Attention") == layers and "Softmax" not in ops
    assert not (tmp_path / "member" / "model.traced.onnx").exists()


def test_exported_emissions_have_dynamic_batch_and_length(model_dir: Path, exported: Path) -> None:
    reference = load_extractor(model_dir).model
    onnx = OnnxClinXModel.from_pretrained(exported)
    for rows, length in ((1, 7), (5, 64)):
        ids = torch.randint(5, 290, (rows, length))
        mask = torch.ones(rows, length, dtype=torch.long)
        mask[0, length // 2 :] = 0
        torch.testing.assert_close(onnx(ids, mask).logits, reference(input_ids=ids, attention_mask=mask).logits,
                                   rtol=1e-4, atol=1e-4)


def test_an_exported_model_predicts_the_pytorch_spans_long_notes_included(
    model_dir: Path, exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "STREAM_CHARS", 1_000)  # the long note streams, piece by piece
    notes = [*texts(), long_note().text]
    pytorch, onnx = load_extractor(model_dir), load_extractor(exported)
    assert isinstance(onnx.model, OnnxClinXModel) and onnx.model.providers == ["CPUExecutionProvider"]
    expected, got = pytorch.predict(notes, batch_size=4), onnx.predict(notes, batch_size=4)
    assert sum(map(len, expected)) > 20
    assert span_keys(got) == span_keys(expected)
    scores = [s.score for spans in got for s in spans]
    assert scores == pytest.approx([s.score for spans in expected for s in spans], abs=1e-4)
    assert onnx.entity_types == pytorch.entity_types


@pytest.mark.parametrize("config", [{"use_crf": False}, {"tagging_level": "first_subword"}], ids=["softmax", "word-level"])
def test_models_without_a_crf_or_word_level_export_too(config: dict, tiny_backbone_dir: Path, tmp_path: Path) -> None:
    folder = saved_model(tiny_backbone_dir, tmp_path / "model", seed=2, **config)
    out = export_onnx(folder, tmp_path / "onnx")
    assert (out / "crf.safetensors").exists() is ("use_crf" not in config)
    assert span_keys(load_extractor(out).predict(texts())) == span_keys(load_extractor(folder).predict(texts()))


def test_an_ensemble_exports_member_by_member_and_votes_the_same(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    members = [load_extractor(saved_model(tiny_backbone_dir, tmp_path / f"m{i}", seed=i)) for i in range(3)]
    ClinXEnsemble(members, names=["0", "1", "2"]).save_pretrained(tmp_path / "ensemble")
    out = export_onnx(tmp_path / "ensemble", tmp_path / "ensemble-onnx")
    assert json.loads((out / "ensemble.json").read_text())["members"] == ["0", "1", "2"]
    assert all((out / "members" / name / "model.onnx").is_file() for name in "012")
    onnx = load_extractor(out)
    assert isinstance(onnx, ClinXEnsemble) and all(isinstance(m.model, OnnxClinXModel) for m in onnx.members)
    expected = load_extractor(tmp_path / "ensemble").predict(texts())
    assert any(expected) and span_keys(onnx.predict(texts())) == span_keys(expected)


def test_int8_quantization_shrinks_the_graph_and_still_loads(model_dir: Path, exported: Path, tmp_path: Path) -> None:
    import onnx

    out = export_onnx(model_dir, tmp_path / "int8", quantize="int8")
    manifest = json.loads((out / "onnx_export.json").read_text())
    assert manifest["precision"] == "int8" and not (out / "model.fp32.onnx").exists()
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops and ("MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops)
    assert "QAttention" in ops and "Attention" not in ops  # the fused attention's weights are int8 too
    emission = [n for n in onnx.load(str(out / "model.onnx")).graph.node if n.op_type == "MatMul"]
    assert len(emission) == 1  # the emission layer alone stays an fp32 MatMul
    fp32 = OnnxClinXModel.from_pretrained(exported)
    int8 = OnnxClinXModel.from_pretrained(out)
    ids = torch.randint(5, 290, (2, 40))
    mask = torch.ones_like(ids)
    reference = fp32(ids, mask).logits
    # int8 weights move the emissions a little, far less than they vary
    assert (int8(ids, mask).logits - reference).abs().mean() < 0.2 * reference.std()
    assert len(load_extractor(out).predict(texts())) == len(texts())


def test_an_existing_out_is_refused_without_overwrite_and_the_source_never_written(
    model_dir: Path, tmp_path: Path
) -> None:
    out = export_onnx(model_dir, tmp_path / "onnx")
    before = (out / "model.onnx").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_onnx(model_dir, out)
    assert (out / "model.onnx").stat().st_mtime_ns == before
    export_onnx(model_dir, out, overwrite=True, quantize="int8")
    assert json.loads((out / "onnx_export.json").read_text())["precision"] == "int8"
    with pytest.raises(FileExistsError, match="outside the model folder"):
        export_onnx(model_dir, model_dir / "onnx")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "a.txt").write_text("x")
    with pytest.raises(FileExistsError, match="other than a clinx ONNX export"):
        export_onnx(model_dir, other, overwrite=True)
    assert (other / "a.txt").read_text() == "x"


def test_a_broken_export_is_named_before_it_opens(model_dir: Path, tmp_path: Path) -> None:
    out = export_onnx(model_dir, tmp_path / "onnx")
    (out / "crf.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="no crf.safetensors"):
        load_extractor(out)


def test_an_exported_model_refuses_other_dtypes(exported: Path) -> None:
    with pytest.raises(DeviceError, match="precision it was exported in"):
        load_extractor(exported, dtype="bf16")
    with pytest.raises(DeviceError, match="MPS"):
        load_extractor(exported, device="mps")


def test_the_cli_exports_and_predicts_with_the_exported_folder(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    for i, text in enumerate(texts()):
        (notes / f"n{i}.txt").write_text(text)
    out = tmp_path / "onnx"
    assert main(["export", "onnx", str(model_dir), str(out)]) == 0
    assert main(["export", "onnx", str(model_dir), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    for folder, model in (("pytorch", model_dir), ("onnx", out)):
        assert main(["predict", str(model), str(notes), "--out", str(tmp_path / folder), "--format", "jsonl",
                     "--device", "cpu"]) == 0
    lines = [(tmp_path / folder / "predictions.jsonl").read_text() for folder in ("pytorch", "onnx")]
    expected = [json.loads(line) for line in lines[0].splitlines()]
    got = [json.loads(line) for line in lines[1].splitlines()]
    assert [[(s["start"], s["end"], s["label"]) for s in r["spans"]] for r in got] == [
        [(s["start"], s["end"], s["label"]) for s in r["spans"]] for r in expected
    ]
    assert main(["predict", str(out), str(notes), "--out", str(tmp_path / "x"), "--dtype", "fp16"]) == 2
    assert "fp16" in capsys.readouterr().err


def test_the_pipeline_factory_opens_an_exported_folder(model_dir: Path, exported: Path) -> None:
    from transformers import pipeline

    from clinx_hub.outputs import span_records

    extract = pipeline("clinx-extraction", model=str(exported))
    assert isinstance(extract.model, OnnxClinXModel)
    expected = [span_records(doc) for doc in load_extractor(model_dir).predict(texts())]
    got = extract(texts())
    assert [[{k: v for k, v in r.items() if k != "score"} for r in doc] for doc in got] == [
        [{k: v for k, v in r.items() if k != "score"} for r in doc] for doc in expected
    ]
    assert sum(map(len, got)) > 0
