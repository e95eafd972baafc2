"""The callbacks' own error for a setting they cannot run with.

A ``ValueError``, so code that caught those still does; an entry point (this repository's
``train.py``) can catch this one class and print its message in one line instead of a traceback.
The callbacks import nothing from the rest of the repository, so the class lives here.
"""

from __future__ import annotations


class CallbackConfigError(ValueError):
    """A callback setting that cannot work; the message names it and what would fix it."""


class CallbackSetupError(CallbackConfigError, RuntimeError):
    """A callback that does not fit the module it is attached to (found when fitting starts)."""


class MissingAttributeError(CallbackConfigError, AttributeError):
    """The module lacks the attribute a callback is told to drive."""
