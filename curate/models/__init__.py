"""Encoders and their plumbing: loading, devices, preprocessing, batching."""
