"""`selfinstruct instance` and `selfinstruct benchmark PROFILE --plan`: the runners as subcommands.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_cli_runners.py
"""

from selfinstruct_assets.cli import main


def test_instance_then_benchmark_plan_lists_every_stale_asset(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    assert main(["instance"]) == 0
    assert (home / "dagster" / "dagster.yaml").is_file()
    capsys.readouterr()
    assert main(["benchmark", "benchmarks/benchmark.yaml", "--plan"]) == 0
    planned = capsys.readouterr().out.split()
    assert "benchmark_scores" in planned and "sft_dataset" in planned  # nothing materialised yet: all stale
