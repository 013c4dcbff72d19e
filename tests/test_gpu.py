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


def test_trainer_trains_on_the_gpu_and_extraction_matches_the_cpu(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    notes = [note(f"n{i:02d}", 2 + i % 3, offset=i) for i in range(24)]
    args = default_arguments(
        tmp_path / "checkpoints", num_train_epochs=4, learning_rate=5e-3, per_device_train_batch_size=8,
        per_device_eval_batch_size=8, window_length=64, context_size=8, disable_tqdm=True, seed=0,
    )
    out = train_recipe(
        str(tiny_backbone_dir), notes[:16], tmp_path / "model", args,
        entity_types=["NOMBRE", "LUGAR"], validation=notes[16:20], task="toy",
    )
    assert args.device.type == "cuda"  # default_arguments picks the GPU where one is visible
    record = json.loads((out / "training_record.json").read_text())
    assert record["hardware"].startswith(torch.cuda.get_device_name())
    assert record["members"][0]["best_eval_f1"] > 0.5, record["members"][0]

    extractor = load_extractor(out)
    assert extractor.config.id2label == dict(enumerate(scheme_labels(["NOMBRE", "LUGAR"])))
    on_cpu = extractor.predict(notes[20:])
    on_gpu = extractor.to("cuda").predict(notes[20:])
    assert next(extractor.model.parameters()).device.type == "cuda"
    assert [[s.key for s in spans] for spans in on_gpu] == [[s.key for s in spans] for spans in on_cpu]
    assert any(on_gpu)
    assert extractor.evaluate(notes[20:]).micro.f1 > 0.5
