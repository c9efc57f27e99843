"""FAISS vector store over a run's projected vectors: index kinds, tuning, loading, grouping.

`pipelines/index.py`, `search.py` and `dedup.py` compose these pieces; nothing here reads
embeddings files or knows about the command line.
"""
