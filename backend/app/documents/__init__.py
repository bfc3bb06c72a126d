"""Listing, uploading and deleting course documents from the running backend."""
