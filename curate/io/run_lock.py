"""One writer per output folder: a lock file that names its holder.

A command that writes a run directory (or a projection, subset or prompt folder) holds
`<folder>/.curate.lock` while it works. The file says who holds it (command, pid, host,
since when), so a second writer is refused with one line naming the first instead of
deleting its half-written files. The lock is created with `O_EXCL`, under an `flock` of the
folder so that two processes on one host never both decide a stale lock is theirs to take.

Released on every way out of the `with` block (success, error, Ctrl-C). A process killed
with SIGKILL cannot release it; the next writer finds the holder gone (same host, pid not
running, or running but started at another time: the pid was reused) and takes the lock
over. A lock held from another host cannot be checked from here: it is refused, and the
message says which file to delete if that host's command is known to be gone.

Holding is re-entrant within one process: `score` embeds new shards into the run it holds.
URL outputs (object stores) have no atomic create-if-absent here and are not locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from curate.errors import CurateError
from curate.io.location import RemotePath
from curate.io.process import HOST, Writer, process_start

LOCK_FILE = ".curate.lock"
_held: dict[Path, tuple["LockHolder", int]] = {}  # folders this process holds: its lock, how many blocks hold it


@dataclass(frozen=True)
class LockHolder:
    """What the lock file records."""

    command: str
    pid: int
    host: str
    since: float
    process_start: str | None = None

    def gone(self) -> bool:
        """True when the holder is known to have ended (only a holder on this host can be checked)."""
        if self.host != HOST:
            return False
        if not Writer(self.pid, self.host).running():
            return True
        return self.process_start is not None and process_start(self.pid) not in (None, self.process_start)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"`curate {self.command}` (pid {self.pid} on {self.host}, since {started})"


@contextlib.contextmanager
def hold(folder: Path | RemotePath, command: str, *, option: str = "--out") -> Iterator[float]:
    """Hold `folder` for `command` for the block; yields the time the lock was taken.

    The folder is created if missing. A folder that cannot be created or written, or is a
    file, is refused in one line before any work, naming `option`.
    """
    if isinstance(folder, RemotePath):
        yield time.time()
        return
    root = _writable_folder(Path(folder), option)
    holder, depth = _held.get(root) or (_acquire(root, command, option), 0)
    _held[root] = (holder, depth + 1)
    try:
        yield holder.since
    finally:
        if depth:
            _held[root] = (holder, depth)
        else:
            del _held[root]
            _release(root / LOCK_FILE, holder)


def _writable_folder(folder: Path, option: str) -> Path:
    """`folder` resolved, created if needed; one line if it cannot hold output."""
    if folder.exists() and not folder.is_dir():
        raise CurateError(f"{option} {folder} is a file, not a folder; give a folder to write into.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CurateError(f"{option} {folder} cannot be created: {exc.strerror or exc}.") from None
    return folder.resolve()


def _acquire(root: Path, command: str, option: str) -> LockHolder:
    me = LockHolder(command=command, pid=os.getpid(), host=HOST, since=time.time(),
                    process_start=process_start(os.getpid()))
    path = root / LOCK_FILE
    with _folder_flock(root, option):
        current = _read(path)
        if current is not None and not current.gone():
            raise CurateError(
                f"{root} is being written by {current.describe()}; wait for it to finish or choose another "
                f"{option}. If that command is no longer running, delete {path}."
            )
        if current is not None:
            path.unlink(missing_ok=True)  # the holder is gone: its lock is stale
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another host took it between our read and create
            holder = _read(path)
            raise CurateError(f"{root} is being written by {holder.describe() if holder else 'another command'}; "
                              f"choose another {option}.") from None
        except OSError as exc:
            raise CurateError(f"{option} {root} is not writable: {exc.strerror or exc}.") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(asdict(me)) + "\n")
    return me


@contextlib.contextmanager
def _folder_flock(root: Path, option: str) -> Iterator[None]:
    """An exclusive `flock` on the folder itself (no extra file), for the few lines that read,
    judge and replace the lock; released when the descriptor closes."""
    import fcntl

    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:
        raise CurateError(f"{option} {root} cannot be opened: {exc.strerror or exc}.") from None
    try:
        with contextlib.suppress(OSError):  # a filesystem without flock: the O_EXCL create still guards
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(path: Path) -> LockHolder | None:
    """The holder a lock file names. One that cannot be read (being written from another host,
    or damaged) counts as held by an unknown writer: refused, with the file to delete named."""
    try:
        return LockHolder(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        since = path.stat().st_mtime if path.exists() else time.time()
        return LockHolder(command="(unreadable lock)", pid=-1, host="an unknown host", since=since)


def _release(path: Path, me: LockHolder) -> None:
    """Remove the lock if it is still ours (never another writer's that replaced a stale one)."""
    current = _read(path)
    if current is not None and (current.pid, current.host, current.since) == (me.pid, me.host, me.since):
        path.unlink(missing_ok=True)

