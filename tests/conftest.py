"""Shared fixtures: small CUAD-layout archives cut from the local CUAD copy, and isolated project homes."""

import csv
import io
import os
import sys
import zipfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import pytest  # noqa: E402

from selfinstruct.corpus.source import default_cuad_uri  # noqa: E402

csv.field_size_limit(sys.maxsize)
ROOT = "CUAD_v1"


@pytest.fixture(scope="session")
def cuad_zip() -> Path:
    path = Path(default_cuad_uri())
    if not path.exists():
        pytest.fail(f"the local CUAD copy is missing ({path}); tests read ../shared/cuad/CUAD_v1.zip")
    return path


def read_members(cuad_zip: Path) -> dict:
    """CSV header, CSV rows, README text and {txt name: bytes} of the full local copy."""
    with zipfile.ZipFile(cuad_zip) as zf:
        raw = zf.read(f"{ROOT}/master_clauses.csv").decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(raw)))
        texts = {
            n: zf.read(n) for n in zf.namelist() if n.startswith(f"{ROOT}/full_contract_txt/") and n.endswith(".txt")
        }
        readme = zf.read(f"{ROOT}/CUAD_v1_README.txt")
    return {"header": rows[0], "rows": rows[1:], "texts": texts, "readme": readme}


@pytest.fixture(scope="session")
def cuad_members(cuad_zip) -> dict:
    return read_members(cuad_zip)


def txt_name_for(pdf_name: str, texts: dict) -> str:
    from selfinstruct.corpus.cuad import fold_name

    key = fold_name(pdf_name)
    return next(n for n in texts if fold_name(n) == key)


def write_archive(
    path: Path,
    header: list,
    rows: list,
    texts: dict,
    readme: bytes | None = None,
    csv_name: str = f"{ROOT}/master_clauses.csv",
) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if csv_name:
            zf.writestr(csv_name, buf.getvalue())
        for name, data in texts.items():
            zf.writestr(name, data)
        if readme is not None:
            zf.writestr(f"{ROOT}/CUAD_v1_README.txt", readme)
    return path


def subset_archive(members: dict, path: Path, n: int, start: int = 0) -> Path:
    """A valid CUAD-layout zip of `n` contracts (rows start..start+n) with their txt files."""
    rows = members["rows"][start : start + n]
    texts = {txt_name_for(r[0], members["texts"]): members["texts"][txt_name_for(r[0], members["texts"])] for r in rows}
    return write_archive(path, members["header"], rows, texts, members["readme"])


@pytest.fixture(scope="session")
def small_cuad(cuad_members, tmp_path_factory) -> Path:
    """12 contracts, enough for both splits to be non-empty."""
    return subset_archive(cuad_members, tmp_path_factory.mktemp("cuad") / "CUAD_small.zip", 12)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(h))
    monkeypatch.setenv("DAGSTER_HOME", str(h / "dagster"))
    (h / "dagster").mkdir(parents=True)
    return h


TRAIN = {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_length": 512}  # quote prompts + clause targets


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """A random 2-layer Llama with a locally trained tokenizer (selfinstruct.core.base_model.make_tiny_model)."""
    from selfinstruct.core.base_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def small_pipeline_config(small_cuad: Path, **overrides) -> dict:
    """Run config that takes every asset through on a few contracts, questions and training steps."""
    ops = {
        "cuad_corpus": {"config": {"uri": str(small_cuad)}},
        "synthetic_qa": {"config": {"n_chunks": 4}},
        "optimized_rag_program": {"config": {"n_train_questions": 3}},
        "rag_eval": {"config": {"n_questions": 4}},
        "sft_dataset": {"config": {"max_context_chars": 300}},
        "rag_responses": {"config": {"n_questions": 4, "n_samples": 1, "max_context_chars": 300}},
        "benchmark_scores": {"config": {"n_questions": 6, "n_windows": 4, "n_boot": 200}},
        "sft_adapter": {"config": TRAIN},
        "dpo_adapter": {"config": TRAIN},
        "orpo_adapter": {"config": TRAIN},
        "grpo_adapter": {"config": {"enabled": False}},
        # A fine-tuned retriever re-embeds each contract asked about (minutes here): off in the quick tests.
        "retriever_model": {"config": {"enabled": False}},
        "answer_judge": {"config": {"max_steps": 1, "max_examples": 32, "max_heldout": 20}},
        "rerank_judge": {"config": {"max_steps": 1, "max_examples": 32, "max_heldout": 20}},
    }
    ops.update(overrides)
    return {"ops": ops}
