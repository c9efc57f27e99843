"""Bytes in and out: shard formats, run tables, locations (paths and URLs), atomic writes."""
