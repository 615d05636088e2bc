"""Fine-tuning from feedback: Dagster-free logic beside thin asset modules."""
