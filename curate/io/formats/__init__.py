"""Shard formats: one module each (reader, writer, detection rules); `registry` holds them all."""
