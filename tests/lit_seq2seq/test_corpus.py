"""Corpus readers: filters, layouts, bad input counted or refused, the synthetic generator."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lit_seq2seq.corpus import CorpusError, GigaFrenCorpus, ReadStats, SyntheticCorpus, TsvCorpus
from lit_seq2seq.synthetic import generate_pairs


def write(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def test_giga_fren_lesson_filter(tmp_path: Path) -> None:
    en = write(tmp_path / "g.en", ["What is this?", "This is fine.", "Where is it? Here.", "Who?"])
    fr = write(tmp_path / "g.fr", ["Qu'est-ce ?", "C'est bien.", "Où est-il ? Ici.", "Qui."])
    stats = ReadStats()
    pairs = list(GigaFrenCorpus(en, fr).pairs(stats))
    # "Who?" has no word before '?'... it matches ^Wh[^?.!]+\? ("Who" + "?"), but "Qui." does not.
    assert pairs == [("Qu'est-ce ?", "What is this?"), ("Où est-il ?", "Where is it?")]
    assert stats.lines == 4 and stats.kept == 2 and stats.skipped == {"filtered out": 2}
    assert stats.examples["filtered out"] == [2, 4]


def test_giga_fren_misaligned_files_name_both_with_counts(tmp_path: Path) -> None:
    en = write(tmp_path / "a.en", ["What?", "Why?", "Who?"])
    fr = write(tmp_path / "a.fr", ["Quoi ?"])
    with pytest.raises(CorpusError, match=r"a\.en has 3 lines but .*a\.fr has 1"):
        list(GigaFrenCorpus(en, fr).pairs(ReadStats()))
    with pytest.raises(CorpusError, match=r"b\.en has 1 lines but .*a\.en has 3"):
        list(GigaFrenCorpus(write(tmp_path / "b.en", ["What?"]), en).pairs(ReadStats()))


def test_tsv_manythings_layout_and_counted_skips(tmp_path: Path) -> None:
    path = write(
        tmp_path / "fra.txt",
        [
            "Who are you?\tQui êtes-vous ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
            "",
            b"Bad\t\xff\xfe\tx",
            "Hello.\tBonjour.\tx",
            "Why?\t\tx",
            "only two\tfields",
        ],
    )
    stats = ReadStats()
    corpus = TsvCorpus(path, columns=["en", "fr", "attribution"], en_pattern=r"^(Who|Why).*\?$")
    assert list(corpus.pairs(stats)) == [("Qui êtes-vous ?", "Who are you?")]
    assert stats.skipped == {
        "empty line": 1,
        "invalid UTF-8": 1,
        "filtered out": 1,
        "empty side": 1,
        "wrong column count": 1,
    }
    assert "6 lines read, 1 pairs kept" in stats.summary()


def test_tsv_unknown_layout_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv", ["What?\tQuoi ?\tattribution"])
    with pytest.raises(CorpusError, match="line 1 has 3 tab-separated fields but columns"):
        list(TsvCorpus(path, columns=["fr", "en"]).pairs(ReadStats()))
    with pytest.raises(CorpusError, match="exactly one 'fr' and one 'en'"):
        TsvCorpus(path, columns=["fr", "fr"])
    with pytest.raises(CorpusError, match="does not exist"):
        TsvCorpus(tmp_path / "missing.tsv").fingerprint()


def test_synthetic_corpus_is_deterministic_distinct_and_exercises_attention() -> None:
    pairs = list(SyntheticCorpus(20_000, seed=0).pairs(ReadStats()))
    assert len(pairs) == len(set(pairs)) == 20_000
    assert pairs[:50] == list(generate_pairs(50, seed=0))
    assert pairs[:50] != list(generate_pairs(50, seed=1))
    french = [fr for fr, _ in pairs]
    english = [en for _, en in pairs]
    assert all(en.endswith("?") and fr.endswith(" ?") for fr, en in pairs)
    for marker in (" l'", " d'", "Qu'", "-t-il", "-t-elle", "est-ce que", " du ", " des "):
        assert any(marker in s for s in french), marker
    assert any("'s " in s for s in english)  # genitives swap order: la voiture du médecin
    assert any(" bel " in s or " vieil " in s or " nouvel " in s for s in french)
    assert any("Quelles " in s for s in french) and any("Quel " in s for s in french)
    lengths = [len(s.split()) for s in french]
    assert min(lengths) <= 4 and max(lengths) >= 18


def test_tsv_search_directories_first_match_wins_and_names_the_fetch_command(
    tmp_path: Path,
) -> None:
    own, shared = tmp_path / "data", tmp_path / "shared"
    write((shared / "fra-eng").mkdir(parents=True) or shared / "fra-eng" / "q.tsv", ["Qui ?\tWho?"])
    fetch = "python -m lit_seq2seq.download tatoeba --dest data"
    corpus = TsvCorpus("fra-eng/q.tsv", search=[own, shared], fetch=fetch)
    assert corpus.path == shared / "fra-eng" / "q.tsv"
    assert list(corpus.pairs(ReadStats())) == [("Qui ?", "Who?")]
    write((own / "fra-eng").mkdir(parents=True) or own / "fra-eng" / "q.tsv", ["Où ?\tWhere?"])
    assert corpus.path == own / "fra-eng" / "q.tsv", "data/ before ../shared/data"
    missing = TsvCorpus("fra-eng/none.tsv", search=[own, shared], fetch=fetch)
    expected = re.escape(f"is not under {own}, {shared}; fetch it with `{fetch}`")
    with pytest.raises(CorpusError, match=expected):
        missing.fingerprint()


def test_tsv_text_classes_are_cleaned_or_skipped_and_counted(tmp_path: Path) -> None:
    """BOM, CR and lone-CR endings, NUL and zero-width characters, Latin-1 and over-long lines:
    each line is cleaned or skipped with its reason; no other line is lost."""
    data = (
        b"\xef\xbb\xbfbonjour ?\thello?\r\n"  # BOM, CRLF
        b"o\xc3\xb9\xe2\x80\x8b ?\twhere?\r"  # zero-width space, a lone CR ends the line
        b"a\x00b ?\tc\x1bd?\n"  # NUL and ESC become spaces
        b"caf\xe9 ?\tcoffee?\n"  # Latin-1
        + b"x" * 10_001 + b"\tlong?\n"  # over the tokenizer's limit
        + b"\xe2\x80\x8b\tempty?\n"  # only an invisible character
        + b"fin ?\tend?"  # no final newline
    )  # fmt: skip
    path = tmp_path / "c.tsv"
    path.write_bytes(data)
    stats = ReadStats()
    pairs = list(TsvCorpus(path).pairs(stats))
    assert pairs == [
        ("bonjour ?", "hello?"),
        ("où ?", "where?"),
        ("a b ?", "c d?"),
        ("fin ?", "end?"),
    ]
    assert stats.lines == 7 and stats.kept == 4
    assert stats.skipped == {"invalid UTF-8": 1, "over 10,000 characters": 1, "empty side": 1}
    assert stats.examples["invalid UTF-8"] == [4] and stats.examples["over 10,000 characters"] == [
        5
    ]


@given(fields=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=6))
def test_tsv_reader_never_raises_and_accounts_for_every_line(
    tmp_path_factory: pytest.TempPathFactory, fields: list[tuple[str, str]]
) -> None:
    """Any text at all in the two columns: each line is kept or skipped with a reason, and a
    kept pair has no tab, newline, control or invisible character left."""
    path = tmp_path_factory.mktemp("prop") / "p.tsv"
    rows = [f"{fr}\t{en}" for fr, en in fields if "\t" not in fr + en]
    text = "\n".join(r.replace("\n", " ").replace("\r", " ") for r in rows)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    stats = ReadStats()
    pairs = list(TsvCorpus(path).pairs(stats))
    assert stats.kept == len(pairs) and stats.kept + sum(stats.skipped.values()) == stats.lines
    for pair in pairs:
        for side in pair:
            assert side and side == side.strip()
            assert all(unicodedata.category(c) not in ("Cc", "Cf") for c in side), side
