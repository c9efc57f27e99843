"""Rendered scenes: simple pictures whose captions say exactly what is in them.

Because the caption is generated from the same attributes that drew the picture, the pairs
are aligned by construction, and shuffling captions gives misaligned pairs: enough to check
that scoring separates the two for real, without a single downloaded image.
Everything is a pure function of `(seed, index)`.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import asdict, dataclass
from typing import Any, Callable

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Box = tuple[float, float, float, float]

COLOURS: dict[str, RGB] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 180),
    "orange": (250, 140, 20),
    "pink": (250, 120, 190),
    "brown": (130, 80, 30),
}
BACKGROUNDS: dict[str, RGB] = {
    "white": (250, 250, 250),
    "black": (10, 10, 10),
    "gray": (128, 128, 128),
    "light blue": (190, 220, 250),
}
SIZES: dict[str, float] = {"small": 0.45, "large": 0.9}  # fraction of the cell
# Quadrants of the picture: name -> (column, row) in a 2x2 grid.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top right": (1, 0),
    "bottom left": (0, 1),
    "bottom right": (1, 1),
}
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg"}


def _star_points(box: Box, points: int = 5) -> list[tuple[float, float]]:
    """Alternating outer and inner vertices, first one pointing up."""
    x0, y0, x1, y1 = box
    cx, cy, outer = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    vertices = []
    for i in range(2 * points):
        radius = outer if i % 2 == 0 else outer * 0.45
        angle = math.pi * i / points
        vertices.append((cx + radius * math.sin(angle), cy - radius * math.cos(angle)))
    return vertices


def _draw_triangle(draw: ImageDraw.ImageDraw, box: Box, fill: RGB) -> None:
    x0, y0, x1, y1 = box
    draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)


def _draw_diamond(draw: ImageDraw.ImageDraw, box: Box, fill: RGB) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)


SHAPES: dict[str, Callable[[ImageDraw.ImageDraw, Box, RGB], None]] = {
    "circle": lambda draw, box, fill: draw.ellipse(box, fill=fill),
    "square": lambda draw, box, fill: draw.rectangle(box, fill=fill),
    "triangle": _draw_triangle,
    "star": lambda draw, box, fill: draw.polygon(_star_points(box), fill=fill),
    "diamond": _draw_diamond,
}


@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene."""

    shape: str
    colour: str
    size: str
    position: str

    def phrase(self) -> str:
        return f"a {self.size} {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """A rendered scene: encoded image, its caption, and the attributes behind both."""

    index: int
    image: bytes
    caption: str
    background: str
    objects: tuple[SceneObject, ...]
    width: int
    height: int
    extension: str

    @property
    def attributes(self) -> dict[str, Any]:
        """Plain-dict view for tests that check alignment (shape, colour, ... per object)."""
        return {
            "background": self.background,
            "objects": [asdict(obj) for obj in self.objects],
        }


def plan_scene(index: int, *, seed: int = 0) -> tuple[str, tuple[SceneObject, ...]]:
    """The background and one to three objects of scene `index`, without drawing them."""
    rng = random.Random(f"curate-scene:{seed}:{index}")
    background = rng.choice(sorted(BACKGROUNDS))
    count = rng.randint(1, 3)
    positions = rng.sample(sorted(POSITIONS), count)
    objects = tuple(
        SceneObject(
            shape=rng.choice(sorted(SHAPES)),
            colour=rng.choice(sorted(COLOURS)),
            size=rng.choice(sorted(SIZES)),
            position=position,
        )
        for position in sorted(positions, key=lambda p: POSITIONS[p][::-1])
    )
    return background, objects


def caption_for(background: str, objects: tuple[SceneObject, ...]) -> str:
    """`a large red circle, a small star and a small blue square on a white background`."""
    phrases = [obj.phrase() for obj in objects]
    listed = phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"
    return f"{listed} on a {background} background"


def render_scene(
    index: int, *, seed: int = 0, size: int = 96, image_format: str = "PNG"
) -> Scene:
    """Draw scene `index` and encode it (`PNG` or `JPEG`); identical inputs, identical bytes."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(IMAGE_FORMATS)}")
    background, objects = plan_scene(index, seed=seed)
    image = Image.new("RGB", (size, size), BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    for obj in objects:
        SHAPES[obj.shape](draw, _box(obj, size), COLOURS[obj.colour])
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return Scene(
        index=index,
        image=buffer.getvalue(),
        caption=caption_for(background, objects),
        background=background,
        objects=objects,
        width=size,
        height=size,
        extension=IMAGE_FORMATS[image_format],
    )


def _box(obj: SceneObject, size: int) -> Box:
    """The object's bounding box: centred in its quadrant, scaled by its size word."""
    cell = size / 2
    col, row = POSITIONS[obj.position]
    cx, cy = (col + 0.5) * cell, (row + 0.5) * cell
    half = cell * SIZES[obj.size] / 2
    return (cx - half, cy - half, cx + half, cy + half)
