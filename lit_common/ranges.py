"""Valid ranges of the numbers in configs and command-line flags, checked at start-up.

A number outside its range (``data.batch_size=0``, ``--alpha nan``, ``data.max_vocab=0``) used
to end in a traceback deep inside PyTorch or spaCy, or worse, in a run that trains and exits 0
with a useless model. Each class that takes numbers declares them once, as a ``RANGES`` table of
``Range`` values; ``check_ranges`` checks a mapping of settings against it, and
``check_config`` walks a whole Hydra config before anything is built, so the one error line
names the full key (``data.max_vocab=0 is out of range: expected an integer in [5,
10000000]``). Command-line tools use ``Range.arg`` as an argparse ``type``.
"""

from __future__ import annotations

import argparse
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


# Ranges of classes this project configures but does not own: any torch.optim optimizer (by
# its keyword names) and Lightning's Trainer. A class of our own declares ``RANGES``.
OPTIMIZER_RANGES: dict[str, Range] = {
    "lr": Real(0.0, low_open=True),
    "betas[]": Real(0.0, 1.0, high_open=True),
    "eps": Real(0.0, lists=True),  # Adafactor's is a pair
    "weight_decay": Real(0.0),
    "momentum": Real(0.0, 1.0, high_open=True),
    "dampening": Real(0.0, 1.0),
    "alpha": Real(0.0, 1.0),
}
TRAINER_RANGES: dict[str, Range] = {
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
    "val_check_interval": Real(0.0, low_open=True, null=True),
}
ROOT_RANGES: dict[str, Range] = {"seed": Int(0, 2**32 - 1)}


def ranges_of(target: str) -> Mapping[str, Range]:
    """The ranges of a ``_target_``: the class's own ``RANGES``, the tables above for torch
    optimizers and the Trainer, or none (an unknown or unimportable target is left to Hydra)."""
    if target.startswith("torch.optim.") and not target.startswith("torch.optim.lr_scheduler"):
        return OPTIMIZER_RANGES
    if target.rsplit(".", 1)[-1] == "Trainer" and "lightning" in target:
        return TRAINER_RANGES
    ranges = getattr(_locate(target), "RANGES", None)
    return ranges if isinstance(ranges, Mapping) else {}


def _locate(target: str) -> Any:
    """The object a dotted path names, or None; a bad target is reported where it is built."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name, None)
        return obj
    return None


def check_config(cfg: Mapping[str, Any]) -> None:
    """Check every number of a resolved config (a plain nested dict) before anything is built:
    the top level's ``seed``, and each ``_target_`` node against ``ranges_of`` its target."""
    check_ranges(cfg, ROOT_RANGES)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            target = node.get("_target_")
            if isinstance(target, str):
                check_ranges(node, ranges_of(target), f"{path}." if path else "")
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}[{i}]")

    walk(cfg, "")
