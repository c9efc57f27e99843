"""Object-store locations (`s3://`, `gs://`, `hf://`, `file://`, `memory://` ...) through fsspec.

`RemotePath` behaves like the slice of `pathlib.Path` that format detection, the run layout
and the resume checks use (names, listing, existence, opening), so those take local paths
and URLs alike. Shards that are read front to back or by ranges (tars, Parquet) are read
where they lie (`open_in_place`: ranged requests, the next block fetched while the current
one is parsed), so decoding starts on the first bytes; other shards are copied to local
scratch first (`io/mirror.py`). Output files are written locally and uploaded whole when
complete (`upload`), so an output on an object store appears all at once or not at all, as a
local rename does.

The filesystem comes from fsspec by the URL's scheme; its credentials are fsspec's usual
ones (environment variables, config files, instance roles) on every machine that runs a
worker. `s3://` needs `s3fs` installed, `gs://` `gcsfs`; `hf://` comes with `huggingface_hub`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterable, Iterator, Sequence, TypeVar, Union

from curate.errors import CurateError
from curate.io.process import this_writer_tag
from curate.schemas.config.checks import URL_PATTERN, unfold

BRACE_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
BRACE_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")
GLOB_CHARS = re.compile(r"[*?\[]")
TMP_SUFFIX = ".tmp"
IO_THREADS = 32  # concurrent footer reads and existence checks against an object store
STREAM_BLOCK = 8 * 2**20  # bytes per ranged request of a shard read in place
STREAM_CACHE = "background"  # fsspec's cache that fetches the next block while this one is read
T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")
INSTALL_HINTS = {"s3": "pip install 'curate[s3]'", "gs": "pip install 'curate[gcs]'", "gcs": "pip install 'curate[gcs]'"}


def is_url(value: object) -> bool:
    """Whether `value` names a URL rather than a local path (Windows drive letters are paths)."""
    return isinstance(value, RemotePath) or bool(URL_PATTERN.match(str(value)))


class RemotePath:
    """A file or folder at a URL, with the pathlib methods the tool relies on.

    Only the URL is pickled (Ray and worker processes rebuild the filesystem from it); what
    a listing said about an entry (file or folder) is remembered to spare a request per check.
    """

    def __init__(self, url: str, *, kind: str | None = None) -> None:
        self.url = unfold(str(url)).rstrip("/") or str(url)
        self._kind = kind
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self._kind}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url, self._kind, self._fs = state["url"], state["kind"], None

    @property
    def fs(self) -> Any:
        """The fsspec filesystem serving this URL (one clear line if its package is missing)."""
        if self._fs is None:
            self._fs, self._path = _filesystem(self.url)
        return self._fs

    @property
    def path(self) -> str:
        """The URL without its scheme, as the filesystem's own methods take it."""
        self.fs  # noqa: B018 - sets _path
        return self._path

    # names, as pathlib spells them
    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> "RemotePath":
        head = self.url.rsplit("/", 1)[0]
        return RemotePath(head) if not head.endswith(":/") else self

    def __truediv__(self, other: str) -> "RemotePath":
        return RemotePath(f"{self.url}/{other}")

    def with_name(self, name: str) -> "RemotePath":
        return self.parent / name

    def resolve(self) -> "RemotePath":
        return self

    def relative_to(self, other: "RemotePath") -> PurePosixPath:
        if not self.url.startswith(other.url + "/"):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.url[len(other.url) + 1:])

    # the filesystem
    def exists(self) -> bool:
        return self._kind is not None or self.fs.exists(self.path)

    def is_file(self) -> bool:
        return self._kind == "file" if self._kind else self.fs.isfile(self.path)

    def is_dir(self) -> bool:
        return self._kind == "directory" if self._kind else self.fs.isdir(self.path)

    def iterdir(self) -> Iterator["RemotePath"]:
        """Children, with the kind the listing reported (no request per child to ask it again)."""
        for entry in self.fs.ls(self.path, detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if name:
                yield RemotePath(f"{self.url}/{name}", kind=entry.get("type"))

    def glob(self, pattern: str) -> Iterator["RemotePath"]:
        for found in self.fs.glob(f"{self.path}/{pattern}"):
            yield RemotePath(self.url + found[len(self.path):])

    def open(self, mode: str = "rb", **kwargs: Any) -> IO:
        return self.fs.open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def unlink(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.fs.exists(self.path):
            return
        self.fs.rm_file(self.path)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __lt__(self, other: "RemotePath") -> bool:
        return self.url < other.url

    def __hash__(self) -> int:
        return hash(("remote", self.url))


Location = Union[Path, RemotePath]


def tmp_name(final: Path) -> Path:
    """The temporary sibling of `final`, `.<name>.<pid>@<host>.tmp`: unique per process so two
    writers never collide, and naming its writer so a sweep can tell whether it is gone."""
    return final.with_name(f".{final.name}.{this_writer_tag()}{TMP_SUFFIX}")


def with_locations(config: C, *names: str) -> C:
    """`config` with the typed paths of `names` (a value or a tuple of them) as `Path`s or `RemotePath`s."""
    def typed(value: Any) -> Any:
        return tuple(location(v) for v in value) if isinstance(value, (tuple, list)) else location(value)

    return dataclasses.replace(config, **{name: typed(getattr(config, name)) for name in names})  # type: ignore[type-var]


def location(value: str | Path | RemotePath) -> Location:
    """A path as typed: a `RemotePath` for a URL (pathlib-folded or not), else a local `Path`."""
    if isinstance(value, (RemotePath, Path)) and not is_url(value):
        return value
    return RemotePath(str(value)) if is_url(value) else Path(value)


def io_map(fn: Callable[[T], R], items: Sequence[T], *, remote: bool) -> list[R]:
    """`[fn(x) for x in items]`, in order, run by `IO_THREADS` threads when each call waits on
    an object store's round trips (a footer read, an existence check), so that resuming a run of
    thousands of shards on a bucket overlaps those round trips instead of making them in turn."""
    if not remote or len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(min(IO_THREADS, len(items)), thread_name_prefix="curate-io") as pool:
        return list(pool.map(fn, items))


def check_backend(value: object) -> None:
    """Fail now, in one line, if a URL's fsspec filesystem is missing, rather than after the models load."""
    if isinstance(value, RemotePath):
        value.fs  # noqa: B018 - building the filesystem is the check


def refuse_urls(values: Iterable[object], *, what: str) -> None:
    """One line for a URL given to a command that reads and writes local folders only."""
    for value in values:
        if value is not None and is_url(value):
            raise CurateError(
                f"{what} {location(value)} is a URL; only `curate embed` and `curate score` read and write "
                "object stores. Copy the run here first (e.g. `aws s3 sync`, `gcloud storage rsync`) or mount "
                "the bucket, and pass the local folder."
            )


def expand(value: Location) -> list[Location]:
    """A URL input with `{00000..00099}` ranges, `{a,b}` lists or glob characters, expanded.

    Shells expand braces and globs in local paths before the tool sees them; in a URL they
    reach it quoted, as WebDataset-style shard lists usually are. Local paths pass unchanged.
    """
    if not isinstance(value, RemotePath):
        return [value]
    urls = _braces(value.url)
    out: list[Location] = []
    for url in urls:
        if GLOB_CHARS.search(url.split("://", 1)[-1]):
            root, pattern = _glob_root(url)
            matched = sorted(RemotePath(root).glob(pattern))
            if not matched:
                raise CurateError(f"No files match {url}.")
            out += matched
        else:
            out.append(RemotePath(url))
    return out


def upload(local: Path, target: RemotePath) -> None:
    """Copy a finished local file to `target` so that readers see all of it or nothing.

    An object store's single upload (S3/GCS PUT or completed multipart upload) is atomic by
    itself; a local `file://` target is written under a hidden name and renamed into place.
    """
    fs = target.fs
    if _renames_atomically(fs):
        tmp = str(tmp_name(Path(target.path)))
        fs.makedirs(target.parent.path, exist_ok=True)
        fs.put_file(str(local), tmp)
        fs.mv(tmp, target.path)
    else:
        fs.put_file(str(local), target.path)


def download(source: RemotePath, local: Path) -> None:
    """Copy a remote file, or a folder with everything below it, to `local`."""
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(f".{local.name}.partial")  # a failed copy never passes for a whole one
    if source.is_dir():
        source.fs.get(source.path.rstrip("/") + "/", str(partial) + "/", recursive=True)
    else:
        source.fs.get_file(source.path, str(partial))
    os.replace(partial, local)


class RemoteReadError(CurateError):
    """A request for a shard's bytes failed (network, credentials): the shard is not corrupt, so
    it must stop the shard, not end it as an unreadable one in the error table."""


class InPlaceFile(io.RawIOBase):
    """A remote file read where it lies, by ranged requests, for readers that take file objects.

    Every failure of the underlying request becomes a `RemoteReadError`, which format readers
    do not catch (they record `OSError`s and the like as a broken shard)."""

    def __init__(self, handle: Any, url: str) -> None:
        super().__init__()
        self._handle, self.url = handle, url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._call(self._handle.read, size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._call(self._handle.seek, offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        try:
            return method(*args)
        except Exception as exc:  # noqa: BLE001 - any failure of the transport, reported as such
            raise RemoteReadError(
                f"Reading {self.url} failed at byte {self._handle.tell():,} ({type(exc).__name__}: {exc}); "
                "finished shards are kept, rerun to resume."
            ) from exc


def open_in_place(path: Location, *, ahead: bool = True) -> IO[bytes]:
    """A shard's bytes as a file object: a local file, or a URL read by ranged requests of
    `STREAM_BLOCK` bytes as the reader goes, so a 1 GB tar is not copied before its first sample.

    `ahead`: while the reader parses one block, the next is fetched in the background (for
    readers that go front to back in small reads, as tar does). Without it each read is one
    request plus a block of read-ahead (for readers of large ranges, as Parquet's column chunks:
    a background cache would fetch the blocks of a long read twice)."""
    if not isinstance(path, RemotePath):
        return open(path, "rb")
    cache = dict(cache_type=STREAM_CACHE, cache_options={"maxblocks": 4}) if ahead else dict(cache_type="readahead")
    try:
        handle = path.open("rb", block_size=STREAM_BLOCK, **cache)
    except TypeError:  # a filesystem whose files take no cache settings
        handle = path.open("rb")
    except Exception as exc:  # noqa: BLE001 - as for reads: the transport failed, not the shard
        raise RemoteReadError(f"Opening {path} failed ({type(exc).__name__}: {exc}); rerun to resume.") from exc
    return InPlaceFile(handle, path.url)  # type: ignore[return-value]


def _filesystem(url: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    try:
        return url_to_fs(url)
    except ImportError as exc:
        extra = INSTALL_HINTS.get(url.split(":", 1)[0].lower(), "install the fsspec backend it names")
        raise CurateError(f"Reading {url} needs an fsspec backend that is not installed ({exc}): {extra}.") from None
    except ValueError as exc:
        raise CurateError(f"{url} is not a URL any installed fsspec filesystem serves ({exc}).") from None


def _renames_atomically(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _braces(text: str) -> list[str]:
    """Bash-style expansion of `{a..b}` ranges (zero padding kept) and `{x,y}` lists, leftmost first."""
    found = [m for m in (BRACE_RANGE.search(text), BRACE_LIST.search(text)) if m is not None]
    if not found:
        return [text]
    match = min(found, key=lambda m: m.start())
    if match.re is BRACE_RANGE:
        low, high = match.group(1), match.group(2)
        width = len(low) if low.startswith("0") else 0
        step = 1 if int(high) >= int(low) else -1
        items = [str(n).zfill(width) for n in range(int(low), int(high) + step, step)]
    else:
        items = match.group(1).split(",")
    head, tail = text[:match.start()], text[match.end():]
    return [expanded for item in items for expanded in _braces(head + item + tail)]


def _glob_root(url: str) -> tuple[str, str]:
    """`s3://b/laion/*.tar` -> (`s3://b/laion`, `*.tar`): the folder above the first wildcard."""
    scheme, rest = url.split("://", 1)
    parts = rest.split("/")
    first = next(i for i, part in enumerate(parts) if GLOB_CHARS.search(part))
    return f"{scheme}://{'/'.join(parts[:first])}", "/".join(parts[first:])
