"""The subset directory: output shards rolled every N samples, and what a rerun may reuse.

Output shards are named by their position (`00000.parquet`, `00001.tar`, `00002/` for an
image folder) and filled in a fixed order: source shards in scores-file order, samples in
the order their reader yields them. Sample i therefore always lands in shard i // N, so an
interrupted run can keep the shards it finished, provided the plan (criteria, scores files,
format, shard size) is unchanged; a hidden plan file records it. `manifest.json`, written
last, marks the subset complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.io.atomic import PublishOnSuccess, remove_stale_tmp, write_json_atomic
from curate.io.formats.base import ShardWriter
from curate.io.formats.imagefolder import CAPTIONS_FILE
from curate.io.formats.registry import WRITERS
from curate.schemas.manifest import MANIFEST_FILE, OutputShard
from curate.schemas.sample import Sample
from curate.schemas.sample_batch import SampleBatch

log = logging.getLogger("curate")
PLAN_FILE = ".filter-plan.json"
OLD_CAPTIONS_FILES = ("captions.csv",)  # what image-folder subsets held before `metadata.parquet`
NAME_DIGITS = 5
_OUTPUT_NAME = re.compile(r"^(\d{%d,})(\.[a-z.]+)?$" % NAME_DIGITS)
# Added beside each sample's meta: its score, and its key in the scored run (subset keys are
# `<output shard>/<member>`, the member being the run key or, in image folders, a position;
# so this is what joins a subset back to the run's tables).
EXTRA_SCHEMA = pa.schema([pa.field("similarity", pa.float32()), pa.field("source_key", pa.string())])


def output_name(index: int, writer_cls: type[ShardWriter]) -> str:
    """`00007.parquet`, `00007.tar`, `00007` (an image folder has no suffix)."""
    return f"{index:0{NAME_DIGITS}d}{writer_cls.suffix}"


def plan_fingerprint(plan: dict[str, Any]) -> str:
    """A digest of everything that decides which sample lands in which output shard."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()


def prepare_subset_dir(out: Path, fingerprint: str, *, overwrite: bool) -> set[int]:
    """Make `out` ready and return the indexes of output shards an interrupted run finished.

    A finished subset (it has a manifest) is refused unless `overwrite`; leftovers of an
    interrupted run with the same plan are kept; anything else of ours is cleared first.
    """
    finished = (out / MANIFEST_FILE).exists()
    if finished and not overwrite:
        raise CurateError(f"{out} already holds a finished subset ({MANIFEST_FILE}); pass --overwrite to redo it.")
    remove_stale_tmp(out)
    leftovers = _our_outputs(out)
    previous = _read_plan(out)
    if not overwrite and not finished and previous == fingerprint:
        if leftovers:
            log.info("resuming: %d output shards of an interrupted run are kept", len(leftovers))
        _write_plan(out, fingerprint)
        return set(leftovers)
    if leftovers and previous is None and not finished and not overwrite:
        name = leftovers[min(leftovers)].name
        raise CurateError(
            f"{out} already holds {name}, not written by a finished filter; pass --overwrite to replace it."
        )
    _clear(out, leftovers)
    _write_plan(out, fingerprint)
    return set()


def finish_subset_dir(out: Path, manifest: dict[str, Any]) -> None:
    """Publish the manifest (the completion mark), then drop the plan it supersedes."""
    write_json_atomic(out / MANIFEST_FILE, manifest)
    (out / PLAN_FILE).unlink(missing_ok=True)


def _our_outputs(out: Path) -> dict[int, Path]:
    """Output shards of a previous run, by position: position-named files with a writer's
    suffix, and position-named image folders holding their metadata table."""
    if not out.is_dir():
        return {}
    suffixes = {cls.suffix for cls in WRITERS.values()}
    found = {}
    for entry in out.iterdir():
        match = _OUTPUT_NAME.match(entry.name)
        if match and (match.group(2) or "") in suffixes and _is_output(entry, suffix=match.group(2)):
            found[int(match.group(1))] = entry
    return found


def _is_output(entry: Path, *, suffix: str | None) -> bool:
    if suffix:
        return entry.is_file()
    return entry.is_dir() and any((entry / name).is_file() for name in (CAPTIONS_FILE, *OLD_CAPTIONS_FILES))


def _clear(out: Path, outputs: dict[int, Path]) -> None:
    for path in outputs.values():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    (out / PLAN_FILE).unlink(missing_ok=True)
    if outputs:
        log.info("cleared %d output shards of a previous filter in %s", len(outputs), out)


def _read_plan(out: Path) -> str | None:
    try:
        return json.loads((out / PLAN_FILE).read_text())["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_plan(out: Path, fingerprint: str) -> None:
    write_json_atomic(out / PLAN_FILE, {"fingerprint": fingerprint})


class ShardRoller(PublishOnSuccess):
    """Writes kept samples into position-named output shards of `shard_size` samples each.

    Samples whose shard an interrupted run already finished (`done`) are counted, not
    written again. `similarity` (float32) and `source_key` (the key in the scored run) travel
    as extra columns next to the meta; meta columns in `as_text` (types the sources disagree
    on) are written as text.
    """

    def __init__(
        self, out: Path, *, writer_cls: type[ShardWriter], shard_size: int, meta_schema: pa.Schema,
        as_text: frozenset[str] = frozenset(), done: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        self.out, self.writer_cls, self.shard_size = out, writer_cls, shard_size
        self.meta_schema, self.as_text, self.done = meta_schema, as_text, set(done)
        self.index = 0  # position of the next kept sample in the whole subset
        self._writer: ShardWriter | None = None
        self._open: int | None = None
        self._stem = ""  # the open shard's id: subset keys are `<output shard>/<member>`

    def all_done(self, count: int) -> bool:
        """Whether the next `count` samples all fall in shards finished earlier."""
        if count <= 0:
            return True
        first, last = self.index // self.shard_size, (self.index + count - 1) // self.shard_size
        return all(k in self.done for k in range(first, last + 1))

    def skip(self, count: int) -> None:
        """Account for `count` samples that are already written (see `all_done`)."""
        self.index += count

    def write(self, sample: Sample, similarity: float) -> None:
        shard = self.index // self.shard_size
        self.index += 1
        if shard in self.done:
            return
        if shard != self._open:
            self._start(shard)
        meta = sample.meta if not self.as_text else {**sample.meta, **self._texts(sample.meta)}
        member = self.writer_cls.subset_member(self.index - 1 - shard * self.shard_size, sample.key)
        renamed = Sample(f"{self._stem}/{member}", sample.image, sample.text, meta)
        extra = {"similarity": similarity, "source_key": sample.key}
        self._writer.write(renamed, extra=extra)  # type: ignore[union-attr]

    def write_batch(self, batch: SampleBatch, similarity: pa.Array) -> None:
        """`write` for every row of a batch (`conformed` first), cut at output shard boundaries;
        for writers that keep the run key as member (the default `subset_member`)."""
        offset = 0
        while offset < len(batch):
            shard = self.index // self.shard_size
            rows = min(len(batch) - offset, (shard + 1) * self.shard_size - self.index)
            part, sims = batch.slice(offset, rows), similarity.slice(offset, rows)
            offset += rows
            self.index += rows
            if shard in self.done:
                continue
            if shard != self._open:
                self._start(shard)
            keys = pc.binary_join_element_wise(pa.scalar(self._stem), part.keys, "/")
            extra = pa.table([sims.cast(pa.float32()), part.keys], schema=EXTRA_SCHEMA)
            self._writer.write_batch(part.with_keys(keys), extra=extra)  # type: ignore[union-attr]

    def conformed(self, batch: SampleBatch) -> SampleBatch:
        """The batch's meta as `write` would write it: the subset's meta types, columns the sources
        disagree on as text. Arrow casts where they give what Python values give, else through
        Python values (rare types), so both paths write the same bytes."""
        present = [f for f in self.meta_schema if f.name in batch.meta.column_names]
        return batch.with_meta(pa.table([self._conform(batch.meta.column(f.name), f) for f in present],
                                        schema=pa.schema(present)))

    def _conform(self, column: pa.ChunkedArray, field: pa.Field) -> pa.Array:
        values = column.combine_chunks()
        if field.name in self.as_text:
            values = _as_text(values)
        if _exact_cast(values.type, field.type):
            return values.cast(field.type)
        return pa.array(values.to_pylist(), type=field.type)

    def _texts(self, meta: dict[str, Any]) -> dict[str, str | None]:
        """Columns the sources disagree on the type of, as text (None stays None)."""
        return {k: None if meta.get(k) is None else str(meta[k]) for k in self.as_text if k in meta}

    def _start(self, shard: int) -> None:
        self.close()
        path = self.out / output_name(shard, self.writer_cls)
        self._writer = self.writer_cls(path, meta_schema=self.meta_schema, extra_schema=EXTRA_SCHEMA)
        self._open, self._stem = shard, path.name.split(".")[0]

    def outputs(self) -> list[OutputShard]:
        """Every output shard with its row count, from the positions alone."""
        count = -(-self.index // self.shard_size)
        return [
            OutputShard(output_name(k, self.writer_cls), min(self.shard_size, self.index - k * self.shard_size))
            for k in range(count)
        ]

    def close(self) -> None:
        """Publish the shard being written."""
        if self._writer is not None:
            self._writer.close()
        self._writer, self._open = None, None

    def abort(self) -> None:
        """Drop the shard being written (the run failed or was interrupted)."""
        if self._writer is not None:
            self._writer.abort()
        self._writer, self._open = None, None


_PLAIN = (pa.types.is_boolean, pa.types.is_integer, pa.types.is_string, pa.types.is_large_string, pa.types.is_null)


def _exact_cast(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether an Arrow cast gives the values a round trip through Python gives (`write`'s path)."""
    floats = (pa.float32(), pa.float64())
    if pa.types.is_null(source) or (source == target and (any(p(source) for p in _PLAIN) or source in floats)):
        return True
    widening = [(pa.types.is_integer, pa.types.is_integer), (lambda t: t in floats, lambda t: t == pa.float64()),
                (pa.types.is_string, pa.types.is_large_string), (pa.types.is_large_string, pa.types.is_string)]
    return any(is_source(source) and is_target(target) for is_source, is_target in widening)


def _as_text(values: pa.Array) -> pa.Array:
    """Values as `str()` writes them (None stays None): an Arrow cast for text and integers."""
    if any(p(values.type) for p in _PLAIN[1:]):
        return values.cast(pa.string())
    return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())
