"""The continuous loop: inboxes, drift, serving; Dagster-free logic beside thin asset modules."""
