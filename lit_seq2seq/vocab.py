"""A vocabulary per language, with the lesson's special tokens and indices.

bos=0, pad=1, eos=2, unk=3 as in the fast.ai translate notebook; every numericalised sequence ends
with eos. The vocabulary is plain data (a list of strings), stored as JSON in the cache and as a
list inside the checkpoint, never pickled.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from lit_common.errors import InputError

BOS, PAD, EOS, UNK = "_bos_", "_pad_", "_eos_", "_unk_"
SPECIALS = (BOS, PAD, EOS, UNK)


class Vocab:
    """Index <-> token mapping whose first four entries are the specials, in order.

    Args:
        itos: tokens by index; must start with ``_bos_, _pad_, _eos_, _unk_`` and hold no duplicate.
    """

    bos_idx, pad_idx, eos_idx, unk_idx = 0, 1, 2, 3

    def __init__(self, itos: Sequence[str]) -> None:
        itos = list(itos)
        if tuple(itos[:4]) != SPECIALS:
            raise InputError(f"Vocab must start with {list(SPECIALS)}, got {itos[:4]}")
        if len(set(itos)) != len(itos):
            dupes = [t for t, c in Counter(itos).items() if c > 1][:5]
            raise InputError(f"Vocab has duplicate tokens, e.g. {dupes}")
        self.itos = itos
        self.stoi = {t: i for i, t in enumerate(itos)}

    @classmethod
    def build(
        cls, sentences: Iterable[Sequence[str]], max_size: int = 40_000, min_freq: int = 1
    ) -> Vocab:
        """Most frequent tokens first (ties by first appearance), at most ``max_size`` in all."""
        return cls.from_counts(Counter(t for s in sentences for t in s), max_size, min_freq)

    @classmethod
    def from_counts(cls, counts: Counter[str], max_size: int = 40_000, min_freq: int = 1) -> Vocab:
        """As ``build``, from token counts already made (the data pipeline keeps them)."""
        if max_size < len(SPECIALS) + 1:
            raise InputError(f"Vocab max_size={max_size}: needs room for the 4 specials and a word")
        words = [w for w, c in counts.most_common() if c >= min_freq and w not in SPECIALS]
        return cls([*SPECIALS, *words[: max_size - len(SPECIALS)]])

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids with eos appended; unknown tokens become unk."""
        return [self.stoi.get(t, self.unk_idx) for t in tokens] + [self.eos_idx]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first eos, without bos and pad."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_idx:
                break
            if i not in (self.bos_idx, self.pad_idx):
                out.append(self.itos[i])
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.itos, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls(json.loads(path.read_text()))
