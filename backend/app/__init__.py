"""Course-materials RAG appliance: ingestion, storage, retrieval, generation, API."""
