"""Local model and adapter folders: whether one is loadable (cheap checks, nothing loaded) and its content hash.

    root = check_model_dir(folder)        # ModelLoadError naming the folder and the fix
    key = adapter_hash(adapter_folder)    # sha256 of what peft loads; hashed once per process per file version

Dagster-free; the local LM backend (local_lm.py) keys its disk cache and shared weights on these.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class ModelLoadError(RuntimeError):
    """A local model or adapter folder cannot be loaded.

    Deliberately not a ValueError or OSError (what transformers raises for a bad folder): callers catch
    unparsable LM replies and fall back to the raw text, and a load failure must never be taken for one.
    """


# Any of these next to config.json is a loadable checkpoint for `from_pretrained`.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
MODEL_FIX = (
    "unset SELFINSTRUCT_BASE_MODEL (the packaged SmolLM2 is used) or point it (or the LM's `model` setting) "
    "at a Hugging Face model folder holding config.json, a tokenizer and weights (model.safetensors)"
)
ADAPTER_FIX = "point adapter_path at a peft adapter folder (adapter_config.json and adapter_model.safetensors)"


def check_model_dir(path: str | Path) -> Path:
    """`path` if it looks like a model folder (two stat calls, nothing loaded), else ModelLoadError with the fix."""
    root = Path(path)
    if not root.is_dir():
        problem = "does not exist" if not root.exists() else "is not a folder"
    elif not (root / "config.json").is_file():
        problem = "is not a model folder (no config.json)"
    elif not any((root / name).is_file() for name in WEIGHT_FILES):
        problem = f"has config.json but no weights (none of {', '.join(WEIGHT_FILES)})"
    else:
        return root
    raise ModelLoadError(f"{root} {problem}: {MODEL_FIX}")


def check_adapter_dir(path: str | Path) -> Path:
    root = Path(path)
    if not (root / "adapter_config.json").is_file() or not any(
        (root / name).is_file() for name in ADAPTER_FILES if name.startswith("adapter_model")
    ):
        raise ModelLoadError(
            f"adapter folder {root} holds no adapter_config.json and adapter_model weights: {ADAPTER_FIX}"
        )
    return root


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
_fingerprints: dict[tuple, str] = {}  # (folder, file stats) -> hash; weights are hashed once per process


def _hash_files(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _memo_hash(root: Path, files: list[Path]) -> str:
    stats = tuple((f.relative_to(root).as_posix(), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(files))
    key = (str(root.resolve()), stats)
    if key not in _fingerprints:
        _fingerprints[key] = _hash_files(root, files)
    return _fingerprints[key]


def adapter_hash(path: str | Path) -> str:
    """sha256 over a peft adapter's config and weights (the files peft loads), by name and content."""
    root = Path(path)
    files = [root / name for name in ADAPTER_FILES if (root / name).is_file()]
    if not any(f.name.startswith("adapter_model") for f in files):
        raise FileNotFoundError(f"{root} holds no adapter_model.safetensors or adapter_model.bin")
    return _memo_hash(root, files)


def model_hash(path: str | Path) -> str:
    """sha256 over every file of a model folder (weights, config, tokenizer, chat template)."""
    root = Path(path)
    files = [f for f in root.rglob("*") if f.is_file()]
    if not files:
        raise FileNotFoundError(f"{root} is not a model folder")
    return _memo_hash(root, files)
