#!/usr/bin/env python3
"""Generate Tests/AdaKTests/Resources/dequant_ref.bin: random but valid GGUF blocks of every
quantised type libadak dequantises, with gguf-py's dequantisation of them (an independent
implementation) as the reference.

Usage: python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install gguf numpy
       /tmp/kvenv/bin/python scripts/gen_dequant_ref.py

File format (little-endian), repeated per type until EOF:
  uint32 ggml_type, uint32 n_elements, uint32 n_bytes, n_bytes raw block bytes,
  n_elements float32 values (gguf-py's dequantize).
"""
import pathlib
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize
from gguf.constants import GGML_QUANT_SIZES

# fp16 scale fields (byte offsets within a block) that must hold sane values, and whether the
# field is a min/offset (signed) or a scale (positive or negative).
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = {T.Q4_0: 8, T.Q4_1: 8, T.Q5_0: 8, T.Q5_1: 8, T.Q8_0: 8,
          T.Q2_K: 2, T.Q3_K: 2, T.Q4_K: 2, T.Q5_K: 2, T.Q6_K: 2}


def main() -> None:
    rng = np.random.default_rng(20240531)
    out = bytearray()
    for qtype, offsets in SCALE_FIELDS.items():
        block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
        nb = BLOCKS[qtype]
        raw = rng.integers(0, 256, size=(nb, block_bytes), dtype=np.uint8)
        for off in offsets:
            mag = rng.uniform(1e-3, 0.1, size=nb) * rng.choice([-1.0, 1.0], size=nb)
            raw[:, off:off + 2] = mag.astype(np.float16).view(np.uint8).reshape(nb, 2)
        ref = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        assert ref.size == nb * block_elems and np.all(np.isfinite(ref))
        out += struct.pack("<III", int(qtype), ref.size, raw.size)
        out += raw.tobytes()
        out += ref.astype("<f4").tobytes()
    path = pathlib.Path(__file__).resolve().parent.parent / "Tests/AdaKTests/Resources/dequant_ref.bin"
    path.write_bytes(bytes(out))
    print(f"wrote {path} ({len(out)} bytes)")


if __name__ == "__main__":
    main()
