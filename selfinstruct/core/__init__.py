"""The Dagster-free bottom of the project: what `training/`, `resources/` and the assets all need.

    from selfinstruct.core.artifacts import publish_dir, adapter_dir
    from selfinstruct.core.metrics import cuad_match

Nothing here imports Dagster, `resources`, `selfinstruct_assets` or `training`; every other layer may import it.
"""
