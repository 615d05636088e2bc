"""The quick profile `selfinstruct demo` runs: it validates against every asset's Config, and a typo fails early.

.venv/bin/python -m pytest -q tests/test_demo_profile.py
"""

from pathlib import Path

import pytest

from selfinstruct_assets.cli.demo import DEMO_PROFILE, demo_run_config

BENCHMARK_PROFILE = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark.yaml"


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


def test_the_demo_samples_contracts_and_says_so_while_the_benchmark_profile_uses_all():
    from selfinstruct_assets.cli.demo import subset_line
    from selfinstruct_assets.cli.profile import load_profile

    demo = demo_run_config()
    limit = demo["ops"]["cuad_corpus"]["config"]["max_contracts"]
    assert 0 < limit < 449  # the project reads 449 CUAD contracts: the quick profile embeds a sample
    line = subset_line(demo, limit, 510)
    assert f"{limit} of 510" in line and "make benchmark" in line
    bench = load_profile(BENCHMARK_PROFILE).get("ops") or {}
    assert not bench.get("cuad_corpus", {}).get("config", {}).get("max_contracts")
    assert subset_line({"ops": bench}, 510, 510) == "Corpus: all 510 CUAD contracts."
