"""What the CPU can do fast: bfloat16 arithmetic is native only with AVX512-BF16 or AMX, emulated (slow) elsewhere."""

PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str | None = None) -> str:
    """'auto' is bfloat16 on a CPU with native bf16 and float32 anywhere else; ValueError for unknown names."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if device in (None, "cpu") and cpu_has_bf16() else "float32"
