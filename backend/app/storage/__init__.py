"""Where chunks and the file manifest live: Milvus Lite, a Milvus server or Zilliz Cloud."""
