"""Talking to the LLM server over its OpenAI-compatible HTTP API."""
