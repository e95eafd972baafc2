"""Fetch the real corpora and word vectors, or say exactly what to fetch and where to put it.

    python -m lit_seq2seq.download {giga-fren,tatoeba,fasttext-fr,fasttext-en} --dest DIR

Without network access (as on the machines this is tested on) it prints the URL and the path the
data config expects, and exits with status 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Resource:
    url: str
    archive: str
    expected: str  # what the data config reads, relative to --dest
    note: str


RESOURCES = {
    "giga-fren": Resource(
        "https://www.statmt.org/wmt10/training-giga-fren.tar",
        "training-giga-fren.tar",
        "giga-fren/giga-fren.release2.fixed.en (and .fr)",
        "2.4 GB tar of two gzipped files; data=giga_fren reads them unzipped",
    ),
    "tatoeba": Resource(
        "https://www.manythings.org/anki/fra-eng.zip",
        "fra-eng.zip",
        "fra-eng/fra.txt",
        "English<TAB>French<TAB>attribution; data=manythings reads it",
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


def manual_instructions(name: str, dest: Path, reason: str) -> str:
    r = RESOURCES[name]
    return (
        f"could not download {name} ({reason}).\n"
        f"  Download {r.url}\n"
        f"  and unpack it so that {dest / r.expected} exists ({r.note})."
    )


def fetch(name: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download and unpack ``name`` into ``dest``.

    Raises:
        OSError: when the download fails; the message says what to fetch by hand.
    """
    r = RESOURCES[name]
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / r.archive
    try:
        with urllib.request.urlopen(r.url, timeout=timeout) as response, archive.open("wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        archive.unlink(missing_ok=True)
        raise OSError(manual_instructions(name, dest, str(err))) from None
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest / "fra-eng")
    elif archive.suffix == ".tar":
        with tarfile.open(archive) as t:
            t.extractall(dest / "giga-fren", filter="data")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RESOURCES))
    parser.add_argument("--dest", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    try:
        print(fetch(args.name, args.dest))
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
