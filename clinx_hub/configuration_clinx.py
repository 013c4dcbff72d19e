"""Configuration of the CLIN-X token classifier: an encoder, a linear emission layer and a CRF.

This file travels to the Hub beside ``modeling_clinx.py`` (``trust_remote_code``), so it imports
only transformers.
"""

from __future__ import annotations

import sys

from transformers import AutoConfig, PretrainedConfig

PIPELINE_TASK = "clinx-extraction"
PIPELINE_DECLARATION = {
    PIPELINE_TASK: {"impl": "pipeline.ClinXExtractionPipeline", "pt": ["AutoModelForTokenClassification"], "type": "text"}
}
"""``custom_pipelines`` of every saved config: ``pipeline("clinx-extraction", model=REPO, trust_remote_code=True)``
then builds the pipeline from the folder's ``pipeline.py`` (and the extraction files beside it) where
clinx_hub is not installed."""

LABEL_SCHEMES = ("bioes", "bio")
CONTEXT_MODES = ("window", "sentence")
TAGGING_LEVELS = ("subword", "first_subword")


class ClinXConfig(PretrainedConfig):
    r"""Configuration of [`ClinXForTokenClassification`].

    The labels live in the standard ``id2label``/``label2id`` fields (``O``, ``B-X``, ``I-X``, ...);
    everything else a loaded model needs to be fed the way it was trained is stored here too.

    Args:
        encoder: the backbone's config as a dict (``model_type`` included); any encoder that
            ``AutoModel`` builds (XLM-R, RoBERTa, BERT, ...).
        label_scheme: ``"bioes"`` (CLIN-X) or ``"bio"`` (the paper's ablation).
        use_crf: a linear-chain CRF on top of the emissions (``False``: softmax head, the ablation).
        crf_constraints: forbid the scheme's invalid transitions in the CRF (``O`` -> ``I-x``, ...).
        context_size: subwords of input-only context each labelled subword saw on each side.
        context_mode: ``"window"`` (labelled centres tile a document, context around them) or
            ``"sentence"`` (the paper's one example per sentence with context around it).
        tagging_level: ``"subword"`` (every subword is tagged, CLIN-X) or ``"first_subword"``
            (word-level tagging on each word's first subword, the ablation).
        window_length: encoder positions per window, special tokens included (capped by the
            encoder's own limit).
        viterbi_logits: in eval mode and without labels, ``forward`` returns as ``logits`` scores
            whose argmax is the CRF's Viterbi path written as BIO (``S-x`` -> ``B-x``,
            ``E-x`` -> ``I-x``) and whose softmax at that tag is the tag's CRF marginal, so that
            transformers' ``token-classification`` pipeline shows the CRF's spans. Off by
            default; training and clinx_hub's own extraction always use the raw emissions.
            The chain runs over every subword but the first and last (special) ones: forward
            sees no offsets, so XLM-R's bare ``▁`` subwords, which extraction leaves untagged,
            stay in it, and the path next to them can differ from ``clinx-extraction``'s.

    >>> config = ClinXConfig(encoder={"model_type": "bert", "hidden_size": 32}, id2label={0: "O"})
    >>> config.label_scheme, config.context_size
    ('bioes', 100)
    """

    model_type = "clinx"

    encoder: dict | None = None
    label_scheme: str = "bioes"
    use_crf: bool = True
    crf_constraints: bool = True
    context_size: int = 100
    context_mode: str = "window"
    tagging_level: str = "subword"
    window_length: int = 512
    viterbi_logits: bool = False
    classifier_dropout: float | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.encoder is None:
            self.encoder = {"model_type": "xlm-roberta"}
        elif isinstance(self.encoder, PretrainedConfig):
            self.encoder = self.encoder.to_dict()
        if "model_type" not in self.encoder:
            raise ValueError("ClinXConfig.encoder needs a 'model_type' (e.g. 'xlm-roberta', 'bert')")
        for name, value, allowed in (
            ("label_scheme", self.label_scheme, LABEL_SCHEMES),
            ("context_mode", self.context_mode, CONTEXT_MODES),
            ("tagging_level", self.tagging_level, TAGGING_LEVELS),
        ):
            if value not in allowed:
                raise ValueError(f"ClinXConfig.{name}={value!r}; expected one of {allowed}")
        if self.window_length < 8:
            raise ValueError(f"ClinXConfig.window_length must be >= 8, got {self.window_length}")
        if self.context_size < 0:
            raise ValueError(f"ClinXConfig.context_size must be >= 0, got {self.context_size}")

    def encoder_config(self) -> PretrainedConfig:
        """The backbone's own config object, built from the stored dict."""
        fields = dict(self.encoder)
        return AutoConfig.for_model(fields.pop("model_type"), **fields)

    def max_window_length(self) -> int:
        """``window_length``, capped by the positions the encoder has (RoBERTa-style encoders
        reserve ``pad_token_id + 1`` of their position ids)."""
        encoder = self.encoder
        positions = encoder.get("max_position_embeddings", self.window_length)
        if encoder.get("model_type") in ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert"):
            positions -= encoder.get("pad_token_id", 1) + 1
        return min(self.window_length, positions)

    @property
    def custom_pipelines(self) -> dict:
        """The pipeline declaration, unless this process has the task registered (clinx_hub imported).

        transformers' ``pipeline()`` prefers a config's declaration to its own registry and then
        insists on ``trust_remote_code=True``; where clinx_hub serves the task itself, the
        declaration steps aside so that ``pipeline("clinx-extraction", model=folder)`` needs no
        remote code. Saved configs always carry it (:meth:`to_dict`).
        """
        registry = getattr(sys.modules.get("transformers.pipelines"), "PIPELINE_REGISTRY", None)
        if registry is not None and PIPELINE_TASK in registry.supported_tasks:
            return {}
        return {task: dict(info) for task, info in PIPELINE_DECLARATION.items()}

    @custom_pipelines.setter
    def custom_pipelines(self, value: dict) -> None:
        # A saved config's copy (or transformers' own Pipeline.save_pretrained): the declaration is fixed.
        pass

    def to_dict(self) -> dict:
        output = super().to_dict()
        output["custom_pipelines"] = {task: dict(info) for task, info in PIPELINE_DECLARATION.items()}
        return output

    @property
    def entity_types(self) -> list[str]:
        """Entity types in label order, without scheme prefixes (``["FECHAS", ...]``)."""
        seen: dict[str, None] = {}
        for _, label in sorted(self.id2label.items()):
            if label != "O":
                seen.setdefault(label.split("-", 1)[1], None)
        return list(seen)


__all__ = ["ClinXConfig"]
