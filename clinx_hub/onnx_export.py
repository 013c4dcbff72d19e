"""``clinx export onnx``: a model or ensemble folder -> an ONNX folder that loads like any model folder.

What is exported: the encoder and the linear emission layer as one ONNX graph (``model.onnx``,
inputs ``input_ids`` and ``attention_mask`` of any batch size and length, output ``emissions``);
beside it the CRF's transitions and scheme constraints (``crf.safetensors``), the model's
``config.json``, its tokenizer, a manifest (``onnx_export.json``) and a card (``README.md``). The
CRF is not in the graph: Viterbi and marginals run in clinx_hub's PyTorch code on the emissions
(``onnx_model.py``), exactly as for the PyTorch model. An ensemble is exported member by member
into the same layout (``ensemble.json`` + ``members/<name>``).

The exporter is ``torch.onnx.export(..., dynamo=False)`` (the TorchScript tracer): the dynamo
exporter needs onnxscript and optimum needs its own install, neither of which is in clinx_hub's
extras, while the tracer ships with torch and handles the BERT/XLM-R encoders clinx_hub trains.
The traced graph then goes through onnxruntime's transformer fuser (attention, layer norms and GELU
as single operators, :func:`fuse_encoder`), which is what makes onnxruntime faster than PyTorch here.
``--quantize int8`` applies onnxruntime's dynamic quantization to the fused graph (int8
per-channel weights of the encoder's MatMuls and Attention nodes, activations quantized per batch at
run time; the emission layer stays fp32: see :func:`quantize_int8`).

Each export is checked before it is kept: PyTorch and onnxruntime emissions on random token ids
(never text from notes) at two batch shapes, their largest difference and whether the CRF's
Viterbi paths agree are written into the manifest and the card.

>>> export_onnx("runs/meddocan", "runs/meddocan-onnx", quantize="int8")  # doctest: +SKIP
PosixPath('runs/meddocan-onnx')
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import tempfile
from pathlib import Path

import torch

from .ensemble import ClinXEnsemble, Extractor, load_extractor
from .folders import (
    CARD_FILE,
    CONFIG_FILE,
    CRF_FILE,
    ENSEMBLE_FILE,
    MEMBERS_DIR,
    ONNX_FILE,
    ONNX_MANIFEST,
    EnsembleSpec,
    is_ensemble_folder,
    is_onnx_folder,
)
from .onnx_model import OnnxClinXModel, crf_tensors

OPSET = 17
QUANTIZATIONS = ("int8",)
CHECK_SHAPES = ((2, 48), (3, 128))
"""(rows, length) of the random batches each export is checked on; the rows have different lengths."""


class _Emissions(torch.nn.Module):
    """The graph that is exported: token ids -> emission scores (no CRF, no dropout)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, viterbi_logits=False).logits


def export_onnx(
    model: str | Path, out: str | Path, *, quantize: str | None = None, overwrite: bool = False
) -> Path:
    """Export a model or ensemble folder (or Hub id) to ``out``; an existing ``out`` needs ``overwrite``.

    >>> export_onnx("runs/meddocan", "/tmp/meddocan-onnx")  # doctest: +SKIP
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize {quantize!r}: expected one of {', '.join(QUANTIZATIONS)}")
    out = Path(out)
    extractor = load_extractor(model)
    source = Path(str(model))
    _check_out(out, source, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if isinstance(extractor, ClinXEnsemble):
            names = []
            for name, member in zip(extractor.names, extractor.members):
                export_member(member, EnsembleSpec.member_folder(staging, name), quantize)
                names.append(name)
            extractor.members[0].tokenizer.save_pretrained(staging)
            EnsembleSpec(names, extractor.min_votes).write(staging)
            _write_card(staging, [json.loads((EnsembleSpec.member_folder(staging, n) / ONNX_MANIFEST).read_text())
                                  for n in names], names)
        else:
            manifest = export_member(extractor, staging, quantize)
            _write_card(staging, [manifest], None)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def _check_out(out: Path, source: Path, overwrite: bool) -> None:
    """Never write into or over the source; an existing ``out`` only with ``overwrite`` and only an earlier export."""
    if source.exists():
        a, b = out.resolve(), source.resolve()
        if a == b or a.is_relative_to(b) or b.is_relative_to(a):
            raise FileExistsError(f"{out}: the export must go to a folder outside the model folder {source}")
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        out.rmdir()
        return
    if not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace an earlier export there")
    exported = is_onnx_folder(out) or (is_ensemble_folder(out) and (out / MEMBERS_DIR).is_dir())
    if not exported:
        raise FileExistsError(
            f"{out} holds something other than a clinx ONNX export; --overwrite replaces only an earlier export "
            "(choose another folder or empty this one yourself)"
        )


def export_member(extractor: Extractor, folder: Path, quantize: str | None) -> dict:
    """Export one model into ``folder`` (created); returns its manifest (also written as ``onnx_export.json``)."""
    from safetensors.torch import save_file

    model = extractor.model.float().cpu().eval()
    folder.mkdir(parents=True, exist_ok=True)
    traced, fused_file = folder / "model.traced.onnx", folder / (ONNX_FILE if quantize is None else "model.fp32.onnx")
    _trace(model, extractor.tokenizer, traced)
    fused = fuse_encoder(traced, fused_file, model.config)
    traced.unlink()
    if quantize == "int8":
        quantize_int8(fused_file, folder / ONNX_FILE, model.config.num_labels)
        fused_file.unlink()
    if model.crf is not None:
        save_file(crf_tensors(model.crf), str(folder / CRF_FILE))
    model.config.to_json_file(str(folder / CONFIG_FILE))
    extractor.tokenizer.save_pretrained(folder)
    import onnxruntime

    manifest = {
        "format": "clinx-onnx",
        "format_version": 1,
        "encoder_file": ONNX_FILE,
        "crf_file": CRF_FILE if model.crf is not None else None,
        "precision": quantize or "fp32",
        "quantization": "onnxruntime dynamic quantization: int8 (QInt8) per-channel weights of the encoder's MatMuls"
        " and fused Attention nodes, activations quantized per batch; emission layer in fp32" if quantize else None,
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["emissions"],
        "dynamic_axes": ["batch", "length"],
        "opset": OPSET,
        "exporter": f"torch.onnx.export (TorchScript, eager attention), torch {torch.__version__}",
        "fused_operators": fused,
        "onnxruntime": onnxruntime.__version__,
        "encoder_type": model.config.encoder.get("model_type"),
        "num_labels": model.config.num_labels,
        "crf": model.crf is not None,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (folder / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["check"] = check_export(model, extractor.tokenizer, folder)
    (folder / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _trace(model, tokenizer, path: Path) -> None:
    """torch.onnx.export of the emissions graph, traced with the encoder's eager attention.

    transformers' default SDPA attention traces into a pattern onnxruntime's fuser does not recognise;
    the eager one becomes a fused ``Attention`` node (see :func:`fuse_encoder`). Same arithmetic, and the
    model's own setting is put back afterwards.
    """
    encoder = model.encoder
    previous = getattr(encoder.config, "_attn_implementation", None)
    switch = hasattr(encoder, "set_attn_implementation") and previous not in (None, "eager")
    if switch:
        encoder.set_attn_implementation("eager")
    example = _random_batch(model, tokenizer, *CHECK_SHAPES[0])
    try:
        torch.onnx.export(
            _Emissions(model).eval(),  # a fresh Module is in training mode, and export restores it (dropout)
            (example["input_ids"], example["attention_mask"]),
            str(path),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["emissions"],
            dynamic_axes={name: {0: "batch", 1: "length"} for name in ("input_ids", "attention_mask", "emissions")},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    finally:
        if switch:
            encoder.set_attn_implementation(previous)


def fuse_encoder(source: Path, target: Path, config) -> dict[str, int]:
    """onnxruntime's transformer fuser (``onnxruntime.transformers.optimizer``): attention, embedding and
    layer norms, bias + GELU into single operators; returns how many of each were made.

    Measured on the 2-core CPU (MiniLM-L6, batch 16 x 512, 2 threads): the traced graph ran the encoder
    in 1.2x PyTorch's time, the fused one in 0.85x; int8 of the fused graph (its Attention nodes
    quantized too) in 0.6x, against 1.0x for int8 of the traced graph. Only the fusions are applied
    (``opt_level=0``): the file keeps no optimisation specific to this machine, and onnxruntime applies
    its own graph optimisations when a session opens it, on CPU or CUDA. BERT-like encoders (BERT,
    RoBERTa, XLM-R) fuse; for another architecture the patterns do not match and the graph stays as traced.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    encoder = config.encoder
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it logs every fusion it tries at INFO/WARNING
    try:
        optimized = optimize_model(
            str(source), model_type="bert", num_heads=int(encoder.get("num_attention_heads", 0)),
            hidden_size=int(encoder.get("hidden_size", 0)), opt_level=0,
        )
    finally:
        quiet.setLevel(level)
    optimized.save_model_to_file(str(target))
    return {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}


def quantize_int8(source: Path, target: Path, num_labels: int) -> None:
    """Dynamic int8 quantization of the encoder's weight MatMuls and fused Attention nodes, per output
    channel; the emission layer stays fp32.

    Per-tensor scales (onnxruntime's default) kept the argmax tag of only ~38% of entity subwords of a
    trained MiniLM PharmaCoNER model; per-channel scales kept ~87%, and leaving the emission layer (a
    tiny share of the time) in fp32 a little more. The emission layer is the MatMul whose weight has
    ``num_labels`` columns (the last such node in topological order).
    """
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    widths = {init.name: numpy_helper.to_array(init).shape[-1] for init in graph.initializer if len(init.dims) == 2}
    matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    emission = [node.name for node in matmuls if any(widths.get(name) == num_labels for name in node.input)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer advises its pre-processing step on the root logger, every time
    try:
        quantize_dynamic(
            str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=emission[-1:] or [matmuls[-1].name],
            # the fused nodes are onnxruntime's own (com.microsoft), which onnx's shape inference cannot type
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _random_batch(model, tokenizer, rows: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random ordinary token ids framed by the tokenizer's specials; row r is shorter by r x length/4 (padding)."""
    generator = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    vocab = min(len(tokenizer), model.config.encoder.get("vocab_size", len(tokenizer)))
    ordinary = torch.tensor([i for i in range(vocab) if i not in special])
    ids = ordinary[torch.randint(len(ordinary), (rows, length), generator=generator)]
    mask = torch.zeros(rows, length, dtype=torch.long)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    for r in range(rows):
        n = max(4, length - r * length // 4)
        mask[r, :n] = 1
        ids[r, n:] = pad
        if first is not None:
            ids[r, 0] = first
        if last is not None:
            ids[r, n - 1] = last
    return {"input_ids": ids, "attention_mask": mask}


@torch.no_grad()
def check_export(model, tokenizer, folder: Path) -> dict:
    """PyTorch vs onnxruntime on random batches: largest emission difference, share of equal Viterbi tags."""
    exported = OnnxClinXModel.from_pretrained(folder, device="cpu")
    worst, same, total = 0.0, 0, 0
    for rows, length in CHECK_SHAPES:
        batch = _random_batch(model, tokenizer, rows, length, seed=rows)
        mask = batch["attention_mask"].bool()
        reference = model(**batch, viterbi_logits=False).logits
        emissions = exported(**batch).logits
        worst = max(worst, float((reference - emissions).abs()[mask].max()))
        paths = model.decode(logits=reference, label_mask=mask)
        exported_paths = exported.decode(logits=emissions, label_mask=mask)
        same += int((paths == exported_paths)[mask].sum())
        total += int(mask.sum())
    return {
        "inputs": "random token ids (no text), batches " + ", ".join(f"{r}x{n}" for r, n in CHECK_SHAPES)
        + ", rows of different lengths (padding)",
        "max_abs_emission_difference": worst,
        "viterbi_tags_equal": same / total,
        "positions": total,
    }


def _write_card(folder: Path, manifests: list[dict], names: list[str] | None) -> None:
    """``README.md``: what was exported and how it was checked (figures only, no text)."""
    first = manifests[0]
    kind = f"an ensemble of {len(manifests)} members (`{ENSEMBLE_FILE}` + `{MEMBERS_DIR}/`)" if names else "one model"
    precision = first["quantization"] if first["precision"] == "int8" else "fp32"
    crf = f"transitions and scheme constraints in `{CRF_FILE}`, decoded by clinx_hub (Viterbi, marginals)"
    if not first["crf"]:
        crf = "none (softmax head)"
    lines = [
        "---",
        "library_name: clinx_hub",
        "tags: [onnx, token-classification, clinx]",
        "---",
        "",
        "# CLIN-X model exported to ONNX",
        "",
        f"This folder holds {kind}, exported by `clinx export onnx` on {first['exported'][:10]}.",
        "",
        f"- graph: encoder ({first['encoder_type']}) + linear emission layer in `{ONNX_FILE}` (opset {first['opset']},"
        " inputs `input_ids` and `attention_mask`, any batch size and length; output `emissions`)",
        f"- precision: {precision}",
        f"- CRF: {crf}; {first['num_labels']} tags (`{CONFIG_FILE}`)",
        f"- exporter: {first['exporter']}; checked with onnxruntime {first['onnxruntime']}",
        "",
        "## How it was checked",
        "",
        f"Random token ids (no text from notes), {first['check']['inputs'].split('batches ')[-1]}: PyTorch and"
        " onnxruntime emissions compared, and the CRF's Viterbi tags on both.",
        "",
        "| member | precision | largest emission difference | Viterbi tags equal |",
        "|---|---|---:|---:|",
    ]
    for name, manifest in zip(names or ["-"], manifests):
        check = manifest["check"]
        lines.append(
            f"| {name} | {manifest['precision']} | {check['max_abs_emission_difference']:.2e} |"
            f" {100 * check['viterbi_tags_equal']:.1f}% of {check['positions']} |"
        )
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from clinx_hub import load_extractor",
        "extractor = load_extractor('THIS_FOLDER')   # onnxruntime on the CPU, or CUDA where present",
        "```",
        "",
        "or `clinx predict THIS_FOLDER notes/ --out predictions/`, `clinx evaluate THIS_FOLDER TASK --data-dir DIR`.",
        "",
    ]
    (folder / CARD_FILE).write_text("\n".join(lines))


__all__ = ["QUANTIZATIONS", "check_export", "export_member", "export_onnx"]
