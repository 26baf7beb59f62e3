"""noclip — a live visual instrument."""

__version__ = "0.1.0"
