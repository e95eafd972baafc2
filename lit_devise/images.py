"""Image folders as (path, class) lists, and image loading that survives real-world files.

Layouts:

- ``folder``: ``root/<class>/<image>`` (torchvision ``ImageFolder``; ImageNet train folders are
  named by WordNet id). Names come from a mapping file: ``class<TAB>names`` (``classes.tsv``,
  ``synset_words.txt`` with a tab) or ``class names`` (Kaggle's ``LOC_synset_mapping.txt``);
  without one, the folder name is the class name.
- ``kaggle``: the Kaggle ImageNet object-localisation layout, ``LOC_synset_mapping.txt``,
  ``LOC_val_solution.csv`` and ``ILSVRC/Data/CLS-LOC/{train/<wnid>/*, val/*}``, so validation is
  ImageNet's own validation split.

Grayscale, palette, CMYK, RGBA and 16-bit images become 8-bit RGB; unreadable files are skipped
and counted, never a crash mid-epoch.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from lit_common.errors import InputError, check_choice
from lit_common.text import clean, decode, one_line, split_lines, undecodable

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
LAYOUTS = ("folder", "kaggle")
KAGGLE_MAPPING = "LOC_synset_mapping.txt"
KAGGLE_VAL = "LOC_val_solution.csv"
KAGGLE_DATA = Path("ILSVRC") / "Data" / "CLS-LOC"
# What Pillow raises on truncated, corrupt, empty or unsupported files.
BAD_IMAGE_ERRORS = (
    OSError,
    UnidentifiedImageError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombError,
)


# Pixel budget, checked from the header before anything is decoded: a 12 KB PNG can declare
# 1 x 3,000,000 pixels (which a short-side resize would blow up to 256 x 768,000,000) or a
# 30,000 x 30,000 canvas. Larger or more elongated files are skipped and counted like unreadable
# ones.
MAX_PIXELS = 50_000_000  # a 50-megapixel photo (8,660 x 5,773) still loads
MAX_ASPECT = 100.0  # long/short side: a 1:100 strip resized to a 256 short side is 6.5 MP


class ImageTooLargeError(ValueError):
    """An image whose declared size is over the pixel budget or too elongated to resize."""


def check_size(width: int, height: int, name: str = "image") -> None:
    """Raise ``ImageTooLargeError`` when ``width`` x ``height`` is over ``MAX_PIXELS`` or more
    elongated than ``MAX_ASPECT`` (or empty)."""
    if width < 1 or height < 1:
        raise ImageTooLargeError(f"{name}: empty image ({width} x {height})")
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"{name}: {width} x {height} pixels is over the budget of {MAX_PIXELS:,}"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageTooLargeError(
            f"{name}: {width} x {height} is more elongated than {MAX_ASPECT:g}:1"
        )


class ImageDataError(InputError):
    """An image folder or mapping file that cannot be used; the message names it."""


@dataclass
class ImageSet:
    """Image paths with class indices into ``class_ids``/``class_names``."""

    paths: list[str]
    labels: list[int]
    class_ids: list[str]
    class_names: list[str]
    empty_classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)


def read_class_names(path: str | Path) -> dict[str, str]:
    """``class -> names`` from ``class<TAB>names`` or ``class names`` lines, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ImageDataError(f"class mapping file {str(path)!r} does not exist")
    mapping: dict[str, str] = {}
    with path.open("rb") as f:
        for line_no, raw in enumerate(split_lines(f), 1):
            try:
                line = clean(decode(raw)).strip()
            except UnicodeDecodeError:
                raise ImageDataError(f"{path}:{line_no}: {undecodable(raw)}") from None
            if not line:
                continue
            key, sep, names = line.partition("\t") if "\t" in line else line.partition(" ")
            if not sep or not names.strip():
                raise ImageDataError(
                    f"{path}:{line_no}: expected `class<TAB>names` or `class names`, got {line!r}"
                )
            mapping[key.strip()] = names.strip()
    if not mapping:
        raise ImageDataError(f"class mapping file {path} is empty")
    return mapping


def image_files(folder: Path) -> list[str]:
    """Sorted paths of the image files below ``folder``: regular files only (a FIFO, device or
    socket named like an image would hang the first read); what was skipped is logged."""
    named = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    paths = sorted(str(p) for p in named if p.is_file())
    if len(paths) < len(named):
        odd = sorted(str(p) for p in named if not p.is_file())
        log.warning("skipped %d entries that are not regular files: %s", len(odd), odd[:5])
    return paths


def scan_folder(root: str | Path, class_names: dict[str, str] | None = None) -> ImageSet:
    """Classes from the sub-folders of ``root`` (sorted), names from ``class_names``.

    Folders without images are reported in ``empty_classes`` (and logged); folders missing from
    a given mapping are an error, since their label would be a guess.
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageDataError(f"image folder {str(root)!r} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ImageDataError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
    if class_names is not None:
        unnamed = [f.name for f in folders if f.name not in class_names]
        if unnamed:
            raise ImageDataError(
                f"{len(unnamed)} class folders of {root} are not in the class mapping file: "
                f"{unnamed[:10]}; make sure the mapping covers every folder"
            )
    image_set = ImageSet([], [], [], [])
    for folder in folders:
        files = image_files(folder)
        if not files:
            image_set.empty_classes.append(folder.name)
            continue
        index = len(image_set.class_ids)
        image_set.class_ids.append(folder.name)
        image_set.class_names.append(class_names[folder.name] if class_names else folder.name)
        image_set.paths += files
        image_set.labels += [index] * len(files)
    if image_set.empty_classes:
        log.warning(
            "%d class folders of %s hold no images and are left out: %s",
            len(image_set.empty_classes),
            root,
            image_set.empty_classes[:10],
        )
    if not image_set.paths:
        raise ImageDataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return image_set


def scan_kaggle(root: str | Path, split: str) -> ImageSet:
    """The ``train`` or ``val`` split of the Kaggle ImageNet-localisation layout.

    Every class of ``LOC_synset_mapping.txt`` keeps its standard index, so train and val agree.
    """
    root = Path(root)
    check_choice("split", split, ("train", "val"), ImageDataError, "kaggle ")
    mapping = read_class_names(root / KAGGLE_MAPPING)
    ids = list(mapping)
    index = {wnid: i for i, wnid in enumerate(ids)}
    paths: list[str] = []
    labels: list[int] = []
    if split == "train":
        for wnid in ids:
            files = image_files(root / KAGGLE_DATA / "train" / wnid)
            paths += files
            labels += [index[wnid]] * len(files)
    else:
        solution = root / KAGGLE_VAL
        if not solution.is_file():
            raise ImageDataError(f"{solution} does not exist (the Kaggle validation labels)")
        val_dir = root / KAGGLE_DATA / "val"
        try:
            text = solution.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ImageDataError(f"{solution}: not UTF-8 text ({err.reason})") from None
        with io.StringIO(text, newline="") as f:
            for line_no, row in enumerate(csv.DictReader(f), 2):
                try:
                    wnid = row["PredictionString"].split()[0]
                    image_id = row["ImageId"]
                except (KeyError, IndexError, AttributeError):
                    raise ImageDataError(
                        f"{solution}:{line_no}: expected columns ImageId,PredictionString"
                    ) from None
                if wnid not in index:
                    raise ImageDataError(
                        f"{solution}:{line_no}: class {wnid} not in {KAGGLE_MAPPING}"
                    )
                candidates = [
                    val_dir / f"{image_id}{s}" for s in (".JPEG", ".jpeg", ".jpg", ".png")
                ]
                found = next((p for p in candidates if p.is_file()), None)
                if found is not None:
                    paths.append(str(found))
                    labels.append(index[wnid])
    counts = np.bincount(labels, minlength=len(ids)) if labels else np.zeros(len(ids), int)
    empty = [wnid for wnid, n in zip(ids, counts, strict=True) if n == 0]
    if not paths:
        raise ImageDataError(f"no {split} images under {root / KAGGLE_DATA / split}")
    return ImageSet(paths, labels, ids, [mapping[i] for i in ids], empty)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16-bit and float scaled, transparency composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """The fully decoded RGB image; raises one of ``BAD_IMAGE_ERRORS`` when it is unreadable,
    or over the pixel budget (checked from the header, before decoding)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EXIF and palette warnings, not errors
        with Image.open(path) as image:
            check_size(*image.size, name=str(path))
            image.load()  # decode now: truncated files fail here, not in a worker later
            return to_rgb(image)


class ImageDataset(Dataset):
    """``{"x": transformed image, "y": class, "index": position}``, or None for an unreadable file.

    ``skip_none_collate`` drops the Nones and counts them in the batch's ``skipped``.
    """

    def __init__(
        self, paths: Sequence[str], labels: Sequence[int], transform: Callable[[Any], Any]
    ) -> None:
        self.paths = list(paths)
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        try:
            image = load_rgb(self.paths[index])
        except BAD_IMAGE_ERRORS as err:
            log.warning("skipping unreadable image %s (%s)", one_line(str(self.paths[index])), err)
            return None
        return {"x": self.transform(image), "y": self.labels[index], "index": index}


def skip_none_collate(items: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack the readable items; ``skipped`` counts the unreadable ones of this batch."""
    good = [item for item in items if item is not None]
    skipped = len(items) - len(good)
    if not good:
        return {"x": torch.empty(0), "y": torch.empty(0, dtype=torch.long), "skipped": skipped}
    return {
        "x": torch.stack([item["x"] for item in good]),
        "y": torch.tensor([item["y"] for item in good], dtype=torch.long),
        "index": torch.tensor([item["index"] for item in good], dtype=torch.long),
        "skipped": skipped,
    }
