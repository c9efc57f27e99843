"""DiffusionDB parts: `part-NNNNNN.zip` with images and `part-NNNNNN.json` prompts.

The JSON maps an image's file name to `{"p": prompt, "se": seed, "c": cfg, "st": steps,
"sa": sampler}`; DiffusionDB ships it inside the zip, but one beside the zip is read too.
A `metadata.parquet` (DiffusionDB 2M) or `metadata-large.parquet` (DiffusionDB Large) in
the zip's folder or its parent (DiffusionDB's own layouts) is joined by `image_name`,
reading only this part's rows, to add width, height, NSFW scores, ...; when several are
there, each image takes its row from the first that has one (that order).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.atomic import atomic_path
from curate.io.formats.base import ShardReader, register_reader, register_writer
from curate.io.formats.meta import typed_meta
from curate.io.formats.naming import IMAGE_EXTENSIONS, image_file_name
from curate.io.formats.writing import AtomicShardWriter
from curate.io.location import Location
from curate.io.safety import (
    SHARD_ERRORS,
    check_archive_member,
    check_size,
    guard_records,
    record_or_error,
    unsafe_reason,
)
from curate.io.tables import table_schema
from curate.schemas.sample import Record, Sample

METADATA_FILE = "metadata.parquet"
METADATA_FILES = (METADATA_FILE, "metadata-large.parquet")  # DiffusionDB 2M's, then Large's

# meta column -> (JSON field, Arrow type): the types are fixed so every part agrees.
JSON_FIELDS: dict[str, tuple[str, pa.DataType]] = {
    "seed": ("se", pa.int64()),
    "cfg": ("c", pa.float32()),
    "step": ("st", pa.int64()),
    "sampler": ("sa", pa.string()),
}
_NOT_META = {"image_name", "prompt", *JSON_FIELDS}
_PART_NUMBER = re.compile(r"part-(\d+)$")

METADATA_SCHEMA = pa.schema(
    [
        ("image_name", pa.string()),
        ("prompt", pa.string()),
        ("part_id", pa.uint16()),
        ("seed", pa.uint32()),
        ("step", pa.uint16()),
        ("cfg", pa.float32()),
        ("sampler", pa.string()),
        ("width", pa.uint16()),
        ("height", pa.uint16()),
        ("user_name", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("image_nsfw", pa.float32()),
        ("prompt_nsfw", pa.float32()),
    ]
)


@register_reader
class DiffusionDBReader(ShardReader):
    """Streams a part zip's images with their prompts; never decodes an image."""

    format_name = "diffusiondb"

    @classmethod
    def matches(cls, path: Location) -> bool:
        return path.is_file() and path.suffix.lower() == ".zip"

    @classmethod
    def sidecars(cls, path: Location) -> list[Location]:
        """The part's JSON beside the zip and the metadata files `_metadata_paths` tries."""
        stem = path.name.split(".")[0]
        return [path.with_name(f"{stem}.json"), *_metadata_candidates(path)]

    def meta_schema(self) -> pa.Schema:
        fields = [pa.field(name, type_) for name, (_, type_) in JSON_FIELDS.items()]
        return pa.schema(fields + [f for f in self._joined_schema if f.name not in _NOT_META])

    def estimate_count(self) -> int | None:
        try:
            with zipfile.ZipFile(self.shard.path) as zf:
                return sum(_is_image(name) for name in zf.namelist())
        except SHARD_ERRORS:
            return None

    def __iter__(self) -> Iterator[Record]:
        return guard_records(self.shard.shard_id, self._records())

    def _records(self) -> Iterator[Record]:
        with zipfile.ZipFile(self.shard.path) as zf:
            infos = [info for info in zf.infolist() if not info.is_dir()]
            images = [i.filename for i in infos if _is_image(i.filename)]
            prompts, joined = self._prompts(zf, infos), self._joined_rows(images)
            part = _PartLookup(prompts, joined, self.meta_schema())
            for info in infos:
                if _is_image(info.filename) or unsafe_reason(info.filename):
                    part.claim(info.filename)  # its prompt belongs to this record even if the member is refused
                    yield record_or_error(self.key(info.filename), self._sample, zf, info, part)
            for name in sorted(set(part.prompts) - part.used):
                # A prompt whose image is absent: the pipeline reports it as missing_image.
                yield Sample(self.key(name), None, *part.text_meta(name))

    def _sample(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, part: "_PartLookup") -> Sample:
        check_archive_member(info.filename, info.file_size)
        text, meta = part.text_meta(info.filename)
        return Sample(self.key(info.filename), zf.read(info), text, meta)

    def _prompts(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> dict[str, dict]:
        """The part's JSON: inside the zip (DiffusionDB's layout) or beside it."""
        stem = self.shard.path.name.split(".")[0]
        inside = [i for i in infos if i.filename.lower().endswith(".json")]
        named = [i for i in inside if PurePosixPath(i.filename).stem == stem] or inside
        if named:
            check_size(named[0].file_size, named[0].filename)
            raw = json.loads(zf.read(named[0]))
        elif (beside := self.shard.path.with_name(f"{stem}.json")).is_file():
            raw = json.loads(beside.read_bytes())
        else:
            return {}
        if not isinstance(raw, dict):
            raise ValueError(f"{stem}.json is not an object mapping file names to prompts")
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in raw.items()}

    @cached_property
    def _metadata_paths(self) -> list[Location]:
        """The metadata files beside the zip or one folder up that have an image_name column."""
        return [c for c in _metadata_candidates(self.shard.path)
                if c.is_file() and "image_name" in self._schema_of(c).names]

    @cached_property
    def _joined_schema(self) -> pa.Schema:
        fields: dict[str, pa.Field] = {}
        for path in self._metadata_paths:
            for f in self._schema_of(path):
                fields.setdefault(f.name, f)
        return pa.schema(list(fields.values()))

    @staticmethod
    def _schema_of(path: Location) -> pa.Schema:
        """A Parquet file's schema; an unreadable one contributes nothing (iteration reports it)."""
        try:
            return table_schema(path)
        except SHARD_ERRORS:
            return pa.schema([])

    def _joined_rows(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """This part's metadata rows by image_name (the first file's row wins); only its rows are read."""
        joined: dict[str, dict[str, Any]] = {}
        for path in self._metadata_paths:
            for row in self._part_rows(path, names):
                joined.setdefault(str(row["image_name"]), row)
        return joined

    def _part_rows(self, path: Location, names: list[str]) -> list[dict[str, Any]]:
        match = _PART_NUMBER.search(self.shard.path.name.split(".")[0])
        if match and "part_id" in self._schema_of(path).names:
            flt = [("part_id", "=", int(match.group(1)))]
        else:
            flt = [("image_name", "in", [PurePosixPath(n).name for n in names] or [""])]
        return pq.read_table(path, filters=flt).to_pylist()


@dataclass
class _PartLookup:
    """What a part knows about its images beyond their bytes: prompts and joined metadata."""

    prompts: dict[str, dict[str, Any]]
    joined: dict[str, dict[str, Any]]
    schema: pa.Schema
    used: set[str] = field(default_factory=set)

    def claim(self, name: str) -> str:
        """Mark the prompt entry of image `name` as accounted for (a record carries it): a refused
        image must not come back a second time as a prompt without its image."""
        found = name if name in self.prompts else PurePosixPath(name).name
        self.used.add(found)
        return found

    def text_meta(self, name: str) -> tuple[str | None, dict[str, Any]]:
        """Prompt and meta of one image: the JSON entry wins, metadata.parquet fills gaps."""
        base = PurePosixPath(name).name
        entry = self.prompts.get(self.claim(name), {})
        row = self.joined.get(base, {})
        values = dict(row)
        values.update({col: entry[src] for col, (src, _) in JSON_FIELDS.items() if src in entry})
        text = entry.get("p", row.get("prompt"))
        return (None if text is None else str(text)), typed_meta(values, self.schema)


def _metadata_candidates(part: Location) -> list[Location]:
    return [folder / name for folder in (part.parent, part.parent.parent) for name in METADATA_FILES]


def _is_image(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS and "." in name


@register_writer
class DiffusionDBWriter(AtomicShardWriter):
    """Writes a DiffusionDB part: images plus `<part>.json` inside the zip.

    The JSON entry carries the prompt and the seed/cfg/step/sampler meta; `extra` values
    are added to the entry under their own names (readers ignore unknown fields).
    """

    format_name = "diffusiondb"
    suffix = ".zip"

    def _open(self) -> None:
        self._zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        self._entries: dict[str, dict[str, Any]] = {}

    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        if sample.image is None:
            raise ValueError(f"cannot write {sample.key!r} to a DiffusionDB part: no image")
        name = image_file_name(sample.key, sample.image)
        self._zip.writestr(name, sample.image)
        entry = {src: sample.meta.get(col) for col, (src, _) in JSON_FIELDS.items()}
        self._entries[name] = {"p": sample.text, **entry, **(extra or {})}
        self.count += 1

    def _finish(self) -> None:
        stem = self.path.name.split(".")[0]
        payload = json.dumps(self._entries, indent=1, default=str)
        self._zip.writestr(f"{stem}.json", payload, compress_type=zipfile.ZIP_DEFLATED)
        self._zip.close()

    def _release(self) -> None:
        self._zip.close()


def write_metadata_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write a DiffusionDB-style `metadata.parquet` (its column names and types) atomically."""
    table = pa.Table.from_pylist(
        [{f.name: row.get(f.name) for f in METADATA_SCHEMA} for row in rows],
        schema=METADATA_SCHEMA,
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path
