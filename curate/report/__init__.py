"""The pieces of `curate report`: figures computed in DuckDB, thumbnails, the map, the HTML.

Each module does one thing: `stats` asks DuckDB for aggregates (no row ever reaches Python
unless it is shown), `thumbnails` re-reads only the source shards that hold the pairs shown,
`embedding_map` samples and reduces vectors, `figures` draws PNGs, `html` writes the page.
`curate.pipelines.report` composes them.
"""
