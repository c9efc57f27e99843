"""Which process wrote a file, and whether it still runs: what lock and temp-file sweeping ask.

A temporary file's name ends in its writer's tag, `.<pid>@<host>.tmp`, so a sweep can leave
alone the files of a writer that is still running (another command, a worker of this run)
and remove only those of processes that are gone. A process is known to be gone only on
its own host; another host's files are judged by the caller (see `atomic.remove_stale_tmp`).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

HOST = socket.gethostname() or "localhost"
_TAG = re.compile(r"\.(\d+)(?:@([^@/]*))?\.tmp$")  # `.1234@host.tmp`, or `.1234.tmp` (older runs: this host)


@dataclass(frozen=True)
class Writer:
    """A process by its pid and host name."""

    pid: int
    host: str

    @property
    def here(self) -> bool:
        return self.host == HOST

    def running(self) -> bool | None:
        """True or False on this host; None for another host's process (it cannot be asked)."""
        return is_running(self.pid) if self.here else None


def this_writer_tag() -> str:
    """`<pid>@<host>` of this process, for the names of the temporary files it writes."""
    return f"{os.getpid()}@{HOST}"


def writer_of(name: str) -> Writer | None:
    """The writer a temporary file's name records; None for a name without a tag."""
    match = _TAG.search(name)
    if match is None:
        return None
    return Writer(pid=int(match.group(1)), host=match.group(2) if match.group(2) is not None else HOST)


def is_running(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def process_start(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (Linux), to tell a reused pid from
    the process that held it; None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None
