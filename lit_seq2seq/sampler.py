"""Length-aware batch samplers that shard themselves across DDP ranks.

``SortSampler`` (validation) sorts by length, longest first, so batches carry little padding.
``SortishSampler`` (training) keeps some randomness: shuffle, cut into chunks of ``chunk_batches``
batches, sort each chunk by length, then shuffle the batch order with the longest batches first, so
an out-of-memory error shows on the first step (fast.ai's ``SortishSampler``).

A batch costs ``size x (longest source + longest target)`` padded tokens, so the sort-ish sampler
sorts each chunk by source length, then by target length in alternating directions (a "snake":
the end of one source length meets the start of the next at similar target lengths), and places
the batch boundaries by dynamic programming: the fewest padded tokens plus a charge per batch,
each batch at most ``batch_size`` items (``min_padding_split``), with the charge set so that the
epoch uses its allowed batches (``extra_batches``). On the Tatoeba questions at 125 pairs per
batch about 2.4% of the tokens are padding (``bench/padding.py``). Items of equal lengths are in
random order and the batch order is shuffled every epoch; a length group that fills a batch on its
own comes back as the same set (12% of the batches there).

Under DDP every rank must run the same number of batches or the next collective hangs (Lightning
#19272). Every epoch has the same number of batches, a multiple of the world size fixed at
construction, and rank ``r`` takes batches ``r, r + W, ...``: equal counts, disjoint items, every
item exactly once, nothing duplicated or dropped. Randomness comes from ``seed + epoch`` only, so
all ranks build the same global order; Lightning calls ``set_epoch`` every epoch. Use them with
``Trainer(use_distributed_sampler=False)``: Lightning would otherwise try to replace them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from lit_common.errors import InputError


def _n_batches(n_items: int, batch_size: int, num_replicas: int) -> int:
    if batch_size < 1:
        raise InputError(f"batch_size={batch_size}: expected >= 1")
    if num_replicas < 1:
        raise InputError(f"num_replicas={num_replicas}: expected >= 1")
    n_batches = num_replicas * math.ceil(n_items / (num_replicas * batch_size))
    if n_items < n_batches or n_items == 0:
        raise InputError(
            f"{n_items} items cannot fill {n_batches} batches ({num_replicas} ranks x equal "
            f"counts, batch_size={batch_size}) without duplicating items; use more data, a larger "
            "batch_size or fewer devices"
        )
    return n_batches


def min_padding_split(
    src: np.ndarray, tgt: np.ndarray, max_size: int, penalty: float
) -> list[tuple[int, int]]:
    """Cut a sequence of items into consecutive batches of at most ``max_size`` items, minimising
    the padded tokens (``size x (max src + max tgt)`` per batch) plus ``penalty`` per batch.

    Exact dynamic programming over the end of the last batch: O(items x max_size) in NumPy.

    Returns:
        ``(start, end)`` of each batch, in order, covering every item once.
    """
    n = len(src)
    cost = np.full(n + 1, np.inf)
    cost[0] = 0.0
    start_of = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        lo = max(0, end - max_size)
        longest_src = np.maximum.accumulate(src[lo:end][::-1])[::-1]  # max of src[i:end]
        longest_tgt = np.maximum.accumulate(tgt[lo:end][::-1])[::-1]
        sizes = end - np.arange(lo, end)
        totals = cost[lo:end] + sizes * (longest_src + longest_tgt) + penalty
        best = int(np.argmin(totals))
        cost[end], start_of[end] = totals[best], lo + best
    cuts, end = [], n
    while end > 0:
        cuts.append((int(start_of[end]), end))
        end = int(start_of[end])
    return cuts[::-1]


def _check_rank(rank: int, num_replicas: int) -> None:
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank={rank}: expected 0 <= rank < num_replicas={num_replicas}")


class SortSampler(Sampler[list[int]]):
    """Batches of indices sorted by ``lengths``, longest first, sharded over ranks.

    Args:
        lengths: length of each item (e.g. source tokens).
        batch_size: most items per batch on each rank.
        num_replicas: DDP world size.
        rank: this process's rank.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, num_replicas: int = 1, rank: int = 0
    ) -> None:
        _check_rank(rank, num_replicas)
        lengths = np.asarray(lengths)
        n_batches = _n_batches(len(lengths), batch_size, num_replicas)
        order = np.argsort(-lengths, kind="stable")
        self.batches = [b.tolist() for b in np.array_split(order, n_batches)[rank::num_replicas]]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class SortishSampler(Sampler[list[int]]):
    """Shuffled batches of similar-length items, longest batch first, resampled each epoch.

    Args:
        lengths: length of each item (e.g. source tokens).
        batch_size: most items per batch on each rank.
        num_replicas: DDP world size.
        rank: this process's rank.
        seed: shared by all ranks; the order of epoch ``e`` depends on ``seed + e`` only.
        chunk_batches: batches per sorted chunk (fast.ai: 50); larger means less padding and
            less randomness.
        tgt_lengths: the second length of each item (e.g. target tokens), sorted second and
            counted in the padding; None sorts and pads by ``lengths`` alone.
        extra_batches: share of batches allowed beyond the fewest possible, for boundaries that
            save padding (0 keeps the fewest; the count is fixed for every epoch either way).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        chunk_batches: int = 50,
        tgt_lengths: Sequence[int] | None = None,
        extra_batches: float = 0.05,
    ) -> None:
        _check_rank(rank, num_replicas)
        if chunk_batches < 1:
            raise InputError(f"chunk_batches={chunk_batches}: expected >= 1")
        if not 0 <= extra_batches <= 1:
            raise InputError(f"extra_batches={extra_batches}: expected 0 <= share <= 1")
        self.lengths = np.asarray(lengths)
        self.tgt_lengths = (
            np.zeros_like(self.lengths) if tgt_lengths is None else np.asarray(tgt_lengths)
        )
        if self.tgt_lengths.shape != self.lengths.shape:
            raise InputError(
                f"tgt_lengths has {len(self.tgt_lengths)} items but lengths {len(self.lengths)}"
            )
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.seed, self.chunk_batches = seed, chunk_batches
        fewest = _n_batches(len(self.lengths), batch_size, num_replicas)
        allowed = num_replicas * math.ceil(fewest * (1 + extra_batches) / num_replicas)
        most = num_replicas * (len(self.lengths) // num_replicas)  # no batch may be empty
        self.n_batches = max(fewest, min(allowed, most))
        # The first charge per batch tried by _split (half a batch of the average item); the
        # charge used is about the smallest that fits n_batches.
        total = self.lengths + self.tgt_lengths
        self.penalty = 0.5 * batch_size * float(total.mean()) if len(total) else 0.0
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _snake(self, items: np.ndarray) -> np.ndarray:
        """``items`` by source length descending, target length alternating by source length."""
        src, tgt = self.lengths[items], self.tgt_lengths[items]
        return items[np.lexsort((np.where(src % 2 == 0, -tgt, tgt), -src))]  # stable: ties random

    def _split(self, ordered: list[np.ndarray]) -> list[np.ndarray]:
        """Cut each sorted chunk where padding costs least, in at most ``n_batches`` batches.

        Every batch is charged a number of padded tokens, found by bisection to within 5%: about
        the smallest charge that still fits ``n_batches``, so the allowed extra batches go where
        they remove the most padding (on the Tatoeba questions at 125 a batch: 0.976 of the tokens
        real, against 0.966 with a fixed charge of half a batch); about six dynamic programs per
        epoch. Equal sizes are the last resort.
        """

        def cut(charge: float) -> list[np.ndarray]:
            return [
                part[a:b]
                for part in ordered
                for a, b in min_padding_split(
                    self.lengths[part], self.tgt_lengths[part], self.batch_size, charge
                )
            ]

        high = self.penalty  # never a previous epoch's charge: batches depend on seed + epoch only
        best = cut(high)
        doublings = 0
        while len(best) > self.n_batches:  # raise the charge until the batches fit
            if doublings == 8:
                return np.array_split(np.concatenate(ordered), self.n_batches)
            high, doublings = 2 * high + 1.0, doublings + 1
            best = cut(high)
        low = high / 2 if doublings else 0.0
        while len(best) < self.n_batches and high - low > max(1.0, 0.05 * high):
            mid = (low + high) / 2
            batches = cut(mid)
            if len(batches) <= self.n_batches:
                high, best = mid, batches
            else:
                low = mid
        return best

    def global_batches(self) -> list[np.ndarray]:
        """All ranks' batches of this epoch in order; rank ``r`` takes ``r, r + W, ...``."""
        rng = np.random.default_rng([self.seed, self.epoch])
        perm = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.chunk_batches
        ordered = [self._snake(perm[i : i + chunk]) for i in range(0, len(perm), chunk)]
        batches = self._split(ordered)
        while len(batches) < self.n_batches:  # halve the largest batch (no new padding)
            i = max(range(len(batches)), key=lambda j: len(batches[j]))
            half = len(batches[i]) // 2
            batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
        batches = [batches[i] for i in rng.permutation(self.n_batches)]
        # The num_replicas most expensive batches go first, one to each rank.
        cost = [len(b) * int(self.lengths[b].max() + self.tgt_lengths[b].max()) for b in batches]
        heaviest = sorted(range(self.n_batches), key=lambda i: -cost[i])[: self.num_replicas]
        first = set(heaviest)
        return [batches[i] for i in heaviest] + [b for i, b in enumerate(batches) if i not in first]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches()[self.rank :: self.num_replicas]
        return iter([b.tolist() for b in batches])

    def __len__(self) -> int:
        return self.n_batches // self.num_replicas
