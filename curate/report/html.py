"""The report page: one HTML file with inline CSS and every image embedded as a data URI.

Nothing is fetched when the page opens (no scripts, fonts or stylesheets from elsewhere), so
it can be mailed, archived or opened on an offline machine and look the same.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from html import escape
from typing import Any, Iterable

from curate.index.explain import Explanation
from curate.report.stats import ErrorRow, ScoreStats, StageRow
from curate.report.thumbnails import ExtremePairs, Pair
from curate.schemas.stats import ThresholdCount

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:0 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:16px 0}
.muted{color:#57606a} .warn{color:#9a6700;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:8px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:120px;background:#f6f8fa}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.n{text-align:right;font-variant-numeric:tabular-nums}
img.fig{max-width:100%;height:auto;display:block;margin:8px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
figure.pair{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:6px;background:#fafbfc}
figure.pair img{display:block;margin:0 auto;width:128px;height:128px;max-width:100%;object-fit:contain;background:#eee}
figure.pair .none{height:128px;display:flex;align-items:center;justify-content:center;background:#eee;font-size:11px;color:#57606a;text-align:center}
figcaption{font-size:12px;margin-top:4px;word-break:break-word} figcaption b{font-size:13px}
figcaption small{display:block;color:#57606a}
.looks{font-size:11px;margin:4px 0 0;padding-left:18px} .looks li{margin:1px 0}
nav a{margin-right:12px}
"""


@dataclass
class ReportData:
    """Everything the page shows, gathered by `curate.pipelines.report`."""

    run_dir: str
    created: str
    stats: ScoreStats
    extremes: ExtremePairs
    errors: list[ErrorRow]
    embeddings_rows: int
    error_rows: int
    figures: dict[str, bytes]  # name -> PNG bytes: histogram, shards, sweep, map
    encoders: list[dict[str, Any]]
    projections: list[dict[str, str]]
    card: dict[str, Any] | None
    map_note: str = ""
    notes: list[str] = field(default_factory=list)
    stages: list[StageRow] = field(default_factory=list)  # where the time went, from the shards' stats files
    chance: tuple[ThresholdCount, ...] = ()  # thresholds with their expected share of chance matches
    null_note: str = ""  # why there is no null, when there is none
    explanations: dict[str, Explanation] = field(default_factory=dict)  # lowest pairs: what their image looks like
    explain_note: str = ""


SECTIONS = (
    ("summary", "Summary"), ("histogram", "Similarity"), ("sweep", "Thresholds"), ("chance", "Chance matches"),
    ("lowest", "Lowest aligned"), ("highest", "Highest aligned"), ("map", "Embedding map"), ("errors", "Errors"),
    ("models", "Encoders & projection"), ("time", "Time"),
)


def render_html(data: ReportData) -> str:
    """The whole page as one string."""
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title in SECTIONS)
    body = "\n".join([
        _summary(data), _histogram(data), _sweep(data), _chance(data),
        _pairs("lowest", "Lowest-aligned pairs", data.extremes.lowest, data.explanations, note=data.explain_note),
        _pairs("highest", "Highest-aligned pairs", data.extremes.highest), _map(data), _errors(data), _models(data),
        _time(data),
    ])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>curate report: {escape(data.run_dir)}</title><style>{CSS}</style></head>\n"
        f'<body><main><h1>curate report</h1><div class="muted">{escape(data.run_dir)} · {escape(data.created)}</div>'
        f"<nav>{nav}</nav>\n{body}\n</main></body></html>\n"
    )


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _section(sid: str, title: str, inner: str) -> str:
    return f'<section id="{sid}"><h2>{escape(title)}</h2>\n{inner}\n</section>'


def _figure(data: ReportData, name: str, alt: str) -> str:
    png = data.figures.get(name)
    if png is None:
        return ""
    return f'<img class="fig" alt="{escape(alt)}" src="{data_uri(png, "image/png")}">'


def _summary(data: ReportData) -> str:
    s = data.stats
    cards = [
        ("pairs scored", f"{s.pairs:,}"), ("shards", f"{len(s.shards):,}"), ("embedded", f"{data.embeddings_rows:,}"),
        ("errors", f"{data.error_rows:,}"), ("mean similarity", f"{s.mean:.3f}"), ("std", f"{s.std:.3f}"),
        ("min", f"{s.low:.3f}"), ("max", f"{s.high:.3f}"),
    ]
    html = '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in cards) + "</div>"
    html += "".join(f'<p class="warn">{escape(note)}</p>' for note in data.notes)
    quantiles = [(f"p{round(q * 100)}", f"{v:.4f}") for q, v in s.quantiles.items()]
    html += _table(["quantile", *[q for q, _ in quantiles]], [["similarity", *[v for _, v in quantiles]]])
    return _section("summary", "Summary", html)


def _histogram(data: ReportData) -> str:
    html = _figure(data, "histogram", "histogram of similarity over all pairs")
    if "shards" in data.figures:
        drawn = len(data.stats.shard_histograms)
        total = len(data.stats.shards)
        which = "every shard" if drawn == total else f"the {drawn} of {total} shards with the lowest mean similarity"
        html += f'<p class="muted">Per shard, {which} (same bins):</p>' + _figure(data, "shards", "per-shard histograms")
    rows = [
        [escape(r.shard), _n(r.pairs), f"{r.mean:.4f}", f"{r.p10:.4f}", f"{r.p50:.4f}", f"{r.p90:.4f}", _n(r.errors)]
        for r in sorted(data.stats.shards, key=lambda r: r.mean)[:50]
    ]
    html += _table(["shard (lowest mean first)", "pairs", "mean", "p10", "p50", "p90", "errors"], rows, numeric=range(1, 7))
    return _section("histogram", "Similarity distribution", html)


def _sweep(data: ReportData) -> str:
    rows = [[escape(t.label), f"{t.value:.4f}", _n(t.kept), f"{t.fraction:.1%}"] for t in data.stats.thresholds]
    html = _figure(data, "sweep", "fraction of pairs kept against --min-sim")
    html += '<p class="muted">Kept means similarity &ge; threshold, as <code>curate filter --min-sim</code> keeps.</p>'
    html += _table(["threshold", "--min-sim", "pairs kept", "fraction kept"], rows, numeric=range(1, 4))
    return _section("sweep", "Threshold sweep", html)


def _chance(data: ReportData) -> str:
    if not data.chance:
        return _section("chance", "Chance matches", f'<p class="muted">{escape(data.null_note or "No null.")}</p>')
    rows = [[f"<code>{escape(t.option)} {t.value:g}</code>", _n(t.kept), f"{t.fraction:.1%}", _share(t.chance_share)]
            for t in data.chance]
    html = _figure(data, "null", "the run's similarity beside the similarity of mismatched pairs of the same run")
    html += ('<p class="muted">The null: mismatched pairs of this run (an image with another pair\'s caption), '
             "scored like its pairs. Expected chance share: of the pairs a threshold keeps, the share that "
             "would be there by chance had their captions been unrelated to their images (pi0 &times; pairs "
             "&times; the share of the null let through, over the pairs kept).</p>")
    html += _table(["threshold", "pairs kept", "fraction kept", "expected chance share"], rows, numeric=range(1, 4))
    return _section("chance", "Chance matches", html)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _pairs(sid: str, title: str, pairs: list[Pair], explained: dict[str, Explanation] | None = None, *,
           note: str = "") -> str:
    if not pairs:
        return _section(sid, title, '<p class="muted">No pairs to show (--thumbnails 0).</p>')
    figures = "".join(pair_figure(p, (explained or {}).get(p.key)) for p in pairs)
    intro = f'<p class="muted">{escape(note)}</p>' if note else ""
    return _section(sid, title, intro + '<div class="grid">' + figures + "</div>")


def pair_figure(pair: Pair, explanation: Explanation | None = None) -> str:
    """One pair: its thumbnail, score, caption and key, and, when explained, the run's captions
    its image lies nearest to. Captions and keys come from the data: always escaped."""
    if pair.thumbnail is not None:
        picture = f'<img alt="{escape(pair.key)}" src="{data_uri(pair.thumbnail, "image/jpeg")}">'
    else:
        picture = f'<div class="none">{escape(pair.note or "no image")}</div>'
    caption = f"<b>{pair.similarity:.4f}</b> {escape(pair.text)}<small>{escape(pair.key)}</small>"
    if explanation is not None and explanation.nearest:
        items = "".join(f'<li>{escape(n.text or "")} <span class="muted">{n.similarity:.3f}</span></li>'
                        for n in explanation.nearest)
        caption += f'<small>this image looks more like:</small><ol class="looks">{items}</ol>'
    return f'<figure class="pair">{picture}<figcaption>{caption}</figcaption></figure>'


def _map(data: ReportData) -> str:
    html = _figure(data, "map", "2-D map of sampled image embeddings coloured by similarity")
    html += f'<p class="muted">{escape(data.map_note)}</p>' if data.map_note else ""
    return _section("map", "Embedding map", html or '<p class="muted">No map.</p>')


def _errors(data: ReportData) -> str:
    if not data.errors:
        return _section("errors", "Errors", '<p class="muted">No errors: every input sample was embedded.</p>')
    rows = [[escape(e.stage), escape(e.error), _n(e.count), escape(e.example_key), escape(e.example_message)]
            for e in data.errors]
    table = _table(["stage", "kind", "count", "example key", "example message"], rows, numeric=[2])
    hint = '<p class="muted">All of them: <code>curate sql RUN_DIR "SELECT * FROM errors"</code></p>'
    return _section("errors", "Errors by stage and kind", table + hint)


def _time(data: ReportData) -> str:
    """Seconds per step and stage over the finished shards (`RUN_DIR/stats/`)."""
    if not data.stages:
        return _section("time", "Where time went", '<p class="muted">No stats files: this run was made before '
                        "curate recorded per-shard times.</p>")
    rows = [[escape(r.step), escape(r.stage), f"{r.seconds:,.1f}", f"{r.share:.0%}"] for r in data.stages]
    table = _table(["step", "stage", "seconds", "share of step"], rows, numeric=[2, 3])
    hint = '<p class="muted">Per shard: <code>curate sql RUN_DIR "SELECT * FROM stages"</code></p>'
    return _section("time", "Where time went", table + hint)


def _models(data: ReportData) -> str:
    rows = [[escape(e["kind"]), escape(e["model"]), _n(e["dim"]), escape(json.dumps(e["settings"], sort_keys=True))]
            for e in data.encoders]
    html = "<h3>Encoders</h3>" + _table(["side", "model", "dim", "settings"], rows, numeric=[2])
    rows = [[escape(p["projection"]), escape(p["projection_dir"]), _n(int(p["shards"]))] for p in data.projections]
    html += "<h3>Projection</h3>" + _table(["fingerprint", "directory", "score files"], rows, numeric=[2])
    if data.card is not None:
        card_rows = [[escape(k), escape(_value(v))] for k, v in _flatten(data.card)]
        html += "<h3>Projection card</h3>" + _table(["field", "value"], card_rows)
    else:
        html += '<p class="muted">No card.json found in the projection directory.</p>'
    return _section("models", "Encoders and projection", html)


def _table(header: list[str], rows: Iterable[list[str]], *, numeric: Iterable[int] = ()) -> str:
    """An HTML table; cells are already escaped, `numeric` columns are right-aligned."""
    right = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if i in right else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flatten(value: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested card fields as dotted names (`metrics.roc_auc`), in the card's order."""
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        out += _flatten(item, name + ".") if isinstance(item, dict) and item else [(name, item)]
    return out


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _n(value: int) -> str:
    return f"{value:,}"
