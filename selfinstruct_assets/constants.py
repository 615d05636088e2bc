"""Asset group names."""

CORPUS = "corpus"
RETRIEVAL = "retrieval"
