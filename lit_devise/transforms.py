"""Image preprocessing for DeViSE: the evaluation transform (resize, centre crop, normalise) that
precompute, validation, indexing and search share, and the training augmentation.

Both are built from plain settings (``image_size``, ``resize_ratio``, ``mean``, ``std``) that the
checkpoint keeps, so ``lit_devise.index`` preprocesses images exactly as training did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def train_transform(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    crop_scale: Sequence[float] = (0.35, 1.0),
    hflip: bool = True,
    color_jitter: float = 0.0,
) -> T.Compose:
    """Random resized crop of ``crop_scale`` of the image, optional horizontal flip and colour
    jitter (brightness, contrast and saturation), normalise."""
    steps: list[Any] = [T.RandomResizedCrop(image_size, scale=(crop_scale[0], crop_scale[1]))]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter:
        j = float(color_jitter)
        steps.append(T.ColorJitter(brightness=j, contrast=j, saturation=j))
    return T.Compose([*steps, T.ToTensor(), T.Normalize(list(mean), list(std))])
