"""Asset group names."""

CORPUS = "corpus"
RETRIEVAL = "retrieval"
SYNTHETIC = "synthetic"
RAG = "rag"
FINETUNE = "finetune"
