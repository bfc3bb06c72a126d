"""Turning text into vectors with sentence-transformers (offline-first)."""
