"""The one exception type the CLI turns into a single line and a non-zero exit.

Anything a user can fix (a bad path, a model that cannot be loaded, a threshold out of
range) is raised as `CurateError` with a sentence that says what to do; everything else is
a bug and keeps its traceback. The machine's own refusals (a full disk, a read-only
folder) are the user's to fix too: `environment_problem` words them as one line.
"""

from __future__ import annotations

import errno

# errno -> what the user can do about it
_FIXABLE = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space or raise the quota",
    errno.EROFS: "choose a writable folder",
    errno.EACCES: "choose a folder you may write, or change its permissions",
    errno.EPERM: "choose a folder you may write, or change its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "the path is a folder where a file was expected; choose another path",
}
# pyarrow raises OSError without an errno; its message still names the cause
_BY_MESSAGE = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
               "Read-only file system": errno.EROFS, "Permission denied": errno.EACCES}


class CurateError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


def environment_problem(exc: OSError) -> str | None:
    """One line for an OSError the user can fix (disk full, read-only, permissions); None for others.

    Every output is written under a temporary name and renamed when complete, so what was
    finished before the failure is whole and a rerun of the same command resumes from it.
    """
    code = exc.errno if exc.errno in _FIXABLE else next(
        (value for text, value in _BY_MESSAGE.items() if text in str(exc)), None)
    if code is None:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return (f"{errno.errorcode.get(code, 'error')}: {exc.strerror or _first_line(str(exc))}{where}; "
            f"{_FIXABLE[code]}, then rerun the same command: finished outputs are kept and it resumes.")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "input/output error"
