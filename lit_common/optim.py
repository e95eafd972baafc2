"""Optimizers and LR schedulers as Hydra ``_partial_`` objects, kept as plain config in checkpoints.

A model config names any optimizer or scheduler by its ``_target_`` (``torch.optim.AdamW``,
``torch.optim.SGD``, a class of your own) with ``_partial_: true`` and its arguments; the module
calls it with its parameters (or the optimizer) in ``configure_optimizers``. The module keeps the
config, not the built object, so its hyperparameters stay numbers and strings that a
``weights_only`` checkpoint load accepts and ``load_from_checkpoint`` can rebuild from. Model
configs set ``_recursive_: false`` so Hydra hands these configs over unbuilt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lit_common.dotted import TargetError
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
    try:
        ranges = ranges_of(target)  # resolves the target: a typo fails here
    except TargetError as err:
        raise InputError(f"{name}._target_={target!r} cannot be imported ({err})") from None
    check_ranges(config, ranges, f"{name}.")
    return {**config, "_partial_": True}


def build(config: Mapping[str, Any], *args: Any) -> Any:
    """Call the ``_partial_`` object of ``config`` with ``args`` (parameters, or an optimizer)."""
    return hydra.utils.instantiate(dict(config))(*args)
