"""The DeViSE split plan: which images train, validate and test zero-shot, with which label vectors.

Planning scans the image folders, looks every class name up in the word vectors (classes without
one are dropped with their images, and counted), splits each class's images into train and valid
(or uses a separate validation folder), and holds whole classes out for zero-shot evaluation. The
plan is cached as JSON (paths, labels, report) plus the class vectors as NumPy, in a folder keyed
by ``SplitPlanner.key()``; ``DeviseDataModule`` runs it in ``prepare_data`` and reads it in
``setup``. No Trainer needed: ``SplitPlanner(...).make()`` is a plain function of the settings.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lit_common.cache import content_hash, file_identity, load_array, staged
from lit_devise.images import (
    ImageDataError,
    ImageSet,
    read_class_names,
    scan_folder,
    scan_kaggle,
)
from lit_devise.wordvecs import WordVectors, label_vectors, read_nouns, wanted_words

log = logging.getLogger(__name__)
PLAN_FORMAT = 1
SPLITS = ("train", "valid", "zeroshot")


def _dir_stamps(root: Path) -> list[Any]:
    """Cheap change detection: a folder's mtime changes when files are added or removed."""
    if not root.is_dir():
        return []
    return sorted([p.name, p.stat().st_mtime_ns] for p in root.iterdir() if p.is_dir())


@dataclass
class SplitPlanner:
    """The settings a plan depends on (see ``DeviseDataModule`` for each)."""

    images: str
    vectors_path: str
    layout: str = "folder"
    class_names_path: str | None = None
    valid_images: str | None = None
    valid_fraction: float = 0.1
    nouns_path: str | None = None
    holdout: list[str] | int = field(default_factory=list)
    split_seed: int = 42
    max_per_class: int | None = None
    memo: Path | None = None  # where file hashes are remembered (lit_common.cache.file_identity)

    def key(self) -> str:
        """A hash of everything the plan depends on: folders (names and mtimes), files (size,
        mtime and SHA-256: a vector file replaced in place is new input) and the settings."""
        roots = [Path(self.images)] + ([Path(self.valid_images)] if self.valid_images else [])
        if self.layout == "kaggle":
            data = Path(self.images) / "ILSVRC" / "Data" / "CLS-LOC"
            roots = [data / "train", data / "val"]
        files = [self.vectors_path, self.class_names_path, self.nouns_path]
        return content_hash(
            {
                "format": PLAN_FORMAT,
                "images": [str(Path(self.images).resolve()), self.layout, self.valid_images],
                "stamps": [_dir_stamps(r) for r in roots]
                + [[r.stat().st_mtime_ns] for r in roots if r.is_dir()],
                "files": [
                    file_identity(f, self.memo) if f and os.path.isfile(f) else f for f in files
                ],
                "split": [self.valid_fraction, self.split_seed, self.holdout, self.max_per_class],
            }
        )

    def _scan(self) -> tuple[ImageSet, ImageSet | None]:
        if self.layout == "kaggle":
            return scan_kaggle(self.images, "train"), scan_kaggle(self.images, "val")
        names = read_class_names(self.class_names_path) if self.class_names_path else None
        train = scan_folder(self.images, names)
        valid = scan_folder(self.valid_images, names) if self.valid_images else None
        return train, valid

    def make(self) -> dict[str, Any]:
        """Scan, look every class up, split; the plan as ``write_plan`` stores it."""
        train_set, valid_set = self._scan()
        ids, names = train_set.class_ids, train_set.class_names
        nouns = read_nouns(self.nouns_path) if self.nouns_path else ([], [])
        vectors = WordVectors.load(self.vectors_path, wanted_words([*names, *nouns[1]]))
        labels = label_vectors(ids, names, vectors)
        if not labels.ids:
            raise ImageDataError(
                f"none of the {len(ids)} classes has a word vector in {self.vectors_path}; make "
                "sure the class mapping gives word names (e.g. `n01440764<TAB>tench, Tinca tinca`)"
            )
        rng = np.random.default_rng(self.split_seed)
        holdout = self._holdout(labels.ids, rng)
        new_index = {cid: i for i, cid in enumerate(labels.ids)}
        pools: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
        dropped_images = 0
        capped = 0

        def add(image_set: ImageSet, split: str | None) -> None:
            nonlocal dropped_images, capped
            by_class: dict[int, list[str]] = {}
            for path, label in zip(image_set.paths, image_set.labels, strict=True):
                by_class.setdefault(label, []).append(path)
            for label, paths in by_class.items():
                cid = image_set.class_ids[label]
                if cid not in new_index:
                    dropped_images += len(paths)
                    continue
                order = rng.permutation(len(paths))
                paths = [paths[i] for i in order]
                if split is None:  # split this class's images into valid and train
                    n_valid = round(self.valid_fraction * len(paths))
                    parts = {"valid": paths[:n_valid], "train": paths[n_valid:]}
                else:
                    parts = {split: paths}
                for part, part_paths in parts.items():
                    if self.max_per_class is not None and len(part_paths) > self.max_per_class:
                        capped += len(part_paths) - self.max_per_class
                        part_paths = sorted(part_paths[: self.max_per_class])
                    target = "zeroshot" if cid in holdout else part
                    pools[target] += [(p, new_index[cid]) for p in sorted(part_paths)]

        if valid_set is None:
            add(train_set, None)
        else:
            if valid_set.class_ids != train_set.class_ids:
                raise ImageDataError(
                    f"the validation classes differ from the training classes "
                    f"({len(valid_set.class_ids)} vs {len(ids)}); make sure both folders hold the "
                    "same class sub-folders"
                )
            add(train_set, "train")
            add(valid_set, "valid")
        # Counted here; lit_devise.index looks the nouns up again for search.
        noun_vectors = label_vectors(*nouns, vectors) if nouns[0] else None
        report = {
            "images": {s: len(pools[s]) for s in SPLITS},
            "classes": len(ids),
            "classes_with_vector": len(labels.ids),
            "classes_without_vector": labels.dropped,
            "images_of_dropped_classes": dropped_images,
            "empty_class_folders": train_set.empty_classes,
            "holdout_classes": sorted(holdout),
            "capped_by_max_per_class": capped,
            "vector_dim": vectors.dim,
            "nouns": len(nouns[0]),
            "nouns_with_vector": len(noun_vectors.ids) if noun_vectors else 0,
        }
        if len(pools["train"]) < 2:  # BatchNorm in the head needs two; one image teaches nothing
            raise ImageDataError(
                f"{len(pools['train'])} training image(s) left after the validation split, "
                "dropped and held-out classes; DeViSE needs at least 2: add images, lower "
                "data.valid_fraction or hold out fewer classes"
            )
        if not pools["valid"]:
            log.warning(
                "no validation images (valid_fraction %s of the classes' images rounds to none): "
                "val/ metrics and checkpoints that monitor them are missing; raise "
                "data.valid_fraction or give data.valid_images",
                self.valid_fraction,
            )
        return {
            "classes": {
                "ids": labels.ids,
                "names": labels.names,
                "seen": [cid not in holdout for cid in labels.ids],
            },
            "splits": {
                s: {"paths": [p for p, _ in pools[s]], "labels": [y for _, y in pools[s]]}
                for s in SPLITS
            },
            "report": report,
            "vectors": labels.vectors,
        }

    def _holdout(self, ids: list[str], rng: np.random.Generator) -> set[str]:
        if isinstance(self.holdout, int):
            if not 0 <= self.holdout < len(ids):
                raise ImageDataError(
                    f"holdout_classes={self.holdout}: {len(ids)} classes available"
                )
            return {ids[i] for i in rng.choice(len(ids), self.holdout, replace=False)}
        unknown = [c for c in self.holdout if c not in ids]
        if unknown:
            raise ImageDataError(
                f"holdout_classes {unknown} are not classes with a word vector; valid ids look "
                f"like {ids[:5]}"
            )
        if len(self.holdout) >= len(ids):
            raise ImageDataError("holdout_classes would leave no class to train on")
        return set(self.holdout)


def write_plan(plan: dict[str, Any], path: Path) -> None:
    """Store ``plan`` in folder ``path`` (appears whole or not at all)."""
    with staged(path, done="plan.json") as tmp:
        np.save(tmp / "class_vectors.npy", plan["vectors"])
        body = {k: plan[k] for k in ("classes", "splits", "report")}
        (tmp / "plan.json").write_text(json.dumps(body))


def read_plan(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The plan's JSON body and its class vectors (n_classes, dim)."""
    plan = json.loads((path / "plan.json").read_text())
    return plan, load_array(path / "class_vectors.npy")
