"""lit_devise/synthetic.py: the smoke dataset is written once per setting, and written again with
other settings it leaves none of the earlier images behind."""

from __future__ import annotations

from pathlib import Path

from lit_devise.synthetic import class_names, make_shapes


def images(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "images").rglob("*.png"))


def test_fewer_images_per_class_leave_no_old_ones(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "shapes", n_per_class=3, size=16, dim=8)
    assert len(images(root)) == 3 * len(class_names())
    stamp = (root / "images" / "red_circle" / "0000.png").stat().st_mtime_ns
    make_shapes(root, n_per_class=3, size=16, dim=8)  # same settings: nothing rewritten
    assert (root / "images" / "red_circle" / "0000.png").stat().st_mtime_ns == stamp
    mine = root / "images" / "red_circle" / "my_photo.png"
    mine.write_bytes(b"not ours")
    make_shapes(root, n_per_class=2, size=16, dim=8)
    left = images(root)
    assert len(left) == 2 * len(class_names()) + 1
    assert "images/red_circle/0002.png" not in left
    assert mine.read_bytes() == b"not ours"  # files the generator did not write are kept
