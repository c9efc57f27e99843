"""The prompt-writing language models: a concept model (GPT-2) and an upsampler (FLAN-T5)."""
