"""Checking what a saved file says before using it: JSON records and file digests.

A checkpoint or index folder can load without error (JSON, ``weights_only`` tensors) and still
hold nonsense: a key missing, a list where a number belongs, ids that do not match the vectors, a
native index file swapped for another. ``require`` checks a record's keys and types and names the
first wrong one; ``file_digest``/``check_digest`` record and verify a file's size and SHA-256, so
a native library (hnswlib, faiss, nmslib) never parses a file this project did not write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lit_common.errors import InputError


class SchemaError(InputError):
    """A saved record or file whose contents are not what this project writes."""


def read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``SchemaError`` naming ``what`` when it is not one."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SchemaError(f"{what} {path} cannot be read as JSON ({err})") from None
    if not isinstance(record, dict):
        raise SchemaError(f"{what} {path} holds a JSON {type(record).__name__}, not an object")
    return record


def require(record: Mapping[str, Any], types: Mapping[str, Any], what: str) -> None:
    """Each key of ``types`` present in ``record`` with a value of that type (a type or a tuple
    of types; ``None`` in a tuple allows null). Booleans are not integers here."""
    for key, expected in types.items():
        if key not in record:
            raise SchemaError(f"{what}: {key!r} is missing")
        allowed = expected if isinstance(expected, tuple) else (expected,)
        value = record[key]
        if value is None and None in allowed:
            continue
        classes = tuple(t for t in allowed if t is not None)
        if isinstance(value, bool) and bool not in classes:
            ok = False
        else:
            ok = isinstance(value, classes)
        if not ok:
            names = " or ".join("null" if t is None else t.__name__ for t in allowed)
            raise SchemaError(f"{what}: {key!r} should be {names}, got {type(value).__name__}")


def require_strings(values: Any, what: str) -> list[str]:
    """``values`` when it is a list of strings; else ``SchemaError``."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SchemaError(f"{what}: expected a list of strings")
    return values


def file_digest(path: Path, chunk: int = 1 << 20) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of a file, read in chunks."""
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            sha.update(block)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest()}


def check_digest(path: Path, expected: Any, what: str) -> None:
    """``SchemaError`` unless ``path`` is a regular file whose size and SHA-256 are
    ``expected`` (a ``file_digest`` record); the size is compared first, without reading."""
    if not isinstance(expected, Mapping) or not {"size", "sha256"} <= set(expected):
        raise SchemaError(f"{what}: no size and checksum recorded for {path.name}; rebuild it")
    if not path.is_file():
        raise SchemaError(f"{what}: {path} is missing or not a regular file")
    if path.stat().st_size != expected["size"] or file_digest(path) != dict(expected):
        raise SchemaError(
            f"{what}: {path} does not match the checksum recorded when it was written (changed "
            "or damaged); rebuild it"
        )
