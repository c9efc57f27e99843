"""Synthetic data for tests and demos: rendered scenes whose captions describe them, prompt corpora, stored vectors."""
