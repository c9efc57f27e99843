"""Local scratch space for URL runs: copies of remote shards and outputs waiting to be uploaded.

Each process works in `<temp folder>/curate-scratch/<pid>/` (the temp folder honours `TMPDIR`).
A worker killed mid-shard (an OOM kill, a preempted node) cannot clean up after itself, and its
shard copy may be a gigabyte, so the first process to ask for scratch space on a machine
removes the folders of processes that are no longer running.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from curate.io.process import is_running

SCRATCH_NAME = "curate-scratch"
_swept = False


def scratch_dir() -> Path:
    """This process's scratch folder, created on first use (after sweeping dead processes' ones)."""
    global _swept
    root = scratch_root()
    mine = root / str(os.getpid())
    if not _swept:
        sweep_dead(root)
        atexit.register(shutil.rmtree, mine, ignore_errors=True)  # a normal exit leaves nothing
        _swept = True
    mine.mkdir(parents=True, exist_ok=True)
    return mine


def scratch_root() -> Path:
    """The machine's scratch folder, holding one folder per process."""
    return Path(tempfile.gettempdir()) / SCRATCH_NAME


def sweep_dead(root: Path) -> int:
    """Remove the scratch folders of processes that no longer run; returns how many went."""
    if not root.is_dir():
        return 0
    dead = [p for p in root.iterdir() if p.name.isdigit() and not is_running(int(p.name))]
    for folder in dead:
        shutil.rmtree(folder, ignore_errors=True)
    return len(dead)

