"""Image decoding and preprocessing, run in worker processes while the model runs.

This module imports no torch: it is what the decode workers load. Images are decoded,
converted to RGB, resized on the shortest edge and centre-cropped to a uint8 array; the
(cheap) rescale and normalisation happen on the model's device, so workers ship 4x fewer
bytes than float32 tensors would take.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from curate.schemas.config.flow import DEFAULT_MAX_PIXELS
from curate.schemas.sample import ErrorKind

RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize-crop-normalise settings read from the model's image processor config."""

    resize_shortest: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: int = 3
    square_resize: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS

    def describe(self) -> dict[str, Any]:
        """The settings as recorded in the embeddings file's metadata."""
        out = asdict(self)
        out["resample"] = RESAMPLE_NAMES.get(self.resample, str(self.resample))
        return out


def preprocess_from_config(cfg: dict[str, Any]) -> ImagePreprocess:
    """Derive resize/crop from a Hugging Face image-processor dict (ConvNext/ViT/CLIP styles)."""
    size = cfg.get("size") or {"shortest_edge": 224}
    crop_size = cfg.get("crop_size")
    if "shortest_edge" in size and "crop_pct" in cfg:  # ConvNext / ResNet-50 style
        crop = int(size["shortest_edge"])
        resize = int(crop / cfg["crop_pct"]) if crop < 384 else crop
    elif crop_size:  # CLIP style: resize shortest edge then crop
        crop = int(crop_size.get("height", crop_size.get("shortest_edge", 224)))
        resize = int(size.get("shortest_edge", crop))
    else:  # ViT style: plain resize to a square, cropping nothing
        crop = int(size.get("height", size.get("shortest_edge", 224)))
        resize = crop
    mean = tuple(cfg.get("image_mean") or (0.485, 0.456, 0.406))
    std = tuple(cfg.get("image_std") or (0.229, 0.224, 0.225))
    return ImagePreprocess(
        resize_shortest=resize,
        crop=crop,
        mean=mean,
        std=std,
        resample=int(cfg.get("resample", 3)),
        square_resize="height" in size,
    )


class ImageDecodeError(Exception):
    """A sample's image could not be used; `kind` is an `ErrorKind` name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) and refuse images whose pixel count marks a decompression bomb."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(ErrorKind.DECOMPRESSION_BOMB, str(exc)) from None
    except UnidentifiedImageError:
        raise ImageDecodeError(ErrorKind.UNDECODABLE_IMAGE, "not an image format Pillow can identify") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(ErrorKind.UNDECODABLE_IMAGE, str(exc) or type(exc).__name__) from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            ErrorKind.DECOMPRESSION_BOMB, f"{width}x{height} pixels exceeds the limit of {max_pixels}"
        )
    return img


def _load_rgb(img: Image.Image, target: int) -> Image.Image:
    """Fully decode (JPEGs at a reduced scale when much larger than needed) and convert to RGB."""
    try:
        img.draft("RGB", (target, target))
        img.load()
        if img.mode != "RGB":
            img = img.convert("RGBA").convert("RGB") if "transparency" in img.info else img.convert("RGB")
        return img
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        text = str(exc) or type(exc).__name__
        kind = ErrorKind.TRUNCATED_IMAGE if "truncated" in text.lower() else ErrorKind.UNDECODABLE_IMAGE
        raise ImageDecodeError(kind, text) from None


def resized_size(width: int, height: int, *, shortest: int) -> tuple[int, int]:
    """The size after resizing the shortest edge to `shortest`, the long edge rounded down as
    Hugging Face image processors do (CLIP, ConvNext), so crops match theirs pixel for pixel."""
    if width <= height:
        return shortest, int(shortest * height / width)
    return int(shortest * width / height), shortest


def decode_image(data: bytes, prep: ImagePreprocess) -> np.ndarray:
    """Bytes -> uint8 array (crop, crop, 3); raises `ImageDecodeError` with the reason."""
    return decode_measured(data, prep)[0]


def decode_measured(data: bytes, prep: ImagePreprocess) -> tuple[np.ndarray, ImageSize]:
    """`decode_image`, and the image's own width, height and format (before any draft scaling)."""
    opened = _open_checked(data, prep.max_pixels)
    size = ImageSize(opened.size[0], opened.size[1], (opened.format or "unknown").lower())
    return _crop(_load_rgb(opened, prep.resize_shortest), prep), size


def _crop(img: Image.Image, prep: ImagePreprocess) -> np.ndarray:
    """Resize on the shortest edge and centre-crop, as the model's image processor does."""
    new_w, new_h = resized_size(*img.size, shortest=prep.resize_shortest)
    new_w, new_h = max(prep.crop, new_w), max(prep.crop, new_h)
    if prep.square_resize:
        new_w = new_h = prep.crop  # ViT-style processors squash to a square
    img = img.resize((new_w, new_h), resample=prep.resample)
    left, top = (new_w - prep.crop) // 2, (new_h - prep.crop) // 2
    img = img.crop((left, top, left + prep.crop, top + prep.crop))
    return np.asarray(img, dtype=np.uint8)


@dataclass(frozen=True)
class ImageSize:
    """An image as decoded: its pixel size and Pillow's name for its format."""

    width: int
    height: int
    format: str


@dataclass
class DecodedBatch:
    """Worker output: pixels (and size) for the decodable images, `(index, kind, message)` for the
    rest; the captions' languages when the worker was asked for them (`pair_facts`)."""

    ok: list[int]
    pixels: np.ndarray
    failed: list[tuple[int, str, str]]
    sizes: list[ImageSize] = field(default_factory=list)  # one per `ok`
    languages: list[tuple[str, float]] = field(default_factory=list)  # one per `ok`


def decode_batch(images: list[bytes], prep: ImagePreprocess) -> DecodedBatch:
    """Decode one batch; the indices refer to positions in `images`."""
    ok: list[int] = []
    arrays: list[np.ndarray] = []
    sizes: list[ImageSize] = []
    failed: list[tuple[int, str, str]] = []
    for i, data in enumerate(images):
        try:
            pixels, size = decode_measured(data, prep)
        except ImageDecodeError as exc:
            failed.append((i, exc.kind, str(exc)))
            continue
        arrays.append(pixels)
        sizes.append(size)
        ok.append(i)
    shape = (0, prep.crop, prep.crop, 3)
    pixels = np.stack(arrays) if arrays else np.zeros(shape, dtype=np.uint8)
    return DecodedBatch(ok=ok, pixels=pixels, failed=failed, sizes=sizes)
