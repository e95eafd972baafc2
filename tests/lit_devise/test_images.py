"""lit_devise/images.py: folder and Kaggle layouts, mapping files, image modes, unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_devise.images import (
    BAD_IMAGE_ERRORS,
    ImageDataError,
    ImageDataset,
    load_rgb,
    read_class_names,
    scan_folder,
    scan_kaggle,
    skip_none_collate,
)
from tests.helpers import make_kaggle, photo, write_unreadable


def test_folder_layout_with_mapping_and_empty_class(tmp_path: Path) -> None:
    for wnid, n in (("n02", 3), ("n01", 2)):
        for i in range(n):
            photo(tmp_path / "img" / wnid / f"{i}.JPEG")
    (tmp_path / "img" / "n03").mkdir()  # a class folder with no images
    (tmp_path / "img" / "n01" / "notes.txt").write_text("not an image")
    mapping = tmp_path / "classes.tsv"
    mapping.write_text("n01\ttench, Tinca tinca\nn02\tgarbage truck\nn03\tkite\n")
    found = scan_folder(tmp_path / "img", read_class_names(mapping))
    assert found.class_ids == ["n01", "n02"] and found.class_names[0] == "tench, Tinca tinca"
    assert found.labels == [0, 0, 1, 1, 1] and len(found) == 5
    assert found.empty_classes == ["n03"]


def test_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageDataError, match="does not exist"):
        scan_folder(tmp_path / "nope")
    photo(tmp_path / "img" / "n09" / "a.png")
    with pytest.raises(ImageDataError, match=r"not in the class mapping file: \['n09'\]"):
        scan_folder(tmp_path / "img", {"n01": "tench"})
    bad = tmp_path / "bad.tsv"
    bad.write_text("n01\n")
    with pytest.raises(ImageDataError, match=r"bad.tsv:1: expected `class<TAB>names`"):
        read_class_names(bad)


def test_loc_synset_mapping_is_space_separated(tmp_path: Path) -> None:
    path = tmp_path / "LOC_synset_mapping.txt"
    path.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert read_class_names(path) == {
        "n01440764": "tench, Tinca tinca",
        "n01443537": "goldfish, Carassius auratus",
    }


def test_kaggle_layout_uses_imagenet_validation_labels(tmp_path: Path) -> None:
    make_kaggle(tmp_path)
    train = scan_kaggle(tmp_path, "train")
    val = scan_kaggle(tmp_path, "val")
    assert train.class_ids == val.class_ids == ["n01", "n02"]
    assert train.labels == [0, 0, 1, 1]
    assert [Path(p).name for p in val.paths] == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(3)]
    assert val.labels == [1, 0, 1]


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16", "LA"])
def test_every_image_mode_becomes_8bit_rgb(tmp_path: Path, mode: str) -> None:
    if mode == "I;16":
        image = Image.fromarray(np.full((6, 5), 60000, dtype=np.uint16))
        path = tmp_path / "deep.png"
    else:
        image = Image.new("RGB", (5, 6), (10, 200, 30)).convert(mode)
        path = tmp_path / ("x.jpg" if mode in ("L", "CMYK") else "x.png")
    image.save(path)
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (5, 6)
    if mode == "I;16":
        assert np.asarray(rgb).min() >= 230  # 60000/65535 of white, not clipped garbage
    if mode == "RGBA":
        assert np.asarray(rgb)[0, 0, 1] > 150


def test_unreadable_files_raise_known_errors_and_are_skipped(tmp_path: Path) -> None:
    bad = write_unreadable(tmp_path)
    for path in bad:
        with pytest.raises(BAD_IMAGE_ERRORS):
            load_rgb(path)
    paths = [str(tmp_path / "good.jpg"), *map(str, bad)]
    dataset = ImageDataset(paths, [0, 1, 2, 3], lambda im: torch.zeros(3, 2, 2))
    batch = skip_none_collate([dataset[i] for i in range(4)])
    assert batch["skipped"] == 3 and batch["y"].tolist() == [0] and batch["index"].tolist() == [0]
    assert skip_none_collate([None])["skipped"] == 1


def test_images_over_the_pixel_budget_are_skipped_before_decoding(tmp_path: Path) -> None:
    """A 1 x 3,000,000 PNG of a few KB (a short-side resize would make it 256 x 768,000,000) and
    a 9,000 x 9,000 canvas are refused from their header, skipped and counted like unreadable
    files; an ordinary panorama still loads."""
    from lit_devise.images import MAX_PIXELS, ImageTooLargeError, check_size

    thin = tmp_path / "thin.png"
    Image.new("L", (1, 3_000_000)).save(thin)
    assert thin.stat().st_size < 50_000
    big = tmp_path / "big.png"
    Image.new("1", (9_000, 9_000)).save(big)
    for path, message in ((thin, "more elongated than 100:1"), (big, "over the budget")):
        with pytest.raises(ImageTooLargeError, match=message):
            load_rgb(path)
    assert issubclass(ImageTooLargeError, BAD_IMAGE_ERRORS)
    panorama = tmp_path / "pano.jpg"
    Image.new("RGB", (400, 100)).save(panorama)
    assert load_rgb(panorama).size == (400, 100)
    paths = [str(thin), str(big), str(panorama)]
    dataset = ImageDataset(paths, [0, 0, 0], lambda im: torch.zeros(1))
    batch = skip_none_collate([dataset[i] for i in range(3)])
    assert batch["skipped"] == 2 and batch["index"].tolist() == [2]
    with pytest.raises(ImageTooLargeError, match="empty image"):
        check_size(0, 5)
    check_size(10_000, MAX_PIXELS // 10_000)  # exactly the budget is fine


def test_class_names_with_bom_crlf_and_a_bad_line(tmp_path: Path) -> None:
    mapping = tmp_path / "classes.tsv"
    mapping.write_bytes(b"\xef\xbb\xbfa\tred ball\r\nb\tblue box\r\n")
    assert read_class_names(mapping) == {"a": "red ball", "b": "blue box"}
    mapping.write_bytes(b"a\tred\nb\tcaf\xe9\n")
    with pytest.raises(ImageDataError, match=r"classes\.tsv:2: byte 0xe9 at column 6 is not UTF-8"):
        read_class_names(mapping)
