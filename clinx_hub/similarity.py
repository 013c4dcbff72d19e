"""Rank candidate source models for cross-task transfer by how similar they are to a target model.

CLIN-X picks the source task for transfer with a *model similarity* in the spirit of Lange et al.
(2021, EMNLP, "To share or not to share"): run two models over the same *target* texts and compare
their feature representations of those texts. The paper's exact measure could not be checked here
(only its abstract was at hand: "methods based on model similarity"), so this module implements two
standard representation-similarity measures and says which it defaults to:

- ``procrustes_disparity`` (default): the orthogonal Procrustes disparity of the two centred,
  unit-norm feature matrices; ``0`` = identical up to rotation, reflection and isotropic scale,
  ``1`` = nothing in common. A matrix of smaller hidden size is padded with zero columns, the usual
  way (as ``scipy.spatial.procrustes``) to compare spaces of different dimensionality.
- ``linear_cka``: linear centred kernel alignment (Kornblith et al. 2019); ``1`` = identical up to
  an orthogonal transform and isotropic scale.

Limits: both are invariant to rotation and scale but not to arbitrary invertible linear maps, so two
models that differ by such a map look dissimilar; both are computed on at most ``max_tokens``
subwords (the first ones of the documents in order), a sample of the target data; and a score only
says how alike two models *represent* the target texts, not that transfer will help.

Features are those of the encoder alone (a ClinX model's emission layer and CRF are left out, so
models with different label sets compare), computed with the project's context windows so that
every subword sees the context it sees in training. When the two tokenizers' vocabularies differ
the subword sequences differ too, so features are compared per *word* instead: the mean of the
subwords that overlap each word, words being found in the text itself and matched by characters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, AutoTokenizer, PreTrainedModel

from .configuration_clinx import ClinXConfig
from .documents import Document
from .encoding import window_states
from .registration import register
from .windows import SpecialTokens, TokenizedDocument, build_windows, tokenize_document

logger = logging.getLogger(__name__)

MEASURES = ("procrustes", "cka")
_WORD = re.compile(r"\w+|[^\w\s]")


def _centred_unit(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().to(torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"expected a feature matrix [n >= 2, d], got shape {tuple(x.shape)}")
    x = x - x.mean(dim=0, keepdim=True)
    norm = torch.linalg.matrix_norm(x)
    if norm == 0:
        raise ValueError("constant features: nothing to compare")
    return x / norm


def procrustes_disparity(x: torch.Tensor, y: torch.Tensor) -> float:
    """Orthogonal Procrustes disparity of features ``x [n, d1]`` and ``y [n, d2]`` of the same n tokens.

    >>> x = torch.randn(50, 8)
    >>> rotation, _ = torch.linalg.qr(torch.randn(8, 8))
    >>> round(procrustes_disparity(x, 3 * x @ rotation), 6)
    0.0
    >>> round(procrustes_disparity(x, torch.randn(50, 5)), 1) > 0
    True
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"features of different token counts: {x.shape[0]} vs {y.shape[0]}")
    x, y = _centred_unit(x), _centred_unit(y)
    # Zero columns make both spaces d-dimensional so that the best alignment is an orthogonal d x d
    # map; they add only zero singular values, so the disparity is that of the unpadded pair.
    d = max(x.shape[1], y.shape[1])
    x = torch.nn.functional.pad(x, (0, d - x.shape[1]))
    y = torch.nn.functional.pad(y, (0, d - y.shape[1]))
    # min_R ||x R - s y||^2 over rotations R and scale s = 1 - (nuclear norm of x^T y)^2 for unit x, y.
    nuclear = torch.linalg.svdvals(x.T @ y).sum().item()
    return min(1.0, max(0.0, 1.0 - nuclear**2))


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of features ``x [n, d1]`` and ``y [n, d2]`` of the same n tokens.

    >>> x = torch.randn(50, 8)
    >>> rotation, _ = torch.linalg.qr(torch.randn(8, 8))
    >>> round(linear_cka(x, 0.5 * x @ rotation), 6)
    1.0
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"features of different token counts: {x.shape[0]} vs {y.shape[0]}")
    x, y = _centred_unit(x), _centred_unit(y)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    cka = cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))
    return min(1.0, max(0.0, cka.item()))


def _documents(documents: Sequence[Document | str]) -> list[Document]:
    return [d if isinstance(d, Document) else Document(id=str(i), text=d) for i, d in enumerate(documents)]


def _window_settings(model: PreTrainedModel, encoder: PreTrainedModel, tokenizer) -> tuple[int, int, str]:
    """``(max_length, context, mode)``: the ClinX model's own context settings, else 512/100/window."""
    config = model.config
    context, mode = (config.context_size, config.context_mode) if isinstance(config, ClinXConfig) else (100, "window")
    if isinstance(config, ClinXConfig):  # the windows it was trained with
        max_length = min(config.max_window_length(), tokenizer.model_max_length)
    else:
        max_length = min(512, tokenizer.model_max_length)
        # As a cap only: RoBERTa-style position ids start after the padding index, so an encoder
        # with P position embeddings reads at most P - 2 subwords (BERT reads P; P - 2 is safe).
        positions = getattr(encoder.config, "max_position_embeddings", None)
        if positions:
            max_length = min(max_length, positions - 2)
    # A window needs room for a centre between its two contexts; an encoder too short for the
    # configured context could not have been trained with it either, so only then shrink it.
    room = max_length - SpecialTokens(tokenizer).count
    if room <= 2 * context:
        context = room // 4
    return max_length, context, mode


def _subword_features(
    model: PreTrainedModel,
    tokenizer,
    docs: Sequence[TokenizedDocument],
    keep: Sequence[int],
    layer: int,
    batch_size: int,
) -> list[torch.Tensor]:
    """Encoder features ``[keep[i], hidden]`` of the first ``keep[i]`` subwords of each document."""
    # ClinX's base_model is its encoder; a plain encoder's base_model is itself.
    encoder = model.base_model
    max_length, context, mode = _window_settings(model, encoder, tokenizer)
    windows = [
        w for w in build_windows(docs, tokenizer, max_length=max_length, context=context, mode=mode)
        if w.centre[0] < keep[w.doc_index]
    ]
    features = [torch.zeros(k, encoder.config.hidden_size) for k in keep]
    for window, states in window_states(encoder, tokenizer, windows, layer=layer, batch_size=batch_size):
        # Every centre subword, tagged or not (a bare "▁" has features too).
        first, last = window.centre
        for i, position in enumerate(window.positions):
            if first <= position < last and position < keep[window.doc_index]:
                features[window.doc_index][position] = states[i]
    return features


def token_features(
    model: PreTrainedModel,
    tokenizer,
    documents: Sequence[Document | str],
    *,
    max_tokens: int = 2000,
    layer: int = -1,
    batch_size: int = 8,
) -> torch.Tensor:
    """Encoder features ``[n, hidden]`` of the first ``max_tokens`` subwords of the documents, in order.

    ``model`` is a ``ClinXForTokenClassification`` (its encoder is used) or any ``AutoModel``
    encoder; ``layer`` indexes the hidden states (``-1`` the last, ``0`` the embeddings).

    >>> token_features(encoder, tokenizer, ["Dolor abdominal.", "Fiebre."], max_tokens=5).shape  # doctest: +SKIP
    torch.Size([5, 768])
    """
    docs, keep, total = [], [], 0
    for document in _documents(documents):
        if total >= max_tokens:
            break
        docs.append(tokenize_document(document, tokenizer))
        keep.append(min(len(docs[-1].input_ids), max_tokens - total))
        total += keep[-1]
    per_doc = _subword_features(model, tokenizer, docs, keep, layer, batch_size)
    return torch.cat(per_doc) if per_doc else torch.zeros(0, model.base_model.config.hidden_size)


def word_features(
    model: PreTrainedModel,
    tokenizer,
    documents: Sequence[Document | str],
    *,
    max_words: int = 2000,
    layer: int = -1,
    batch_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``[n, hidden]`` of the first ``max_words`` words (``\\w+`` or one symbol) and a mask of covered words.

    A word's feature is the mean of the subwords whose characters overlap it, so models with
    different tokenizers yield rows for the same words; a word no subword covers (text the
    tokenizer drops) gets a zero row and ``False`` in the mask.

    >>> features, covered = word_features(encoder, tokenizer, ["Dolor abdominal."])  # doctest: +SKIP
    >>> features.shape, covered.tolist()  # doctest: +SKIP
    (torch.Size([3, 384]), [True, True, True])
    """
    docs, words, keep, total = [], [], [], 0
    for document in _documents(documents):
        if total >= max_words:
            break
        spans = [m.span() for m in _WORD.finditer(document.text)][: max_words - total]
        tokenized = tokenize_document(document, tokenizer)
        end = spans[-1][1] if spans else 0
        docs.append(tokenized)
        words.append(spans)
        keep.append(sum(1 for s, _ in tokenized.offsets if s < end))
        total += len(spans)
    hidden = model.base_model.config.hidden_size
    rows, covered = [], []
    per_doc = _subword_features(model, tokenizer, docs, keep, layer, batch_size)
    for tokenized, spans, subwords in zip(docs, words, per_doc):
        sums, counts = torch.zeros(len(spans), hidden), torch.zeros(len(spans))
        w = 0
        for j, (start, end) in enumerate(tokenized.offsets[: len(subwords)]):
            # Words and subwords both advance through the text: skip the words ending before this subword.
            while w < len(spans) and spans[w][1] <= start:
                w += 1
            k = w
            while k < len(spans) and spans[k][0] < end:
                sums[k] += subwords[j]
                counts[k] += 1
                k += 1
        rows.append(sums / counts.clamp(min=1).unsqueeze(1))
        covered.append(counts > 0)
    if not rows:
        return torch.zeros(0, hidden), torch.zeros(0, dtype=torch.bool)
    return torch.cat(rows), torch.cat(covered)


def load_encoder(path: str | Path) -> tuple[PreTrainedModel, object]:
    """A saved model folder (or Hub id) as ``(model, tokenizer)``: a ClinX folder as the token classifier.

    >>> model, tokenizer = load_encoder("PlanTL-GOB-ES/roberta-base-biomedical-clinical-es")  # doctest: +SKIP
    """
    register()  # "clinx" folders open with the Auto classes
    if AutoConfig.from_pretrained(path).model_type == ClinXConfig.model_type:
        model = AutoModelForTokenClassification.from_pretrained(path)
    else:
        model = AutoModel.from_pretrained(path)
    return model, AutoTokenizer.from_pretrained(path)


def _tokenizer_of(candidate, tokenizer):
    if isinstance(candidate, (str, Path)):
        return AutoTokenizer.from_pretrained(candidate)
    if isinstance(candidate, tuple):
        return candidate[1]
    if tokenizer is None:
        raise ValueError("a model given as an object needs its tokenizer: pass (model, tokenizer) or tokenizer=...")
    return tokenizer


def _model_of(candidate) -> PreTrainedModel:
    if isinstance(candidate, (str, Path)):
        return load_encoder(candidate)[0]
    return candidate[0] if isinstance(candidate, tuple) else candidate


def rank_sources(
    target_documents: Sequence[Document | str],
    candidates: Mapping[str, object],
    reference: object,
    *,
    measure: str = "procrustes",
    max_tokens: int = 2000,
    layer: int = -1,
    tokenizer=None,
    progress=None,
) -> list[tuple[str, float]]:
    """Candidate source models, most similar to the ``reference`` on the target documents first.

    Each model is a path or Hub id, a ``(model, tokenizer)`` pair, or a model that uses
    ``tokenizer``. The score is the disparity (lower = more similar) for ``"procrustes"`` and the
    CKA (higher = more similar) for ``"cka"``. If any candidate's vocabulary differs from the
    reference's, all are compared on word features so that their scores stay comparable.

    >>> rank_sources(target_docs, {"meddocan": "out/meddocan", "cantemist": "out/cantemist"},
    ...              reference="out/target-short")  # doctest: +SKIP
    [('meddocan', 0.21), ('cantemist', 0.34)]
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose from {MEASURES}")
    if not candidates:
        raise ValueError("no candidate source models to rank")
    documents = _documents(target_documents)
    # Tokenizers first (cheap), to choose the level; models are then loaded one at a time, since
    # several large saved candidates would not fit in memory together.
    ref_tokenizer = _tokenizer_of(reference, tokenizer)
    tokenizers = {name: _tokenizer_of(candidate, tokenizer) for name, candidate in candidates.items()}
    vocabulary = ref_tokenizer.get_vocab()
    word_level = any(t.get_vocab() != vocabulary for t in tokenizers.values())
    if word_level:
        logger.info("tokenizers differ from the reference's: comparing word-level features")

    def features(model, tok) -> tuple[torch.Tensor, torch.Tensor]:
        if word_level:
            return word_features(model, tok, documents, max_words=max_tokens, layer=layer)
        x = token_features(model, tok, documents, max_tokens=max_tokens, layer=layer)
        return x, torch.ones(len(x), dtype=torch.bool)

    compare = procrustes_disparity if measure == "procrustes" else linear_cka
    ref_x, ref_covered = features(_model_of(reference), ref_tokenizer)
    if progress is not None:  # ``update(1)`` per model encoded: the reference, then each candidate
        progress.update(1)
    scores = []
    for name, candidate in candidates.items():
        x, covered = features(_model_of(candidate), tokenizers[name])
        both = ref_covered & covered
        scores.append((name, compare(ref_x[both], x[both])))
        if progress is not None:
            progress.update(1)
    return sorted(scores, key=lambda item: item[1], reverse=measure == "cka")


def pyplot():
    """``matplotlib.pyplot`` with a file-only backend, or an error that says how to install it (the ``plots`` extra)."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install 'clinx_hub[plots]'") from err
    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    return plt


def plot_similarity_heatmap(
    scores: Mapping[str, Mapping[str, float]], path: str | Path, *, measure: str = "procrustes", title: str | None = None
) -> Path:
    """A source-by-target heatmap PNG of ``scores[target][source]`` (a missing pair stays blank).

    >>> plot_similarity_heatmap({"meddocan": {"pharmaconer": 0.21}}, "similarity.png")  # doctest: +SKIP
    PosixPath('similarity.png')
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose from {MEASURES}")
    plt = pyplot()
    targets = list(scores)
    sources = sorted({source for row in scores.values() for source in row})
    if not targets or not sources:
        raise ValueError("no similarity scores to plot")
    grid = torch.full((len(sources), len(targets)), float("nan"))
    for j, target in enumerate(targets):
        for i, source in enumerate(sources):
            if source in scores[target]:
                grid[i, j] = scores[target][source]
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * len(targets), 1.2 + 0.55 * len(sources)))
    # Darker = closer for both measures: disparity is low when close, CKA high.
    image = axes.imshow(grid.numpy(), cmap="viridis" if measure == "procrustes" else "viridis_r", aspect="auto")
    axes.set_xticks(range(len(targets)), targets, rotation=30, ha="right")
    axes.set_yticks(range(len(sources)), sources)
    axes.set_xlabel("target")
    axes.set_ylabel("source model")
    for i in range(len(sources)):
        for j in range(len(targets)):
            if not torch.isnan(grid[i, j]):
                axes.text(j, i, f"{float(grid[i, j]):.3f}", ha="center", va="center", color="white", fontsize=8)
    label = "Procrustes disparity (lower = closer)" if measure == "procrustes" else "linear CKA (higher = closer)"
    figure.colorbar(image, ax=axes, label=label)
    axes.set_title(title or "model similarity on the target's training texts")
    figure.tight_layout()
    return save_figure(figure, path)


def save_figure(figure, path: str | Path) -> Path:
    """Save a matplotlib figure as a PNG, written aside and renamed (a reader never sees half a picture), and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial.png")
    figure.savefig(partial, dpi=110)
    pyplot().close(figure)
    partial.replace(path)
    return path
