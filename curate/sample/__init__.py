"""Synthetic data for tests and demos: rendered scenes whose captions describe them."""
