"""Object-store URLs (`s3://`, `gs://`, `hf://` ...): recognised, and for now refused clearly.

Readers and writers open local paths only. A URL typed where a path is expected would
otherwise become a relative folder named `s3:` (pathlib folds `//` into `/`), so it is
refused up front with what to do instead: mount the bucket (s3fs, gcsfuse, JuiceFS) and
pass the mount's path, which works with every executor today.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from curate.errors import CurateError

# a scheme of two or more letters, then ':/' (pathlib has already folded '://' into ':/')
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/")


def is_url(value: str | Path) -> bool:
    """Whether `value` names a URL rather than a local path (Windows drive letters are paths)."""
    return bool(URL_PATTERN.match(str(value)))


def refuse_urls(values: Iterable[str | Path], *, what: str) -> None:
    """Refuse URLs until fsspec inputs and outputs land (see docs/scale-out.md)."""
    for value in values:
        if is_url(value):
            shown = re.sub(r":/(?!/)", "://", str(value), count=1)  # undo pathlib's folding
            raise CurateError(
                f"{what} {shown} is a URL; object-store URLs are not supported yet. Mount the bucket "
                "(s3fs, gcsfuse, JuiceFS) and pass the mounted path instead (docs/scale-out.md)."
            )
