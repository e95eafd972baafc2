"""Search an index built by ``lit_devise.index``: words -> images, image -> images or labels.

``python -m lit_devise.search --index INDEX_DIR (--text "engine boat" | --image FILE) [--k 9]
[--target images|labels] [--out grid.png]`` prints one result per line, ``<rank> <score> <label or
path>`` (score: cosine similarity), and with ``--out`` writes an image grid of the results. A text
query is the mean of its words' vectors (DeViSE's "words and sums of words"), looked up in the
query words the index keeps (``--vectors FILE`` looks them up in a vector file instead); an image
query is the image's embedding from the index's checkpoint. Image paths are the index's ids below
its ``images_root`` (``--images-root`` when the images moved); an id that leaves that folder is
refused.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from lit_common import cli
from lit_common.checkpoint import CheckpointError
from lit_common.errors import InputError, check_choice
from lit_common.ranges import Int
from lit_common.schema import file_digest, read_json, require
from lit_common.text import one_line
from lit_devise.images import BAD_IMAGE_ERRORS, ImageDataError, load_rgb
from lit_devise.index import FORMAT as INDEX_FORMAT
from lit_devise.knn import KnnError, KnnIndex
from lit_devise.module import DeviseModule
from lit_devise.plots import Cell, save_grid
from lit_devise.precompute import pick_device
from lit_devise.transforms import eval_transform
from lit_devise.wordvecs import SavedWords, VectorsError, WordVectors, query_words, some

TARGETS = ("images", "labels")


def _index_info(folder: Path) -> dict[str, Any]:
    """The index folder's ``index.json``, checked against its schema (what search reads)."""
    path = folder / "index.json"
    if not path.is_file():
        raise KnnError(f"{folder} is not an index folder (no index.json); run lit_devise.index")
    info = read_json(path, "index file")
    require(info, {"format": int}, str(path))
    if info["format"] != INDEX_FORMAT:
        raise KnnError(
            f"{folder} is an index of format {info['format']} (this version reads {INDEX_FORMAT}, "
            "with file checksums); rebuild it with lit_devise.index"
        )
    require(
        info,
        {"ckpt": str, "ckpt_digest": dict, "vectors_path": (str, None), "images_root": str},
        str(path),
    )
    return info


def same_checkpoint(ckpt: str, info: dict[str, Any]) -> None:
    """Refuse a checkpoint other than the one the index was built with (by size and SHA-256):
    its embeddings would live in another space, and every image result would be wrong without a
    word."""
    path = Path(ckpt)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {one_line(ckpt)} does not exist; give --ckpt with the index's"
        )
    expected = info["ckpt_digest"]
    if path.stat().st_size != expected.get("size") or file_digest(path) != expected:
        raise CheckpointError(
            f"checkpoint {one_line(ckpt)} is not the one this index was built with (its size or "
            "SHA-256 differ: replaced or retrained since?); rebuild the index with it, or give "
            "--ckpt with the index's checkpoint"
        )


def text_query(text: str, vectors_path: str | None, saved: SavedWords | None) -> np.ndarray:
    """The query's vector from ``vectors_path`` when given, else from the index's query words
    (``saved``; None when the index keeps none)."""
    words = query_words(text)
    if vectors_path:
        return WordVectors.load(vectors_path, words, allow_empty=True).query(text)
    if saved is None:
        raise VectorsError("the index keeps no query words (built without vectors); give --vectors")
    table = saved.select(words)
    missing = [w for w in words if w not in table]
    if missing:
        raise VectorsError(
            f"no word vector for {some(missing)} among the index's query words; rebuild the index "
            "with a larger --query-words, or give --vectors FILE to look them up there"
        )
    return table.query(text)


def image_path(info: dict[str, Any], image_id: str, images_root: str | None = None) -> str:
    """The file of an image id: a path below the index's ``images_root`` (or ``images_root``
    given here, when the images moved).

    Raises:
        KnnError: an id that is absolute or climbs out of the root (a tampered index).
    """
    relative = PurePosixPath(image_id)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise KnnError(f"image id {image_id!r} leaves the indexed folder; the index is damaged")
    return str(Path(images_root or info["images_root"]) / relative)


def image_query(image: str, module: DeviseModule) -> np.ndarray:
    """The unit embedding (dim,) of one image file by ``module`` (on its own device), under the
    same pixel budget and decoding checks as indexing (``images.load_rgb``).

    Raises:
        ImageDataError: a missing file, or one that is not a readable image within the budget,
            naming why.
    """
    if not Path(image).is_file():
        raise ImageDataError(f"query image {one_line(image)!r} does not exist")
    assert module.devise is not None
    try:
        picture = load_rgb(image)
    except BAD_IMAGE_ERRORS as err:
        name = Path(image).name  # not the server's folder: a page shows this message
        detail = str(err).removeprefix(f"{image}: ").replace(str(image), name)
        raise ImageDataError(
            f"query image {one_line(name)} is unreadable or over the pixel budget "
            f"({one_line(detail) or type(err).__name__})"
        ) from None
    x = eval_transform(**module.devise["transform"])(picture).unsqueeze(0)
    device = next(module.parameters()).device
    with torch.no_grad():
        return module.embed(x.to(device)).float().cpu().numpy()[0]


class Searcher:
    """An index folder opened once for many queries (``search`` and the demo page): its
    ``index.json``, its ``images/`` and ``labels/`` indices (each loaded on first use), and for
    image queries the checkpoint it was built with (checked by size and SHA-256, and loaded on
    the first image query). Safe to share between threads.

    Args:
        index_dir: folder written by ``lit_devise.index``.
        vectors: look text up in this vector file instead of the index's query words.
        ckpt: checkpoint for image queries (default: the index's; must be that one).
        images_root: where the indexed images are now.
        device: where image queries are embedded (``auto``: CUDA when there is one).
    """

    def __init__(
        self,
        index_dir: str | Path,
        vectors: str | None = None,
        ckpt: str | None = None,
        images_root: str | None = None,
        device: str = "auto",
    ) -> None:
        if images_root is not None and not Path(images_root).is_dir():
            raise InputError(
                f"--images-root {one_line(images_root)} is not a folder; give where the images are"
            )
        self.folder = Path(index_dir)
        self.info = _index_info(self.folder)
        self.vectors, self.images_root, self.device = vectors, images_root, device
        self.ckpt = ckpt or self.info["ckpt"]
        self._indices: dict[str, KnnIndex] = {}
        self._module: DeviseModule | None = None
        self._words: SavedWords | None = None
        self._lock = threading.Lock()

    @property
    def root(self) -> str:
        """The folder the images' ids are below."""
        return self.images_root or self.info["images_root"]

    def index(self, target: str) -> KnnIndex:
        """The ``images`` or ``labels`` index, loaded once."""
        check_choice("target", target, TARGETS)
        with self._lock:
            if target not in self._indices:
                self._indices[target] = KnnIndex.load(self.folder / target)
            return self._indices[target]

    def module(self) -> DeviseModule:
        """The index's checkpoint, checked and loaded once."""
        with self._lock:
            if self._module is None:
                same_checkpoint(self.ckpt, self.info)
                module = DeviseModule.from_checkpoint(self.ckpt)
                self._module = module.to(pick_device(self.device)).eval()
            return self._module

    def saved_words(self) -> SavedWords | None:
        """The index's query words, opened once; None when it keeps none."""
        with self._lock:
            if self._words is None and (self.folder / "words" / "words.json").is_file():
                self._words = SavedWords(self.folder / "words")
            return self._words

    def text(self, text: str, k: int = 9, target: str = "images") -> list[tuple[int, float, str]]:
        """Ranked ``(rank, cosine, label or path)`` for words (averaged); ranks start at 1."""
        saved = None if self.vectors else self.saved_words()
        return self.nearest(text_query(text, self.vectors, saved), k, target)

    def image(self, image: str, k: int = 9, target: str = "images") -> list[tuple[int, float, str]]:
        """Ranked ``(rank, cosine, label or path)`` for an image file's embedding."""
        return self.nearest(self.embed(image), k, target)

    def embed(self, image: str) -> np.ndarray:
        """An image file's unit embedding (dim,) by the index's checkpoint."""
        return image_query(image, self.module())

    def nearest(self, query: np.ndarray, k: int, target: str) -> list[tuple[int, float, str]]:
        """Ranked ``(rank, cosine, label or path)`` for a query vector."""
        index = self.index(target)
        scores, rows = index.search(query, k)
        names = index.metadata.get("names")
        results = []
        for rank, (score, row) in enumerate(zip(scores[0], rows[0], strict=True), 1):
            if row < 0:
                continue
            if names:
                label = f"{names[row].split(',')[0]} ({index.ids[row]})"
            else:
                label = image_path(self.info, index.ids[row], self.images_root)
            results.append((rank, float(score), label))
        return results


def search(
    index_dir: str | Path,
    text: str | None = None,
    image: str | None = None,
    k: int = 9,
    target: str = "images",
    vectors: str | None = None,
    ckpt: str | None = None,
    images_root: str | None = None,
) -> list[tuple[int, float, str]]:
    """Ranked ``(rank, cosine, label or path)`` for one query; ranks start at 1. ``vectors``:
    look the text up in this vector file instead of the index's query words; ``images_root``:
    where the indexed images are now."""
    if (text is None) == (image is None):
        raise InputError("give exactly one of text= and image=")
    check_choice("target", target, TARGETS)
    searcher = Searcher(index_dir, vectors, ckpt, images_root)
    if text is not None:
        return searcher.text(text, k, target)
    return searcher.image(str(image), k, target)


def grid_rows(
    query: str, results: Sequence[tuple[int, float, str]], target: str, image: str | None
) -> list[tuple[str, list[Cell]]]:
    cells: list[Cell] = [(image, "query", None)] if image else []
    for rank, score, label in results:
        path = label if target == "images" else None
        caption = f"{rank}. {score:.2f}" if path else f"{rank}. {label} {score:.2f}"
        cells.append((path, caption, None))
    return [(query, cells)]


K = Int(1, 10_000)  # results per query


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.ArgumentParser(description="Search a DeViSE index by words or by image.")
    parser.add_argument("--index", required=True, help="folder written by lit_devise.index")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help='one or more words, averaged, e.g. "engine boat"')
    query.add_argument("--image", help="an image file")
    parser.add_argument("--k", type=K.arg(), default=9, help=f"results to show; {K}")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="images",
        help="search images (default) or labels (classes and nouns)",
    )
    parser.add_argument(
        "--out", type=cli.output_file(), help="write an image grid of the results to this file"
    )
    parser.add_argument(
        "--vectors", help="look --text up in this vector file (default: the index's query words)"
    )
    parser.add_argument("--ckpt", help="checkpoint for --image (default: the index's)")
    parser.add_argument(
        "--images-root", help="where the indexed images are now (default: where they were indexed)"
    )
    args = parser.parse_args(argv)
    try:
        results = search(
            args.index,
            args.text,
            args.image,
            args.k,
            args.target,
            args.vectors,
            args.ckpt,
            args.images_root,
        )
        for rank, score, label in results:
            print(f"{rank} {score:.4f} {one_line(label)}")  # a name cannot split a result
        if args.out:
            rows = grid_rows(args.text or Path(args.image).name, results, args.target, args.image)
            print(f"grid: {save_grid(rows, args.out)}", file=sys.stderr)
    except (InputError, *BAD_IMAGE_ERRORS) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
