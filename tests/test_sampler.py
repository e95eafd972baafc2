"""Samplers: sorted, sort-ish locality, DDP equal counts, disjoint items, per-epoch reshuffle."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lit_seq2seq.sampler import SortishSampler, SortSampler


@pytest.fixture
def lengths() -> np.ndarray:
    return np.random.default_rng(0).integers(3, 60, size=1001)


def test_sort_sampler_sorts_longest_first(lengths: np.ndarray) -> None:
    batches = list(SortSampler(lengths, batch_size=100))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1001))
    assert all(lengths[a] >= lengths[b] for a, b in itertools.pairwise(flat))
    assert max(len(b) for b in batches) <= 100 and len(batches) == 11


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("n", [1001, 37, 250])
def test_ddp_equal_batch_counts_and_disjoint_cover(world: int, n: int) -> None:
    lengths = np.random.default_rng(n).integers(1, 30, size=n)
    for make in (
        lambda r: SortSampler(lengths, 16, world, r),
        lambda r: SortishSampler(lengths, 16, world, r, seed=7, chunk_batches=3),
    ):
        per_rank = [list(make(r)) for r in range(world)]
        assert len({len(b) for b in per_rank}) == 1, "every rank runs the same number of batches"
        assert len(per_rank[0]) == len(make(0))
        items = [i for batches in per_rank for b in batches for i in b]
        assert sorted(items) == list(range(n)), "disjoint, nothing dropped or duplicated"
        assert max(len(b) for batches in per_rank for b in batches) <= 16
        assert min(len(b) for batches in per_rank for b in batches) >= 1


def test_sortish_locality_longest_first_and_epoch_reshuffle(lengths: np.ndarray) -> None:
    sampler = SortishSampler(lengths, batch_size=25, seed=3, chunk_batches=10)
    epoch0 = list(sampler)
    spread = np.mean([np.ptp(lengths[b]) for b in epoch0])
    rng = np.random.default_rng(0)
    random_spread = np.mean([np.ptp(lengths[b]) for b in np.array_split(rng.permutation(1001), 41)])
    assert spread < random_spread / 4, (spread, random_spread)
    assert max(lengths[epoch0[0]]) == lengths.max(), "longest batch first"
    assert list(sampler) == epoch0, "same epoch, same order"
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0 and sorted(map(tuple, epoch1)) != sorted(map(tuple, epoch0))
    assert max(lengths[epoch1[0]]) == lengths.max()


def test_sortish_each_rank_starts_with_its_longest_batch(lengths: np.ndarray) -> None:
    for rank in range(3):
        batches = list(SortishSampler(lengths, 20, num_replicas=3, rank=rank, seed=1))
        maxima = [lengths[b].max() for b in batches]
        assert maxima[0] == max(maxima)


def test_too_few_items_for_equal_counts_is_refused() -> None:
    with pytest.raises(ValueError, match="5 items cannot fill 6 batches"):
        SortSampler([1, 2, 3, 4, 5], batch_size=1, num_replicas=2)
    with pytest.raises(ValueError, match="rank=2"):
        SortSampler([1, 2, 3], batch_size=1, num_replicas=2, rank=2)
