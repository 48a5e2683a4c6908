"""GPU memory a model needs per precision: the recipe's figures, else an estimate.

Plain functions on plain data, so that ``llmsetup list`` can use them on the cached recipe
index without loading the schema.
"""

from __future__ import annotations

# Weights at 2, 1 and about 0.55 bytes per parameter (4-bit keeps some layers and the
# quantization constants larger), plus ~20% for activations and KV cache, plus the CUDA
# context of a few hundred MB that every process pays.
_BYTES_PER_PARAM = {"fp16": 2.0, "int8": 1.0, "int4": 0.55}
_OVERHEAD = 1.2
_CONTEXT_GB = 0.3


def estimate_memory_gb(params: float) -> dict[str, float | None]:
    """GPU memory per precision for a model of ``params`` parameters (an estimate)."""
    return {
        precision: round(params * nbytes * _OVERHEAD / 1e9 + _CONTEXT_GB, 1)
        for precision, nbytes in _BYTES_PER_PARAM.items()
    }


def memory_gb(memory: dict | None, params: float | None) -> dict[str, float | None]:
    """From a recipe's ``memory`` mapping (fp16_gb, int8_gb, int4_gb) or its ``params``."""
    if memory:
        return {"fp16": memory["fp16_gb"], "int8": memory["int8_gb"], "int4": memory["int4_gb"]}
    if not params:
        return {"fp16": None, "int8": None, "int4": None}
    return estimate_memory_gb(params)
