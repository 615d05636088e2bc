"""`make benchmark`'s profile: its config validates against the assets' Config classes; only stale assets run."""

import copy

import dagster as dg
import pydantic
import pytest

from selfinstruct_assets.cli.profile import load_profile, ordered, run, stale_ops, validate


def _project_assets():
    from selfinstruct_assets.definitions import ASSETS
    from selfinstruct_assets.evaluation.assets import answer_judge
    from selfinstruct_assets.retrieval.model_assets import retriever_model

    known = {a.op.name for a in ASSETS if isinstance(a, dg.AssetsDefinition)}
    # W2's two trained assets, until definitions.py loads their modules.
    return [*ASSETS, *(a for a in (answer_judge, retriever_model) if a.op.name not in known)]


def test_the_benchmark_profile_validates_and_has_power():
    profile = load_profile("benchmarks/benchmark.yaml")
    validate(profile, _project_assets())
    assert profile["ops"]["benchmark_scores"]["config"]["n_questions"] >= 400


@pytest.mark.parametrize(
    "op, config, error",
    [
        ("benchmark_scores", {"n_questions": 0}, pydantic.ValidationError),
        ("benchmark_scores", {"judge": "gpt"}, pydantic.ValidationError),
        ("benchmark_scores", {"n_question": 400}, ValueError),
        ("benchmark_score", {"n_questions": 400}, ValueError),
    ],
)
def test_a_wrong_profile_fails_before_anything_runs(op, config, error):
    with pytest.raises(error):
        validate({"ops": {op: {"config": config}}}, _project_assets())


class Size(dg.Config):
    n: int = 1


CALLS = []


@dg.asset
def upstream(config: Size) -> int:
    CALLS.append("upstream")
    return config.n


@dg.asset
def downstream(upstream: int) -> int:
    CALLS.append("downstream")
    return upstream + 1


def test_only_missing_stale_or_reconfigured_assets_run():
    assets = [downstream, upstream]
    assert [a.op.name for a in ordered(assets)] == ["upstream", "downstream"]
    profile = {"ops": {"upstream": {"config": {"n": 2}}}}
    with dg.instance_for_test() as instance:
        assert stale_ops(instance, assets, profile) == ["upstream", "downstream"]  # nothing materialised yet
        CALLS.clear()
        assert run(profile, assets, {}, instance, log=lambda _: None)
        assert CALLS == ["upstream", "downstream"]
        assert stale_ops(instance, assets, profile) == []  # resumed: nothing to do
        CALLS.clear()
        assert run(profile, assets, {}, instance, log=lambda _: None) and CALLS == []
        bigger = copy.deepcopy(profile)
        bigger["ops"]["upstream"]["config"]["n"] = 3
        assert stale_ops(instance, assets, bigger) == ["upstream", "downstream"]  # another config: rerun
        dg.materialize([upstream], instance=instance, run_config=profile)
        assert stale_ops(instance, assets, profile) == ["downstream"]  # older than what it reads
