"""How writers turn a sample key into names inside a shard, without decoding images.

Writers receive keys `<shard-id>/<member>`; the shard they write has its own id, so they
keep only the member part, and give image files the extension their bytes announce.
"""

from __future__ import annotations

from curate.io.safety import unsafe_reason

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")

# Magic numbers of the encodings we write; checked in order, first match wins.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"WEBP", 8, "webp"),
    (b"GIF8", 0, "gif"),
    (b"BM", 0, "bmp"),
)


def image_extension(data: bytes, *, default: str = "jpg") -> str:
    """The file extension the image bytes' signature announces (readers never decode)."""
    for magic, offset, ext in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return ext
    return default


def member_of(key: str) -> str:
    """The member part of a `<shard-id>/<member>` key (the whole key if it has no slash)."""
    _, slash, member = key.partition("/")
    return member if slash else key


def writable_member(key: str) -> str:
    """The member part of `key`, refused if writing it could escape the output."""
    member = member_of(key)
    reason = unsafe_reason(member)
    if reason:
        raise ValueError(f"cannot write sample {key!r}: {reason}")
    return member


def strip_image_extension(name: str) -> str:
    """`abc.png` -> `abc`; other names unchanged (formats that add their own extension)."""
    stem, dot, ext = name.rpartition(".")
    return stem if dot and ext.lower() in IMAGE_EXTENSIONS else name


def image_file_name(key: str, image: bytes) -> str:
    """A file name for the sample's image: its member, with the extension its bytes announce."""
    member = writable_member(key)
    return f"{strip_image_extension(member)}.{image_extension(image)}"
