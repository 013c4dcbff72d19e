"""Windows -> padded batches -> encoder outputs: the one encoding step below extraction, streaming,
training and similarity.

Windows (``windows.py``) are padded into batches (:func:`pad_windows`, also the training
collator's), grouped by length (:func:`length_batches`) and run through a model in eval mode on
its device (:func:`encoded_batches`). :func:`encode_windows` reads out a ClinX model's emissions
per window, :func:`document_emissions` stitches them into one sequence per document, and
:func:`window_states` reads out an encoder's hidden states (``similarity.py``).

>>> length_batches([50, 10, 12, 48], 3)
[[1, 2, 3], [0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from .documents import Document
from .windows import IGNORE_INDEX, TokenizedDocument, Window, build_windows, tokenize_document


def pad_windows(windows: Sequence[Window], pad_id: int, *, with_labels: bool) -> dict[str, torch.Tensor]:
    """A padded batch: ``input_ids``, ``attention_mask``, ``label_mask`` (and ``labels``)."""
    width = max(len(w.input_ids) for w in windows)
    batch = {
        "input_ids": torch.full((len(windows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros(len(windows), width, dtype=torch.long),
        "label_mask": torch.zeros(len(windows), width, dtype=torch.bool),
    }
    if with_labels:
        batch["labels"] = torch.full((len(windows), width), IGNORE_INDEX, dtype=torch.long)
    for row, window in enumerate(windows):
        n = len(window.input_ids)
        batch["input_ids"][row, :n] = torch.tensor(window.input_ids)
        batch["attention_mask"][row, :n] = 1
        batch["label_mask"][row, :n] = torch.tensor(window.label_mask)
        if with_labels:
            batch["labels"][row, :n] = torch.tensor(window.labels)
    return batch


CPU_PADDING = 0.05
"""On CPU a window joins a batch only if it is at most 5% longer than the batch's shortest."""


def length_batches(lengths: Sequence[int], batch_size: int, tolerance: float | None = None) -> list[list[int]]:
    """Indices sorted by length, in batches of at most ``batch_size``; with ``tolerance``, a batch
    also ends before a window more than ``1 + tolerance`` times as long as its first one.

    >>> length_batches([50, 10, 12, 48], 3)
    [[1, 2, 3], [0]]
    >>> length_batches([50, 10, 12, 48], 3, tolerance=0.05)
    [[1], [2], [3, 0]]
    """
    batches: list[list[int]] = []
    shortest = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        full = not batches or len(batches[-1]) == batch_size
        if full or (tolerance is not None and lengths[i] > shortest * (1 + tolerance)):
            batches.append([])
            shortest = lengths[i]
        batches[-1].append(i)
    return batches


Forward = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""``forward(module, input_ids, attention_mask)`` -> one tensor ``[rows, width, ...]`` per batch."""


@torch.no_grad()
def encoded_batches(
    module: torch.nn.Module, tokenizer, windows: Sequence[Window], forward: Forward, *, batch_size: int = 16
) -> Iterator[tuple[list[Window], dict[str, torch.Tensor], torch.Tensor]]:
    """Each length-sorted batch of windows, padded, with ``forward``'s output on it (float, on the CPU).

    The module runs in eval mode on its own device; its mode is restored afterwards. Batches come
    in length order (``length_batches``; on CPU with at most ``CPU_PADDING`` of padding).
    """
    device = next(module.parameters()).device
    # A CPU computes padding as dearly as text, and small batches cost it little; a GPU the reverse.
    tolerance = CPU_PADDING if device.type == "cpu" else None
    batches = length_batches([len(w.input_ids) for w in windows], batch_size, tolerance)
    was_training = module.training
    module.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    try:
        for indices in batches:
            chunk = [windows[i] for i in indices]
            batch = pad_windows(chunk, pad_id, with_labels=False)
            output = forward(module, batch["input_ids"].to(device), batch["attention_mask"].to(device))
            yield chunk, batch, output.float().cpu()
    finally:
        module.train(was_training)


def _emissions(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    # Stitching and marginals need the raw emissions, not Viterbi-shaped logits.
    return model(input_ids=input_ids, attention_mask=attention_mask, viterbi_logits=False).logits


def encode_windows(
    model: torch.nn.Module, tokenizer, windows: Sequence[Window], *, batch_size: int = 16
) -> Iterator[tuple[Window, torch.Tensor, torch.Tensor]]:
    """Each window with its labelled document positions ``[k]`` and their emissions ``[k, tags]``.

    ``model`` is a ``ClinXForTokenClassification``. Windows come back in the length order of
    :func:`encoded_batches`.
    """
    for chunk, batch, logits in encoded_batches(model, tokenizer, windows, _emissions, batch_size=batch_size):
        for row, window in enumerate(chunk):
            n = len(window.positions)
            keep = batch["label_mask"][row, :n]
            yield window, torch.tensor(window.positions)[keep], logits[row, :n][keep]


def window_states(
    encoder: torch.nn.Module, tokenizer, windows: Sequence[Window], *, layer: int = -1, batch_size: int = 16
) -> Iterator[tuple[Window, torch.Tensor]]:
    """Each window with its hidden states ``[len(window.positions), hidden]`` of ``layer`` (-1: the last).

    ``encoder`` is any ``AutoModel`` encoder (a ClinX model's ``base_model``).
    """

    def states(module: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = module(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=layer != -1, return_dict=True)
        return out.last_hidden_state if layer == -1 else out.hidden_states[layer]

    for chunk, _, rows in encoded_batches(encoder, tokenizer, windows, states, batch_size=batch_size):
        for row, window in zip(rows, chunk):
            yield window, row[: len(window.positions)]


@torch.no_grad()
def document_emissions(
    model: torch.nn.Module,
    tokenizer,
    documents: Sequence[Document],
    *,
    batch_size: int = 16,
) -> tuple[list[TokenizedDocument], list[torch.Tensor], list[torch.Tensor]]:
    """Per document: its tokenization, its emissions [subwords, tags] and its label mask [subwords].

    Every subword's emissions come from the one window whose centre holds it.
    """
    config = model.config
    first_subword = config.tagging_level == "first_subword"
    tokenized = [tokenize_document(doc, tokenizer, first_subword=first_subword) for doc in documents]
    windows = build_windows(
        tokenized,
        tokenizer,
        max_length=config.max_window_length(),
        context=config.context_size,
        mode=config.context_mode,
    )
    emissions = [torch.zeros(len(t.input_ids), config.num_labels) for t in tokenized]
    masks = [torch.zeros(len(t.input_ids), dtype=torch.bool) for t in tokenized]
    for window, positions, rows in encode_windows(model, tokenizer, windows, batch_size=batch_size):
        emissions[window.doc_index][positions] = rows
        masks[window.doc_index][positions] = True
    return tokenized, emissions, masks


__all__ = [
    "CPU_PADDING",
    "document_emissions",
    "encode_windows",
    "encoded_batches",
    "length_batches",
    "pad_windows",
    "window_states",
]
