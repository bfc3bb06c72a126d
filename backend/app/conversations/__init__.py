"""Server-side chat history, so follow-ups are understood and survive restarts."""
