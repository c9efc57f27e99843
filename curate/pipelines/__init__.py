"""Command-level jobs: each composes readers, models and writers for one command."""
