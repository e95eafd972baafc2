"""Resolve a dotted path (``torch.optim.Adam``) to the object it names, with one line on failure.

Configs name classes by ``_target_``; a typo there must fail at start-up, naming the key, not
when Hydra instantiates it after the data is built (Hydra's own locator also logs a multi-line
error before raising). The config checks and the optimizer configs both resolve through here.
"""

from __future__ import annotations

import importlib
from typing import Any

from lit_common.errors import InputError


class TargetError(InputError):
    """A dotted path that names no importable object; the message says which part is missing."""


def locate(target: str) -> Any:
    """The object ``target`` names: the longest importable module prefix, then attributes.

    Raises:
        TargetError: one line saying why (no such module, no such attribute, or the module
            failed while importing).
    """
    parts = target.split(".") if isinstance(target, str) else []
    if not parts or not all(parts):
        raise TargetError(f"{target!r} is not a dotted path such as torch.optim.Adam")
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            missing = err.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                continue  # this prefix is not a module: try a shorter one
            # the module exists but imports one that is not installed (torchvision, ...)
            raise TargetError(f"{err} (a package it needs is not installed)") from None
        except Exception as err:  # a module that fails while importing (ImportError included)
            first = f"{type(err).__name__}: {err}".splitlines()[0]
            raise TargetError(f"importing {module_name} failed: {first}") from None
        for j in range(i, len(parts)):
            if not hasattr(obj, parts[j]):
                raise TargetError(f"{'.'.join(parts[:j])} has no {parts[j]!r}")
            obj = getattr(obj, parts[j])
        return obj
    raise TargetError(f"no module named {parts[0]!r}")
