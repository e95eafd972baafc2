"""Bad input answered in one line: ``error: <message>``, exit status 1, never a traceback.

Every package's input error derives from ``InputError``; ``one_line_errors`` turns those (also
when Hydra wraps one raised in a ``_target_``'s constructor) into ``SystemExit``, and
``constructing`` turns what Lightning's constructors raise for a refused setting into a
``ConfigError`` that names the config group.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import InstantiationException
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from callbacks import CallbackConfigError, NonFiniteLossError
from lit_common.errors import InputError


class ConfigError(InputError):
    """A configuration that cannot run here; the message says which key and how to fix it."""


# Bad input (a file, a setting): one `error: ...` line, never a traceback. Every package's input
# error derives from InputError; the callbacks (Lightning only) have their own two.
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    InputError,
    CallbackConfigError,
    NonFiniteLossError,
)


# What Lightning's constructors raise for a setting they refuse (see ``constructing``).
_REFUSED: tuple[type[BaseException], ...] = (MisconfigurationException, ValueError, TypeError)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn bad-input errors, also when Hydra wraps them (raised in a ``_target_``'s
    constructor), into ``SystemExit("error: <message>")``: exit status 1 and one line."""
    try:
        yield
    except InstantiationException as err:
        if isinstance(err.__cause__, INPUT_ERRORS):
            raise SystemExit(f"error: {err.__cause__}") from None
        raise
    except INPUT_ERRORS as err:
        raise SystemExit(f"error: {err}") from None


@contextmanager
def constructing(group: str) -> Iterator[None]:
    """Name ``group`` in one line when building it fails on a setting: Lightning refuses some
    (an unknown ``trainer.precision``, devices its accelerator cannot use, ``ModelCheckpoint``
    arguments that exclude each other) with ``MisconfigurationException``, ``ValueError`` or
    ``TypeError`` from the constructor, which would otherwise end in a traceback."""
    try:
        yield
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, INPUT_ERRORS) or not isinstance(cause, _REFUSED):
            raise
        raise ConfigError(f"{group}: {_first_line(cause)}") from None
    except _REFUSED as err:
        if isinstance(err, INPUT_ERRORS):
            raise
        raise ConfigError(f"{group}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
