"""Label and query vectors: class names and words looked up in fastText ``.bin`` or ``.vec`` files.

DeViSE (Frome et al. 2013, section 3.1) regresses an image onto the word vector of its label. An
ImageNet class name is a comma-separated WordNet lemma list (``"tench, Tinca tinca"``) whose
lemmas can be several words (``"garbage truck"``); the lesson looks names up lower-cased. Here a
name gets the vector of its first lemma found as one vocabulary entry (``garbage_truck``,
``garbage-truck``, ``garbagetruck``, ``garbage truck``), else the mean of the words of the first
lemma whose words all have vectors. Classes without a vector are dropped and reported.

Only the vectors of the words a run asks for are kept (a fastText ``.vec`` holds 2M x 300 floats).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lit_common.cache import load_array
from lit_common.errors import InputError
from lit_common.text import clean, decode, one_line, split_lines
from lit_common.vectors import VectorsError, read_vec, vec_dimension

log = logging.getLogger(__name__)

__all__ = ["LabelVectors", "VectorsError", "WordVectors", "label_vectors", "read_nouns"]


def _lemmas(names: str) -> list[str]:
    return [n.strip().replace("_", " ") for n in names.split(",") if n.strip()]


def _forms(lemma: str) -> list[str]:
    """Spellings a vocabulary may use for one lemma, most specific first."""
    words = lemma.lower().split()
    if len(words) == 1:
        return words
    return ["_".join(words), "-".join(words), "".join(words), " ".join(words)]


def _tokens(lemma: str) -> list[str]:
    return lemma.lower().replace("-", " ").replace("'", " ").split()


def wanted_words(names: Iterable[str]) -> set[str]:
    """Every vocabulary entry ``WordVectors.phrase`` may ask for, to stream a file only once."""
    wanted: set[str] = set()
    for name in names:
        for lemma in _lemmas(name):
            wanted.update(_forms(lemma))
            wanted.update(_tokens(lemma))
    return wanted


class _AnyCase(set):
    """Lower-case words that also match "Paris" or "PARIS" in a cased vector file."""

    def __contains__(self, word: object) -> bool:
        return super().__contains__(word.lower() if isinstance(word, str) else word)


class WordVectors:
    """A small word -> vector table (lower-case keys) with phrase and label lookup.

    Args:
        table: word -> vector, all of one dimension.
        source: where the vectors came from (shown in reports and errors).
    """

    def __init__(self, table: dict[str, np.ndarray], source: str = "") -> None:
        self.table: dict[str, np.ndarray] = {}
        for word, vector in table.items():  # "Paris" before "paris": the first one wins
            self.table.setdefault(word.lower(), np.asarray(vector, np.float32))
        dims = {v.shape for v in self.table.values()}
        if len(dims) > 1:
            raise VectorsError(f"{source}: vectors of several shapes {sorted(dims)}")
        self.dim = next(iter(dims))[0] if dims else 0  # 0: an empty table
        self.source = source

    @classmethod
    def load(
        cls, path: str | Path, words: Iterable[str], allow_empty: bool = False, first: int = 0
    ) -> WordVectors:
        """The vectors of ``words`` (any case) in a fastText ``.bin`` or a ``.vec`` text file, and
        of the file's ``first`` (most frequent) words.

        Raises:
            VectorsError: a missing or malformed file (with the line number), or, unless
                ``allow_empty``, no vector for any of ``words`` (a wrong file, most likely).
        """
        path = Path(path)
        wanted = _AnyCase(w.lower() for w in words)
        if path.suffix == ".bin":
            if not path.is_file():
                raise VectorsError(f"fastText model {str(path)!r} does not exist")
            import fasttext

            model = fasttext.load_model(str(path))
            # Vocabulary words only: fastText's subword guesses for unknown words are not labels.
            table = {
                w: model.get_word_vector(w) for w in sorted(wanted) if model.get_word_id(w) >= 0
            }
            for w in model.get_words()[:first]:  # fastText orders its words by frequency
                table.setdefault(w, model.get_word_vector(w))
        else:
            table = read_vec(path, wanted, vec_dimension(path), first)
        if not table and not allow_empty:
            raise VectorsError(
                f"{path}: none of the {len(wanted)} words asked for has a vector; make sure the "
                "file is an English word-vector file (fastText .bin/.vec or word2vec text)"
            )
        return cls(table, str(path))

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.table

    def __len__(self) -> int:
        return len(self.table)

    def save(self, folder: str | Path) -> None:
        """The table as ``words.json`` (its words, in row order) and ``vectors.npy`` (float32),
        so a search index answers text queries without the vector file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        words = list(self.table)
        matrix = np.stack([self.table[w] for w in words]) if words else np.zeros((0, self.dim))
        np.save(folder / "vectors.npy", matrix.astype(np.float32))
        (folder / "words.json").write_text(json.dumps(words, ensure_ascii=False))

    def phrase(self, lemma: str) -> np.ndarray | None:
        """One lemma's vector: the lemma as one entry, else the mean of its words, else None."""
        for form in _forms(lemma):
            if form in self.table:
                return self.table[form]
        tokens = _tokens(lemma)
        if tokens and all(t in self.table for t in tokens):
            return np.mean([self.table[t] for t in tokens], axis=0)
        return None

    def label(self, names: str) -> np.ndarray | None:
        """A class's vector from its comma-separated names, as the module docstring describes."""
        lemmas = _lemmas(names)
        for lemma in lemmas:
            for form in _forms(lemma):
                if form in self.table:
                    return self.table[form]
        for lemma in lemmas:
            vector = self.phrase(lemma)
            if vector is not None:
                return vector
        return None

    def query(self, text: str) -> np.ndarray:
        """The mean vector of a query's words ("engine boat"); each word must have a vector.

        Raises:
            VectorsError: no words or too many (``query_words``), or naming the words without
                a vector.
        """
        words = query_words(text)
        missing = [w for w in words if w not in self]
        if missing:
            raise VectorsError(
                f"no word vector for {some(missing)} in {self.source or 'the vectors'}"
            )
        return np.mean([self.table[w.lower()] for w in words], axis=0)


class SavedWords:
    """A folder ``WordVectors.save`` wrote, opened once (its word list read, its matrix
    memory-mapped) so that each query reads only its own rows.

    Raises:
        VectorsError: a folder without the two files, or files that disagree.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            saved = json.loads((self.folder / "words.json").read_text(encoding="utf-8"))
            self.matrix = load_array(self.folder / "vectors.npy", mmap_mode="r")
        except (OSError, ValueError, InputError) as err:
            raise VectorsError(f"{self.folder}: no readable query words ({err})") from None
        if not isinstance(saved, list) or self.matrix.ndim != 2 or len(saved) != len(self.matrix):
            raise VectorsError(
                f"{self.folder}: words.json and vectors.npy disagree; rebuild the index"
            )
        self.row = {w: i for i, w in enumerate(saved)}

    def select(self, words: Iterable[str]) -> WordVectors:
        """The rows of ``words`` (any case) as a ``WordVectors``."""
        wanted = {w.lower() for w in words}
        table = {w: np.array(self.matrix[self.row[w]]) for w in wanted if w in self.row}
        return WordVectors(table, f"{self.folder} ({len(self.row)} query words)")


MAX_QUERY_WORDS = 64  # a text query averages at most this many words


def query_words(text: str) -> list[str]:
    """The words of a text query: split on spaces, commas and control characters; invisible
    characters (zero-width spaces, ...) dropped.

    Raises:
        VectorsError: no words, or more than ``MAX_QUERY_WORDS`` (a pasted document is not a
            query, and its message would list thousands of words).
    """
    words = clean(text).replace(",", " ").split()  # control characters split words
    if not words:
        raise VectorsError('empty text query: give one or more words, e.g. "engine boat"')
    if len(words) > MAX_QUERY_WORDS:
        raise VectorsError(
            f"a text query of {len(words):,} words; give at most {MAX_QUERY_WORDS} (their vectors "
            "are averaged)"
        )
    return words


def some(words: Sequence[str], shown: int = 10, chars: int = 40) -> str:
    """``words`` for a message: the first ``shown``, each quoted, escaped onto one line and cut
    to ``chars`` characters, then how many more (a pasted page must not become the message)."""
    listed = ", ".join(
        repr(one_line(w if len(w) <= chars else w[:chars] + "...")) for w in words[:shown]
    )
    more = f" and {len(words) - shown} more" if len(words) > shown else ""
    return f"[{listed}]{more}"


@dataclass
class LabelVectors:
    """Vectors of the labels that have one, and the labels dropped for having none."""

    ids: list[str]
    names: list[str]
    vectors: np.ndarray  # (n_labels, dim) float32
    dropped: list[str] = field(default_factory=list)


def label_vectors(ids: Sequence[str], names: Sequence[str], vectors: WordVectors) -> LabelVectors:
    """Look every label up; labels without a vector are dropped, counted and logged."""
    kept_ids, kept_names, rows, dropped = [], [], [], []
    for label_id, name in zip(ids, names, strict=True):
        vector = vectors.label(name)
        if vector is None:
            dropped.append(label_id)
            continue
        kept_ids.append(label_id)
        kept_names.append(name)
        rows.append(vector)
    if dropped:
        log.warning(
            "%d of %d labels have no word vector in %s and are dropped: %s%s",
            len(dropped),
            len(ids),
            vectors.source,
            ", ".join(dropped[:10]),
            " ..." if len(dropped) > 10 else "",
        )
    matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, vectors.dim), np.float32)
    return LabelVectors(kept_ids, kept_names, matrix, dropped)


def read_nouns(path: str | Path) -> tuple[list[str], list[str]]:
    """A WordNet noun list (``wnid<TAB>lemma[, lemma ...]``, ``_`` for spaces) as (ids, names).
    Every line ending counts; a byte-order mark and invisible characters are dropped; lines that
    are not UTF-8 are skipped and counted in a warning.

    Raises:
        VectorsError: a missing file, a line without a tab (with the line number), or a file
            none of whose lines is UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise VectorsError(f"noun list {str(path)!r} does not exist")
    ids, names, bad = [], [], []
    with path.open("rb") as f:
        for line_no, raw in enumerate(split_lines(f), 1):
            try:
                line = clean(decode(raw))
            except UnicodeDecodeError:
                bad.append(line_no)
                continue
            if not line.strip():
                continue
            if "\t" not in line:
                raise VectorsError(f"{path}:{line_no}: expected `wnid<TAB>lemma`, got {line!r}")
            wnid, lemma = line.split("\t", 1)
            ids.append(wnid.strip())
            names.append(lemma.replace("_", " ").strip())
    if bad and not ids:
        raise VectorsError(f"noun list {path}: no line is UTF-8 text (e.g. line {bad[0]})")
    if bad:
        log.warning("%s: %d lines not UTF-8, skipped (e.g. line %d)", path, len(bad), bad[0])
    return ids, names
