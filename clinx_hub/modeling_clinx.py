"""CLIN-X token classifier: any ``AutoModel`` encoder, a linear emission layer and a linear-chain CRF.

This file (with ``configuration_clinx.py``) is copied into every saved model folder and loaded
by ``AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=True)`` in Pythons
that do not have clinx_hub, so it imports only torch, transformers and its sibling file.

The CRF scores a tag path ``y`` of the labelled positions as
``start[y_0] + sum_t emission[t, y_t] + sum_t transition[y_{t-1}, y_t] + end[y_n]``
(the parameterisation of pytorch-crf). Positions that carry no label (special tokens, context
subwords, non-first subwords in word-level tagging) are skipped: the chain runs over the
labelled positions of each sequence in order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ModelOutput

from .configuration_clinx import ClinXConfig

IGNORE_INDEX = -100
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def scheme_constraints(labels: list[str], scheme: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Allowed transitions, start tags and end tags of a BIOES or BIO tag set.

    Returns boolean tensors ``(allowed[from, to], allowed_start, allowed_end)``.

    >>> allowed, start, end = scheme_constraints(["O", "B-X", "I-X", "E-X", "S-X"], "bioes")
    >>> bool(allowed[0, 2]), bool(start[2]), bool(end[1])  # O->I-X, start->I-X, B-X->end
    (False, False, False)
    """
    parsed = []
    for label in labels:
        prefix, _, entity = label.partition("-")
        if label == "O":
            parsed.append(("O", None))
        elif prefix in ("B", "I", "E", "S") and entity and (scheme == "bioes" or prefix in ("B", "I")):
            parsed.append((prefix, entity))
        else:
            raise ValueError(f"label {label!r} is not a valid {scheme.upper()} tag")
    # A tag "opens" an entity when the next tag must continue it.
    opens = {"B", "I"} if scheme == "bioes" else set()
    continues = {"I", "E"} if scheme == "bioes" else {"I"}
    n = len(labels)
    # Explicit device: transformers builds models under a meta-device context.
    allowed = torch.zeros(n, n, dtype=torch.bool, device="cpu")
    for i, (p_from, e_from) in enumerate(parsed):
        for j, (p_to, e_to) in enumerate(parsed):
            if p_from in opens:
                allowed[i, j] = p_to in continues and e_from == e_to
            elif scheme == "bioes":
                allowed[i, j] = p_to not in continues
            else:  # BIO: I-x may only follow B-x or I-x
                allowed[i, j] = p_to != "I" or (p_from in ("B", "I") and e_from == e_to)
    start = torch.tensor([p not in continues for p, _ in parsed], device="cpu")
    end = torch.tensor([p not in opens for p, _ in parsed], device="cpu")
    return allowed, start, end


class _TransitionBlocks:
    """The allowed transitions cut into dense blocks, so that Viterbi never touches a forbidden one.

    Target tags with the same set of allowed source tags form a group; groups of the same shape
    are stacked and handled by one batched max. Under BIOES with K entity types there are two
    shapes: ``{O, B-*, S-*}`` reachable from ``{O, E-*, S-*}`` (one (2K+1) x (2K+1) block) and
    ``{I-k, E-k}`` reachable from ``{B-k, I-k}`` (K blocks of 2 x 2): about a quarter of the dense
    work. Tags are processed in a permuted order in which each block's targets are contiguous.
    """

    DENSE_BELOW = 64
    """Below this many tags one dense block is faster on CPU: per-step op overhead dominates
    (benchmarks/crf.py: at 57 tags dense 52 ms vs blocks 61 ms; at 117 tags 90 ms vs 66 ms)."""

    def __init__(self, allowed: list[list[bool]], device: torch.device):
        num_tags = len(allowed)
        dense = num_tags < self.DENSE_BELOW
        groups: dict[tuple[int, ...], list[int]] = {}
        unreachable = []
        for target in range(num_tags):
            # Forbidden entries of a dense block hold -inf, so they still never win a max.
            sources = tuple(i for i in range(num_tags) if dense or allowed[i][target])
            if sources:
                groups.setdefault(sources, []).append(target)
            else:
                unreachable.append(target)
        shapes: dict[tuple[int, int], list[tuple[tuple[int, ...], list[int]]]] = {}
        for sources, targets in groups.items():
            shapes.setdefault((len(sources), len(targets)), []).append((sources, targets))
        order = [t for blocks in shapes.values() for _, targets in blocks for t in targets] + unreachable
        position = {tag: i for i, tag in enumerate(order)}
        self.perm = torch.tensor(order, dtype=torch.long, device=device)
        self.num_unreachable = len(unreachable)
        # per shape: sources [G, s] and targets [G, t], both in permuted positions
        self.blocks = [
            (
                torch.tensor([[position[i] for i in s] for s, _ in blocks], dtype=torch.long, device=device),
                torch.tensor([[position[j] for j in t] for _, t in blocks], dtype=torch.long, device=device),
            )
            for blocks in shapes.values()
        ]


def compact_positions(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move each row's labelled positions to the front, keeping their order.

    Returns ``(index, prefix_mask, lengths)``: ``index[b, k]`` is the position of the k-th
    labelled element of row b; ``prefix_mask[b, k]`` says whether row b has a k-th one.
    """
    lengths = mask.sum(dim=1)
    width = int(lengths.max()) if mask.numel() else 0
    index = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :width]
    prefix_mask = torch.arange(width, device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    return index, prefix_mask, lengths


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """CRF arithmetic (long sums of scores) runs in float32 even under fp16/bf16 autocast."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


class LinearChainCRF(nn.Module):
    """A linear-chain CRF with optional transition constraints, vectorised over the batch.

    ``emissions`` are ``[batch, positions, tags]``; ``mask`` says which positions carry a label
    (any pattern: the chain skips the others). Constrained transitions get probability zero in
    the likelihood and are never part of a Viterbi path.

    Decoders built on top of it (clinx_hub's streaming decoders, which are not part of this file)
    use only this surface:

    - ``num_tags``; the learned ``transitions[from, to]``, ``start_transitions`` and
      ``end_transitions`` parameters;
    - :meth:`constrained_scores`: those three with every transition, start and end that the
      label scheme forbids set to ``-inf`` (the constraint masks applied);
    - :meth:`viterbi_tables`: the scores in block tag order with the max-plus recursion over them
      (:class:`ViterbiTables`: ``forward``, ``previous``, ``backtrace``, ``perm``, ``start``, ``end``);
    - :func:`scaled_forward` and :func:`scaled_backward`: the probability-space forward and
      backward recursions of :meth:`marginals`; :func:`at_least_float32`, the arithmetic's dtype.

    >>> crf = LinearChainCRF(5, *scheme_constraints(["O", "B-X", "I-X", "E-X", "S-X"], "bioes"))
    >>> paths = crf.viterbi(torch.randn(2, 7, 5), torch.ones(2, 7, dtype=torch.bool))
    >>> paths.shape
    torch.Size([2, 7])
    """

    def __init__(
        self,
        num_tags: int,
        allowed: torch.Tensor | None = None,
        allowed_start: torch.Tensor | None = None,
        allowed_end: torch.Tensor | None = None,
    ):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        # Constraints follow from the labels and are not learned: kept as Python data (no buffers,
        # which meta-device loading would leave empty) and turned into tensors per device on use.
        everywhere = [True] * num_tags
        self._allowed = [list(everywhere) for _ in range(num_tags)] if allowed is None else allowed.tolist()
        self._allowed_start = everywhere if allowed_start is None else allowed_start.tolist()
        self._allowed_end = everywhere if allowed_end is None else allowed_end.tolist()
        self._device_cache: dict[torch.device, tuple] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.uniform_(self.transitions, -0.1, 0.1)
        init.uniform_(self.start_transitions, -0.1, 0.1)
        init.uniform_(self.end_transitions, -0.1, 0.1)

    def _constraints(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, _TransitionBlocks]:
        if device not in self._device_cache:
            self._device_cache[device] = (
                torch.tensor(self._allowed, dtype=torch.bool, device=device),
                torch.tensor(self._allowed_start, dtype=torch.bool, device=device),
                torch.tensor(self._allowed_end, dtype=torch.bool, device=device),
                _TransitionBlocks(self._allowed, device),
            )
        return self._device_cache[device]

    def constrained_scores(
        self, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transition, start and end scores with forbidden entries at -inf."""
        allowed, allowed_start, allowed_end, _ = self._constraints(device)
        neg_inf = float("-inf")
        return (
            self.transitions.to(dtype).masked_fill(~allowed, neg_inf),
            self.start_transitions.to(dtype).masked_fill(~allowed_start, neg_inf),
            self.end_transitions.to(dtype).masked_fill(~allowed_end, neg_inf),
        )

    # ----------------------------------------------------------------------------- likelihood
    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``tags`` per sequence (0 for a sequence without labels)."""
        index, prefix, lengths = compact_positions(mask.bool())
        emissions = at_least_float32(emissions).gather(1, index.unsqueeze(-1).expand(-1, -1, self.num_tags))
        tags = tags.gather(1, index).masked_fill(~prefix, 0)
        return self._log_partition(emissions, prefix, lengths) - self._path_score(emissions, tags, prefix, lengths)

    def _path_score(
        self, emissions: torch.Tensor, tags: torch.Tensor, prefix: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        if tags.shape[1] == 0:
            return emissions.new_zeros(tags.shape[0])
        allowed, allowed_start, allowed_end, _ = self._constraints(emissions.device)
        last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        has_labels = lengths > 0
        steps = prefix[:, 1:]
        forbidden = (steps & ~allowed[tags[:, :-1], tags[:, 1:]]).any(1)
        forbidden |= has_labels & (~allowed_start[tags[:, 0]] | ~allowed_end[last])
        if bool(forbidden.any()):
            row = int(torch.nonzero(forbidden)[0])
            raise ValueError(
                f"gold tags of sequence {row} in the batch contain a transition that the label scheme "
                "forbids (e.g. O -> I-x, or a path starting inside an entity); the gold labels were "
                "built inconsistently with the scheme"
            )
        score = (emissions.gather(2, tags.unsqueeze(2)).squeeze(2) * prefix).sum(1)
        score = score + (self.transitions[tags[:, :-1], tags[:, 1:]] * steps).sum(1)
        score = score + self.start_transitions[tags[:, 0]] + self.end_transitions[last]
        return score * has_labels

    def _log_partition(self, emissions: torch.Tensor, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log Z by the forward algorithm in scaled probability space (a matrix product per step).

        Each step is ``alpha @ exp(transitions)``: one BLAS call instead of a [B, T, T] logsumexp.
        Rows are renormalised every step and the log scales summed, so nothing overflows; an
        underflow (only with extreme emissions) falls back to the log-space recursion.
        """
        batch, width, _ = emissions.shape
        if width == 0:
            return emissions.new_zeros(batch)
        transitions, start, end = self.constrained_scores(emissions.device, emissions.dtype)
        # The shifts only keep exp() in range; log Z does not depend on them, so no gradient.
        trans_max = transitions.max().detach()
        exp_trans = torch.exp(transitions - trans_max)
        emit_max = emissions.max(dim=2, keepdim=True).values.detach()
        # Padding steps multiply by 1, so a finished row can never reach 0/0 (NaN gradients).
        exp_emit = torch.exp(emissions - emit_max).masked_fill(~prefix.unsqueeze(2), 1.0)

        first = start + emissions[:, 0]
        first_max = first.max(dim=1, keepdim=True).values
        alpha = torch.exp(first - first_max)
        alphas = [alpha]
        log_scales = [first_max.squeeze(1)]
        # unbind, not exp_emit[:, t]: the backward of each indexing step would allocate a
        # full-length gradient, which made marginals of a long document quadratic in its length.
        for exp_emit_t, emit_max_t in zip(exp_emit.unbind(1)[1:], emit_max[:, :, 0].unbind(1)[1:]):
            alpha = (alpha @ exp_trans) * exp_emit_t
            total = alpha.sum(dim=1, keepdim=True)
            alpha = alpha / total
            alphas.append(alpha)
            log_scales.append(total.squeeze(1).log() + emit_max_t + trans_max)
        # Finished rows run on over padding; each row is read at its own last step.
        scales = torch.stack(log_scales, dim=1).masked_fill(~prefix, 0.0).sum(1)
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, self.num_tags)
        last_alpha = torch.stack(alphas, dim=1).gather(1, last).squeeze(1)
        end_max = end.max().detach()
        log_z = scales + (last_alpha * torch.exp(end - end_max)).sum(1).log() + end_max
        log_z = log_z.masked_fill(lengths == 0, 0.0)
        if not bool(torch.isfinite(log_z).all()):
            log_z = self._log_partition_logspace(emissions, prefix, lengths, transitions, start, end)
        return log_z

    def _log_partition_logspace(self, emissions, prefix, lengths, transitions, start, end) -> torch.Tensor:
        score = start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(score.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            score = torch.where(prefix[:, t].unsqueeze(1), step, score)
        return torch.logsumexp(score + end, dim=1).masked_fill(lengths == 0, 0.0)

    @torch.no_grad()
    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Posterior probability of each tag at each position (zeros where ``mask`` is off).

        Scaled forward-backward in probability space: two ``[positions, batch, tags]`` tables and
        no autograd graph, so a whole long document (hundreds of thousands of subwords) costs
        linear time and a few hundred MB. Where the scaled form underflows (extreme emissions)
        the gradient of log Z, which is exactly the marginals, is the fallback.
        """
        emissions = at_least_float32(emissions.detach())
        index, prefix, lengths = compact_positions(mask.bool())
        out = torch.zeros_like(emissions)
        batch, width = index.shape
        if width == 0:
            return out
        compact = emissions.gather(1, index.unsqueeze(-1).expand(-1, -1, self.num_tags))
        transitions, start, end = self.constrained_scores(emissions.device, emissions.dtype)
        exp_trans = torch.exp(transitions - transitions.max())
        exp_trans_t = exp_trans.t().contiguous()
        # Padding steps multiply by 1, so that no row ever sums to zero.
        exp_emit = torch.exp(compact - compact.max(dim=2, keepdim=True).values).masked_fill(~prefix.unsqueeze(2), 1.0)
        exp_emit = exp_emit.transpose(0, 1).contiguous()  # [width, batch, tags]
        exp_end = torch.exp(end - end.max()).expand(batch, -1)

        alpha = scaled_forward(exp_emit, torch.exp(start - start.max()) * exp_emit[0], exp_trans)
        last = (lengths - 1).clamp(min=0).unsqueeze(1)
        beta = scaled_backward(exp_emit, exp_end, exp_trans_t, last)
        posterior = alpha * beta
        posterior = (posterior / posterior.sum(dim=2, keepdim=True)).transpose(0, 1)
        posterior = torch.where(prefix.unsqueeze(2), posterior, 0.0)
        if not bool(torch.isfinite(posterior).all()):
            return self._marginals_autograd(emissions, mask)
        return out.scatter_(1, index.unsqueeze(-1).expand(-1, -1, self.num_tags), posterior)

    def _marginals_autograd(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The marginals as the gradient of log Z with respect to the emissions."""
        with torch.enable_grad():
            leaf = at_least_float32(emissions.detach()).requires_grad_(True)
            index, prefix, lengths = compact_positions(mask.bool())
            compact = leaf.gather(1, index.unsqueeze(-1).expand(-1, -1, self.num_tags))
            log_z = self._log_partition(compact, prefix, lengths)
            (grad,) = torch.autograd.grad(log_z.sum(), leaf)
        return grad

    # ----------------------------------------------------------------------------- Viterbi
    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor, pad: int = IGNORE_INDEX) -> torch.Tensor:
        """Best tag path per sequence, ``pad`` where ``mask`` is off. Vectorised over the batch.

        The forward pass keeps only max scores, computed block by block over allowed transitions
        (see ``_TransitionBlocks``); back-pointers are recovered during the backtrace for the one
        tag per sequence that is on the best path, which is far cheaper than an argmax for every
        tag at every step.
        """
        mask = mask.bool()
        batch, positions, num_tags = emissions.shape
        out = torch.full((batch, positions), pad, dtype=torch.long, device=emissions.device)
        index, prefix, lengths = compact_positions(mask)
        width = index.shape[1]
        if width == 0:
            return out
        tables = self.viterbi_tables(emissions.device, at_least_float32(emissions).dtype)
        # [width, batch, tags] in block order, so each step reads one contiguous slice
        emis = at_least_float32(emissions).gather(1, index.unsqueeze(-1).expand(-1, -1, num_tags))
        emis = emis[:, :, tables.perm].transpose(0, 1).contiguous()
        history = tables.forward(emis, tables.start + emis[0])

        last_index = (lengths - 1).clamp(min=0)
        final = history.gather(0, last_index.view(1, -1, 1).expand(1, -1, num_tags)).squeeze(0)
        current = (final + tables.end).argmax(dim=1)
        path = tables.backtrace(history, current, last_index)
        path = tables.perm[path.t()]
        out.scatter_(1, index, torch.where(prefix, path, out.gather(1, index)))
        return out

    def viterbi_tables(self, device: torch.device, dtype: torch.dtype) -> ViterbiTables:
        """The constrained scores in block tag order, with the max-plus steps of :meth:`viterbi`."""
        blocks = self._constraints(device)[3]
        transitions, start, end = self.constrained_scores(device, dtype)
        perm = blocks.perm
        trans = transitions[perm][:, perm]
        steps = [self._viterbi_step_fn(src, trans[src.unsqueeze(2), tgt.unsqueeze(1)]) for src, tgt in blocks.blocks]
        return ViterbiTables(perm, trans, start[perm], end[perm], steps, blocks.num_unreachable)

    @staticmethod
    def _viterbi_step_fn(src: torch.Tensor, block: torch.Tensor):
        """Max-plus product of one stack of blocks: scores [B, T] -> best scores of its targets.

        ``src`` is ``[G, s]`` (sources per group), ``block`` the ``[G, s, t]`` transition scores.
        Blocks with few sources (BIOES ``I``/``E`` targets: 2) take an elementwise running
        maximum over their source slots; wide ones broadcast and reduce.
        """
        groups, width, targets = block.shape
        if width <= 4:
            slots = [
                (src[:, k].repeat_interleave(targets), block[:, k, :].reshape(-1).contiguous()) for k in range(width)
            ]

            def step(score: torch.Tensor) -> torch.Tensor:
                best = score.index_select(1, slots[0][0]) + slots[0][1]
                for source, trans in slots[1:]:
                    best = torch.maximum(best, score.index_select(1, source) + trans)
                return best

            return step
        flat_src = src.reshape(-1)

        def step(score: torch.Tensor) -> torch.Tensor:
            gathered = score.index_select(1, flat_src).view(-1, groups, width, 1)
            return (gathered + block).amax(dim=2).flatten(1)

        return step


class ViterbiTables:
    """Scores of one CRF in block (permuted) tag order, and the max-plus recursion over them.

    ``perm`` maps block order to tag ids (``perm[k]`` is the tag at block position k); ``start``
    and ``end`` are the constrained start and end scores in block order. Emissions given to
    ``forward`` must be in block order too (``emissions[..., perm]``).
    """

    def __init__(self, perm, trans, start, end, steps, num_unreachable: int):
        self.perm, self.trans, self.start, self.end = perm, trans, start, end
        self.steps, self.num_unreachable = steps, num_unreachable
        self.into = trans.t().contiguous()  # into[j] = scores of transitions into tag j

    def forward(self, emis: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Best-path scores ``[width, batch, tags]``: row 0 is ``first``, then one max-plus step per row."""
        width, _, num_tags = emis.shape
        history = emis.new_empty(emis.shape)
        history[0] = first
        if self.num_unreachable:
            history[1:, :, num_tags - self.num_unreachable :] = float("-inf")
        for t in range(1, width):
            score, row, offset = history[t - 1], history[t], 0
            for step in self.steps:
                best = step(score)
                row[:, offset : offset + best.shape[1]] = best
                offset += best.shape[1]
            row += emis[t]
        return history

    def previous(self, scores: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """The best predecessor of each tag in ``current`` given the previous position's ``scores``."""
        return (scores + self.into.index_select(0, current)).argmax(dim=1)

    def backtrace(self, history: torch.Tensor, current: torch.Tensor, last_index: torch.Tensor | None = None):
        """Tags ``[width, batch]`` of the best paths ending in ``current`` (at each row's ``last_index``)."""
        width = history.shape[0]
        path = torch.empty(width, current.shape[0], dtype=torch.long, device=history.device)
        for t in range(width - 1, 0, -1):
            path[t] = current
            previous = self.previous(history[t - 1], current)
            current = previous if last_index is None else torch.where(t <= last_index, previous, current)
        path[0] = current
        return path


def scaled_forward(exp_emit: torch.Tensor, first: torch.Tensor, exp_trans: torch.Tensor) -> torch.Tensor:
    """Forward vectors ``[width, batch, tags]`` in probability space, each row normalised."""
    alpha = torch.empty_like(exp_emit)
    alpha[0] = first / first.sum(dim=1, keepdim=True)
    for t in range(1, exp_emit.shape[0]):
        step = (alpha[t - 1] @ exp_trans) * exp_emit[t]
        alpha[t] = step / step.sum(dim=1, keepdim=True)
    return alpha


def scaled_backward(
    exp_emit: torch.Tensor, last: torch.Tensor, exp_trans_t: torch.Tensor, last_index: torch.Tensor | None = None
) -> torch.Tensor:
    """Backward vectors ``[width, batch, tags]``, each row normalised; ``last`` at the end.

    With ``last_index`` (``[batch, 1]``), each row's chain ends at its own last position: rows
    that end at or before a position restart there with ``last``.
    """
    width = exp_emit.shape[0]
    beta = torch.empty_like(exp_emit)
    beta[width - 1] = last
    for t in range(width - 2, -1, -1):
        step = (beta[t + 1] * exp_emit[t + 1]) @ exp_trans_t
        if last_index is not None:
            step = torch.where(last_index <= t, last, step)
        beta[t] = step / step.sum(dim=1, keepdim=True)
    return beta


@dataclass
class ClinXTokenClassifierOutput(ModelOutput):
    """Output of [`ClinXForTokenClassification`]: ``logits`` are the CRF's emission scores."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class ClinXPreTrainedModel(PreTrainedModel):
    config_class = ClinXConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Safetensors weights only, unless the caller passes ``use_safetensors=False`` on purpose.

        Unpickling ``pytorch_model.bin`` can run code; a folder that holds only pickle weights is
        refused with the way to convert it.
        """
        if kwargs.get("use_safetensors") is None and pretrained_model_name_or_path is not None:
            folder = str(pretrained_model_name_or_path)
            if kwargs.get("subfolder"):
                folder = os.path.join(folder, kwargs["subfolder"])
            has = [name for name in SAFE_WEIGHTS + PICKLE_WEIGHTS if os.path.isfile(os.path.join(folder, name))]
            if has and not set(has) & set(SAFE_WEIGHTS):
                raise OSError(
                    f"{folder} holds pickle weights ({has[0]}) and no model.safetensors: a CLIN-X model loads "
                    "safetensors only. Where you trust the file, load it once with use_safetensors=False and "
                    "save it again with save_pretrained (safetensors; safe_serialization=True on transformers 4)"
                )
            kwargs["use_safetensors"] = True
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        # An encoder loaded from a local folder leaves that path in its config: a saved (and pushed)
        # config.json keeps a Hub id there, never a path of the machine the model was trained on.
        encoder = self.config.encoder
        if isinstance(encoder, dict) and not _is_hub_id(str(encoder.get("_name_or_path", ""))):
            encoder.pop("_name_or_path", None)
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            _copy_pipeline_files(save_directory)
        return saved

    def _init_weights(self, module: nn.Module) -> None:
        # The encoder is a PreTrainedModel of its own: transformers dispatches its own _init_weights.
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, LinearChainCRF):
            module.reset_parameters()


PIPELINE_FILE = "pipeline.py"
"""The ``clinx-extraction`` pipeline (``config.custom_pipelines``), beside this file in clinx_hub."""


def _copy_pipeline_files(folder) -> None:
    """Copy the pipeline file and the files it imports (extraction, windows, CRF...) into ``folder``.

    With them, ``pipeline("clinx-extraction", model=folder, trust_remote_code=True)`` runs clinx_hub's
    own extraction where clinx_hub is not installed. Beside a copy of this file that came without
    them (a remote-code cache), nothing is copied.
    """
    import shutil

    from transformers.dynamic_module_utils import get_relative_import_files

    here = os.path.dirname(os.path.abspath(__file__))
    pipeline_file = os.path.join(here, PIPELINE_FILE)
    if not os.path.isfile(pipeline_file):
        return
    for source in [pipeline_file, *get_relative_import_files(pipeline_file)]:
        target = os.path.join(str(folder), os.path.basename(source))
        if os.path.abspath(source) != os.path.abspath(target):
            shutil.copyfile(source, target)


class ClinXForTokenClassification(ClinXPreTrainedModel):
    """Encoder + dropout + linear emissions + (optionally) a BIOES-constrained CRF.

    Positions whose label is ``-100`` (special tokens, context) are left out of the loss and of
    the CRF chain. ``logits`` are emission scores; use :meth:`decode` for the Viterbi path.

    >>> from transformers import BertConfig
    >>> labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    >>> config = ClinXConfig(encoder=BertConfig(hidden_size=32, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=37, vocab_size=99).to_dict(),
    ...     id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    >>> model = ClinXForTokenClassification(config)
    >>> model.decode(torch.tensor([[2, 5, 7, 3]])).shape
    torch.Size([1, 4])
    """

    # forward's **kwargs would make the Trainer believe the loss is scaled for gradient
    # accumulation here (it passes num_items_in_batch and skips its own division); it is a
    # per-batch mean, so the Trainer must divide it.
    accepts_loss_kwargs = False

    def __init__(self, config: ClinXConfig, encoder: PreTrainedModel | None = None):
        super().__init__(config)
        if encoder is None:
            encoder = _encoder_from_config(config.encoder_config())
        self.encoder = encoder
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(encoder.config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, config.num_labels)
        labels = [config.id2label[i] for i in range(config.num_labels)]
        if config.use_crf:
            constraints = scheme_constraints(labels, config.label_scheme) if config.crf_constraints else ()
            self.crf = LinearChainCRF(config.num_labels, *constraints)
        else:
            scheme_constraints(labels, config.label_scheme)  # validates the labels
            self.crf = None
        self.post_init()

    @torch.no_grad()
    def set_emission_prior(self, tag_counts: list[int] | torch.Tensor) -> None:
        """Start a fresh emission layer's bias at the training tags' log-frequencies (add-one smoothed).

        With bias 0 and weights N(0, initializer_range) every tag gets nearly the same emission,
        so the CRF's random transitions pick the path and a barely trained model tags a span on
        most subwords (MEDDOPROF at 250 sentences: 76,236 false positives against 729 gold spans).
        The log-prior makes the untrained head predict O, as the data mostly is, and the training
        signal then has to raise a tag above it. Only for a head created fresh: a loaded or
        transferred head keeps what it learnt.

        >>> model.set_emission_prior([950, 10, 10, 10, 20])  # doctest: +SKIP
        """
        counts = torch.as_tensor(tag_counts, dtype=torch.float64, device="cpu")
        if counts.shape != (self.config.num_labels,) or bool((counts < 0).any()):
            raise ValueError(f"expected {self.config.num_labels} tag counts >= 0, got {tuple(counts.shape)}")
        prior = ((counts + 1) / (counts.sum() + counts.numel())).log()
        self.classifier.bias.copy_(prior.to(self.classifier.bias))

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.encoder.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        viterbi_logits: bool | None = None,
        **kwargs,
    ) -> ClinXTokenClassifierOutput | tuple:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Tag ids; `-100` marks positions without a label (left out of the CRF chain).
            The CRF loss is the summed negative log-likelihood divided by the number of labelled
            positions, so that it has the scale of the softmax ablation's token-mean cross-entropy.
        viterbi_logits (`bool`, *optional*):
            Overrides `config.viterbi_logits` (see [`ClinXConfig`]); only in eval mode without
            `labels`. Emissions are always returned in training and with `labels`.
        """
        encoder_inputs = {"attention_mask": attention_mask, "position_ids": position_ids, "inputs_embeds": inputs_embeds}
        if token_type_ids is not None:
            encoder_inputs["token_type_ids"] = token_type_ids
        outputs = self.encoder(
            input_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **encoder_inputs,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))

        loss = None
        if labels is not None:
            label_mask = labels != IGNORE_INDEX
            if self.crf is not None:
                nll = self.crf(logits, labels.masked_fill(~label_mask, 0), label_mask)
                loss = nll.sum() / label_mask.sum().clamp(min=1)
            else:
                loss = nn.functional.cross_entropy(
                    logits.view(-1, self.config.num_labels).float(), labels.view(-1), ignore_index=IGNORE_INDEX
                )
        if viterbi_logits is None:
            viterbi_logits = self.config.viterbi_logits
        if viterbi_logits and labels is None and not self.training:
            logits = self._viterbi_logits(logits, attention_mask)
        output = ClinXTokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def decode(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        label_mask: torch.Tensor | None = None,
        logits: torch.Tensor | None = None,
        **inputs,
    ) -> torch.Tensor:
        """Tag ids per position: the CRF's Viterbi path (argmax without a CRF), -100 off ``label_mask``.

        ``label_mask`` defaults to ``attention_mask`` (all real positions); pass ``logits`` to skip
        the encoder when the emissions are already computed.
        """
        if logits is None:
            logits = self(input_ids=input_ids, attention_mask=attention_mask, **inputs).logits
        if label_mask is None:
            label_mask = attention_mask if attention_mask is not None else torch.ones(logits.shape[:2])
        label_mask = label_mask.to(logits.device).bool()
        if self.crf is not None:
            return self.crf.viterbi(logits, label_mask)
        return logits.argmax(-1).masked_fill(~label_mask, IGNORE_INDEX)

    @torch.no_grad()
    def _viterbi_logits(self, emissions: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Scores for argmax-only consumers: argmax = the Viterbi tag as BIO, softmax there = its marginal.

        A plain ``[CLS]/<s> ... [SEP]/</s>`` input is assumed (what tokenizers give one text): the
        first and last attended positions are special tokens and stay out of the chain, as they
        were in training; they keep their emissions.
        """
        if self.config.tagging_level != "subword":
            raise ValueError(
                "viterbi_logits needs subword tagging: a word-level model's chain runs over first "
                "subwords, and forward does not know where words start"
            )
        if attention_mask is None:
            attention_mask = torch.ones(emissions.shape[:2], dtype=torch.long, device=emissions.device)
        attended = attention_mask.bool()
        seen = attended.long().cumsum(1)
        label_mask = attended & (seen > 1) & (seen < attended.sum(1, keepdim=True))
        paths = self.decode(logits=emissions, label_mask=label_mask)
        labelled = paths != IGNORE_INDEX
        tags = paths.clamp(min=0)
        num_labels = self.config.num_labels
        chosen = self.tag_probabilities(emissions, label_mask).gather(2, tags.unsqueeze(2)).squeeze(2)
        # Above 1/num_labels the chosen column stays the argmax; below it (rare) the score is raised to it.
        chosen = chosen.clamp(min=1.0 / num_labels + 1e-3, max=1.0 - 1e-6)
        scores = ((1.0 - chosen) / (num_labels - 1)).log().unsqueeze(2).expand(-1, -1, num_labels).clone()
        scores.scatter_(2, self._bio_columns(emissions.device)[tags].unsqueeze(2), chosen.log().unsqueeze(2))
        return torch.where(labelled.unsqueeze(2), scores.to(emissions.dtype), emissions)

    def _bio_columns(self, device: torch.device) -> torch.Tensor:
        """For each tag id, the id argmax-only readers should see: ``S-x`` -> ``B-x``, ``E-x`` -> ``I-x``."""
        label2id = {label: i for i, label in self.config.id2label.items()}
        columns = []
        for i in range(self.config.num_labels):
            prefix, _, entity = self.config.id2label[i].partition("-")
            bio = {"S": "B", "E": "I"}.get(prefix)
            columns.append(label2id.get(f"{bio}-{entity}", i) if bio else i)
        return torch.tensor(columns, dtype=torch.long, device=device)

    @torch.no_grad()
    def tag_probabilities(self, logits: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
        """Per-position tag probabilities: CRF marginals, or the softmax without a CRF."""
        if self.crf is not None:
            return self.crf.marginals(logits, label_mask)
        return logits.float().softmax(-1) * label_mask.unsqueeze(-1)

    @classmethod
    def from_backbone(
        cls,
        backbone: str | PreTrainedModel,
        labels: list[str],
        **config_kwargs,
    ) -> ClinXForTokenClassification:
        """A fresh model on a pre-trained encoder: encoder weights loaded, emission layer and CRF initialised.

        Args:
            backbone: a local folder or Hub id of any encoder ``AutoModel`` loads (or the model itself).
            labels: the full tag set in id order (``["O", "B-X", "I-X", "E-X", "S-X", ...]``).
            config_kwargs: any [`ClinXConfig`] field (``label_scheme``, ``use_crf``, ``context_size``...).

        >>> model = ClinXForTokenClassification.from_backbone(path, ["O", "B-X", "I-X", "E-X", "S-X"])  # doctest: +SKIP
        """
        encoder = backbone if isinstance(backbone, PreTrainedModel) else _encoder_from_pretrained(backbone)
        config = ClinXConfig(
            encoder=encoder.config.to_dict(),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **config_kwargs,
        )
        return cls(config, encoder=encoder)


def _is_hub_id(name: str) -> bool:
    """``owner/name`` or ``name`` as on the Hub, and not a folder on this machine."""
    parts = name.split("/")
    return (
        0 < len(parts) <= 2 and all(parts) and not name.startswith((".", "~"))
        and not any(c in name for c in ":\\ ") and not os.path.exists(name)
    )


def _encoder_from_config(config) -> PreTrainedModel:
    try:  # BERT-family encoders carry a pooler that token classification never uses
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def _encoder_from_pretrained(name_or_path: str) -> PreTrainedModel:
    try:
        return AutoModel.from_pretrained(name_or_path, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_pretrained(name_or_path)


__all__ = [
    "ClinXForTokenClassification",
    "ClinXPreTrainedModel",
    "ClinXTokenClassifierOutput",
    "LinearChainCRF",
    "ViterbiTables",
    "at_least_float32",
    "scaled_backward",
    "scaled_forward",
    "scheme_constraints",
]
