"""From a folder of course materials to chunks with page provenance in the vector store."""
