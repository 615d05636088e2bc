"""Run Config is range-checked: an out-of-range knob fails at config validation, naming the field."""

import dagster as dg
import pydantic
import pytest

from resources.project import ProjectHome
from selfinstruct_assets.corpus.assets import ChunkConfig, CuadConfig, cuad_corpus
from selfinstruct_assets.drift.assets import DriftConfig
from selfinstruct_assets.intake.contract_assets import AddedContractConfig
from selfinstruct_assets.rag.assets import RagConfig, RagEvalConfig
from selfinstruct_assets.retrieval.assets import RetrievalEvalConfig
from selfinstruct_assets.synthetic.assets import SeedConfig, SyntheticConfig

BAD = [
    (CuadConfig, "max_contracts", -1),
    (CuadConfig, "eval_fraction", -0.1),
    (CuadConfig, "eval_fraction", 1.5),
    (CuadConfig, "eval_fraction", float("nan")),
    (ChunkConfig, "chunk_size", 0),
    (ChunkConfig, "chunk_overlap", -1),
    (ChunkConfig, "chunk_overlap", 1000),
    (SeedConfig, "size", 0),
    (SeedConfig, "context_chars", -1),
    (SyntheticConfig, "n_chunks", 0),
    (SyntheticConfig, "n_demos", -1),
    (SyntheticConfig, "dup_threshold", 1.2),
    (SyntheticConfig, "min_relevance", -0.5),
    (SyntheticConfig, "mode", "freeform"),
    (RagConfig, "k", 0),
    (RagConfig, "n_train_questions", 0),
    (RagConfig, "max_demos", -1),
    (RagConfig, "optimizer", "random"),
    (RagEvalConfig, "n_questions", 0),
    (RagEvalConfig, "k", 0),
    (RetrievalEvalConfig, "seed_chunk_size", 0),
    (RetrievalEvalConfig, "seed_chunk_overlap", 5000),
    (DriftConfig, "recent_queries", 0),
    (DriftConfig, "reference_chunks", 0),
    (DriftConfig, "quality_window", 0),
    (DriftConfig, "embedding_shift", -0.1),
    (DriftConfig, "embedding_shift", float("inf")),
    (DriftConfig, "category_tvd", 1.1),
    (DriftConfig, "quality_drop", 2.0),
    (DriftConfig, "min_samples", 0),
    (AddedContractConfig, "eval_fraction", 2.0),
]


@pytest.mark.parametrize("cls,name,value", BAD, ids=[f"{c.__name__}.{n}={v}" for c, n, v in BAD])
def test_out_of_range_value_is_refused_naming_the_field(cls, name, value):
    with pytest.raises(pydantic.ValidationError, match=name):
        cls(**{name: value})


@pytest.mark.parametrize("cls", sorted({c for c, _, _ in BAD}, key=lambda c: c.__name__))
def test_defaults_are_in_range_and_every_field_is_described(cls):
    cls()
    for name, f in cls.model_fields.items():
        assert f.description, f"{cls.__name__}.{name} has no description for the Launchpad"


def test_a_run_with_a_negative_max_contracts_fails_before_reading_cuad(small_cuad, home):
    result = dg.materialize(
        [cuad_corpus],
        resources={"home": ProjectHome()},
        run_config={"ops": {"cuad_corpus": {"config": {"uri": str(small_cuad), "max_contracts": -1}}}},
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "max_contracts" in message and "greater than or equal to 0" in message
