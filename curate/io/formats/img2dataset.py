"""img2dataset's conventions, shared by the formats it writes (`webdataset` tars, `parquet`).

Every img2dataset shard `NNNNN.tar` has a status file `NNNNN.parquet` beside it: one row per
URL it tried, with the same columns as the tar's `.json` members (`key`, `caption`, `url`,
`status`, `error_message`, sizes, `exif`, `sha256` and the `save_additional_columns`). Rows
whose `status` is not `success` (`failed_to_download`, `failed_to_resize`) have no member in
the tar; in its Parquet output they are rows without image bytes. Either way each becomes a
`download_failed` error row carrying img2dataset's own reason, so in = out + errors counts
every URL img2dataset was given.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.location import Location
from curate.io.safety import SHARD_ERRORS, member_error
from curate.io.tables import table_schema
from curate.schemas.sample import ErrorKind, SampleError

STATUS_COLUMN = "status"
MESSAGE_COLUMN = "error_message"
KEY_COLUMN = "key"
SUCCESS = "success"
# Fields of the `.json` members that repeat what the tar says itself (the member name, the .txt).
REPEATED_FIELDS = frozenset({"key", "caption"})


def has_status(schema: pa.Schema) -> bool:
    """Whether a table carries img2dataset's per-row outcome (`error_message` may be absent)."""
    return STATUS_COLUMN in schema.names


def failure(key: str, status: object, message: object) -> SampleError | None:
    """The error row of a URL img2dataset did not get (None for a success or no status)."""
    if status is None or status == SUCCESS:
        return None
    reason = f"{status}: {message}" if message else str(status)
    return member_error(key, ErrorKind.DOWNLOAD_FAILED, reason)


def status_file(tar: Location) -> Location:
    """`00042.tar` -> `00042.parquet` beside it."""
    return tar.with_name(f"{tar.name.split('.')[0]}.parquet")


def status_schema(tar: Location) -> pa.Schema | None:
    """The status file's schema, or None when the tar has none (not written by img2dataset)."""
    path = status_file(tar)
    try:
        if not path.is_file():
            return None
        schema = table_schema(path)
    except SHARD_ERRORS:
        return None
    return schema if has_status(schema) and KEY_COLUMN in schema.names else None


def failed_downloads(tar: Location) -> Iterator[tuple[str, object, object]]:
    """(key, status, message) of every row of the tar's status file that is not a success."""
    path = status_file(tar)
    columns = [c for c in (KEY_COLUMN, STATUS_COLUMN, MESSAGE_COLUMN) if c in table_schema(path).names]
    table = pq.read_table(path, columns=columns)  # type: ignore[arg-type]
    for row in table.to_pylist():
        if row[STATUS_COLUMN] != SUCCESS and row[KEY_COLUMN] is not None:
            yield str(row[KEY_COLUMN]), row[STATUS_COLUMN], row.get(MESSAGE_COLUMN)


def status_rows(tar: Location) -> int | None:
    """How many URLs the status file lists (the tar's samples plus its failures)."""
    try:
        return pq.ParquetFile(status_file(tar)).metadata.num_rows  # type: ignore[arg-type]
    except SHARD_ERRORS:
        return None
