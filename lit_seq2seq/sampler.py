"""Length-aware batch samplers that shard themselves across DDP ranks.

``SortSampler`` (validation) sorts by length, longest first, so batches carry little padding.
``SortishSampler`` (training) keeps some randomness: shuffle, cut into chunks of ``chunk_batches``
batches, sort each chunk by length, then shuffle the batch order with the longest batches first, so
an out-of-memory error shows on the first step (fast.ai's ``SortishSampler``).

Under DDP every rank must run the same number of batches or the next collective hangs (Lightning
#19272). Both samplers cut the items into ``world_size * k`` batches whose sizes differ by at most
one (never above ``batch_size``) and give rank ``r`` batches ``r, r + W, ...``: equal counts,
disjoint items, every item exactly once, nothing duplicated or dropped. Randomness comes from ``seed
+ epoch`` only, so all ranks build the same global order; Lightning calls ``set_epoch`` every epoch.
Use them with ``Trainer(use_distributed_sampler=False)``: Lightning would otherwise try to replace
them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def _n_batches(n_items: int, batch_size: int, num_replicas: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected >= 1")
    if num_replicas < 1:
        raise ValueError(f"num_replicas={num_replicas}: expected >= 1")
    n_batches = num_replicas * math.ceil(n_items / (num_replicas * batch_size))
    if n_items < n_batches or n_items == 0:
        raise ValueError(
            f"{n_items} items cannot fill {n_batches} batches ({num_replicas} ranks x equal "
            f"counts, batch_size={batch_size}) without duplicating items; use more data, a larger "
            "batch_size or fewer devices"
        )
    return n_batches


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
        lengths: length of each item.
        batch_size: most items per batch on each rank.
        num_replicas: DDP world size.
        rank: this process's rank.
        seed: shared by all ranks; the order of epoch ``e`` depends on ``seed + e`` only.
        chunk_batches: batches per sorted chunk (fast.ai: 50); larger means less padding and
            less randomness.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        chunk_batches: int = 50,
    ) -> None:
        _check_rank(rank, num_replicas)
        if chunk_batches < 1:
            raise ValueError(f"chunk_batches={chunk_batches}: expected >= 1")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.seed, self.chunk_batches = seed, chunk_batches
        self.n_batches = _n_batches(len(self.lengths), batch_size, num_replicas)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[np.ndarray]:
        """All ranks' batches of this epoch in order; rank ``r`` takes ``r, r + W, ...``."""
        rng = np.random.default_rng([self.seed, self.epoch])
        perm = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.chunk_batches
        chunks = [perm[i : i + chunk] for i in range(0, len(perm), chunk)]
        ordered = np.concatenate([c[np.argsort(-self.lengths[c], kind="stable")] for c in chunks])
        batches = np.array_split(ordered, self.n_batches)
        batches = [batches[i] for i in rng.permutation(self.n_batches)]
        # The num_replicas longest batches go first, one to each rank.
        longest = sorted(range(self.n_batches), key=lambda i: -self.lengths[batches[i]].max())
        first = set(longest[: self.num_replicas])
        return [batches[i] for i in longest[: self.num_replicas]] + [
            b for i, b in enumerate(batches) if i not in first
        ]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches()[self.rank :: self.num_replicas]
        return iter([b.tolist() for b in batches])

    def __len__(self) -> int:
        return self.n_batches // self.num_replicas
