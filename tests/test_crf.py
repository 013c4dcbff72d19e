"""The CRF against pytorch-crf, brute force and the BIOES/BIO constraints."""

from __future__ import annotations

import itertools

import pytest
import torch
from torchcrf import CRF

from clinx_hub.modeling_clinx import LinearChainCRF, compact_positions, scheme_constraints
from clinx_hub.tagging import scheme_labels


def copy_parameters(ours: LinearChainCRF, reference: CRF, penalty: tuple | None = None) -> None:
    """Give pytorch-crf our parameters; with ``penalty`` forbidden entries get -1e4 there."""
    with torch.no_grad():
        params = [ours.transitions, ours.start_transitions, ours.end_transitions]
        targets = [reference.transitions, reference.start_transitions, reference.end_transitions]
        for i, (src, dst) in enumerate(zip(params, targets)):
            value = src.clone()
            if penalty is not None:
                value = value.masked_fill(~penalty[i], -1e4)
            dst.copy_(value)


def random_batch(generator: torch.Generator, batch: int, length: int, num_tags: int, scale: float = 3.0):
    emissions = torch.randn(batch, length, num_tags, generator=generator) * scale
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0] = length  # pytorch-crf needs one full row to size its loop sensibly
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    return emissions, mask, lengths


@pytest.mark.parametrize("seed", range(6))
def test_matches_pytorch_crf_without_constraints(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    num_tags = [3, 5, 9, 17, 4, 11][seed]
    emissions, mask, lengths = random_batch(generator, batch=7, length=15, num_tags=num_tags)
    tags = torch.randint(0, num_tags, mask.shape, generator=generator)
    ours = LinearChainCRF(num_tags)
    torch.nn.init.normal_(ours.transitions, std=1.0, generator=generator)
    torch.nn.init.normal_(ours.start_transitions, std=1.0, generator=generator)
    torch.nn.init.normal_(ours.end_transitions, std=1.0, generator=generator)
    reference = CRF(num_tags, batch_first=True)
    copy_parameters(ours, reference)

    expected = -reference(emissions, tags, mask, reduction="none")
    torch.testing.assert_close(ours(emissions, tags, mask), expected, rtol=1e-5, atol=1e-5)
    paths = ours.viterbi(emissions, mask)
    for row, reference_path in enumerate(reference.decode(emissions, mask)):
        assert paths[row, : lengths[row]].tolist() == reference_path
        assert (paths[row, lengths[row] :] == -100).all()


@pytest.mark.parametrize("entity_types,scheme", [(4, "bioes"), (14, "bioes"), (5, "bio")])
def test_matches_pytorch_crf_given_the_same_constraints_as_a_mask(entity_types: int, scheme: str) -> None:
    labels = scheme_labels([f"T{i}" for i in range(entity_types)], scheme)
    constraints = scheme_constraints(labels, scheme)
    ours = LinearChainCRF(len(labels), *constraints)
    ours.reset_parameters()
    reference = CRF(len(labels), batch_first=True)
    copy_parameters(ours, reference, penalty=constraints)
    generator = torch.Generator().manual_seed(entity_types)
    emissions, mask, lengths = random_batch(generator, batch=9, length=40, num_tags=len(labels))
    paths = ours.viterbi(emissions, mask)
    for row, reference_path in enumerate(reference.decode(emissions, mask)):
        assert paths[row, : lengths[row]].tolist() == reference_path
    gold = paths.masked_fill(~mask, 0)
    expected = -reference(emissions, gold, mask, reduction="none")
    torch.testing.assert_close(ours(emissions, gold, mask), expected, rtol=1e-5, atol=1e-4)


def brute_force(crf: LinearChainCRF, emissions: torch.Tensor) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """log Z, best path and marginals of one sequence by enumerating every allowed path."""
    length, num_tags = emissions.shape
    transitions, start, end = crf.constrained_scores(emissions.device)
    scores, paths = [], []
    for path in itertools.product(range(num_tags), repeat=length):
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, path[t]] for t in range(length))
        score = score + sum(transitions[path[t - 1], path[t]] for t in range(1, length))
        if torch.isfinite(score):
            scores.append(score)
            paths.append(path)
    scores = torch.stack(scores)
    probs = torch.softmax(scores, 0)
    marginals = torch.zeros(length, num_tags, dtype=emissions.dtype)
    for p, path in zip(probs, paths):
        for t, tag in enumerate(path):
            marginals[t, tag] += p
    return torch.logsumexp(scores, 0), list(paths[int(scores.argmax())]), marginals


@pytest.mark.parametrize("scheme,length", [("bioes", 4), ("bio", 5), (None, 3)])
def test_log_partition_viterbi_and_marginals_equal_brute_force(scheme: str | None, length: int) -> None:
    labels = scheme_labels(["A"], scheme or "bioes")
    crf = LinearChainCRF(len(labels), *(scheme_constraints(labels, scheme) if scheme else ()))
    torch.nn.init.normal_(crf.transitions)
    torch.nn.init.normal_(crf.start_transitions)
    torch.nn.init.normal_(crf.end_transitions)
    emissions = torch.randn(1, length, len(labels), generator=torch.Generator().manual_seed(1)) * 2
    mask = torch.ones(1, length, dtype=torch.bool)
    log_z, best, marginals = brute_force(crf, emissions[0].double())
    index, prefix, lengths = compact_positions(mask)
    torch.testing.assert_close(crf._log_partition(emissions, prefix, lengths)[0].double(), log_z, rtol=1e-5, atol=1e-5)
    assert crf.viterbi(emissions, mask)[0].tolist() == best
    torch.testing.assert_close(crf.marginals(emissions, mask)[0].double(), marginals, rtol=1e-4, atol=1e-5)


def test_unlabelled_positions_are_skipped_by_the_chain() -> None:
    """A mask with holes (special tokens, context) scores like the compacted sequence."""
    num_tags = 6
    crf = LinearChainCRF(num_tags)
    torch.nn.init.normal_(crf.transitions)
    generator = torch.Generator().manual_seed(3)
    emissions = torch.randn(3, 12, num_tags, generator=generator)
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[0, 2:9] = True  # context on both sides
    mask[1, [1, 3, 4, 8, 11]] = True  # first subwords only
    mask[2, 0] = True  # a single labelled position
    tags = torch.randint(0, num_tags, (3, 12), generator=generator)
    paths = crf.viterbi(emissions, mask)
    nll = crf(emissions, tags, mask)
    for row in range(3):
        keep = mask[row]
        sub_emissions = emissions[row, keep].unsqueeze(0)
        sub_mask = torch.ones(1, int(keep.sum()), dtype=torch.bool)
        assert paths[row, keep].tolist() == crf.viterbi(sub_emissions, sub_mask)[0].tolist()
        assert (paths[row, ~keep] == -100).all()
        torch.testing.assert_close(nll[row], crf(sub_emissions, tags[row, keep].unsqueeze(0), sub_mask)[0])


def test_sequences_without_labels_cost_nothing_and_decode_to_padding() -> None:
    crf = LinearChainCRF(5)
    crf.reset_parameters()
    emissions = torch.randn(2, 4, 5, requires_grad=True)
    mask = torch.tensor([[False] * 4, [True, True, False, False]])
    nll = crf(emissions, torch.zeros(2, 4, dtype=torch.long), mask)
    assert nll[0] == 0 and nll[1] > 0
    nll.sum().backward()
    assert torch.isfinite(emissions.grad).all() and (emissions.grad[0] == 0).all()
    assert crf.viterbi(emissions, mask)[0].tolist() == [-100] * 4
    assert crf.viterbi(emissions, torch.zeros(2, 4, dtype=torch.bool)).eq(-100).all()


@pytest.mark.parametrize("scheme", ["bioes", "bio"])
def test_decoded_paths_never_contain_a_forbidden_transition(scheme: str) -> None:
    labels = scheme_labels(["A", "B", "C"], scheme)
    allowed, allowed_start, allowed_end = scheme_constraints(labels, scheme)
    crf = LinearChainCRF(len(labels), allowed, allowed_start, allowed_end)
    generator = torch.Generator().manual_seed(7)
    checked = 0
    for _ in range(30):
        # Wild emissions and transitions that favour forbidden moves make violations likely
        # for any decoder that does not enforce the constraints.
        with torch.no_grad():
            crf.transitions.copy_(torch.randn(len(labels), len(labels), generator=generator) * 5 + 3 * ~allowed)
            crf.start_transitions.copy_(torch.randn(len(labels), generator=generator) * 5)
            crf.end_transitions.copy_(torch.randn(len(labels), generator=generator) * 5)
        emissions = torch.randn(8, 25, len(labels), generator=generator) * 10
        mask = torch.rand(8, 25, generator=generator) > 0.2
        paths = crf.viterbi(emissions, mask)
        for row in range(8):
            path = paths[row][mask[row]].tolist()
            if not path:
                continue
            checked += 1
            assert allowed_start[path[0]] and allowed_end[path[-1]], [labels[t] for t in path]
            for a, b in zip(path, path[1:]):
                assert allowed[a, b], f"{labels[a]} -> {labels[b]} in {[labels[t] for t in path]}"
    assert checked > 200


def test_scheme_constraints_forbid_the_invalid_bioes_moves() -> None:
    labels = scheme_labels(["X", "Y"], "bioes")
    allowed, start, end = scheme_constraints(labels, "bioes")
    ix = {label: i for i, label in enumerate(labels)}
    forbidden = [("O", "I-X"), ("O", "E-X"), ("B-X", "B-Y"), ("B-X", "O"), ("I-X", "E-Y"), ("E-X", "I-X"), ("S-X", "E-X")]
    permitted = [("O", "B-X"), ("B-X", "I-X"), ("B-X", "E-X"), ("I-X", "E-X"), ("E-X", "S-Y"), ("S-X", "O")]
    assert not any(allowed[ix[a], ix[b]] for a, b in forbidden)
    assert all(allowed[ix[a], ix[b]] for a, b in permitted)
    assert [labels[i] for i in range(len(labels)) if start[i]] == ["O", "B-X", "S-X", "B-Y", "S-Y"]
    assert [labels[i] for i in range(len(labels)) if end[i]] == ["O", "E-X", "S-X", "E-Y", "S-Y"]
    with pytest.raises(ValueError, match="E-X"):
        scheme_constraints(["O", "B-X", "E-X"], "bio")


def test_gold_path_with_a_forbidden_transition_is_an_error_not_a_silent_loss() -> None:
    labels = scheme_labels(["X"], "bioes")
    crf = LinearChainCRF(len(labels), *scheme_constraints(labels, "bioes"))
    crf.reset_parameters()
    tags = torch.tensor([[0, 2, 3]])  # O, I-X, E-X: an entity that never began
    with pytest.raises(ValueError, match="forbids"):
        crf(torch.randn(1, 3, len(labels)), tags, torch.ones(1, 3, dtype=torch.bool))


def test_gradients_match_finite_differences_in_float64() -> None:
    labels = scheme_labels(["A", "B"], "bioes")
    crf = LinearChainCRF(len(labels), *scheme_constraints(labels, "bioes")).double()
    torch.nn.init.normal_(crf.transitions)
    emissions = torch.randn(3, 6, len(labels), dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1] * 6, [0, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 1]], dtype=torch.bool)
    tags = crf.viterbi(emissions.detach(), mask).clamp(min=0)

    def nll(e: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            crf.transitions.copy_(transitions)
        return crf(e, tags, mask)

    # Emissions through the public loss; transitions through the parameter itself.
    assert torch.autograd.gradcheck(lambda e: crf(e, tags, mask), (emissions,), eps=1e-6, atol=1e-5)
    base = crf.transitions.detach().clone()
    loss = crf(emissions.detach(), tags, mask).sum()
    (grad,) = torch.autograd.grad(loss, crf.transitions)
    for i, j in [(0, 1), (1, 2), (3, 0), (4, 4), (0, 0)]:
        step = torch.zeros_like(base)
        step[i, j] = 1e-6
        numeric = (nll(emissions.detach(), base + step).sum() - nll(emissions.detach(), base - step).sum()) / 2e-6
        torch.testing.assert_close(grad[i, j], numeric, rtol=1e-4, atol=1e-6)
    nll(emissions.detach(), base)


def test_extreme_emissions_fall_back_to_log_space() -> None:
    labels = scheme_labels(["A"], "bioes")
    constraints = scheme_constraints(labels, "bioes")
    crf = LinearChainCRF(len(labels), *constraints)
    crf.reset_parameters()
    emissions = torch.zeros(1, 3, len(labels))
    # Only I-A is likely in the middle, but nothing likely before it can reach it.
    emissions[0, 0, 0] = 500.0
    emissions[0, 1, 2] = 500.0
    emissions[0, 2, 0] = 500.0
    mask = torch.ones(1, 3, dtype=torch.bool)
    index, prefix, lengths = compact_positions(mask)
    log_z = crf._log_partition(emissions, prefix, lengths)
    expected = crf._log_partition_logspace(emissions, prefix, lengths, *crf.constrained_scores(emissions.device))
    assert torch.isfinite(log_z).all()
    torch.testing.assert_close(log_z, expected)
