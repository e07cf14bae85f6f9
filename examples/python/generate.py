"""Load a model, print what it is and stream greedily generated text. On a Mixture-of-Experts
model, route with Ada-K (the identity allocator) under a FLOPs budget and print what routing
spent.

    python generate.py MODEL.gguf ["prompt"] [max_tokens] [flops_budget, default 0.75]

Finds libadak through ADAK_LIB, an installed prefix or a source checkout's build/lib.
"""

import sys

import adak


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = sys.argv[1]
    prompt = sys.argv[2] if len(sys.argv) > 2 else "Once upon a time"
    max_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    budget = float(sys.argv[4]) if len(sys.argv) > 4 else 0.75

    print(f"libadak {adak.version()} ({adak.library_path})")
    with adak.Model(path) as model:
        print("model:", " ".join(f"{k}={v}" for k, v in model.info.items()))
        with model.session(n_ctx=512, temperature=0.0) as session:
            moe = bool(model.moe_layers)
            if moe:
                with model.identity_allocator() as allocator:
                    session.set_allocator(allocator)  # the session keeps its own reference
                session.set_routing("adak")
                session.set_budget(budget)
                print(f"routing: adak (identity allocator), FLOPs budget {budget:.2f} of static Top-K")
            print(prompt, end="", flush=True)
            for piece in session.generate(prompt, max_tokens=max_tokens):
                print(piece, end="", flush=True)
            print(f"\n(position {session.position})")
            if moe:
                st = session.stats
                print(f"routing stats: {st.tokens} tokens, mean k {st.mean_k:.3f} (native {st.k_native}), "
                      f"expert FLOPs {st.expert_flops:.3g} = {st.expert_fraction:.3f} x Top-K, "
                      f"total FLOPs {st.total_flops:.3g} = {st.total_fraction:.3f} x Top-K")
                print("mean k per MoE layer:",
                      " ".join(f"L{l}={k:.2f}" for l, k in zip(st.moe_layers, st.mean_k_per_layer)))
                print("k histogram:", " ".join(f"k={i + 1}:{c}" for i, c in enumerate(st.k_histogram)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
