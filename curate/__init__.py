"""curate: score and filter image-text pairs into clean training sets."""

__version__ = "0.1.0"
