"""One base class for bad input, so every entry point answers it in one line.

A file that cannot be read, a setting outside its range, a choice that does not exist: each
package's error (``CorpusError``, ``VectorsError``, ``KnnError``, ...) derives from
``InputError``, and ``train.py`` and the CLIs catch this one class and print ``error: <message>``
instead of a traceback. It is a ``ValueError``, so code that caught those still does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class InputError(ValueError):
    """Bad input from the user (a file, a setting, a choice); the message says what to change."""


def check_choice(
    name: str,
    value: Any,
    valid: Iterable[Any],
    error: type[InputError] = InputError,
    where: str = "",
) -> None:
    """Raise ``error`` naming ``name``, ``value`` and the valid choices when ``value`` is not one
    of them (e.g. ``rnn_type='rnn' unknown; valid: ['gru', 'lstm']``), so every such message
    reads the same. ``where`` prefixes it (a checkpoint's path); the choices keep their order."""
    choices = list(valid)
    if value not in choices:
        raise error(f"{where}{name}={value!r} unknown; valid: {choices}")
