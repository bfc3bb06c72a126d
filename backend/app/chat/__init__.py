"""Answering a question: rewrite follow-ups, retrieve, prompt, generate, remember."""
