"""The same code on a CUDA GPU: CRF loss, gradients, Viterbi paths, training and extraction agree with the CPU.

Skipped where no CUDA device is visible (CI has none). On a lent GPU machine,
``benchmarks/device/accuracy.sh`` runs this file before the accuracy experiments.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from conftest import note
from test_model import LABELS, make_batch, make_config

from clinx_hub import ClinXForTokenClassification
from clinx_hub.ensemble import load_extractor
from clinx_hub.recipe import train_recipe
from clinx_hub.tagging import scheme_labels
from clinx_hub.training_args import default_arguments

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_crf_loss_gradients_and_viterbi_agree_with_the_cpu(tiny_tokenizer) -> None:
    torch.manual_seed(0)
    cpu = ClinXForTokenClassification(make_config("xlm-roberta")).eval()  # eval: no dropout
    gpu = copy.deepcopy(cpu).cuda()
    batch = make_batch(tiny_tokenizer)
    loss_cpu = cpu(**batch).loss
    loss_gpu = gpu(**{k: v.cuda() for k, v in batch.items()}).loss
    assert loss_gpu.device.type == "cuda"
    assert loss_gpu.item() == pytest.approx(loss_cpu.item(), rel=1e-4)
    loss_cpu.backward()
    loss_gpu.backward()
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-3, atol=1e-5, msg=name)

    logits = torch.randn(6, 80, len(LABELS)) * 3
    mask = torch.rand(6, 80) > 0.2
    mask[5] = False  # a row without labels decodes to padding on both
    paths = cpu.decode(logits=logits, label_mask=mask)
    assert torch.equal(gpu.decode(logits=logits.cuda(), label_mask=mask.cuda()).cpu(), paths)
    torch.testing.assert_close(
        gpu.tag_probabilities(logits.cuda(), mask.cuda()).cpu(), cpu.tag_probabilities(logits, mask), rtol=1e-4, atol=1e-5
    )


@pytest.fixture(scope="module")
def gpu_model(tiny_backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A tiny model trained on the GPU on invented notes; a BRAT folder of its held-out notes, those notes, its arguments."""
    from clinx_hub.formats.brat import write_brat

    root = tmp_path_factory.mktemp("gpu-cli")
    notes = [note(f"n{i:02d}", 2 + i % 3, offset=i) for i in range(28)]
    args = default_arguments(
        root / "checkpoints", num_train_epochs=4, learning_rate=5e-3, per_device_train_batch_size=8,
        per_device_eval_batch_size=8, window_length=64, context_size=8, disable_tqdm=True, seed=0,
    )
    out = train_recipe(
        str(tiny_backbone_dir), notes[:16], root / "model", args,
        entity_types=["NOMBRE", "LUGAR"], validation=notes[16:20], task="toy",
    )
    write_brat(notes[20:], root / "held-out")
    return out, root / "held-out", notes[20:], args


def test_trainer_trains_on_the_gpu_and_extraction_matches_the_cpu(gpu_model) -> None:
    out, _, held_out, args = gpu_model
    assert args.device.type == "cuda"  # default_arguments picks the GPU where one is visible
    record = json.loads((out / "training_record.json").read_text())
    assert record["hardware"].startswith(torch.cuda.get_device_name())
    assert record["members"][0]["best_eval_f1"] > 0.5, record["members"][0]

    extractor = load_extractor(out)
    assert extractor.config.id2label == dict(enumerate(scheme_labels(["NOMBRE", "LUGAR"])))
    on_cpu = extractor.predict(held_out)
    on_gpu = extractor.to("cuda").predict(held_out)
    assert next(extractor.model.parameters()).device.type == "cuda"
    assert [[s.key for s in spans] for spans in on_gpu] == [[s.key for s in spans] for spans in on_cpu]
    assert any(on_gpu)
    assert extractor.evaluate(held_out).micro.f1 > 0.5


# --- predict / evaluate on the GPU (--device, --dtype) and the ONNX CUDA provider (issue #21, #18) ---


def _cli_f1(model: Path, data: Path, *extra: str) -> float:
    import contextlib
    import io

    from clinx_hub.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["evaluate", str(model), "brat", "--data-dir", str(data), "--split", "train", "--json", *extra]) == 0
    return json.loads(printed.getvalue())["micro"]["f1"]


def test_predict_and_evaluate_run_on_cuda_with_the_cpu_spans(gpu_model, tmp_path: Path) -> None:
    from clinx_hub.cli import main

    model, data, notes, _ = gpu_model
    outputs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        assert main(["predict", str(model), str(data), "--out", str(out), "--format", "jsonl", "--device", device]) == 0
        outputs[device] = (out / "predictions.jsonl").read_text()
    assert outputs["cuda"] == outputs["cpu"] and '"label"' in outputs["cpu"]
    assert load_extractor(model, device="auto").model.device.type == "cuda"  # auto takes the GPU
    assert _cli_f1(model, data, "--device", "cuda") == _cli_f1(model, data, "--device", "cpu")


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_on_cuda_keeps_f1_within_0_2_points(gpu_model, dtype: str) -> None:
    model, data, notes, _ = gpu_model
    fp32 = _cli_f1(model, data, "--device", "cuda")
    half = _cli_f1(model, data, "--device", "cuda", "--dtype", dtype)
    extractor = load_extractor(model, device="cuda", dtype=dtype)
    assert next(extractor.model.encoder.parameters()).dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    assert extractor.model.crf.transitions.dtype == torch.float32
    assert fp32 > 0.5 and abs(half - fp32) <= 0.002, (dtype, half, fp32)


def test_an_onnx_export_runs_on_the_cuda_provider_with_the_cpu_spans(gpu_model, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA execution provider here (onnxruntime-gpu)")
    from clinx_hub.onnx_export import export_onnx

    model, _, notes, _ = gpu_model
    out = export_onnx(model, tmp_path / "onnx")
    on_gpu = load_extractor(out, device="cuda")
    assert on_gpu.model.providers[0] == "CUDAExecutionProvider"
    expected = load_extractor(model, device="cpu").predict(notes)
    assert [[s.key for s in spans] for spans in on_gpu.predict(notes)] == [[s.key for s in spans] for spans in expected]
