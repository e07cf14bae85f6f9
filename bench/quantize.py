"""Quantise a GGUF with llama.cpp's own quantiser, as `llama-quantize IN OUT TYPE` does (its default
type mix for the file type: *_K_M bumps some tensors, MXFP4_MOE quantizes only the experts)."""
import sys

import llama_cpp

FTYPES = {name.lower(): getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}") for name in (
    "Q8_0", "Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_NL", "IQ4_XS", "MXFP4_MOE")}


def main() -> None:
    src, dst, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llama_model_quantize failed with {rc}")


if __name__ == "__main__":
    main()
