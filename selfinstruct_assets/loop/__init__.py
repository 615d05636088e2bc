"""The continuous loop's wiring: sensors, the Dagster-free decisions behind them, their jobs and settings."""
