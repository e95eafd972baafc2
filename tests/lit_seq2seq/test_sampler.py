"""Samplers: sorted, sort-ish locality and padding, DDP equal counts, disjoint items, per-epoch
reshuffle, optimal batch boundaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lit_seq2seq.sampler import SortishSampler, SortSampler, min_padding_split


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
@pytest.mark.parametrize("n", [1001, 37, 250, 8])
def test_ddp_equal_batch_counts_and_disjoint_cover(world: int, n: int) -> None:
    rng = np.random.default_rng(n)
    lengths, tgt = rng.integers(1, 30, size=n), rng.integers(1, 30, size=n)
    for make in (
        lambda r: SortSampler(lengths, 16, world, r),
        lambda r: SortishSampler(lengths, 16, world, r, seed=7, chunk_batches=3),
        lambda r: SortishSampler(lengths, 16, world, r, seed=7, tgt_lengths=tgt),
        lambda r: SortishSampler(lengths, 16, world, r, seed=7, tgt_lengths=tgt, extra_batches=0),
    ):
        for epoch in (0, 1):
            samplers = [make(r) for r in range(world)]
            for sampler in samplers:
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)
            per_rank = [list(s) for s in samplers]
            assert len({len(b) for b in per_rank}) == 1, "every rank runs the same batch count"
            assert len(per_rank[0]) == len(make(0)), "__len__ is the count of every epoch"
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


def test_sortish_each_rank_starts_with_its_most_expensive_batch(lengths: np.ndarray) -> None:
    tgt = np.random.default_rng(1).integers(3, 60, size=len(lengths))
    for rank in range(3):
        batches = list(SortishSampler(lengths, 20, 3, rank, seed=1, tgt_lengths=tgt))
        padded = [len(b) * (lengths[b].max() + tgt[b].max()) for b in batches]
        assert padded[0] == max(padded)


def padding(batches: list, src: np.ndarray, tgt: np.ndarray) -> float:
    real = sum(int(src[b].sum() + tgt[b].sum()) for b in batches)
    return real / sum(len(b) * int(src[b].max() + tgt[b].max()) for b in batches)


def test_sortish_pads_little_with_both_lengths_and_stays_random() -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(3, 16, size=3000)
    tgt = np.clip(src + rng.integers(-3, 4, size=3000), 2, None)  # correlated, as translations
    sampler = SortishSampler(src, 64, seed=0, chunk_batches=100, tgt_lengths=tgt)
    equal = np.array_split(sampler._snake(np.arange(3000)), len(sampler))
    epoch0 = list(sampler)
    assert padding(epoch0, src, tgt) > max(0.95, padding(equal, src, tgt) + 0.01)
    assert len(epoch0) <= int(np.ceil(3000 / 64) * 1.05) + 1
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert [b[:3] for b in epoch1] != [b[:3] for b in epoch0], "batch order is reshuffled"
    # Boundaries follow length groups, so a group that fills a batch on its own (here 13 x 7
    # length pairs of about 33 items, batches of 64) comes back as the same set; most do not.
    again = {tuple(sorted(b)) for b in epoch1} & {tuple(sorted(b)) for b in epoch0}
    assert len(again) < 0.4 * len(epoch0)


def test_min_padding_split_is_optimal_on_a_small_case() -> None:
    rng = np.random.default_rng(5)
    src, tgt = rng.integers(1, 9, size=9), rng.integers(1, 9, size=9)

    def cost(cuts: list[tuple[int, int]], penalty: float) -> float:
        return sum((b - a) * (src[a:b].max() + tgt[a:b].max()) + penalty for a, b in cuts)

    for max_size, penalty in ((3, 0.0), (4, 5.0), (9, 20.0)):
        cuts = min_padding_split(src, tgt, max_size, penalty)
        assert cuts[0][0] == 0 and cuts[-1][1] == 9
        assert all(a2 == b1 for (_, b1), (a2, _) in itertools.pairwise(cuts))
        assert all(0 < b - a <= max_size for a, b in cuts)
        best = min(  # every way of cutting 9 items, by brute force
            cost(c, penalty)
            for mask in range(1 << 8)
            for c in [_cuts_of(mask)]
            if all(b - a <= max_size for a, b in c)
        )
        assert cost(cuts, penalty) == pytest.approx(best)


def _cuts_of(mask: int) -> list[tuple[int, int]]:
    bounds = [0, *[i + 1 for i in range(8) if mask >> i & 1], 9]
    return list(itertools.pairwise(bounds))


def test_too_few_items_for_equal_counts_is_refused() -> None:
    with pytest.raises(ValueError, match="5 items cannot fill 6 batches"):
        SortSampler([1, 2, 3, 4, 5], batch_size=1, num_replicas=2)
    with pytest.raises(ValueError, match="rank=2"):
        SortSampler([1, 2, 3], batch_size=1, num_replicas=2, rank=2)
