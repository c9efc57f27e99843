"""Checks the product tests share: a command's one-line error, and a file cut short."""

from __future__ import annotations

from pathlib import Path


def one_line_error(result, *needles: str) -> str:  # noqa: ANN001 - click's Result
    """The command exited 2 with exactly one `error:` line on stderr holding every needle; returns it."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def truncate(path: Path) -> None:
    """Keep the first half of a file, as an interrupted copy would."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
