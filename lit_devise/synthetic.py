"""The embedded offline smoke dataset: coloured shapes, word vectors for their names, a noun list.

Written on first use in the real formats the pipeline reads (an image folder, ``classes.tsv``, a
``.vec`` file, a ``wnid<TAB>lemma`` noun list), so ``python train.py model=devise`` exercises the
same code as ImageNet runs with nothing downloaded. Class ``red circle`` is a two-word name whose
label vector is the mean of ``red`` and ``circle``; holding ``blue triangle`` out of training still
leaves ``blue`` and ``triangle`` seen elsewhere, a small zero-shot test. Extra words lie near the
class words (``crimson`` near ``red``, ``ball`` near ``circle``) for open-vocabulary queries.
It is a smoke test, not a benchmark: README shows the ImageNet commands.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 20),
    "purple": (140, 40, 180),
}
SHAPES = ("circle", "square", "triangle", "cross")
# Open-vocabulary words near one class word (the vector is that word's plus a little noise).
NEAR = {
    "crimson": "red",
    "scarlet": "red",
    "navy": "blue",
    "lime": "green",
    "violet": "purple",
    "gold": "yellow",
    "ball": "circle",
    "box": "square",
    "pyramid": "triangle",
    "plus": "cross",
}
DISTRACTORS = ("music", "engine", "boat", "truck", "fish", "church", "dog", "bread")
FORMAT = 1


def class_names() -> list[str]:
    return [f"{c} {s}" for c in COLOURS for s in SHAPES]


def _draw(
    shape: str, colour: tuple[int, int, int], size: int, rng: np.random.Generator
) -> Image.Image:
    background = rng.integers(150, 256, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    r = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(r, size - r, size=2)
    jitter = rng.integers(-25, 26, size=3)
    fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True))
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "triangle":
        angle = rng.uniform(0, 2 * math.pi)
        corners = [
            (
                cx + r * math.cos(angle + k * 2 * math.pi / 3),
                cy + r * math.sin(angle + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
        draw.polygon(corners, fill=fill)
    else:
        w = r / 3
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
    return image


def make_shapes(
    root: str | Path, n_per_class: int = 50, size: int = 64, dim: int = 50, seed: int = 0
) -> Path:
    """Write the dataset under ``root`` (once per setting) and return ``root``.

    Written again with other settings, it first removes the images it wrote before (files named
    ``NNNN.png`` in its class folders; anything else there is left), so fewer images per class
    leave no old ones behind.

    Files: ``images/<colour_shape>/<i>.png``, ``classes.tsv`` (``colour_shape<TAB>colour shape``),
    ``vectors.vec`` (word2vec text, ``dim``-d) and ``nouns.tsv`` (``w<i><TAB>word``).
    """
    root = Path(root)
    settings = {
        "format": FORMAT,
        "n_per_class": n_per_class,
        "size": size,
        "dim": dim,
        "seed": seed,
    }
    marker = root / "settings.json"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    rng = np.random.default_rng(seed)
    words = [*COLOURS, *SHAPES, *DISTRACTORS]
    table = {w: rng.standard_normal(dim) for w in words}
    for word, anchor in NEAR.items():
        table[word] = table[anchor] + 0.35 * rng.standard_normal(dim)
    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # an interrupted rewrite must not pass for the old settings
    lines = [f"{len(table)} {dim}"] + [
        f"{w} " + " ".join(f"{x:.5f}" for x in v) for w, v in table.items()
    ]
    _write_same(root / "vectors.vec", ("\n".join(lines) + "\n").encode())
    nouns = [w for w in table if w not in COLOURS]
    _write_same(
        root / "nouns.tsv", "".join(f"w{i:04d}\t{w}\n" for i, w in enumerate(nouns)).encode()
    )
    classes = []
    for name in class_names():
        colour, shape = name.split()
        folder = root / "images" / f"{colour}_{shape}"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):  # an earlier setting's images (NNNN.png) beyond ours
            if old.stem.isdigit() and len(old.stem) >= 4 and int(old.stem) >= n_per_class:
                old.unlink()
        for i in range(n_per_class):
            _write_same(folder / f"{i:04d}.png", _draw(shape, COLOURS[colour], size, rng))
        classes.append(f"{colour}_{shape}\t{name}")
    _write_same(root / "classes.tsv", ("\n".join(classes) + "\n").encode())
    _write_same(marker, json.dumps(settings).encode())
    return root


def _write_same(path: Path, content: bytes | Image.Image) -> None:
    """Write ``content`` (bytes or a PNG image) unless ``path`` already holds exactly it, through a
    temporary file and a rename: two processes writing the same dataset at once (the local rank 0
    of two nodes sharing a data folder) never show a reader a missing or half-written file, and a
    file already right keeps its modification time, which the cache keys include."""
    if isinstance(content, Image.Image):
        buffer = io.BytesIO()
        content.save(buffer, format="PNG")
        content = buffer.getvalue()
    if path.is_file() and path.read_bytes() == content:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(content)
    os.replace(tmp, path)
