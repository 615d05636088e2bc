"""Whether recent queries, new contracts or quality drift away from what the adapters were trained on."""
