"""Batches without a lone last item, the same number on every rank."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import BatchSampler, Sampler


class NoSingletonBatchSampler(BatchSampler):
    """Batches of ``batch_size``; a last batch of one item joins the batch before it.

    Training BatchNorm cannot normalise a single item, and dropping the last partial batch would
    lose up to ``batch_size - 1`` images an epoch; the sampler's length is the same on every rank.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int) -> None:
        super().__init__(sampler, batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list[int]]:
        batches = list(super().__iter__())
        if len(batches) > 1 and len(batches[-1]) == 1:
            last = batches.pop()
            batches[-1] = batches[-1] + last
        yield from batches

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)
