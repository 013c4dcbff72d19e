"""Batching of encoder windows (extraction.length_batches)."""

from __future__ import annotations

import random

from clinx_hub.extraction import length_batches


def test_batches_cover_every_window_once_sorted_by_length() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(5, 512) for _ in range(300)]
    for tolerance in (None, 0.05):
        batches = length_batches(lengths, 16, tolerance)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(300))
        assert [lengths[i] for i in flat] == sorted(lengths)
        assert all(0 < len(batch) <= 16 for batch in batches)


def test_with_a_tolerance_padding_stays_within_it() -> None:
    rng = random.Random(1)
    lengths = [rng.choice([512] * 5 + list(range(20, 512))) for _ in range(200)]
    tight = length_batches(lengths, 16, tolerance=0.05)
    for batch in tight:
        shortest, longest = min(lengths[i] for i in batch), max(lengths[i] for i in batch)
        assert longest <= shortest * 1.05

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(tight) <= 1.05 * sum(lengths) < padded(length_batches(lengths, 16))
    # Windows of one length (the full ones of long notes) still fill whole batches.
    assert length_batches([512] * 40, 16, tolerance=0.05) == [list(range(16)), list(range(16, 32)), list(range(32, 40))]
