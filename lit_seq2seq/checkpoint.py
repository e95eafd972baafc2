"""Reading a Lightning checkpoint safely (``weights_only``) for use outside training.

Both models store what inference needs besides weights under their own key (``translation``:
vocabularies; ``devise``: class vectors), so a file written by the other model, or not by Lightning
at all, is refused with a message that says which command writes the right one.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from lit_common.errors import InputError


class CheckpointError(InputError):
    """A file that is not a usable checkpoint of the expected model."""


def read_checkpoint(
    path: str | Path, key: str, what: str, command: str, map_location: str = "cpu"
) -> dict[str, Any]:
    """The checkpoint dict at ``path``, which must hold ``key``.

    Args:
        path: the ``.ckpt`` file.
        key: the entry the model's ``on_save_checkpoint`` writes.
        what: how the error names the expected file, e.g. "translation checkpoint (no
            vocabularies in it)".
        command: the command that writes such a checkpoint, for the error message.
        map_location: device for the tensors.

    Raises:
        CheckpointError: a missing or unreadable file, or one without ``key``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise CheckpointError(f"{path} is not a readable checkpoint ({err})") from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint: it holds Python objects besides tensors and "
            "plain values, and loading those could run code; refused"
        ) from None
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path} is not a readable checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        raise CheckpointError(f"{path} is not a {what}; make sure it was written by `{command}`")
    return checkpoint
