"""Documents or raw text -> spans, the way the model was trained: same windows, same context.

Windows are encoded in length-sorted batches (``encoding.py``); each document's centre emissions are stitched
back into one emission sequence (every subword exactly once) and decoded with one Viterbi pass
over the whole document, so a mention is never split where two windows meet. Confidences are
the CRF's tag marginals (softmax probabilities without a CRF), averaged over a span's subwords.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import streaming
from .documents import Document, Span
from .encoding import document_emissions
from .modeling_clinx import ClinXForTokenClassification
from .sentences import split_sentences
from .streaming import Progress
from .tagging import tags_to_spans
from .windows import IGNORE_INDEX


def _as_documents(texts: Sequence[str | Document]) -> list[Document]:
    """Texts to extract from, their sentences split from the text alone.

    A corpus reader's sentences are built around the gold spans (a sentence never ends inside an
    entity), which is right for training but would let gold annotations shape the sentence-mode
    windows of a prediction: ``evaluate`` on a test split would then differ from ``predict`` on its
    texts and from the official scorers' view. So prediction always splits sentences itself.
    """
    documents = []
    for i, item in enumerate(texts):
        doc_id, text = (item.id, item.text) if isinstance(item, Document) else (f"doc{i}", item)
        documents.append(Document(doc_id, text, sentences=split_sentences(text)))
    return documents


DECODE_POSITIONS = 1 << 16
"""Documents x padded length per Viterbi/marginals batch. The CRF steps through positions one
at a time and each step costs about the same for 4 or 64 rows, so decoding many documents at once
saves time; the budget bounds the ``[rows, length, tags]`` tables (~30 MB each at 117 tags)."""


def _decode_batches(lengths: Sequence[int]) -> list[list[int]]:
    """Indices of non-empty documents, by length, grouped so that rows x longest <= DECODE_POSITIONS."""
    batches: list[list[int]] = []
    for i in sorted((i for i, n in enumerate(lengths) if n), key=lambda i: lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[i] <= DECODE_POSITIONS:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


GROUP_CHARS = 200_000
"""Characters of notes extracted together: bounds the memory of a call with very many notes."""


@torch.no_grad()
def extract_documents(
    model: ClinXForTokenClassification,
    tokenizer,
    documents: Sequence[str | Document],
    *,
    batch_size: int = 16,
    with_scores: bool = True,
    progress: Progress | None = None,
) -> list[list[Span]]:
    """Predicted spans of each document (or raw text), with character offsets and confidences.

    Notes are processed in groups of about ``GROUP_CHARS`` characters; a note longer than
    ``streaming.STREAM_CHARS`` alone, piece by piece (``streaming.extract_long``), so that memory
    does not grow with the length of a note or the number of notes. ``progress`` (a tqdm bar, say)
    gets ``update(characters)`` as groups of notes and pieces of long notes are done.

    >>> extract_documents(model, tokenizer, ["Paciente de 45 años."])  # doctest: +SKIP
    [[Span(start=12, end=19, label='EDAD_SUJETO_ASISTENCIA', text='45 años', score=0.98)]]
    """
    documents = _as_documents(documents)
    results: list[list[Span]] = [[] for _ in documents]
    group: list[int] = []
    size = 0

    def flush() -> None:
        nonlocal size
        for i, spans in zip(group, _extract_group(model, tokenizer, [documents[i] for i in group], batch_size, with_scores)):
            results[i] = spans
        if progress is not None:
            progress.update(size)
        group.clear()
        size = 0

    for i, document in enumerate(documents):
        if len(document.text) > streaming.STREAM_CHARS:
            results[i] = streaming.extract_long(
                model, tokenizer, document, batch_size=batch_size, with_scores=with_scores, progress=progress
            )
            continue
        group.append(i)
        size += len(document.text)
        if size >= GROUP_CHARS:
            flush()
    if group:
        flush()
    return results


def _extract_group(
    model: ClinXForTokenClassification, tokenizer, documents: list[Document], batch_size: int, with_scores: bool
) -> list[list[Span]]:
    """Whole-note path: all windows encoded in length-sorted batches, one Viterbi per note."""
    tokenized, emissions, masks = document_emissions(model, tokenizer, documents, batch_size=batch_size)
    id2label = model.config.id2label
    word_level = model.config.tagging_level == "first_subword"
    results: list[list[Span]] = [[] for _ in documents]
    device = next(model.parameters()).device
    for chunk in _decode_batches([len(t.input_ids) for t in tokenized]):
        width = max(len(tokenized[i].input_ids) for i in chunk)
        logits = torch.zeros(len(chunk), width, model.config.num_labels)
        mask = torch.zeros(len(chunk), width, dtype=torch.bool)
        for row, i in enumerate(chunk):
            logits[row, : len(emissions[i])] = emissions[i]
            mask[row, : len(masks[i])] = masks[i]
        logits, mask = logits.to(device), mask.to(device)
        paths = model.decode(logits=logits, label_mask=mask).cpu()
        chosen = None
        if with_scores:  # the probability of each position's tag (0 off the chain)
            probabilities = model.tag_probabilities(logits, mask).cpu()
            chosen = probabilities.gather(2, paths.clamp(min=0).unsqueeze(2)).squeeze(2) * (paths != IGNORE_INDEX)
        for row, i in enumerate(chunk):
            n = len(tokenized[i].input_ids)
            ids = paths[row, :n].tolist()
            tags = [id2label[t] if t != IGNORE_INDEX else None for t in ids]
            scores = chosen[row, :n].tolist() if chosen is not None else None
            results[i] = tags_to_spans(
                tags,
                tokenized[i].offsets,
                documents[i].text,
                scores=scores,
                word_ids=tokenized[i].word_ids if word_level else None,
            )
    return results


def extract(model: ClinXForTokenClassification, tokenizer, text: str, **kwargs) -> list[Span]:
    """Predicted spans of one note of any length.

    >>> extract(model, tokenizer, "Paciente de 45 años.")  # doctest: +SKIP
    """
    return extract_documents(model, tokenizer, [text], **kwargs)[0]
