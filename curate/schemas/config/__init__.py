"""The config of every command: one frozen dataclass each, whose fields are its options."""
