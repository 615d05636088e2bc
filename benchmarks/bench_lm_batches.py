"""Peak memory and seconds of LocalLM's batched generation by prompt length and batch token budget (run-budget issue).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_lm_batches.py --model .selfinstruct/models/smollm2-135m-instruct

Each case runs in a fresh child process: 8 conversations whose prompts are about `--lengths` tokens of CUAD contract
text (as a RAG prompt with few-shot demonstrations is), answered by one `LocalLM.complete` call (no cache), with
`max_batch_tokens` unlimited or at the given budgets. Reported: the child's peak RSS (VmHWM) minus its RSS after
loading the model, the batches it ran, and seconds.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, sys, time, zipfile
sys.path.insert(0, {root!r})
from resources.local_lm import LocalLM
from selfinstruct.core.memory import status_kib
model, length, budget, rows = {model!r}, {length}, {budget}, {rows}
lm = LocalLM(model, max_tokens=96, precision="auto", max_batch_tokens=budget)
tok, _, _ = lm.load()
words = open({text!r}).read().split()
convs = []
for i in range(rows):
    piece, n = words[i * 3000:], length
    text = " ".join(piece[: int(n * 0.75)])
    convs.append([{{"role": "user", "content": text + f"\n\nQuestion {{i}}: which law governs this contract?"}}])
lengths = [len(tok(lm._prompts([c])[0], add_special_tokens=False)["input_ids"]) for c in convs]
batches = [len(b) for b in lm._batches(convs, 96)]
loaded = status_kib("VmRSS")
t0 = time.perf_counter()
lm.complete(convs)
print(json.dumps({{"prompt_tokens": sum(lengths) // rows, "batches": batches, "seconds": round(time.perf_counter() - t0, 1),
                  "rise_gib": round((status_kib("VmHWM") - loaded) / 2**20, 3), "loaded_gib": round(loaded / 2**20, 3)}}))
"""


def corpus_text(out: Path) -> Path:
    """Plain text of the first CUAD contracts (the zip's full_contract_txt), written once to `out`."""
    import zipfile

    from selfinstruct.corpus.source import default_cuad_uri

    if not out.exists():
        with zipfile.ZipFile(default_cuad_uri()) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".txt") and "full_contract_txt" in n)[:40]
            out.write_text("\n".join(z.read(n).decode("utf-8", "replace") for n in names))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a prepared SmolLM2 folder (SELFINSTRUCT_HOME/models/...)")
    ap.add_argument("--lengths", default="900,2500", help="prompt tokens per conversation")
    ap.add_argument("--budgets", default="none,8192,4096", help="max_batch_tokens values ('none': unlimited)")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    text = corpus_text(Path("/tmp/bench_lm_batches_corpus.txt"))
    results = []
    for length in (int(x) for x in args.lengths.split(",")):
        for b in args.budgets.split(","):
            budget = None if b == "none" else int(b)
            code = CHILD.format(
                root=str(ROOT), model=args.model, length=length, budget=budget, rows=args.rows, text=str(text)
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            row = {"length": length, "max_batch_tokens": budget, **json.loads(out.stdout.strip().splitlines()[-1])}
            print(json.dumps(row), flush=True)
            results.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
