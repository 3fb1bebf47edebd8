"""Deterministic demo data (CSV files of interfaces section 4) for aesh-bot."""

from .generator import HEADERS, KINDS, generate

__all__ = ["HEADERS", "KINDS", "generate"]
