"""A model that cannot be loaded fails the step that needs it: it is never read as an unparsable reply.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_lm_failures.py

Generation, back-translation and the RAG program catch replies DSPy cannot parse and fall back to
the raw text. Before, they also caught every `ValueError`, so a `SELFINSTRUCT_BASE_MODEL` that is not
a model folder (transformers raises ValueError for it) gave empty questions and a green step with 0 rows.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from types import SimpleNamespace as NS  # noqa: E402

import dagster as dg  # noqa: E402
import dspy  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402

from resources.embedders import HashingEmbedder  # noqa: E402
from resources.llm import LLMResource, LMSpec  # noqa: E402
from resources.local_lm import LocalLM  # noqa: E402
from resources.model_folders import ModelLoadError  # noqa: E402
from resources.project import EmbedderResource  # noqa: E402
from selfinstruct.rag.optimize import compile_program  # noqa: E402
from selfinstruct.rag.program import ContractRAG  # noqa: E402
from selfinstruct.synthetic.backtranslate import backtranslate_candidates  # noqa: E402
from selfinstruct.synthetic.generate import generate_candidates  # noqa: E402

TEXT = "Preamble. " * 20 + "This Agreement shall be governed by the laws of Delaware. " + "Filler text. " * 20
CHUNKS = [{"chunk_id": "c1", "contract_id": "k", "text": TEXT}]
SEEDS = [
    {
        "seed_id": "s",
        "contract_id": "k0",
        "category": "Law",
        "question": "Which law governs the contract?",
        "answer": "This Agreement shall be governed by the laws of New York.",
        "context": "ctx",
    }
]
# What transformers raises for a folder without a tokenizer: a ValueError, like a parse failure's base class.
TOKENIZER_ERROR = "Couldn't instantiate the backend tokenizer from one of: ..."


class BrokenLM(dspy.BaseLM):
    """Raises `exc` on every call, as an LM whose weights cannot be loaded does."""

    def __init__(self, exc: BaseException):
        super().__init__(model="broken", model_type="chat", cache=False)
        self.exc = exc

    def forward(self, prompt=None, messages=None, **kwargs):
        raise self.exc


class EchoRawLM(dspy.BaseLM):
    """Replies in plain text, ignoring DSPy's markers: the failure the handlers exist for."""

    def __init__(self, text: str):
        super().__init__(model="raw", model_type="chat", cache=False)
        self.text = text

    def forward(self, prompt=None, messages=None, **kwargs):
        msg = NS(content=self.text, role="assistant", tool_calls=None)
        return NS(choices=[NS(message=msg, finish_reason="stop", index=0)], usage={}, model=self.model)


def _run(path: str):
    if path == "generate":
        return generate_candidates(CHUNKS, SEEDS, n_demos=1, threads=1)
    if path == "backtranslate":
        return backtranslate_candidates(CHUNKS, SEEDS, HashingEmbedder().embed, n_demos=1, threads=1)
    return ContractRAG(lambda q, c, k: [TEXT])(question="Which law governs?", contract_id="k")


PATHS = ["generate", "backtranslate", "rag"]


@pytest.fixture
def not_a_model(tmp_path):
    """A folder someone might point SELFINSTRUCT_BASE_MODEL at by mistake."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.txt").write_text("not a model")
    return folder


@pytest.fixture
def broken_model(tmp_path):
    """Passes the cheap check (config.json and a weights file) but cannot be loaded."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    return folder


@pytest.mark.parametrize("path", PATHS)
def test_a_load_error_from_the_lm_propagates(path):
    with dspy.context(lm=BrokenLM(ValueError(TOKENIZER_ERROR))), pytest.raises(ValueError, match="backend tokenizer"):
        _run(path)


@pytest.mark.parametrize("path", PATHS)
def test_unparsable_replies_still_fall_back_to_the_raw_text(path):
    with dspy.context(
        lm=EchoRawLM("Question: Which law governs?\nAnswer: Delaware"),
        adapter=dspy.ChatAdapter(use_json_adapter_fallback=False),
    ):
        out = _run(path)
    got = out.answer if path == "rag" else out[0]["question"]
    assert got == ("Question: Which law governs?\nAnswer: Delaware" if path == "rag" else "Which law governs?")


@pytest.mark.parametrize("path", PATHS)
def test_a_model_folder_that_fails_to_load_fails_the_call_with_the_fix(path, broken_model):
    lm = LocalLM(broken_model, max_tokens=4)
    with dspy.context(lm=lm), pytest.raises(ModelLoadError) as err:
        _run(path)
    assert str(broken_model) in str(err.value) and "SELFINSTRUCT_BASE_MODEL" in str(err.value)
    assert not isinstance(err.value, ValueError), "a load error must not look like a parse error"


def test_a_non_model_folder_is_refused_when_the_lm_is_built(not_a_model, tmp_path):
    for build in (
        lambda: LocalLM(not_a_model),
        lambda: LLMResource(home=str(tmp_path), teacher=LMSpec(model=str(not_a_model))).lm("teacher"),
        lambda: LLMResource(home=str(tmp_path)).local_lm(not_a_model),
    ):
        with pytest.raises(ModelLoadError, match="config.json") as err:
            build()
        assert str(not_a_model) in str(err.value) and "unset SELFINSTRUCT_BASE_MODEL" in str(err.value)


def test_a_missing_adapter_is_a_load_error_naming_it(broken_model, tmp_path):
    from selfinstruct.core.base_model import make_tiny_model

    tiny = make_tiny_model(tmp_path / "tiny")
    with pytest.raises(ModelLoadError, match="adapter") as err:
        LocalLM(tiny, adapter_path=tmp_path / "no-adapter")
    assert str(tmp_path / "no-adapter") in str(err.value)


def test_compiling_the_rag_program_fails_on_a_load_error():
    questions = [
        {"question": f"Which law governs {i}?", "contract_id": "k", "gold_answers": ["Delaware"]} for i in range(3)
    ]
    with (
        dspy.context(lm=BrokenLM(ModelLoadError("model folder /x could not be loaded"))),
        pytest.raises(ModelLoadError),
    ):
        compile_program(ContractRAG(lambda q, c, k: [TEXT]), questions, judge_lm=None)


def test_synthetic_qa_step_fails_instead_of_keeping_zero_rows(not_a_model, tmp_path):
    from selfinstruct_assets.definitions import default_resources
    from selfinstruct_assets.synthetic.assets import SEED_SCHEMA, SyntheticConfig, synthetic_qa

    llm = default_resources(database=str(tmp_path / "db.duckdb"), base_model=str(not_a_model))["llm"]
    contracts = pl.DataFrame({"contract_id": ["k"], "split": ["train"]})
    chunks = pl.DataFrame({"chunk_id": ["c1"], "contract_id": ["k"], "text": [TEXT]})
    seeds = pl.DataFrame([{**SEEDS[0], "context_start": 0}], schema=SEED_SCHEMA)
    ctx = dg.build_asset_context()
    with pytest.raises(ModelLoadError, match="SELFINSTRUCT_BASE_MODEL"):
        list(
            synthetic_qa(
                ctx,
                SyntheticConfig(n_chunks=1),
                cuad_contracts=contracts,
                cuad_annotations=pl.DataFrame(schema={"contract_id": pl.Utf8}),
                contract_chunks=chunks,
                seed_qa=seeds,
                llm=llm,
                embedder=EmbedderResource(backend="hashing"),
            )
        )


@pytest.mark.parametrize("backend", ["bedrock", "openai"])
def test_a_remote_backend_without_a_model_name_is_refused_when_built(backend, tmp_path):
    llm = LLMResource(home=str(tmp_path), judge=LMSpec(backend=backend, base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ValueError, match="needs a model name"):
        llm.lm("judge")


@pytest.mark.parametrize("exc", [ModelLoadError("model folder /x could not be loaded"), ValueError(TOKENIZER_ERROR)])
@pytest.mark.parametrize("kind", ["factuality", "retrieval"])
def test_a_judge_whose_lm_fails_raises_instead_of_a_missing_score(exc, kind):
    from selfinstruct.judging.judges import judge_factuality, judge_retrieval

    judge = judge_factuality if kind == "factuality" else judge_retrieval
    with pytest.raises(type(exc)):
        judge(BrokenLM(exc), "Which law governs?", "Delaware", TEXT)
