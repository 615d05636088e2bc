"""The quick profile `selfinstruct demo` runs: it validates against every asset's Config, and a typo fails early.

.venv/bin/python -m pytest -q tests/test_demo_profile.py
"""

import pytest

from selfinstruct_assets.cli.demo import DEMO_PROFILE, demo_run_config


def test_the_demo_profile_configures_assets_of_main_job():
    from selfinstruct_assets.definitions import defs

    ops = demo_run_config()["ops"]
    job_ops = {node.name for node in defs().resolve_job_def("main_job").graph.node_defs}
    assert ops and set(ops) <= job_ops
    assert ops["benchmark_scores"]["config"]["n_questions"] >= 41  # one question per CUAD category at least


def test_a_misspelt_field_in_a_profile_fails_before_the_run(tmp_path):
    bad = tmp_path / "demo.yaml"
    bad.write_text(DEMO_PROFILE.read_text().replace("max_pairs:", "max_pair:"))
    with pytest.raises(ValueError, match="no field max_pair"):
        demo_run_config(bad)
