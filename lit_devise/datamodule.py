"""``DeviseDataModule``: image folders -> label vectors -> train/valid/zero-shot splits -> batches.

``prepare_data`` (local rank 0 only) writes the smoke dataset when configured, scans the images,
looks every class up in the word vectors (classes without one are dropped, with their images),
splits train/valid and holds whole classes out for zero-shot evaluation, then, with
``precompute``, runs the frozen backbone once over every image (``precompute.py``). All of it is
cached under ``cache_dir`` and reused while nothing changes. ``setup`` (every rank) only loads.

Batches are ``{"x", "y", "index"}``: ``x`` is (batch, feature_dim) cached activations with
``precompute``, else (batch, 3, H, W) images (augmented in training); ``y`` indexes
``model_info()["class_ids"]``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler
from torchvision import transforms as T

from lit_common.cache import content_hash, load_array, staged
from lit_common.errors import InputError
from lit_common.resumable import ResumableDataLoader, private_generator, trainer_batches_done
from lit_devise.images import (
    ImageDataError,
    ImageDataset,
    ImageSet,
    read_class_names,
    scan_folder,
    scan_kaggle,
    skip_none_collate,
)
from lit_devise.model import DeviseNet, DeviseNetConfig
from lit_devise.precompute import FeatureDataset, cache_key, compute_features
from lit_devise.synthetic import make_shapes
from lit_devise.wordvecs import WordVectors, label_vectors, read_nouns, wanted_words

log = logging.getLogger(__name__)
PLAN_FORMAT = 1
SPLITS = ("train", "valid", "zeroshot")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _dir_stamps(root: Path) -> list[Any]:
    """Cheap change detection: a folder's mtime changes when files are added or removed."""
    if not root.is_dir():
        return []
    return sorted([p.name, p.stat().st_mtime_ns] for p in root.iterdir() if p.is_dir())


class DeviseDataModule(pl.LightningDataModule):
    """Images with word-vector targets for DeViSE.

    Args:
        images: image root (``folder``: ``root/<class>/<image>``; ``kaggle``: the folder holding
            ``LOC_synset_mapping.txt``).
        vectors: fastText ``.bin`` or ``.vec`` word vectors (any word2vec text file).
        layout: ``folder`` or ``kaggle``.
        class_names: ``class<TAB>names`` mapping file (``folder`` layout); None: folder names.
        valid_images: a validation folder with the same classes; None splits ``valid_fraction``
            of each class off ``images`` (``kaggle`` uses ImageNet's validation split).
        valid_fraction: share of each class's images held out for validation.
        nouns: a ``wnid<TAB>lemma`` noun list, the open vocabulary for search (reported coverage).
        holdout_classes: class ids kept out of training for zero-shot evaluation, or a number of
            classes drawn at random with ``split_seed``.
        split_seed: seed of the valid split and of random hold-out classes.
        max_per_class: at most this many images per class and split (quick runs); None: all.
        synthetic: ``make_shapes`` arguments (``root``, ``n_per_class``, ``size``, ``dim``,
            ``seed``): write the embedded smoke dataset first.
        image_size: side of the square crop fed to the backbone.
        resize_ratio: evaluation resizes the short side to ``image_size / resize_ratio`` and
            centre-crops (torchvision's 224/256 = 0.875).
        mean: normalisation mean (ImageNet's by default).
        std: normalisation std.
        augment: training augmentation when not precomputing: ``crop_scale``
            (RandomResizedCrop scale range), ``hflip`` (bool), ``color_jitter`` (brightness,
            contrast and saturation).
        precompute: cache the frozen backbone's activations and train the head on them.
        backbone: ``name``, ``weights``, ``weights_path`` and ``init_seed`` of the model's
            backbone (the configs interpolate them from ``model.net``), used to precompute.
        precompute_batch_size: images per backbone pass while precomputing.
        precompute_device: ``auto`` (CUDA when available), ``cpu`` or ``cuda:N``.
        cache_dtype: ``float16`` halves the activation cache; ``float32`` keeps it exact.
        batch_size: per device.
        eval_batch_size: per device; None: ``batch_size``.
        num_workers: DataLoader workers.
        seed: shuffling seed (per epoch: ``seed + epoch``).
        cache_dir: where plans and activations are cached.
    """

    def __init__(
        self,
        images: str,
        vectors: str,
        layout: str = "folder",
        class_names: str | None = None,
        valid_images: str | None = None,
        valid_fraction: float = 0.1,
        nouns: str | None = None,
        holdout_classes: Sequence[str] | int = (),
        split_seed: int = 42,
        max_per_class: int | None = None,
        synthetic: dict[str, Any] | None = None,
        image_size: int = 224,
        resize_ratio: float = 0.875,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        augment: dict[str, Any] | None = None,
        precompute: bool = True,
        backbone: dict[str, Any] | None = None,
        precompute_batch_size: int = 64,
        precompute_device: str = "auto",
        cache_dtype: str = "float16",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | Path = "data/cache",
    ) -> None:
        super().__init__()
        if layout not in ("folder", "kaggle"):
            raise InputError(f"layout={layout!r} unknown; valid: ['folder', 'kaggle']")
        if not 0.0 <= valid_fraction < 1.0:
            raise InputError(f"valid_fraction={valid_fraction}: expected 0 <= fraction < 1")
        if cache_dtype not in ("float16", "float32"):
            raise InputError(f"cache_dtype={cache_dtype!r} unknown; valid: ['float16', 'float32']")
        self.images, self.vectors_path, self.layout = images, vectors, layout
        self.class_names_path, self.valid_images = class_names, valid_images
        self.valid_fraction, self.nouns_path = valid_fraction, nouns
        self.holdout = (
            holdout_classes if isinstance(holdout_classes, int) else list(holdout_classes)
        )
        self.split_seed, self.max_per_class, self.synthetic = split_seed, max_per_class, synthetic
        self.transform_settings = {
            "image_size": image_size,
            "resize_ratio": resize_ratio,
            "mean": list(mean),
            "std": list(std),
        }
        self.augment = {"crop_scale": [0.35, 1.0], "hflip": True, "color_jitter": 0.0}
        self.augment.update(augment or {})
        self.precompute = precompute
        self.backbone = {
            "backbone": "resnet50",
            "weights": None,
            "weights_path": None,
            "init_seed": 0,
        }
        self.backbone.update(
            {("backbone" if k == "name" else k): v for k, v in (backbone or {}).items()}
        )
        self.precompute_batch_size, self.precompute_device = (
            precompute_batch_size,
            precompute_device,
        )
        self.cache_dtype = cache_dtype
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self.cache_root = Path(cache_dir)
        self.plan: dict[str, Any] = {}
        self.class_vectors: np.ndarray | None = None
        self.datasets: dict[str, Dataset] = {}
        self.paths: dict[str, list[str]] = {}
        self.report: dict[str, Any] = {}

    # -- transforms ---------------------------------------------------------------------------
    def eval_transform(self) -> T.Compose:
        return eval_transform(**self.transform_settings)

    def train_transform(self) -> T.Compose:
        s = self.transform_settings
        steps: list[Any] = [
            T.RandomResizedCrop(s["image_size"], scale=tuple(self.augment["crop_scale"]))
        ]
        if self.augment["hflip"]:
            steps.append(T.RandomHorizontalFlip())
        if self.augment["color_jitter"]:
            j = float(self.augment["color_jitter"])
            steps.append(T.ColorJitter(brightness=j, contrast=j, saturation=j))
        return T.Compose([*steps, T.ToTensor(), T.Normalize(s["mean"], s["std"])])

    # -- planning: scan, look up, split (rank 0) ----------------------------------------------
    def _plan_key(self) -> str:
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
                    [f, os.stat(f).st_size, os.stat(f).st_mtime_ns]
                    if f and os.path.exists(f)
                    else f
                    for f in files
                ],
                "split": [self.valid_fraction, self.split_seed, self.holdout, self.max_per_class],
            }
        )

    @property
    def plan_path(self) -> Path:
        return self.cache_root / f"plan-{self._plan_key()}"

    def _scan(self) -> tuple[ImageSet, ImageSet | None]:
        if self.layout == "kaggle":
            return scan_kaggle(self.images, "train"), scan_kaggle(self.images, "val")
        names = read_class_names(self.class_names_path) if self.class_names_path else None
        train = scan_folder(self.images, names)
        valid = scan_folder(self.valid_images, names) if self.valid_images else None
        return train, valid

    def _make_plan(self) -> dict[str, Any]:
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
        if not pools["train"]:
            raise ImageDataError("no training images left after dropping and holding out classes")
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

    def _write_plan(self, plan: dict[str, Any]) -> None:
        with staged(self.plan_path) as tmp:
            np.save(tmp / "class_vectors.npy", plan["vectors"])
            body = {k: plan[k] for k in ("classes", "splits", "report")}
            (tmp / "plan.json").write_text(json.dumps(body))

    # -- Lightning hooks ------------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.synthetic:
            make_shapes(**self.synthetic)
        if not (self.plan_path / "plan.json").is_file():
            self._write_plan(self._make_plan())
        plan = json.loads((self.plan_path / "plan.json").read_text())
        if self.precompute:
            features = self.features_path(plan)
            if not (features / "report.json").is_file():
                self._precompute(plan, features)
        self._log_report(plan)

    def _precompute(self, plan: dict[str, Any], features: Path) -> None:
        # Forked RNG: building the net draws random numbers, and a run must train the same
        # whether or not its cache already existed.
        with torch.random.fork_rng(devices=[]):
            net = DeviseNet(DeviseNetConfig(**self.backbone, freeze=True), out_dim=1)
            compute_features(
                net,
                self._all_paths(plan),
                self.eval_transform(),
                features,
                self.precompute_batch_size,
                self.num_workers,
                self.precompute_device,
                self.cache_dtype,
            )

    @staticmethod
    def _all_paths(plan: dict[str, Any]) -> list[str]:
        return [p for s in SPLITS for p in plan["splits"][s]["paths"]]

    def features_path(self, plan: dict[str, Any]) -> Path:
        key = cache_key(
            self.backbone, self.transform_settings, self._all_paths(plan), self.cache_dtype
        )
        return self.cache_root / f"features-{key}"

    def _log_report(self, plan: dict[str, Any]) -> None:
        r = plan["report"]
        log.info(
            "DeViSE data: %d/%d classes with a word vector (%d-d); images train %d, valid %d, "
            "zero-shot %d (held out: %s)",
            r["classes_with_vector"],
            r["classes"],
            r["vector_dim"],
            r["images"]["train"],
            r["images"]["valid"],
            r["images"]["zeroshot"],
            ", ".join(r["holdout_classes"]) or "none",
        )
        if r["classes_without_vector"]:
            log.warning(
                "dropped %d classes without a word vector (%d images): %s",
                len(r["classes_without_vector"]),
                r["images_of_dropped_classes"],
                ", ".join(r["classes_without_vector"][:20]),
            )
        if r["nouns"]:
            log.info(
                "open vocabulary: %d of %d nouns have a vector", r["nouns_with_vector"], r["nouns"]
            )
        if r["capped_by_max_per_class"]:
            log.info("max_per_class left out %d images", r["capped_by_max_per_class"])

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if not (self.plan_path / "plan.json").is_file():
            raise RuntimeError(f"no prepared data in {self.plan_path}; call prepare_data() first")
        self.plan = json.loads((self.plan_path / "plan.json").read_text())
        self.class_vectors = load_array(self.plan_path / "class_vectors.npy")
        self.report = dict(self.plan["report"])
        splits = self.plan["splits"]
        if self.precompute:
            features_dir = self.features_path(self.plan)
            features = load_array(features_dir / "features.npy", mmap_mode="r")
            ok = load_array(features_dir / "ok.npy")
            self.report["unreadable_images"] = int((~ok).sum())
            start = 0
            for split in SPLITS:
                n = len(splits[split]["paths"])
                rows = [start + i for i in range(n) if ok[start + i]]
                labels = [splits[split]["labels"][r - start] for r in rows]
                self.datasets[split] = FeatureDataset(features, rows, labels)
                self.paths[split] = [splits[split]["paths"][r - start] for r in rows]
                start += n
        else:
            for split in SPLITS:
                transform = self.train_transform() if split == "train" else self.eval_transform()
                self.paths[split] = splits[split]["paths"]
                self.datasets[split] = ImageDataset(
                    self.paths[split], splits[split]["labels"], transform
                )

    def model_info(self) -> dict[str, Any]:
        """What search needs besides weights: stored in the checkpoint."""
        assert self.class_vectors is not None, "call setup() first"
        return {
            "class_ids": self.plan["classes"]["ids"],
            "class_names": self.plan["classes"]["names"],
            "seen": self.plan["classes"]["seen"],
            "class_vectors": torch.from_numpy(self.class_vectors),
            "vectors_path": str(Path(self.vectors_path).resolve()),
            "nouns_path": str(Path(self.nouns_path).resolve()) if self.nouns_path else None,
            "transform": self.transform_settings,
            "backbone": dict(self.backbone),
            "precompute": self.precompute,
        }

    def split_paths(self, split: str) -> list[str]:
        """Image paths of a split, in dataset order (``index`` of its batches)."""
        return self.paths[split]

    # -- loaders ------------------------------------------------------------------------------
    def _loader(self, split: str, train: bool) -> DataLoader:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        dataset = self.datasets[split]
        # Every rank gets the same number of batches (DistributedSampler pads by repeating items).
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=train, seed=self.seed, drop_last=False
        )
        size = self.batch_size if train else self.eval_batch_size
        settings = {
            "collate_fn": None if self.precompute else skip_none_collate,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "generator": private_generator(),
        }
        batches = NoSingletonBatchSampler(sampler, size)
        if train:  # resumes mid-epoch and reshuffles per epoch (set_epoch)
            return ResumableDataLoader(dataset, batches, trainer_batches_done(trainer), **settings)
        return DataLoader(dataset, batch_sampler=batches, **settings)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> list[DataLoader]:
        loaders = [self._loader("valid", train=False)]
        if len(self.datasets["zeroshot"]):
            loaders.append(self._loader("zeroshot", train=False))
        return loaders


class NoSingletonBatchSampler(BatchSampler):
    """Batches of ``batch_size``; a last batch of one item joins the batch before it.

    Training BatchNorm cannot normalise a single item, and dropping the last partial batch would
    lose up to ``batch_size - 1`` images an epoch; the sampler's length is the same on every rank.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int) -> None:
        super().__init__(sampler, batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list[int]]:
        batches = list(super().__iter__())
        if len(batches) > 1 and len(batches[-1]) == 1:
            last = batches.pop()
            batches[-1] = batches[-1] + last
        yield from batches

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def eval_transform(
    image_size: int, resize_ratio: float, mean: Sequence[float], std: Sequence[float]
) -> T.Compose:
    """Resize the short side to ``image_size / resize_ratio``, centre-crop, normalise."""
    return T.Compose(
        [
            T.Resize(round(image_size / resize_ratio)),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(list(mean), list(std)),
        ]
    )
