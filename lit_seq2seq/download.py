"""Fetch the real corpora and word vectors, or say exactly what to fetch and where to put it.

    python -m lit_seq2seq.download tatoeba [--dest data] [--source d2l|manythings] [--archive ZIP]
    python -m lit_seq2seq.download {giga-fren,fasttext-fr,fasttext-en} --dest DIR

``tatoeba`` downloads the Tatoeba/manythings French-English archive, checks it (a zip, not an HTML
page; the known SHA-1 for the d2l.ai mirror of the 2019-04-07 release), and writes under
``DEST/fra-eng/``: ``pairs.tsv`` (french<TAB>english, every distinct pair), ``questions.tsv`` (the
wh-questions), the fixed splits ``questions.{train,valid,test}.tsv`` and ``pairs.train.tsv`` (every
pair whose English is not in valid/test), with the split membership shipped in
``lit_seq2seq/data/tatoeba_question_splits.tsv``: the same files as ``../shared/data/fra-eng`` for
the 2019 release (checked by SHA-256), the same membership by English sentence for a newer one.
``--archive`` builds from a zip already on disk. Nothing is left half-written: downloads go to a
``.part`` file and outputs to temporary files renamed when complete.

Without network access (as on the machines this is tested on) it prints the URL and the path the
data config expects, and exits with status 1.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import re
import shutil
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lit_common import cli

SPLITS_FILE = Path(__file__).parent / "data" / "tatoeba_question_splits.tsv"
QUESTION = re.compile(r"^(what|where|which|when|who|why|how)\b", re.IGNORECASE)
USER_AGENT = "Mozilla/5.0 (lit-translate-devise; +https://tatoeba.org)"  # manythings refuses bots


@dataclass(frozen=True)
class Resource:
    url: str
    archive: str
    expected: str  # what the data config reads, relative to --dest
    note: str
    sha1: str | None = None  # of the archive, where known


RESOURCES = {
    "giga-fren": Resource(
        "https://www.statmt.org/wmt10/training-giga-fren.tar",
        "training-giga-fren.tar",
        "giga-fren/giga-fren.release2.fixed.en (and .fr)",
        "2.4 GB tar of two gzipped files; data=giga_fren reads them unzipped",
    ),
    "tatoeba": Resource(
        "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip",
        "fra-eng.zip",
        "fra-eng/questions.train.tsv (and the valid, test and pairs.train files)",
        "the 2019-04-07 manythings release mirrored by d2l.ai; or pass --archive with the zip "
        "from https://www.manythings.org/anki/fra-eng.zip",
        "94646ad1522d915e7b0f9296181140edcf86a4f5",
    ),
    "fasttext-fr": Resource(
        "https://dl.fbaipublicfiles.com/fasttext/vectors-crawl/cc.fr.300.bin.gz",
        "cc.fr.300.bin.gz",
        "cc.fr.300.bin",
        "gunzip it; then data.src_vectors.kind=fasttext data.src_vectors.path=<that file>",
    ),
    "fasttext-en": Resource(
        "https://dl.fbaipublicfiles.com/fasttext/vectors-crawl/cc.en.300.bin.gz",
        "cc.en.300.bin.gz",
        "cc.en.300.bin",
        "gunzip it; then data.tgt_vectors.kind=fasttext data.tgt_vectors.path=<that file>",
    ),
}
MANYTHINGS_URL = "https://www.manythings.org/anki/fra-eng.zip"
# SHA-256 of the files ../shared/data/fra-eng holds, built from the 2019-04-07 release.
REFERENCE_SHA256 = {
    "pairs.tsv": "558f34ee641efed03705d08987ab4e8cf3d4c44ee4d091cd438deeab7c7a33d6",
    "questions.tsv": "2c6d73e0327f975cdee429bfc7b9bb4d42f6bbc4659cc55769780d91463e1b70",
    "questions.train.tsv": "51349fa918bb9d5ce9d8a94c2f24c63c8460c25b64b6045d31e5a87cd0d2738b",
    "questions.valid.tsv": "4dee2441231df030577e4fc47ab5a7de24b9d7ee76ffc50c777fe87e5e453818",
    "questions.test.tsv": "1f8f0eefcc4fe882ded8494c071969b624f4aea4119a2346cdf654d72509dc6e",
    "pairs.train.tsv": "ca4cfaac02f2a0fd4cb32f12fdc0d8198af4b966cb02e54992666b67cf1b6bb2",
}


class DownloadError(OSError):
    """A download or archive that cannot be used; the message says what to do instead."""


def manual_instructions(name: str, dest: Path, reason: str) -> str:
    r = RESOURCES[name]
    if name == "tatoeba":
        return (
            f"could not download {name} ({reason}); download {r.url} (or {MANYTHINGS_URL}) and "
            f"run `python -m lit_seq2seq.download tatoeba --dest {dest} --archive <the zip>` to "
            f"write {dest / r.expected}"
        )
    return (
        f"could not download {name} ({reason}); download {r.url} and unpack it so that "
        f"{dest / r.expected} exists ({r.note})"
    )


def _download(url: str, target: Path, timeout: float) -> None:
    """``url`` into ``target`` through ``target.part``: never a half file under the real name."""
    part = target.with_name(target.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, part.open("wb") as f:
            shutil.copyfileobj(response, f)
            headers = getattr(response, "headers", None) or {}
        expected = headers.get("Content-Length")
        if expected and expected.isdigit() and part.stat().st_size != int(expected):
            raise DownloadError(
                f"{url}: got {part.stat().st_size:,} of {int(expected):,} bytes (connection cut)"
            )
        check_payload(part, target.name)
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


MAGIC = {".zip": (b"PK\x03\x04", b"PK\x05\x06"), ".gz": (b"\x1f\x8b",)}


def check_payload(path: Path, name: str) -> None:
    """Refuse what a server sends instead of an archive: an HTML or XML page (a login, error or
    "moved" page) or bytes that do not start as ``name``'s format (zip, gzip, tar) does.

    Raises:
        DownloadError: naming the file and what it is instead.
    """
    with path.open("rb") as f:
        head = f.read(512)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise DownloadError(
            f"{name}: the server sent a web page, not the archive (a login, error or moved page)"
        )
    suffix = Path(name).suffix
    if suffix in MAGIC and not head.startswith(MAGIC[suffix]):
        raise DownloadError(f"{name}: not a {suffix[1:]} archive (starts with {head[:8]!r})")
    if suffix == ".tar" and not tarfile.is_tarfile(path):
        raise DownloadError(f"{name}: not a tar archive (truncated or another file)")


def fetch(name: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download and unpack ``name`` (not ``tatoeba``: see ``fetch_tatoeba``) into ``dest``.

    Raises:
        OSError: when the download fails; the message says what to fetch by hand.
    """
    r = RESOURCES[name]
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / r.archive
    try:
        _download(r.url, archive, timeout)
    except (OSError, http.client.HTTPException) as err:  # URLError and timeouts are OSErrors
        raise DownloadError(manual_instructions(name, dest, str(err))) from None
    if archive.suffix == ".tar":
        try:
            with tarfile.open(archive) as t:
                t.extractall(dest / "giga-fren", filter="data")
        except (tarfile.TarError, EOFError) as err:
            raise DownloadError(
                f"{archive}: unpacking failed ({err}); delete it and run again"
            ) from None
    return dest


def check_archive(archive: Path, sha1: str | None = None) -> bytes:
    """The ``fra.txt`` of a Tatoeba/manythings zip, after checking what the file is.

    Raises:
        DownloadError: an HTML page (a login or error page saved as the archive), not a zip, a
            zip without ``fra.txt``, or a SHA-1 other than ``sha1``.
    """
    head = archive.read_bytes()[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml")):
        raise DownloadError(
            f"{archive} is an HTML page, not a zip archive (the site answered with a web page); "
            f"download it in a browser from {MANYTHINGS_URL} and pass --archive"
        )
    if not zipfile.is_zipfile(archive):
        raise DownloadError(f"{archive} is not a zip archive (truncated download?); fetch it again")
    if sha1 is not None:
        digest = hashlib.sha1(archive.read_bytes()).hexdigest()
        if digest != sha1:
            raise DownloadError(
                f"{archive} has SHA-1 {digest}, expected {sha1}; the download is damaged or "
                "another release (pass --source manythings to accept another release)"
            )
    with zipfile.ZipFile(archive) as z:
        names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == "fra.txt"]
        if not names:
            raise DownloadError(f"{archive} has no fra.txt (members: {z.namelist()[:5]})")
        return z.read(names[0])


def parse_pairs(raw: bytes) -> list[tuple[str, str]]:
    """Distinct (French, English) pairs of a ``fra.txt`` (English<TAB>French[<TAB>attribution]),
    both sides stripped, empty sides dropped, file order kept (how ../shared/data was built)."""
    seen: dict[tuple[str, str], None] = {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DownloadError(f"fra.txt is not UTF-8 text ({err}); the archive is damaged") from None
    for number, line in enumerate(io.StringIO(text), 1):
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 2:
            raise DownloadError(f"fra.txt line {number}: expected English<TAB>French, got {line!r}")
        en, fr = fields[0].strip(), fields[1].strip()
        if en and fr:
            seen.setdefault((fr, en), None)
    return list(seen)


def read_membership(path: Path = SPLITS_FILE) -> dict[str, list[str]]:
    """Split name -> English sentences in file order, from the shipped membership file."""
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            split, english = line.split("\t", 1)
            splits[split].append(english)
    return splits


def build_splits(
    pairs: list[tuple[str, str]], membership: dict[str, list[str]]
) -> dict[str, list[tuple[str, str]]]:
    """The files ``fetch_tatoeba`` writes, as lists of (French, English) pairs.

    Each split lists the pairs of its English sentences in the membership's order; questions
    whose English the membership does not know (a newer release) join train, in file order.
    """
    questions = [p for p in pairs if QUESTION.search(p[1]) and p[1].endswith("?")]
    by_english: dict[str, list[tuple[str, str]]] = {}
    for pair in questions:
        by_english.setdefault(pair[1], []).append(pair)
    held = set(membership["valid"]) | set(membership["test"])
    known = held | set(membership["train"])
    out = {
        split: [p for en in membership[split] for p in by_english.get(en, [])]
        for split in ("train", "valid", "test")
    }
    out["train"] += [p for p in questions if p[1] not in known]
    return {
        "pairs.tsv": pairs,
        "questions.tsv": questions,
        "questions.train.tsv": out["train"],
        "questions.valid.tsv": out["valid"],
        "questions.test.tsv": out["test"],
        "pairs.train.tsv": [p for p in pairs if p[1] not in held],
    }


def _write_atomic(path: Path, pairs: Iterable[tuple[str, str]]) -> str:
    tmp = path.with_name(path.name + ".part")
    data = "".join(f"{fr}\t{en}\n" for fr, en in pairs).encode("utf-8")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def fetch_tatoeba(
    dest: Path, source: str = "d2l", archive: Path | None = None, timeout: float = 60.0
) -> list[str]:
    """Download (unless ``archive`` is given), check and split the Tatoeba pairs into
    ``dest/fra-eng``; returns the report lines.

    Raises:
        DownloadError: a failed download (with what to fetch by hand) or an unusable archive.
    """
    out_dir = dest / "fra-eng"
    out_dir.mkdir(parents=True, exist_ok=True)
    expected_sha1 = RESOURCES["tatoeba"].sha1 if source == "d2l" and archive is None else None
    downloaded = archive is None
    if archive is None:
        url = RESOURCES["tatoeba"].url if source == "d2l" else MANYTHINGS_URL
        archive = out_dir / "fra-eng.zip"
        try:
            _download(url, archive, timeout)
        except (OSError, http.client.HTTPException) as err:  # URLError and timeouts are OSErrors
            raise DownloadError(manual_instructions("tatoeba", dest, str(err))) from None
    elif not archive.is_file():
        raise DownloadError(f"--archive {archive} does not exist")
    try:
        pairs = parse_pairs(check_archive(archive, expected_sha1))
    except DownloadError:
        if downloaded:  # a page or a damaged file saved under the archive's name: not kept
            archive.unlink(missing_ok=True)
        raise
    membership = read_membership()
    files = build_splits(pairs, membership)
    report = [f"{archive}: {len(pairs)} distinct pairs, {len(files['questions.tsv'])} questions"]
    identical = True
    for name, rows in files.items():
        digest = _write_atomic(out_dir / name, rows)
        identical &= digest == REFERENCE_SHA256[name]
        report.append(f"  {out_dir / name}: {len(rows)} pairs")
    if identical:
        report.append("identical to ../shared/data/fra-eng (the 2019-04-07 release, SHA-256)")
    else:
        english = {en for _, en in files["questions.tsv"]}
        for split in ("valid", "test"):
            found = sum(en in english for en in membership[split])
            report.append(
                f"another release: {split} keeps its membership by English sentence, "
                f"{found} of its {len(membership[split])} sentences found"
            )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RESOURCES))
    parser.add_argument("--dest", type=Path, default=Path("data"))
    parser.add_argument(
        "--source",
        choices=["d2l", "manythings"],
        default="d2l",
        help="tatoeba: the d2l.ai mirror of the 2019 release (checked by SHA-1), or "
        "manythings.org's current release",
    )
    parser.add_argument("--archive", type=Path, help="tatoeba: build from this zip on disk")
    args = parser.parse_args(argv)
    try:
        if args.name == "tatoeba":
            print("\n".join(fetch_tatoeba(args.dest, args.source, args.archive)))
        else:
            print(fetch(args.name, args.dest))
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
