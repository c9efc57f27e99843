"""Prompt text for the prompt-writing language models: cleaning, splitting, subjects."""
