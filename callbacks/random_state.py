"""Random number generator state in the checkpoint, so a resumed run draws what the original would.

Lightning restores weights, optimizer, loops and callbacks, but not the global RNGs; after a
mid-epoch resume, dropout masks and teacher-forcing coin flips would differ from the
uninterrupted run. This callback saves the Python, NumPy, torch CPU and CUDA generator states
with every checkpoint and puts them back on resume. States are stored as plain lists and
tensors, so checkpoints still load with ``torch.load(weights_only=True)``. Under DDP the
checkpoint holds rank 0's states and every rank resumes from them: exact for ranks that were
seeded alike (``seed_everything``) and drew alike, as they do with equal batch shapes.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from typing_extensions import override

from callbacks._lightning import LightningCallback


def capture() -> dict[str, Any]:
    """The current Python, NumPy, torch and CUDA RNG states as checkpoint-safe values."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                  int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }  # fmt: skip


def restore(states: dict[str, Any]) -> None:
    """Put back what ``capture`` returned."""
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RandomStateCheckpoint(LightningCallback):
    """Save the global RNG states with each checkpoint and restore them on resume.

    Example::

        >>> from pytorch_lightning import Trainer
        >>> from callbacks import RandomStateCheckpoint
        >>> trainer = Trainer(callbacks=[RandomStateCheckpoint()], logger=False)
    """

    @override
    def state_dict(self) -> dict[str, Any]:
        return capture()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        restore(state_dict)
