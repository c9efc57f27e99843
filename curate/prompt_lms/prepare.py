"""`curate prompts prepare`: prompts from anywhere -> clean, tagged, split Parquet tables.

Rows stream from the reader through the cleaning rules into three atomic table writers;
only the dedup set (8-byte digests) grows with the corpus. The report is written last and
marks the folder complete: a rerun with it present does nothing unless `--overwrite`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from curate.console import log
from curate.errors import CurateError
from curate.io.atomic import atomic_path, remove_stale_tmp, write_json_atomic
from curate.io.run_lock import hold
from curate.prompt_lms.blocklist import Blocklist, load_blocklist
from curate.io.tables import ParquetTableWriter
from curate.prompt_lms.card import (
    BLOCKLIST_FILE,
    PREPARE_REPORT,
    PROMPT_TABLE_SCHEMA,
    PrepareReport,
    RemovalReason,
)
from curate.prompt_lms.clean import (
    add_tags,
    dedup_key,
    normalize,
    plain_version,
)
from curate.prompt_lms.config import PromptsPrepareConfig
from curate.prompt_lms.sources import PromptRow, read_prompts
from curate.prompt_lms.split import SPLITS, split_of
from curate.prompt_lms.subjects import subject_of

FLUSH_ROWS = 2048


@dataclass(frozen=True)
class CleanPrompt:
    """A kept prompt and its basic version."""

    text: str
    plain: str
    plain_source: str


class PromptCleaner:
    """Applies the rules in order and counts, per reason, every prompt it drops."""

    def __init__(self, *, blocklist: Blocklist, min_words: int, report: PrepareReport) -> None:
        self.blocklist, self.min_words, self.report = blocklist, min_words, report
        self.seen: set[bytes] = set()

    def clean(self, row: PromptRow) -> CleanPrompt | None:
        """The cleaned prompt, or None after counting why it was removed."""
        text = normalize(row.text)
        reason = self._reason(text, row)
        if reason is not None:
            self.report.count(self.report.removed, reason)
            return None
        plain = normalize(row.plain) if row.plain is not None else plain_version(text)
        return CleanPrompt(text=text, plain=plain, plain_source="given" if row.plain is not None else "derived")

    def _reason(self, text: str, row: PromptRow) -> str | None:
        if not text:
            return RemovalReason.EMPTY
        if len(text.split()) < self.min_words:
            return RemovalReason.TOO_SHORT
        if row.plain is not None and not normalize(row.plain):
            return RemovalReason.EMPTY_PLAIN
        term = self.blocklist.match(text) or (self.blocklist.match(row.plain) if row.plain else None)
        if term is not None:
            self.report.count(self.report.blocked_terms, term)
            return RemovalReason.BLOCKLISTED
        digest = hashlib.blake2b(dedup_key(text).encode("utf-8"), digest_size=8).digest()
        if digest in self.seen:
            return RemovalReason.DUPLICATE
        self.seen.add(digest)
        return None


def run_prepare(config: PromptsPrepareConfig) -> PrepareReport:
    """Write OUT/{train,validation,test}.parquet and OUT/prompts-report.json; returns the report."""
    config.validate()
    if (config.out / PREPARE_REPORT).is_file() and not config.overwrite:
        log.info("%s is already prepared; pass --overwrite to redo it", config.out)
        return PrepareReport.load(config.out)
    blocklist = load_blocklist(config.blocklist)
    report = _new_report(config)
    with hold(config.out, "prompts prepare") as since:  # one writer per output folder
        remove_stale_tmp(config.out, settled_before=since)
        cleaner = PromptCleaner(blocklist=blocklist, min_words=config.min_words, report=report)
        _write_splits(config, _kept(read_prompts(config.inputs, text_column=config.text_column,
                                                 plain_column=config.plain_column), cleaner, report), report)
        if sum(report.kept.values()) == 0:
            raise CurateError(f"No prompt survived cleaning ({report.read} read; removed: {report.removed}).")
        if config.blocklist is not None:  # a user's list travels with the data, and on into the models trained on it
            with atomic_path(config.out / BLOCKLIST_FILE) as tmp:
                tmp.write_bytes(Path(config.blocklist).read_bytes())
        write_json_atomic(config.out / PREPARE_REPORT, report.to_json())
    return report


def _new_report(config: PromptsPrepareConfig) -> PrepareReport:
    return PrepareReport(
        inputs=[str(p) for p in config.inputs],
        tags={"start": config.tags.start, "end": config.tags.end},
        fractions={"validation": config.validation_fraction, "test": config.test_fraction},
        blocklist=str(config.blocklist) if config.blocklist else "default",
    )


def _kept(rows: Iterator[PromptRow], cleaner: PromptCleaner, report: PrepareReport) -> Iterator[CleanPrompt]:
    for row in rows:
        report.read += 1
        prompt = cleaner.clean(row)
        if prompt is not None:
            yield prompt


def _write_splits(config: PromptsPrepareConfig, prompts: Iterator[CleanPrompt], report: PrepareReport) -> None:
    """Stream prompts into one atomic Parquet writer per split, a row group per FLUSH_ROWS."""
    writers = {name: ParquetTableWriter(config.out / f"{name}.parquet", PROMPT_TABLE_SCHEMA) for name in SPLITS}
    buffers: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
    try:
        for prompt in prompts:
            split = split_of(prompt.text, validation=config.validation_fraction, test=config.test_fraction)
            buffers[split].append(_row(prompt, config))
            report.kept[split] += 1
            report.count(report.plain_sources, prompt.plain_source)
            if len(buffers[split]) >= FLUSH_ROWS:
                _flush(writers[split], buffers[split])
        for name in SPLITS:
            _flush(writers[name], buffers[name])
            writers[name].close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def _row(prompt: CleanPrompt, config: PromptsPrepareConfig) -> dict[str, str]:
    return {
        "text": prompt.text,
        "tagged": add_tags(prompt.text, start=config.tags.start, end=config.tags.end),
        "plain": prompt.plain,
        "plain_source": prompt.plain_source,
        "subject": subject_of(prompt.plain) or subject_of(prompt.text),
    }


def _flush(writer: ParquetTableWriter, rows: list[dict[str, str]]) -> None:
    if rows:
        writer.write_rows({name: [r[name] for r in rows] for name in PROMPT_TABLE_SCHEMA.names})
        rows.clear()
