"""Contracts between steps: sample records, Arrow schemas and per-command configs."""
