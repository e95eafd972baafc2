"""Build search indices from a DeViSE checkpoint and a folder of images.

``python -m lit_devise.index --ckpt CKPT --images DIR --out INDEX_DIR`` embeds every image under
``DIR`` (recursively; unreadable files are skipped, counted and listed) and writes:

- ``INDEX_DIR/images/``: the image embeddings, for text -> images and image -> images; ids are
  paths relative to the indexed folder, which ``index.json`` records (``images_root``), so the
  index folder can move, and the images too (``lit_devise.search --images-root``);
- ``INDEX_DIR/labels/``: the training classes' vectors plus, when the checkpoint's run had a noun
  list (or ``--nouns``), every WordNet noun with a vector, for image -> labels;
- ``INDEX_DIR/words/``: the vectors text queries need (the vector file's ``--query-words`` most
  frequent words plus every word of the labels), so a search never reloads the vector file;
- ``INDEX_DIR/index.json``: the checkpoint, the images' root and what was skipped.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader

from lit_common import cli
from lit_common.errors import InputError
from lit_common.ranges import SIZE, Int
from lit_common.schema import file_digest
from lit_devise.images import (
    IMAGE_SUFFIXES,
    ImageDataError,
    ImageDataset,
    image_files,
    skip_none_collate,
)
from lit_devise.knn import BACKENDS, KnnIndex
from lit_devise.module import DeviseModule
from lit_devise.precompute import pick_device
from lit_devise.transforms import eval_transform
from lit_devise.wordvecs import VectorsError, WordVectors, label_vectors, read_nouns, wanted_words

log = logging.getLogger(__name__)
FORMAT = 4  # 1: absolute ids; 2: no query words or file checksums; 3: no checkpoint checksum


def list_images(folder: str | Path) -> list[str]:
    """Absolute paths of the images under ``folder``, each named by its place below the folder
    (its id): a linked file keeps its link's name, so ids never leave the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageDataError(f"image folder {str(folder)!r} does not exist")
    paths = image_files(folder.resolve())
    if not paths:
        raise ImageDataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


@torch.no_grad()
def embed_images(
    module: DeviseModule,
    paths: Sequence[str],
    batch_size: int = 64,
    device: str = "auto",
    num_workers: int = 0,
) -> tuple[np.ndarray, list[str], list[str]]:
    """(unit embeddings (n_ok, dim), readable paths, unreadable paths), with a progress bar."""
    assert module.devise is not None
    target = pick_device(device)
    module = module.to(target).eval()
    dataset = ImageDataset(paths, [0] * len(paths), eval_transform(**module.devise["transform"]))
    loader = DataLoader(
        dataset, batch_size=batch_size, collate_fn=skip_none_collate, num_workers=num_workers
    )
    chunks: list[np.ndarray] = []
    good: list[str] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("embed images", total=len(paths))
        for batch in loader:
            if len(batch["y"]):
                chunks.append(module.embed(batch["x"].to(target)).float().cpu().numpy())
                good += [paths[i] for i in batch["index"].tolist()]
            progress.advance(task, len(batch["y"]) + batch["skipped"])
    bad = sorted(set(paths) - set(good))
    dim = module.class_vectors.size(1)
    return (np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)), good, bad


def label_table(
    devise: dict[str, Any], nouns: tuple[list[str], list[str]] | None, table: WordVectors | None
) -> tuple[np.ndarray, list[str], list[str]]:
    """(vectors, ids, names) of the training classes, then of the ``nouns`` (ids, names) with a
    vector in ``table``."""
    vectors = np.asarray(devise["class_vectors"], dtype=np.float32)
    ids, names = list(devise["class_ids"]), list(devise["class_names"])
    if nouns:
        noun_ids, noun_names = nouns
        if table is None:
            raise VectorsError("a noun list needs word vectors: give --vectors")
        nouns_found = label_vectors(noun_ids, noun_names, table)
        if not nouns_found.ids:
            raise VectorsError(
                f"{table.source}: none of the {len(noun_ids)} nouns has a vector; make sure the "
                "file is an English word-vector file (fastText .bin/.vec or word2vec text)"
            )
        known = set(ids)
        keep = [i for i, nid in enumerate(nouns_found.ids) if nid not in known]
        vectors = np.concatenate([vectors, nouns_found.vectors[keep]])
        ids += [nouns_found.ids[i] for i in keep]
        names += [nouns_found.names[i] for i in keep]
    return vectors, ids, names


def build_index(
    ckpt: str | Path,
    images: str | Path,
    out: str | Path,
    backend: str = "faiss",
    nouns: str | None = None,
    vectors: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    query_words: int = 50_000,
) -> dict[str, Any]:
    """Embed, index and save; returns what ``index.json`` records."""
    if query_words < 0:
        raise InputError(f"query_words={query_words}: expected >= 0")
    module = DeviseModule.from_checkpoint(ckpt)
    assert module.devise is not None
    vectors = vectors or module.devise.get("vectors_path")
    nouns = nouns or module.devise.get("nouns_path")
    paths = list_images(images)
    embeddings, good, bad = embed_images(module, paths, batch_size, device)
    if bad:
        log.warning("%d of %d images unreadable, skipped: %s", len(bad), len(paths), bad[:5])
    if not good:
        raise ImageDataError(f"none of the {len(paths)} images under {images} could be read")
    out = Path(out)
    root = Path(images).resolve()
    ids = [Path(p).relative_to(root).as_posix() for p in good]
    KnnIndex(backend).build(embeddings, ids, {"kind": "images"}).save(out / "images")
    # One read of the vector file (a fastText .bin can be GBs): the nouns' vectors, the labels'
    # words and the file's most frequent words, kept in the index for text queries.
    noun_list = read_nouns(nouns) if nouns else None
    table = None
    if vectors:
        label_names = [*module.devise["class_names"], *(noun_list[1] if noun_list else [])]
        words = wanted_words(label_names)
        table = WordVectors.load(vectors, words, allow_empty=True, first=query_words)
        table.save(out / "words")
    label_vecs, label_ids, label_names = label_table(module.devise, noun_list, table)
    KnnIndex(backend).build(label_vecs, label_ids, {"kind": "labels", "names": label_names}).save(
        out / "labels"
    )
    n_words = len(table) if table is not None else 0
    info = {
        "format": FORMAT,
        "ckpt": str(Path(ckpt).resolve()),
        "ckpt_digest": file_digest(Path(ckpt)),  # image queries must embed with this very file
        "images_root": str(root),
        "vectors_path": str(Path(vectors).resolve()) if vectors else None,
        "query_words": n_words,
        "images": len(good),
        "unreadable": [Path(p).relative_to(root).as_posix() for p in bad],
        "labels": len(label_ids),
        "classes": len(module.devise["class_ids"]),
        "backend": backend,
    }
    (out / "index.json").write_text(json.dumps(info, indent=1))
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.ArgumentParser(description="Index images with a DeViSE checkpoint.")
    parser.add_argument(
        "--ckpt", required=True, help="checkpoint of `python train.py model=devise`"
    )
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, type=cli.output_dir, help="index folder to write")
    parser.add_argument("--backend", default="faiss", choices=BACKENDS)
    parser.add_argument(
        "--nouns", help="wnid<TAB>lemma list for image -> labels (default: the run's)"
    )
    parser.add_argument(
        "--vectors", help="word vectors for the nouns and text queries (default: the run's)"
    )
    parser.add_argument(
        "--query-words",
        type=Int(0, 100_000_000).arg(),
        default=50_000,
        help="most frequent words of the vector file kept for text queries (besides the labels' "
        "words); searches never reload the vector file",
    )
    parser.add_argument(
        "--batch-size", type=SIZE.arg(), default=64, help=f"images per batch; {SIZE}"
    )
    parser.add_argument("--device", type=cli.device, default="auto", help="auto, cpu or cuda:N")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        info = build_index(
            args.ckpt,
            args.images,
            args.out,
            args.backend,
            args.nouns,
            args.vectors,
            args.batch_size,
            args.device,
            args.query_words,
        )
    except InputError as err:  # checkpoint, images, vectors, index: every bad input
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"indexed {info['images']} images ({len(info['unreadable'])} unreadable, skipped), "
        f"{info['labels']} labels ({info['classes']} classes) and {info['query_words']} query "
        f"words with {args.backend} in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
