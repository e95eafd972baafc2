"""Build search indices from a DeViSE checkpoint and a folder of images.

``python -m lit_devise.index --ckpt CKPT --images DIR --out INDEX_DIR`` embeds every image under
``DIR`` (recursively; unreadable files are skipped, counted and listed) and writes:

- ``INDEX_DIR/images/``: the image embeddings (ids: absolute paths), for text -> images and
  image -> images;
- ``INDEX_DIR/labels/``: the training classes' vectors plus, when the checkpoint's run had a noun
  list (or ``--nouns``), every WordNet noun with a vector, for image -> labels;
- ``INDEX_DIR/index.json``: the checkpoint and word-vector file that ``lit_devise.search`` uses.
"""

from __future__ import annotations

import argparse
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

from lit_common.errors import InputError
from lit_devise.images import IMAGE_SUFFIXES, ImageDataError, ImageDataset, skip_none_collate
from lit_devise.knn import BACKENDS, KnnIndex
from lit_devise.module import DeviseModule
from lit_devise.precompute import pick_device
from lit_devise.transforms import eval_transform
from lit_devise.wordvecs import VectorsError, WordVectors, label_vectors, read_nouns, wanted_words

log = logging.getLogger(__name__)


def list_images(folder: str | Path) -> list[str]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageDataError(f"image folder {str(folder)!r} does not exist")
    paths = sorted(
        str(p.resolve()) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
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
    devise: dict[str, Any], nouns_path: str | None, vectors_path: str | None
) -> tuple[np.ndarray, list[str], list[str]]:
    """(vectors, ids, names) of the training classes, then of the nouns with a vector."""
    vectors = np.asarray(devise["class_vectors"], dtype=np.float32)
    ids, names = list(devise["class_ids"]), list(devise["class_names"])
    if nouns_path:
        noun_ids, noun_names = read_nouns(nouns_path)
        if not vectors_path:
            raise VectorsError("a noun list needs word vectors: give --vectors")
        table = WordVectors.load(vectors_path, wanted_words(noun_names))
        nouns = label_vectors(noun_ids, noun_names, table)
        known = set(ids)
        keep = [i for i, nid in enumerate(nouns.ids) if nid not in known]
        vectors = np.concatenate([vectors, nouns.vectors[keep]])
        ids += [nouns.ids[i] for i in keep]
        names += [nouns.names[i] for i in keep]
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
) -> dict[str, Any]:
    """Embed, index and save; returns what ``index.json`` records."""
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
    KnnIndex(backend).build(embeddings, good, {"kind": "images"}).save(out / "images")
    label_vecs, label_ids, label_names = label_table(module.devise, nouns, vectors)
    KnnIndex(backend).build(label_vecs, label_ids, {"kind": "labels", "names": label_names}).save(
        out / "labels"
    )
    info = {
        "ckpt": str(Path(ckpt).resolve()),
        "vectors_path": str(Path(vectors).resolve()) if vectors else None,
        "images": len(good),
        "unreadable": bad,
        "labels": len(label_ids),
        "classes": len(module.devise["class_ids"]),
        "backend": backend,
    }
    (out / "index.json").write_text(json.dumps(info, indent=1))
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Index images with a DeViSE checkpoint.")
    parser.add_argument(
        "--ckpt", required=True, help="checkpoint of `python train.py model=devise`"
    )
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="index folder to write")
    parser.add_argument("--backend", default="faiss", choices=BACKENDS)
    parser.add_argument(
        "--nouns", help="wnid<TAB>lemma list for image -> labels (default: the run's)"
    )
    parser.add_argument(
        "--vectors", help="word vectors for the nouns and text queries (default: the run's)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda:N")
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
        )
    except InputError as err:  # checkpoint, images, vectors, index: every bad input
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"indexed {info['images']} images ({len(info['unreadable'])} unreadable, skipped) and "
        f"{info['labels']} labels ({info['classes']} classes) with {args.backend} in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
