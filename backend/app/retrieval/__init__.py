"""Finding the chunks that answer a question."""
