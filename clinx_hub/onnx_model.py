"""An exported ONNX model (``clinx export onnx``) that extraction uses like the PyTorch one.

onnxruntime computes the emissions (encoder + linear emission layer, ``model.onnx``); everything
after them is the PyTorch path's own code: :class:`OnnxClinXModel` carries the saved CRF as a
:class:`~clinx_hub.modeling_clinx.LinearChainCRF` (transitions and scheme constraints from
``crf.safetensors``) and borrows ``decode``, ``tag_probabilities`` and the ``viterbi_logits``
scores from :class:`~clinx_hub.modeling_clinx.ClinXForTokenClassification` itself. So windows,
stitching, the long-note stream, Viterbi and marginals are one implementation for both.

>>> model = OnnxClinXModel.from_pretrained("runs/meddocan-onnx")  # doctest: +SKIP
>>> extract_documents(model, tokenizer, ["Paciente de 45 años."])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .configuration_clinx import ClinXConfig
from .devices import DeviceError, onnx_providers, resolve_dtype
from .folders import CONFIG_FILE, ONNX_FILE, ONNX_MANIFEST
from .modeling_clinx import ClinXForTokenClassification, ClinXTokenClassifierOutput, LinearChainCRF

CRF_TENSORS = ("transitions", "start_transitions", "end_transitions")
CONSTRAINT_TENSORS = ("allowed", "allowed_start", "allowed_end")


def crf_tensors(crf: LinearChainCRF) -> dict[str, torch.Tensor]:
    """The CRF's learned scores and its scheme constraints, as ``crf.safetensors`` holds them."""
    tensors = {name: getattr(crf, name).detach().float().cpu().contiguous() for name in CRF_TENSORS}
    # The constraints are where the scheme puts -inf (LinearChainCRF's documented surface).
    constrained = crf.constrained_scores(torch.device("cpu"))
    tensors.update({name: torch.isfinite(scores) for name, scores in zip(CONSTRAINT_TENSORS, constrained)})
    return tensors


def crf_from_tensors(tensors: dict[str, torch.Tensor]) -> LinearChainCRF:
    """A :class:`LinearChainCRF` with the saved transitions and constraints (inverse of :func:`crf_tensors`)."""
    num_tags = tensors["transitions"].shape[0]
    crf = LinearChainCRF(num_tags, *(tensors[name].bool() for name in CONSTRAINT_TENSORS))
    with torch.no_grad():
        for name in CRF_TENSORS:
            getattr(crf, name).copy_(tensors[name])
    return crf.eval()


def session_options(threads: int | None = None):
    """onnxruntime options: as many intra-op threads as torch uses, so ``--threads``/OMP settings govern both."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns are planned per input shape, and window batches come in many shapes: with them on,
    # a 1M-character note's peak RSS grew 26% over a 100k one's (1,056 -> 1,335 MB), without them 8%
    # (1,098 -> 1,186 MB; PyTorch 17%), for 4-6% more time (MiniLM fp32, 2 threads, 2026-12-02;
    # benchmarks/results/extraction-long-onnx-cpu*.md).
    options.enable_mem_pattern = False
    # onnxruntime's idle threads spin after each run; between encoder batches this process decodes
    # with torch (CRF, marginals), and on a shared CPU the spinning threads take the cores it needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxClinXModel(nn.Module):
    """Emissions from onnxruntime, CRF decoding from clinx_hub's PyTorch code.

    It has what extraction reads of a ``ClinXForTokenClassification``: ``config``, ``crf``,
    ``forward(input_ids, attention_mask)`` -> ``.logits`` (the emissions), ``decode`` and
    ``tag_probabilities``; its parameters (the CRF's) are on the device decoding runs on.
    """

    decode = ClinXForTokenClassification.decode
    tag_probabilities = ClinXForTokenClassification.tag_probabilities
    _viterbi_logits = ClinXForTokenClassification._viterbi_logits
    _bio_columns = ClinXForTokenClassification._bio_columns

    def __init__(self, config: ClinXConfig, session, crf: LinearChainCRF | None, manifest: dict | None = None):
        super().__init__()
        self.config = config
        self.session = session
        self.crf = crf
        self.manifest = dict(manifest or {})
        # Something for next(parameters()) to report the decoding device by, without a CRF too.
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self._input_names = {i.name for i in session.get_inputs()}

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, device: str | None = "cpu", dtype: str | None = None, threads: int | None = None
    ) -> OnnxClinXModel:
        """Open an exported folder on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); ``dtype`` must be fp32."""
        import onnxruntime
        from safetensors.torch import load_file

        folder = Path(folder)
        manifest = json.loads((folder / ONNX_MANIFEST).read_text(encoding="utf-8"))
        if (dtype or "fp32") not in ("fp32", "float32"):
            resolve_dtype(dtype, "cuda")  # an unknown name gets the usual message first
            raise DeviceError(
                f"--dtype {dtype}: {folder} is an exported ONNX model ({manifest.get('precision', 'fp32')}); it runs"
                " in the precision it was exported in: use --dtype fp32, or the PyTorch model for fp16/bf16"
            )
        providers = onnx_providers(device)
        session = onnxruntime.InferenceSession(
            str(folder / manifest.get("encoder_file", ONNX_FILE)), session_options(threads), providers=providers
        )
        config = ClinXConfig.from_pretrained(folder / CONFIG_FILE)
        crf_file = manifest.get("crf_file")
        crf = crf_from_tensors(load_file(str(folder / crf_file))) if crf_file else None
        model = cls(config, session, crf, manifest)
        on_cuda = "CUDAExecutionProvider" in session.get_providers()
        if on_cuda and torch.cuda.is_available():  # decode where the emissions are computed
            model.to(_cuda_device(device))
        return model.eval()

    @property
    def device(self) -> torch.device:
        """Where the CRF and the emissions' tensors live (transformers' Pipeline reads it as a model's)."""
        return self.anchor.device

    @property
    def providers(self) -> list[str]:
        """The execution providers onnxruntime runs this model with, best first."""
        return list(self.session.get_providers())

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, viterbi_logits: bool | None = None,
        **_,
    ) -> ClinXTokenClassifierOutput:
        """The emissions ``[batch, length, tags]`` (float32, on the CPU); Viterbi-shaped scores with ``viterbi_logits``."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        feed = {"input_ids": input_ids.cpu().long().numpy(), "attention_mask": attention_mask.cpu().long().numpy()}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = torch.zeros_like(input_ids).cpu().long().numpy()
        (emissions,) = self.session.run(["emissions"], feed)
        logits = torch.from_numpy(emissions).float()
        if viterbi_logits is None:
            viterbi_logits = self.config.viterbi_logits
        if viterbi_logits and not self.training:
            device = self.anchor.device
            logits = self._viterbi_logits(logits.to(device), attention_mask.to(device))
        return ClinXTokenClassifierOutput(logits=logits)


def _cuda_device(device: str | None) -> str:
    name = (device or "auto").lower()
    return name if name.startswith("cuda") else "cuda"


__all__ = ["OnnxClinXModel", "crf_from_tensors", "crf_tensors", "session_options"]
