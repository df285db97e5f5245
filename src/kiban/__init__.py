"""Kiban (基盤): one standards-conformant platform for Japan's municipal administration systems."""

__version__ = "0.1.0"
