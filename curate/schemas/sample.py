"""What every shard reader yields: a usable sample, or the reason a sample is unusable.

Readers never decode images and never drop anything: a member that cannot become a sample
still yields a `SampleError` so that `in = out + errors` holds for every shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Sample:
    """One image-text pair as the source holds it; `image` is the untouched encoded bytes."""

    key: str
    image: bytes | None
    text: str | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SampleError:
    """A sample (or a whole shard, when `key` is the shard id) that could not be used."""

    key: str
    stage: str
    error: str
    message: str


Record = Union[Sample, SampleError]


class ErrorKind:
    """The error names written to the `error` column; one place so tests and docs agree."""

    UNSAFE_MEMBER_NAME = "unsafe_member_name"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_IMAGE = "missing_image"
    MISSING_CAPTION = "missing_caption"
    EMPTY_CAPTION = "empty_caption"
    NON_UTF8_TEXT = "non_utf8_text"
    UNDECODABLE_IMAGE = "undecodable_image"
    TRUNCATED_IMAGE = "truncated_image"
    DECOMPRESSION_BOMB = "decompression_bomb"
    UNREADABLE_SHARD = "unreadable_shard"
    DOWNLOAD_FAILED = "download_failed"  # img2dataset could not fetch or resize the URL


class Stage:
    """Where in the flow a sample failed."""

    READ = "read"
    DECODE = "decode"
    EMBED = "embed"
