"""Wire contract and device protocol codecs: pure, typed, no I/O policy."""

__version__ = "0.1.0"
