"""How writers turn a sample key into names inside a shard, without decoding images.

Writers receive keys `<shard-id>/<member>`; the shard they write has its own id, so they
keep only the member part, and give image files the extension their bytes announce.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.io.safety import unsafe_names, unsafe_reason

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
DEFAULT_EXTENSION = "jpg"  # bytes no signature names

# Magic numbers of the encodings we write; checked in order, first match wins.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"WEBP", 8, "webp"),
    (b"GIF8", 0, "gif"),
    (b"BM", 0, "bmp"),
)


def image_extension(data: bytes, *, default: str = DEFAULT_EXTENSION) -> str:
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


# The same names for Arrow columns of keys and images (`write_batch`: no Python object per row).
_STEM_PREFIX = r"^[^/]*/"  # what `member_of` drops: up to the first slash
_IMAGE_SUFFIX = r"\.(?i:%s)$" % "|".join(IMAGE_EXTENSIONS)  # what `strip_image_extension` drops


def writable_members(keys: pa.Array) -> pa.Array:
    """`writable_member` of every key of a string array; the first unsafe one is refused alike."""
    import pyarrow.compute as pc

    members = pc.replace_substring_regex(keys, _STEM_PREFIX, "", max_replacements=1)
    unsafe = np.flatnonzero(unsafe_names(members))
    if len(unsafe):
        writable_member(keys[int(unsafe[0])].as_py())  # raises, naming the first
    return members


def image_extensions(images: pa.Array) -> pa.Array:
    """`image_extension` of every value of a binary array (null images give the default)."""
    import pyarrow.compute as pc

    found = [pc.starts_with(pc.binary_slice(images, offset, offset + len(magic)), pattern=magic)
             for magic, offset, _ in _SIGNATURES]
    choices = [pa.scalar(ext) for _, _, ext in _SIGNATURES]
    return pc.case_when(pc.make_struct(*found, field_names=[str(i) for i in range(len(found))]),
                        *choices, pa.scalar(DEFAULT_EXTENSION))


def image_file_names(members: pa.Array, images: pa.Array) -> pa.Array:
    """`image_file_name` of every (member, image) pair; null where the image is null."""
    import pyarrow.compute as pc

    stems = pc.replace_substring_regex(members, _IMAGE_SUFFIX, "")
    names = pc.binary_join_element_wise(stems, image_extensions(images), ".")
    return pc.if_else(pc.is_null(images), pa.scalar(None, pa.string()), names)
