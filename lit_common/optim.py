"""Optimizers and LR schedulers as Hydra ``_partial_`` objects, kept as plain config in checkpoints.

A model config names any optimizer or scheduler by its ``_target_`` (``torch.optim.AdamW``,
``torch.optim.SGD``, a class of your own) with ``_partial_: true`` and its arguments; the module
calls it with its parameters (or the optimizer) in ``configure_optimizers``. The module keeps the
config, not the built object, so its hyperparameters stay numbers and strings that a
``weights_only`` checkpoint load accepts and ``load_from_checkpoint`` can rebuild from. Model
configs set ``_recursive_: false`` so Hydra hands these configs over unbuilt.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lit_common.errors import InputError
from lit_common.ranges import check_ranges, ranges_of


def partial_config(config: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    """``config`` as a plain dict with ``_partial_: true``, its ``_target_`` checked now, so a
    typo fails at start-up and names the key (``None`` stays ``None``)."""
    if config is None:
        return None
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)  # type: ignore[assignment]
    if not isinstance(config, Mapping) or not isinstance(config.get("_target_"), str):
        raise InputError(
            f"{name}: expected a config with a _target_ such as torch.optim.Adam, got {config!r}"
        )
    target = config["_target_"]
    reason = unimportable(target)
    if reason:
        raise InputError(f"{name}._target_={target!r} cannot be imported ({reason})")
    check_ranges(config, ranges_of(target), f"{name}.")
    return {**config, "_partial_": True}


def unimportable(target: str) -> str | None:
    """Why the dotted path ``target`` names no object (one line), or None when it does. Checked
    here rather than with Hydra's locator, which logs a multi-line error before raising."""
    parts = target.split(".")
    if not all(parts):
        return "not a dotted path such as torch.optim.Adam"
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        except Exception as err:  # a module that fails while importing
            return f"importing {module_name} failed: {type(err).__name__}: {err}".splitlines()[0]
        for j in range(i, len(parts)):
            if not hasattr(obj, parts[j]):
                return f"{'.'.join(parts[:j])} has no {parts[j]!r}"
            obj = getattr(obj, parts[j])
        return None
    return f"no module named {parts[0]!r}"


def build(config: Mapping[str, Any], *args: Any) -> Any:
    """Call the ``_partial_`` object of ``config`` with ``args`` (parameters, or an optimizer)."""
    return hydra.utils.instantiate(dict(config))(*args)
