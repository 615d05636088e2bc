"""Asset group names and the DuckDB writers' concurrency pool."""

CORPUS = "corpus"
RETRIEVAL = "retrieval"
SYNTHETIC = "synthetic"
RAG = "rag"
FINETUNE = "finetune"
LOOP = "loop"

# Every asset that writes the DuckDB file joins this pool; the instance limits it to one step at a time
# (dagster.yaml), because DuckDB allows a single writing process.
DUCKDB_POOL = "selfinstruct_duckdb"
