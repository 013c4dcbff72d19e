"""``--device``/``--dtype`` and their Python twins (devices.py), checked on the CPU with CUDA/MPS faked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import note
from test_streaming import tiny_model

from clinx_hub.cli import main
from clinx_hub.devices import DeviceError, onnx_providers, resolve_device, resolve_dtype
from clinx_hub.ensemble import ClinXEnsemble, Extractor, load_extractor


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    return monkeypatch


def test_auto_takes_cuda_then_mps_then_the_cpu(no_gpu: pytest.MonkeyPatch) -> None:
    assert resolve_device("auto") == resolve_device(None) == "cpu"
    no_gpu.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps" and resolve_device("mps") == "mps"
    no_gpu.setattr(torch.cuda, "is_available", lambda: True)
    no_gpu.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(DeviceError, match="only 2 CUDA"):
        resolve_device("cuda:2")


def test_a_device_that_is_not_there_is_refused_clearly(no_gpu: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="MPS is not available"):
        resolve_device("mps")
    with pytest.raises(DeviceError, match="expected one of auto, cpu, cuda, mps"):
        resolve_device("tpu")


def test_fp16_needs_a_gpu_and_bf16_runs_anywhere() -> None:
    assert resolve_dtype(None, "cpu") == "fp32"
    assert resolve_dtype("bf16", "cpu") == "bf16"
    assert resolve_dtype("fp16", "cuda:1") == "fp16"
    with pytest.raises(DeviceError, match="fp16 needs a GPU"):
        resolve_dtype("fp16", "cpu")
    with pytest.raises(DeviceError, match="expected one of fp32, fp16, bf16"):
        resolve_dtype("int4", "cuda")


def test_onnx_providers_follow_the_device() -> None:
    cpu_only, with_cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("auto", cpu_only) == onnx_providers("cpu", with_cuda) == cpu_only
    assert onnx_providers("auto", with_cuda) == with_cuda
    assert onnx_providers("cuda:1", with_cuda)[0] == ("CUDAExecutionProvider", {"device_id": 1})
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        onnx_providers("cuda", cpu_only)


@pytest.fixture(scope="module")
def model_dir(tiny_backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("model") / "model"
    Extractor(tiny_model(tiny_backbone_dir, 0), AutoTokenizer.from_pretrained(tiny_backbone_dir)).save_pretrained(folder)
    return folder


def test_bf16_on_the_cpu_casts_the_encoder_and_keeps_the_crf_in_float32(model_dir: Path) -> None:
    notes = [note("a", 4).text, note("b", 6, offset=1).text]
    fp32 = load_extractor(model_dir, device="cpu").predict(notes)
    extractor = load_extractor(model_dir, device="auto", dtype="bf16")
    model = extractor.model
    assert next(model.encoder.parameters()).dtype == torch.bfloat16 and model.classifier.weight.dtype == torch.bfloat16
    assert model.crf.transitions.dtype == torch.float32
    bf16 = extractor.predict(notes)
    keys = [{s.key for s in spans} for spans in fp32]
    same = sum(len(a & {s.key for s in b}) for a, b in zip(keys, bf16))
    assert same >= 0.8 * sum(map(len, keys))  # bf16 rounds the emissions: most spans stay


def test_ensembles_take_the_device_and_dtype_to_every_member(model_dir: Path, tmp_path: Path) -> None:
    member = load_extractor(model_dir)
    ClinXEnsemble([member, member], names=["0", "1"]).save_pretrained(tmp_path / "ensemble")
    ensemble = load_extractor(tmp_path / "ensemble", device="cpu", dtype="bf16")
    assert all(next(m.model.encoder.parameters()).dtype == torch.bfloat16 for m in ensemble.members)


def test_the_cli_refuses_fp16_on_the_cpu_before_writing(
    model_dir: Path, tmp_path: Path, no_gpu: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "n.txt").write_text(note("n", 2).text)
    out = tmp_path / "out"
    assert main(["predict", str(model_dir), str(tmp_path / "n.txt"), "--out", str(out), "--dtype", "fp16"]) == 2
    assert "fp16 needs a GPU" in capsys.readouterr().err
    assert not any(out.glob("*.ann"))
    assert main(["predict", str(model_dir), str(tmp_path / "n.txt"), "--out", str(out), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert main(["predict", str(model_dir), str(tmp_path / "n.txt"), "--out", str(out), "--dtype", "bf16"]) == 0
    assert (out / "n.ann").is_file()
