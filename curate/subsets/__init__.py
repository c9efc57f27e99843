"""Cutting subsets out of a scored run: which pairs to keep (DuckDB) and how to write them."""
