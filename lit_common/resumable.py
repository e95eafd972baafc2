"""A training DataLoader that resumes mid-epoch where the checkpoint left off (both models use it).

Lightning saves ``state_dict()`` of every train DataLoader that has one in the checkpoint and
calls ``load_state_dict`` on resume, before iterating (``_Stateful`` in Lightning 2.x). Without it
a mid-epoch resume replays the epoch from its first batch. Here the state is the sampler epoch
and the number of batches the trainer had finished in it; after a resume the first iteration of
that epoch skips those batches at the batch-sampler level, so no image or sentence is loaded for
nothing and the order stays the one the sampler's seed and epoch give.

The wrapper also forwards ``set_epoch``: Lightning calls it on ``dataloader.sampler`` and
``dataloader.batch_sampler.sampler`` only, so a batch sampler with its own ``set_epoch`` (the
sort-ish sampler) was never reshuffled before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from lit_common.errors import InputError


class ResumableBatches(Sampler[list[int]]):
    """A batch sampler that forwards ``set_epoch`` and skips ``skip`` batches of ``skip_epoch``."""

    def __init__(self, batch_sampler: Any) -> None:
        self.batches = batch_sampler
        self.epoch = 0
        self.skip_epoch: int | None = None
        self.skip = 0

    @property
    def sampler(self) -> ResumableBatches:
        """Where Lightning looks for ``set_epoch`` (``dataloader.batch_sampler.sampler``)."""
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for target in (self.batches, getattr(self.batches, "sampler", None)):
            set_epoch = getattr(target, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)
                return

    def __iter__(self) -> Iterator[list[int]]:
        skip = self.skip if self.skip_epoch == self.epoch else 0
        self.skip_epoch, self.skip = None, 0
        for i, batch in enumerate(self.batches):
            if i >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.batches)


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a batch sampler whose place in the epoch survives a checkpoint.

    Args:
        dataset: the dataset.
        batch_sampler: yields lists of indices (may have ``set_epoch``).
        batches_done: returns how many batches of the current epoch the trainer has finished; read
            when the checkpoint is written.
        **kwargs: other ``DataLoader`` arguments (``collate_fn``, ``num_workers`` ...).
    """

    def __init__(self, dataset: Any, batch_sampler: Any, batches_done: Callable[[], int],
                 **kwargs: Any) -> None:  # fmt: skip
        kwargs.setdefault("generator", private_generator())
        super().__init__(dataset, batch_sampler=ResumableBatches(batch_sampler), **kwargs)
        self._batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        batches: ResumableBatches = self.batch_sampler  # type: ignore[assignment]
        return {"epoch": batches.epoch, "batches_done": int(self._batches_done())}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        batches: ResumableBatches = self.batch_sampler  # type: ignore[assignment]
        batches.set_epoch(state_dict["epoch"])  # workers may draw indices before set_epoch runs
        batches.skip_epoch, batches.skip = state_dict["epoch"], state_dict["batches_done"]


class ResumeError(InputError):
    """A checkpoint this run cannot continue; the message says what would."""


def check_same_world(saved: int | None, world: int) -> None:
    """Refuse to continue a run on another number of processes (nodes x devices).

    Each rank's share of an epoch, the batches per epoch and so the one-cycle and
    teacher-forcing schedules' lengths all follow from the process count, and the count of
    batches done is per rank: continuing 2 nodes' run on 1 would replay or skip half an epoch and
    stretch the schedules. Checkpoints from before this check (no count) are let through.
    """
    if saved is None or int(saved) == world:
        return
    raise ResumeError(
        f"the checkpoint was written by a run of {int(saved)} processes and this run has {world} "
        "(trainer.num_nodes x trainer.devices): resume it with the same number, or start a new "
        "run (without ckpt_path) to train again"
    )


class SameWorldOnResume:
    """For a ``LightningDataModule``: its entry in the checkpoint records the run's process
    count, and resuming a fit with another count stops with one line (``check_same_world``).
    Lightning restores a datamodule's state before fitting, also from an end-of-epoch
    checkpoint (where the train loader's own state is not restored)."""

    trainer: Any

    def _world_size(self) -> int:
        return int(self.trainer.world_size) if self.trainer is not None else 1

    def state_dict(self) -> dict[str, Any]:
        return {"world_size": self._world_size()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = getattr(self.trainer, "state", None)
        if state is not None and getattr(state.fn, "value", state.fn) != "fit":
            return  # validating or testing a checkpoint works on any number of processes
        check_same_world(state_dict.get("world_size"), self._world_size())


def private_generator() -> torch.Generator:
    """A DataLoader generator of its own: creating an iterator draws a worker seed from it, and
    drawing from the global RNG instead would shift a resumed run's dropout masks (the resumed
    run iterates loaders at other moments than the uninterrupted one, e.g. sanity validation)."""
    return torch.Generator().manual_seed(0)


def trainer_batches_done(trainer: Any) -> Callable[[], int]:
    """``batches_done`` for a Lightning trainer: batches processed in the current epoch."""

    def done() -> int:
        if trainer is None:
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    return done
