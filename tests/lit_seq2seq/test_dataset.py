"""Ragged storage and end padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lit_seq2seq.dataset import Collate, PairDataset, Ragged


def test_ragged_round_trip(tmp_path: Path) -> None:
    seqs = [[5, 6, 2], [7, 2], [2]]
    ragged = Ragged.from_lists(seqs)
    ragged.save(tmp_path / "x")
    loaded = Ragged.load(tmp_path / "x")
    assert [loaded[i].tolist() for i in range(3)] == seqs
    assert loaded.lengths().tolist() == [3, 2, 1]


def test_collate_pads_at_the_end_with_pad_index() -> None:
    data = PairDataset(
        Ragged.from_lists([[4, 5, 2], [6, 2]]), Ragged.from_lists([[7, 2], [8, 9, 10, 2]])
    )
    batch = Collate(pad_idx=1)([data[0], data[1]])
    assert batch.src.tolist() == [[4, 5, 2], [6, 2, 1]]
    assert batch.tgt.tolist() == [[7, 2, 1, 1], [8, 9, 10, 2]]
    assert batch.src_lengths.tolist() == [3, 2] and batch.tgt_lengths.tolist() == [2, 4]
    assert batch.src.dtype == torch.long
    assert isinstance(data[0][0], np.ndarray)
