"""Wire-protocol parsers: pure, incremental, bytes in and frames out (see base.py)."""

from .base import Frame, Measurement, Parser, value_ok

__all__ = ["Frame", "Measurement", "Parser", "value_ok"]
