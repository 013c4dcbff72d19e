"""Online CRF decoding of one sequence that arrives in pieces: the long-note path's decoders.

``streaming.extract_long`` feeds a long note's emissions here piece by piece. These decoders live
beside it, not in ``modeling_clinx.py``: that file is copied into every saved model folder as Hub
remote code, and only the long-note path needs them. They use only the documented surface of
:class:`~clinx_hub.modeling_clinx.LinearChainCRF` (``num_tags``, ``constrained_scores``,
``viterbi_tables``, ``scaled_forward``/``scaled_backward``).

>>> from clinx_hub.modeling_clinx import LinearChainCRF, scheme_constraints
>>> crf = LinearChainCRF(5, *scheme_constraints(["O", "B-X", "I-X", "E-X", "S-X"], "bioes"))
>>> emissions = torch.randn(30, 5)
>>> stream = StreamingViterbi(crf)
>>> tags = torch.cat([stream.push(emissions[:12]), stream.push(emissions[12:]), stream.finish()])
>>> torch.equal(tags, crf.viterbi(emissions.unsqueeze(0), torch.ones(1, 30, dtype=torch.bool))[0])
True
"""

from __future__ import annotations

import torch

from .modeling_clinx import LinearChainCRF, ViterbiTables, at_least_float32, scaled_backward, scaled_forward


class StreamingViterbi:
    """The exact Viterbi path of one sequence that arrives in pieces, in memory that stays small.

    Online Viterbi: after each piece the best paths into every tag at the newest position are
    traced back until they meet. Whatever comes later, the final best path passes through that
    meeting point, so the tags up to it are final: they are returned and their scores dropped.
    In tagging, paths meet within a few positions (at any confident ``O``), so only a short tail
    is kept; the result equals :meth:`LinearChainCRF.viterbi` of the whole sequence.

    >>> stream = StreamingViterbi(crf)  # doctest: +SKIP
    >>> tags = torch.cat([stream.push(e) for e in pieces] + [stream.finish()])  # doctest: +SKIP
    """

    def __init__(self, crf: LinearChainCRF):
        self.crf = crf
        self.tables: ViterbiTables | None = None
        self.history: torch.Tensor | None = None  # [kept positions, 1, tags], block order

    def push(self, emissions: torch.Tensor) -> torch.Tensor:
        """Feed the next ``[positions, tags]`` emissions; returns the tags that became final."""
        emissions = at_least_float32(emissions.detach())
        if self.tables is None:
            self.tables = self.crf.viterbi_tables(emissions.device, emissions.dtype)
        tables = self.tables
        if len(emissions) == 0:
            return torch.empty(0, dtype=torch.long, device=emissions.device)
        emis = emissions[:, tables.perm].unsqueeze(1)
        if self.history is None:
            self.history = tables.forward(emis, tables.start + emis[0])
        else:
            last = self.history[-1]
            new = tables.forward(torch.cat([last.unsqueeze(0), emis]), last)[1:]
            self.history = torch.cat([self.history, new])
        return self._commit()

    def _commit(self) -> torch.Tensor:
        tables, history = self.tables, self.history
        # Only tags that some path can still be in at the newest position take part.
        current = torch.nonzero(torch.isfinite(history[-1, 0])).squeeze(1)
        for t in range(history.shape[0] - 1, 0, -1):
            if len(current) == 0:
                break
            current = tables.previous(history[t - 1], current)
            if bool((current == current[0]).all()):
                path = tables.backtrace(history[:t], current[:1]).squeeze(1)
                self.history = history[t:]
                return tables.perm[path]
        return torch.empty(0, dtype=torch.long, device=history.device)

    def finish(self) -> torch.Tensor:
        """The tags not returned yet: the sequence has ended."""
        if self.history is None:
            return torch.empty(0, dtype=torch.long)
        tables, history = self.tables, self.history
        current = (history[-1] + tables.end).argmax(dim=1)
        self.history = None
        return tables.perm[tables.backtrace(history, current).squeeze(1)]


class StreamingMarginals:
    """Tag marginals of one sequence that arrives in pieces, in memory that stays small.

    The forward pass is carried exactly from piece to piece. The backward pass of a position
    looks ``lookahead`` positions ahead, not to the end of the sequence: in a tagging CRF the
    influence of emissions that far away is far below float32 resolution, so the result equals
    :meth:`LinearChainCRF.marginals` of the whole sequence to ~1e-6 (tests check it).
    """

    def __init__(self, crf: LinearChainCRF, lookahead: int = 512):
        self.crf = crf
        self.lookahead = lookahead
        self.alpha: torch.Tensor | None = None  # scaled forward vector of the last returned position
        self.pending: torch.Tensor | None = None

    def push(self, emissions: torch.Tensor) -> torch.Tensor:
        """Feed the next ``[positions, tags]`` emissions; returns ``[k, tags]`` marginals that became final."""
        emissions = at_least_float32(emissions.detach())
        self.pending = emissions if self.pending is None else torch.cat([self.pending, emissions])
        ready = len(self.pending) - self.lookahead
        if ready <= 0:
            return emissions.new_zeros(0, self.crf.num_tags)
        posterior = self._posterior(self.pending, ready, at_end=False)
        self.pending = self.pending[ready:]
        return posterior

    def finish(self) -> torch.Tensor:
        """The marginals not returned yet: the sequence has ended."""
        if self.pending is None or len(self.pending) == 0:
            return torch.zeros(0, self.crf.num_tags)
        posterior = self._posterior(self.pending, len(self.pending), at_end=True)
        self.pending, self.alpha = None, None
        return posterior

    def _posterior(self, emissions: torch.Tensor, count: int, *, at_end: bool) -> torch.Tensor:
        posterior, alpha = self._scaled(emissions, count, at_end)
        if not bool(torch.isfinite(posterior).all()):  # extreme emissions: float64 has the range
            posterior, alpha = self._scaled(emissions.double(), count, at_end)
            posterior, alpha = posterior.to(emissions.dtype), alpha.to(emissions.dtype)
        self.alpha = alpha
        return posterior

    def _scaled(self, emissions: torch.Tensor, count: int, at_end: bool) -> tuple[torch.Tensor, torch.Tensor]:
        transitions, start, end = self.crf.constrained_scores(emissions.device, emissions.dtype)
        exp_trans = torch.exp(transitions - transitions.max())
        exp_emit = torch.exp(emissions - emissions.max(dim=1, keepdim=True).values).unsqueeze(1)  # [w, 1, T]
        if self.alpha is None:
            first = torch.exp(start - start.max()) * exp_emit[0]
        else:
            first = (self.alpha.to(emissions.dtype) @ exp_trans) * exp_emit[0]
        alpha = scaled_forward(exp_emit[:count], first, exp_trans)
        # Beyond the lookahead nothing is known: an uninformative (all-ones) backward vector.
        last = torch.exp(end - end.max()) if at_end else torch.ones_like(end)
        beta = scaled_backward(exp_emit, last.unsqueeze(0), exp_trans.t().contiguous())[:count]
        posterior = alpha * beta
        return (posterior / posterior.sum(dim=2, keepdim=True)).squeeze(1), alpha[-1]


__all__ = ["StreamingMarginals", "StreamingViterbi"]
