"""Parallel corpora read as streams of (French, English) pairs, with every skip counted.

Readers never hold a whole file: they yield pairs line by line. Each keeps a ``ReadStats`` that
counts what it dropped and why (empty side, invalid UTF-8, wrong column count, filtered out) with
the first line numbers, so data preparation can report it. Optional regexes keep a pair only when
both sides match and keep the matched text, as the lesson's Giga-fren filter does (English
``^(Wh[^?.!]+\\?)``, French ``^([^?.!]+\\?)``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from lit_common.errors import InputError
from lit_common.ranges import Int, Range, check_ranges
from lit_common.text import decode, split_lines
from lit_seq2seq.tokenizer import MAX_CHARS, normalize

Pair = tuple[str, str]  # (French, English)
LESSON_EN_PATTERN = r"^(Wh[^?.!]+\?)"
LESSON_FR_PATTERN = r"^([^?.!]+\?)"


class CorpusError(InputError):
    """A corpus that cannot be read as configured; the message names the file and the fix."""


@dataclass
class ReadStats:
    """What a reader saw: lines read, pairs kept, and skips by reason with example line numbers."""

    lines: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        first = self.examples.setdefault(reason, [])
        if len(first) < 5:
            first.append(line)

    def summary(self) -> str:
        parts = [f"{self.lines} lines read, {self.kept} pairs kept"]
        parts += [
            f"{n} skipped ({reason}; e.g. line {', '.join(map(str, self.examples[reason]))})"
            for reason, n in sorted(self.skipped.items())
        ]
        return "; ".join(parts)


class Corpus(Protocol):
    """A source of (French, English) pairs."""

    def pairs(self, stats: ReadStats) -> Iterator[Pair]: ...

    def fingerprint(self) -> dict[str, object]:
        """What identifies the content: part of the data cache key."""
        ...


def _file_fingerprint(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _check_exists(path: Path, what: str, hint: str | None = None) -> Path:
    if not path.is_file():
        raise CorpusError(
            hint
            or f"{what} {str(path)!r} does not exist; make sure the path is right, or fetch the "
            "corpus with `python -m lit_seq2seq.download --help`"
        )
    return path


def _decode(raw: bytes, line: int, stats: ReadStats) -> str | None:
    try:
        return decode(raw)
    except UnicodeDecodeError:
        stats.skip("invalid UTF-8", line)
        return None


class _Filter:
    """Keep a pair when both regexes match (``search``), keeping the matched text."""

    def __init__(self, en_pattern: str | None, fr_pattern: str | None) -> None:
        self.en = re.compile(en_pattern) if en_pattern else None
        self.fr = re.compile(fr_pattern) if fr_pattern else None

    def __call__(self, fr: str, en: str) -> Pair | None:
        if self.en is not None:
            match = self.en.search(en)
            if not match:
                return None
            en = match.group(0)
        if self.fr is not None:
            match = self.fr.search(fr)
            if not match:
                return None
            fr = match.group(0)
        return fr, en


def _keep(
    fr: str | None, en: str | None, line: int, stats: ReadStats, keep: _Filter
) -> Pair | None:
    if fr is None or en is None:
        return None
    fr, en = normalize(fr), normalize(en)
    if not fr or not en:
        stats.skip("empty side", line)
        return None
    if len(fr) > MAX_CHARS or len(en) > MAX_CHARS:
        stats.skip(f"over {MAX_CHARS:,} characters", line)
        return None
    pair = keep(fr, en)
    if pair is None:
        stats.skip("filtered out", line)
        return None
    stats.kept += 1
    return pair


class GigaFrenCorpus:
    """Line-aligned release files, e.g. ``giga-fren.release2.fixed.en`` / ``.fr`` (22M lines).

    Args:
        en_path: English file, one sentence per line.
        fr_path: French file, line-aligned with ``en_path``.
        en_pattern: keep pairs whose English matches (default: the lesson's wh-questions).
        fr_pattern: keep pairs whose French matches (default: the lesson's questions).

    Raises:
        CorpusError: a missing file; files with different line counts (both named, with counts).
    """

    def __init__(
        self,
        en_path: str | Path,
        fr_path: str | Path,
        en_pattern: str | None = LESSON_EN_PATTERN,
        fr_pattern: str | None = LESSON_FR_PATTERN,
    ) -> None:
        self.en_path, self.fr_path = Path(en_path), Path(fr_path)
        self.en_pattern, self.fr_pattern = en_pattern, fr_pattern

    def fingerprint(self) -> dict[str, object]:
        return {
            "reader": "giga-fren",
            "en": _file_fingerprint(_check_exists(self.en_path, "English file")),
            "fr": _file_fingerprint(_check_exists(self.fr_path, "French file")),
            "patterns": [self.en_pattern, self.fr_pattern],
        }

    def pairs(self, stats: ReadStats) -> Iterator[Pair]:
        keep = _Filter(self.en_pattern, self.fr_pattern)
        en_file = _check_exists(self.en_path, "English file").open("rb")
        fr_file = _check_exists(self.fr_path, "French file").open("rb")
        with en_file, fr_file:
            en_lines, fr_lines = split_lines(en_file), split_lines(fr_file)
            for line, (raw_en, raw_fr) in enumerate(itertools.zip_longest(en_lines, fr_lines), 1):
                if raw_en is None or raw_fr is None:
                    rest = 1 + sum(1 for _ in (fr_lines if raw_en is None else en_lines))
                    n_en = line - 1 + (rest if raw_fr is None else 0)
                    n_fr = line - 1 + (rest if raw_en is None else 0)
                    raise CorpusError(
                        f"misaligned corpus: {self.en_path} has {n_en} lines but {self.fr_path} "
                        f"has {n_fr}; the two files must be line-aligned translations"
                    )
                stats.lines += 1
                en, fr = _decode(raw_en, line, stats), _decode(raw_fr, line, stats)
                pair = _keep(fr, en, line, stats, keep)
                if pair is not None:
                    yield pair


class TsvCorpus:
    """Tab-separated pairs, e.g. Tatoeba/manythings ``English<TAB>French<TAB>attribution``.

    Args:
        path: the file.
        columns: one name per tab-separated field: ``"fr"``, ``"en"``, anything else is ignored
            (e.g. ``[en, fr, attribution]`` for manythings, ``[fr, en]`` for
            ../shared/data/fra-eng).
        en_pattern: optional regex the English side must match (the match is kept).
        fr_pattern: optional regex the French side must match (the match is kept).
        search: directories to look for a relative ``path`` in, first match wins (e.g. the
            project's ``data/`` before ``../shared/data``).
        fetch: the command that writes the file, named when no directory has it.

    Raises:
        CorpusError: a missing file, ``columns`` without exactly one ``fr`` and one ``en``, or a
            first line whose field count differs from ``columns`` (an unknown layout).
    """

    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str] = ("fr", "en"),
        en_pattern: str | None = None,
        fr_pattern: str | None = None,
        search: Sequence[str | Path] | None = None,
        fetch: str | None = None,
    ) -> None:
        columns = list(columns)
        if columns.count("fr") != 1 or columns.count("en") != 1:
            raise CorpusError(
                f"TsvCorpus(columns={columns}): name exactly one 'fr' and one 'en' column, "
                "e.g. [en, fr, attribution] for manythings.org files"
            )
        self.name, self.columns = Path(path), columns
        self.en_pattern, self.fr_pattern = en_pattern, fr_pattern
        self.search = [Path(d) for d in search or []]
        self.fetch = fetch

    @property
    def path(self) -> Path:
        """The file: ``path`` itself, or under the first ``search`` directory that has it."""
        if not self.search or self.name.is_absolute():
            return self.name
        candidates = [d / self.name for d in self.search]
        return next((c for c in candidates if c.is_file()), candidates[0])

    def _existing(self) -> Path:
        hint = None
        if self.search and not self.name.is_absolute():
            where = ", ".join(str(d) for d in self.search)
            hint = f"corpus file {str(self.name)!r} is not under {where}" + (
                f"; fetch it with `{self.fetch}`" if self.fetch else ""
            )
        elif self.fetch:
            hint = f"corpus file {str(self.name)!r} does not exist; fetch it with `{self.fetch}`"
        return _check_exists(self.path, "corpus file", hint)

    def fingerprint(self) -> dict[str, object]:
        return {
            "reader": "tsv",
            "file": _file_fingerprint(self._existing()),
            "columns": self.columns,
            "patterns": [self.en_pattern, self.fr_pattern],
        }

    def pairs(self, stats: ReadStats) -> Iterator[Pair]:
        keep = _Filter(self.en_pattern, self.fr_pattern)
        i_fr, i_en, width = self.columns.index("fr"), self.columns.index("en"), len(self.columns)
        with self._existing().open("rb") as f:
            for line, raw in enumerate(split_lines(f), 1):
                stats.lines += 1
                text = _decode(raw, line, stats)
                if text is None:
                    continue
                if not text.strip():
                    stats.skip("empty line", line)
                    continue
                fields = text.split("\t")
                if len(fields) != width:
                    if stats.kept == 0 and not stats.skipped.get("wrong column count"):
                        raise CorpusError(
                            f"{self.path}: line {line} has {len(fields)} tab-separated fields but "
                            f"columns={self.columns} expects {width}; set data columns to the "
                            "file's layout, e.g. [en, fr, attribution] for manythings.org"
                        )
                    stats.skip("wrong column count", line)
                    continue
                pair = _keep(fields[i_fr], fields[i_en], line, stats, keep)
                if pair is not None:
                    yield pair


class SyntheticCorpus:
    """The embedded offline corpus: generated French/English wh-questions (see synthetic.py).

    Args:
        n_pairs: distinct pairs to generate (at least 20,000 for the default run).
        seed: the generator's seed; the same seed gives the same corpus in the same order.
    """

    RANGES: ClassVar[dict[str, Range]] = {"n_pairs": Int(1, 10_000_000), "seed": Int(0)}

    def __init__(self, n_pairs: int = 20_000, seed: int = 0) -> None:
        check_ranges(locals(), self.RANGES)
        self.n_pairs, self.seed = n_pairs, seed

    def fingerprint(self) -> dict[str, object]:
        from lit_seq2seq.synthetic import GENERATOR_VERSION

        return {"reader": "synthetic", "n": self.n_pairs, "seed": self.seed, "v": GENERATOR_VERSION}

    def pairs(self, stats: ReadStats) -> Iterator[Pair]:
        from lit_seq2seq.synthetic import generate_pairs

        for fr, en in generate_pairs(self.n_pairs, self.seed):
            stats.lines += 1
            stats.kept += 1
            yield fr, en
