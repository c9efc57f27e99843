"""The image-to-prompt captioner (ResNet image features -> prefix -> GPT-2): train, generate, eval."""
