"""Producers for `bpe.py` (filled in with the BPE cases)."""

from __future__ import annotations

PRODUCERS: dict = {}
