"""Numeric precision as a scenario choice: bytes per weight and per KV element, and which
peak the matrix multiplies run at.

Weights and compute can differ: FP8 weights on an A100 (no FP8 tensor cores) are read at one
byte and multiplied at the BF16 peak (W8A16), INT4 weights (AWQ, GPTQ) likewise; FP4 on
Blackwell runs at the FP4 peak. A precision the hardware has no peak for falls back to the
fastest lower one it has (FP4 -> FP8 -> BF16), as engines do. MXFP4 (gpt-oss) stores 4-bit
values with one 8-bit scale per 32: 4.25 bits a weight.
"""

from __future__ import annotations

from sim.model.catalog import Accelerator

# precision -> (bytes per weight, the tensor-core precision its GEMMs run at)
WEIGHTS = {"bf16": (2.0, "bf16"), "fp16": (2.0, "bf16"), "fp8": (1.0, "fp8"),
           "fp4": (0.5, "fp4"), "mxfp4": (4.25 / 8, "fp4"), "int4": (0.5, "bf16")}
KV = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}


def bytes_per_weight(precision: str) -> float:
    return WEIGHTS[precision][0]


def kv_bytes_per_element(kv_precision: str) -> float:
    return KV[kv_precision]


def default_kv(precision: str) -> str:
    """The KV-cache precision engines pair with a weight precision: FP8 with FP8 and FP4
    weights (TensorRT-LLM's and vLLM's quantized recipes), else the activations' BF16."""
    return "fp8" if precision in ("fp8", "fp4", "mxfp4") else "bf16"


def gemm_precision(hw: Accelerator, precision: str) -> str:
    """The tensor-core precision the GEMMs of `precision` run at on `hw`: the weights' own,
    or the fastest lower one the hardware has."""
    want = WEIGHTS[precision][1]
    if want == "fp4" and hw.peak_tflops_fp4:
        return "fp4"
    if want in ("fp4", "fp8") and hw.peak_tflops_fp8:
        return "fp8"
    return "bf16"


def expert_gemm_precision(hw: Accelerator, precision: str) -> str:
    """The tensor-core precision routed-expert GEMMs of `precision` weights run at: MXFP4
    experts take MXFP8 activations where the hardware has FP4 (Blackwell: the FP8 rate) and
    BF16 activations elsewhere (Hopper's Triton kernels), as TensorRT-LLM's and vLLM's MoE
    backends run gpt-oss; any other precision as its dense GEMMs."""
    if precision == "mxfp4":
        return "fp8" if hw.peak_tflops_fp4 and hw.peak_tflops_fp8 else "bf16"
    return gemm_precision(hw, precision)


def compute_peak(hw: Accelerator, precision: str) -> float:
    """FLOP/s the GEMMs of `precision` run at on `hw`."""
    return peak_of(hw, gemm_precision(hw, precision))


def peak_of(hw: Accelerator, kind: str) -> float:
    """`hw`'s dense peak FLOP/s at tensor-core precision `kind`."""
    if kind == "fp4":
        return float(hw.peak_tflops_fp4 or 0.0) * 1e12
    if kind == "fp8":
        return float(hw.peak_tflops_fp8 or 0.0) * 1e12
    return hw.peak_flops
