"""Helpers the startup script calls: configuration for the shell, model, GPU and data checks."""
