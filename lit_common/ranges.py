"""Valid ranges of the numbers in configs and command-line flags, checked at start-up.

A number outside its range (``data.batch_size=0``, ``--alpha nan``, ``data.max_vocab=0``) would
end in a traceback deep inside PyTorch or spaCy, or worse, in a run that trains and exits 0
with a useless model. Each class that takes numbers declares them once, as a ``RANGES`` table of
``Range`` values; ``check_ranges`` checks a mapping of settings against it, and
``check_config`` walks a whole Hydra config before anything is built, so the one error line
names the full key (``data.max_vocab=0 is out of range: expected an integer in [5,
10000000]``). Command-line tools use ``Range.arg`` as an argparse ``type``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lit_common.dotted import TargetError, locate
from lit_common.errors import InputError


class RangeError(InputError):
    """A number outside its valid range; the message names the key, the value and the range."""


@dataclass(frozen=True)
class Range:
    """The valid values of one number: bounds (open or closed), integer or real, and the
    non-numbers also accepted (``None`` with ``null=True``, strings such as ``"auto"``).

    NaN and infinities are never in a range: every bound here is finite.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    null: bool = False
    also: tuple[str, ...] = ()
    lists: bool = False  # a list of such numbers is valid too (each one is checked)

    def contains(self, value: Any) -> bool:
        if self.lists and isinstance(value, list | tuple):
            return all(self.contains(item) for item in value)
        if value is None:
            return self.null
        if isinstance(value, str):
            return value in self.also
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return (isinstance(value, int) or math.isfinite(value)) and above and below

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        low, high = _fmt(self.low), _fmt(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"{kind} in {left}{low}, {high}{right}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {high}"
        else:
            text = kind
        extras = [repr(a) for a in self.also] + (["null"] if self.null else [])
        return text + (f", or {' or '.join(extras)}" if extras else "")

    def check(self, key: str, value: Any) -> Any:
        """``value`` when it is in range; else ``RangeError`` naming ``key``."""
        if not self.contains(value):
            raise RangeError(f"{key}={value!r} is out of range: expected {self}")
        return value

    def arg(self, parse: Callable[[str], Any] = float) -> Callable[[str], Any]:
        """An argparse ``type``: parse the flag's text with ``parse`` (``int`` for integer
        ranges) and check it, so ``--alpha nan`` is refused with the valid range."""

        def typed(text: str) -> Any:
            if text in self.also:
                return text
            try:
                value = (int if self.integer else parse)(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not {self}") from None
            if not self.contains(value):
                raise argparse.ArgumentTypeError(f"{text} is out of range: expected {self}")
            return value

        typed.__name__ = "integer" if self.integer else "number"
        return typed


def _fmt(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e15 else repr(bound)


def Int(low: int | None = None, high: int | None = None, *, null: bool = False) -> Range:
    """An integer in ``[low, high]``; ``null=True`` also accepts None."""
    return Range(low, high, integer=True, null=null)


def Real(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    null: bool = False,
    also: tuple[str, ...] = (),
    lists: bool = False,
) -> Range:
    """A finite number between ``low`` and ``high`` (each bound closed unless ``*_open``);
    ``lists=True`` also accepts a list of such numbers."""
    return Range(low, high, low_open, high_open, False, null, also, lists)


PROBABILITY = Real(0.0, 1.0, high_open=True)  # dropouts, label smoothing: 1.0 would drop all
SIZE = Int(1, 65_536)  # a layer, embedding or batch width: more is a typo, not a model


def _lookup(values: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_ranges(values: Mapping[str, Any], ranges: Mapping[str, Range], prefix: str = "") -> None:
    """Check each key of ``ranges`` present in ``values``; raise ``RangeError`` at the first one
    out of range. A dotted key reaches into nested mappings (``net.enc_hidden``); a key ending in
    ``[]`` checks every element of a list (``betas[]``). ``prefix`` is prepended to the key in
    the message (``data.``)."""
    for key, valid in ranges.items():
        listed = key.endswith("[]")
        found, value = _lookup(values, key.removesuffix("[]"))
        if not found:
            continue
        if listed:
            if value is None:  # a list setting left unset
                continue
            if not isinstance(value, list | tuple):
                raise RangeError(f"{prefix}{key[:-2]}={value!r}: expected a list, each {valid}")
            for i, item in enumerate(value):
                valid.check(f"{prefix}{key[:-2]}[{i}]", item)
        else:
            valid.check(prefix + key.removesuffix("[]"), value)


class _Devices(Range):
    """Lightning's ``devices``: an int >= 1, -1 (all), ``"auto"``, a list of device indices, or
    the same as a string (``"0,1"``); 0 and an empty list select nothing."""

    def contains(self, value: Any) -> bool:
        if isinstance(value, str):
            value = value.strip()
            if value in ("auto", "-1"):
                return True
            items = [v.strip() for v in value.split(",")]
            if len(items) == 1:
                return items[0].isdecimal() and items[0].isascii() and int(items[0]) >= 1
            numbers = [v for v in items if v != ""]
            if not all(v.isdecimal() and v.isascii() for v in numbers):
                return False
            value = [int(v) for v in numbers] or None
        if isinstance(value, list | tuple):
            ints = [v for v in value if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
            return bool(value) and len(ints) == len(value) == len(set(ints))
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return value >= 1 or value == -1

    def __str__(self) -> str:
        return "an integer >= 1, -1 (all), 'auto', or a list of distinct device indices"


# Ranges of classes this project configures but does not own: any torch.optim optimizer (by
# its keyword names), torch's LR schedulers, and Lightning's Trainer and checkpoint/stopping
# callbacks. A class of our own declares ``RANGES``.
OPTIMIZER_RANGES: dict[str, Range] = {
    "lr": Real(0.0, low_open=True),
    "betas[]": Real(0.0, 1.0, high_open=True),
    "eps": Real(0.0, lists=True),  # Adafactor's is a pair
    "weight_decay": Real(0.0),
    "momentum": Real(0.0, 1.0, high_open=True),
    "dampening": Real(0.0, 1.0),
    "alpha": Real(0.0, 1.0),
}
_POSITIVE = Real(0.0, low_open=True)
_FRACTION = Real(0.0, 1.0)
# By class name in torch.optim.lr_scheduler; a scheduler not listed has its target checked only.
SCHEDULER_RANGES: dict[str, dict[str, Range]] = {
    "ReduceLROnPlateau": {
        "factor": Real(0.0, 1.0, low_open=True, high_open=True),
        "patience": Int(0),
        "threshold": Real(0.0),
        "cooldown": Int(0),
        "min_lr": Real(0.0, lists=True),
        "eps": Real(0.0),
    },
    "StepLR": {"step_size": Int(1), "gamma": _POSITIVE},
    "MultiStepLR": {"milestones[]": Int(0), "gamma": _POSITIVE},
    "ExponentialLR": {"gamma": _POSITIVE},
    "CosineAnnealingLR": {"T_max": Int(1), "eta_min": Real(0.0)},
    "CosineAnnealingWarmRestarts": {"T_0": Int(1), "T_mult": Int(1), "eta_min": Real(0.0)},
    "LinearLR": {
        "start_factor": Real(0.0, 1.0, low_open=True),
        "end_factor": _FRACTION,
        "total_iters": Int(1),
    },
    "ConstantLR": {"factor": _FRACTION, "total_iters": Int(0)},
    "PolynomialLR": {"total_iters": Int(1), "power": Real(0.0)},
    "OneCycleLR": {
        "max_lr": Real(0.0, low_open=True, lists=True),
        "total_steps": Int(1, null=True),
        "epochs": Int(1, null=True),
        "steps_per_epoch": Int(1, null=True),
        "pct_start": _FRACTION,
        "div_factor": _POSITIVE,
        "final_div_factor": _POSITIVE,
        "base_momentum": Real(0.0, 1.0, high_open=True, lists=True),
        "max_momentum": Real(0.0, 1.0, high_open=True, lists=True),
    },
    "CyclicLR": {
        "base_lr": Real(0.0, lists=True),
        "max_lr": Real(0.0, low_open=True, lists=True),
        "step_size_up": Real(0.0, low_open=True),  # torch takes a float too
        "step_size_down": Real(0.0, low_open=True, null=True),
        "gamma": _POSITIVE,
    },
}
SCHEDULER_COMMON: dict[str, Range] = {"last_epoch": Int(-1)}
TRAINER_RANGES: dict[str, Range] = {
    "devices": _Devices(),
    "max_epochs": Int(-1, null=True),
    "min_epochs": Int(0, null=True),
    "max_steps": Int(-1),
    "min_steps": Int(0, null=True),
    "num_nodes": Int(1),
    "accumulate_grad_batches": Int(1),
    "gradient_clip_val": Real(0.0, null=True),
    "log_every_n_steps": Int(1, null=True),
    "check_val_every_n_epoch": Int(1, null=True),
    "num_sanity_val_steps": Int(-1, null=True),
    "limit_train_batches": Real(0.0, null=True),
    "limit_val_batches": Real(0.0, null=True),
    "limit_test_batches": Real(0.0, null=True),
    "limit_predict_batches": Real(0.0, null=True),
    "val_check_interval": Real(0.0, low_open=True, null=True),
}
LIGHTNING_RANGES: dict[str, dict[str, Range]] = {
    "Trainer": TRAINER_RANGES,
    "ModelCheckpoint": {
        "save_top_k": Int(-1),
        "every_n_train_steps": Int(0, null=True),
        "every_n_epochs": Int(0, null=True),
    },
    "EarlyStopping": {
        "patience": Int(0),
        "min_delta": Real(),  # Lightning applies it in the monitor's direction
        "stopping_threshold": Real(null=True),
        "divergence_threshold": Real(null=True),
    },
    "LearningRateMonitor": {},
    "RichProgressBar": {"refresh_rate": Int(0)},
    "TQDMProgressBar": {"refresh_rate": Int(0)},
}
ROOT_RANGES: dict[str, Range] = {"seed": Int(0, 2**32 - 1)}


def ranges_of(target: str) -> Mapping[str, Range]:
    """The ranges of a ``_target_``: the class's own ``RANGES``, the tables above for torch
    optimizers and schedulers and Lightning's classes, or none.

    Raises:
        TargetError: when ``target`` names no importable object (one line saying why).
    """
    obj = locate(target)
    name = target.rsplit(".", 1)[-1]
    if target.startswith("torch.optim.lr_scheduler."):
        return {**SCHEDULER_COMMON, **SCHEDULER_RANGES.get(name, {})}
    if target.startswith("torch.optim."):
        return OPTIMIZER_RANGES
    if "lightning" in target.split(".", 1)[0] and name in LIGHTNING_RANGES:
        return LIGHTNING_RANGES[name]
    ranges = getattr(obj, "RANGES", None)
    return ranges if isinstance(ranges, Mapping) else {}


def check_config(cfg: Mapping[str, Any]) -> None:
    """Check every number of a resolved config (a plain nested dict) before anything is built:
    the top level's ``seed``, and each ``_target_`` node against ``ranges_of`` its target (a
    target that names nothing importable is refused here too, naming its key)."""
    check_ranges(cfg, ROOT_RANGES)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            target = node.get("_target_")
            if isinstance(target, str):
                prefix = f"{path}." if path else ""
                try:
                    ranges = ranges_of(target)
                except TargetError as err:
                    why = f"{prefix}_target_={target!r} cannot be imported ({err})"
                    raise TargetError(why) from None
                check_ranges(node, ranges, prefix)
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}[{i}]")

    walk(cfg, "")


def whole(value: Any) -> Any:
    """A float that is a whole number as an int (a web slider sends ``2.0`` for 2); anything
    else unchanged, so an integer range's ``check`` still names a fractional or odd value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
