"""Asset group names and the DuckDB writers' concurrency pool."""

CORPUS = "corpus"
RETRIEVAL = "retrieval"
SYNTHETIC = "synthetic"
RAG = "rag"
FINETUNE = "finetune"
INTAKE = "intake"  # feedback, production queries and added contracts from the inboxes
DRIFT = "drift"
EVALUATION = "evaluation"  # models that grade answers (the trained judge)
BENCHMARK = "benchmark"  # every method on the same held-out questions (benchmark_scores, benchmark_answers)
SERVING = "serving"  # the quality gate and the adapter users are served

# Every asset that writes the DuckDB file joins this pool; the instance limits it to one step at a time
# (dagster.yaml), because DuckDB allows a single writing process.
DUCKDB_POOL = "selfinstruct_duckdb"
