"""Numericalised sentence pairs, their on-disk form, and the padded batch.

Token ids of many sentences are stored ragged: one flat int32 array plus offsets, saved as ``.npy``
(no pickle), memory-mapped on load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from lit_common.cache import load_array

References = list[str] | None  # a pair's scored references, or None when its source came earlier


class Ragged:
    """Variable-length int sequences as ``flat`` values and ``offsets`` (len n + 1)."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat, self.offsets = flat, offsets

    @classmethod
    def from_lists(cls, seqs: Sequence[Sequence[int]]) -> Ragged:
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for s in seqs for t in s), dtype=np.int32, count=int(offsets[-1]))
        return cls(flat, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def save(self, path: Path) -> None:
        np.save(path.with_suffix(".flat.npy"), self.flat)
        np.save(path.with_suffix(".offsets.npy"), self.offsets)

    @classmethod
    def load(cls, path: Path) -> Ragged:
        flat = load_array(path.with_suffix(".flat.npy"), mmap_mode="r")
        offsets = load_array(path.with_suffix(".offsets.npy"))
        return cls(flat, offsets)


class RaggedWriter:
    """Writes the files ``Ragged.load`` reads a block of sequences at a time, so a corpus larger
    than memory is never held whole; the totals are known in advance (they go in the headers).

    Args:
        path: as for ``Ragged.save``.
        n_seqs: sequences to be added in all.
        n_values: values (tokens) to be added in all.
    """

    def __init__(self, path: Path, n_seqs: int, n_values: int) -> None:
        self.expected = (n_seqs, n_values)
        self.flat = open(path.with_suffix(".flat.npy"), "wb")  # noqa: SIM115 (closed in close)
        self.offsets = open(path.with_suffix(".offsets.npy"), "wb")  # noqa: SIM115
        for f, dtype, n in ((self.flat, np.int32, n_values), (self.offsets, np.int64, n_seqs + 1)):
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                      "fortran_order": False, "shape": (n,)}  # fmt: skip
            np.lib.format.write_array_header_1_0(f, header)
        self.offsets.write(np.zeros(1, dtype=np.int64).tobytes())
        self.seqs, self.end = 0, 0

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """Append ``len(lengths)`` sequences whose values, one after another, are ``flat``."""
        ends = self.end + np.cumsum(lengths, dtype=np.int64)
        if len(ends) and ends[-1] - self.end != len(flat):
            raise ValueError(
                f"RaggedWriter: lengths add up to {ends[-1] - self.end}, not {len(flat)}"
            )
        self.flat.write(np.ascontiguousarray(flat, dtype=np.int32).tobytes())
        self.offsets.write(ends.tobytes())
        self.seqs += len(lengths)
        self.end = int(ends[-1]) if len(ends) else self.end

    def __enter__(self) -> RaggedWriter:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.close()
        else:  # the caller's error stands; the files are the staged folder's to remove
            self.flat.close()
            self.offsets.close()

    def close(self) -> None:
        """Close both files; raises when fewer or more were added than announced."""
        self.flat.close()
        self.offsets.close()
        if (self.seqs, self.end) != self.expected:
            raise ValueError(
                f"RaggedWriter: wrote {(self.seqs, self.end)}, announced {self.expected}"
            )


class PairDataset(Dataset):
    """Source and target id sequences (each ending with eos), index-aligned.

    Args:
        src: source ids.
        tgt: target ids.
        references: for evaluation splits, per pair the raw reference strings BLEU scores its
            translation against (all references of its source), or None for a repeated source
            already scored at an earlier pair.
    """

    def __init__(
        self, src: Ragged, tgt: Ragged, references: Sequence[References] | None = None
    ) -> None:
        if len(src) != len(tgt):
            raise ValueError(f"PairDataset: {len(src)} sources but {len(tgt)} targets")
        if references is not None and len(references) != len(src):
            raise ValueError(f"PairDataset: {len(src)} pairs but {len(references)} reference sets")
        self.src, self.tgt, self.references = src, tgt, references

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, References]:
        refs = self.references[i] if self.references is not None else None
        return self.src[i], self.tgt[i], refs


class Batch(NamedTuple):
    """A padded batch; padding is at the end of each row.

    Attributes:
        src: (batch, src_len) source ids.
        src_lengths: (batch,) real source lengths, eos included.
        tgt: (batch, tgt_len) target ids, eos included, no bos.
        tgt_lengths: (batch,) real target lengths.
        references: per row, the raw reference strings to score its translation against (None
            for a source already scored), or None for training batches.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt: torch.Tensor
    tgt_lengths: torch.Tensor
    references: tuple[References, ...] | None = None


def pad_batch(seqs: Sequence[np.ndarray], pad_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, max_len) long tensor padded at the end, and the (batch,) lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), pad_idx, dtype=torch.long)
    for row, seq in zip(out, seqs, strict=True):
        row[: len(seq)] = torch.from_numpy(np.asarray(seq, dtype=np.int64))
    return out, lengths


class Collate:
    """Pad sources and targets at the end with the pad index (a picklable callable for workers)."""

    def __init__(self, pad_idx: int) -> None:
        self.pad_idx = pad_idx

    def __call__(self, items: Sequence[tuple[np.ndarray, np.ndarray, References]]) -> Batch:
        src, src_lengths = pad_batch([s for s, _, _ in items], self.pad_idx)
        tgt, tgt_lengths = pad_batch([t for _, t, _ in items], self.pad_idx)
        references = tuple(r for _, _, r in items)
        has_references = any(r is not None for r in references)
        return Batch(src, src_lengths, tgt, tgt_lengths, references if has_references else None)
