"""Load a model, print what it is and stream greedily generated text.

    python generate.py MODEL.gguf ["prompt"] [max_tokens]

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

    print(f"libadak {adak.version()} ({adak.library_path})")
    with adak.Model(path) as model:
        print("model:", " ".join(f"{k}={v}" for k, v in model.info.items()))
        with model.session(n_ctx=512, temperature=0.0) as session:
            print(prompt, end="", flush=True)
            for piece in session.generate(prompt, max_tokens=max_tokens):
                print(piece, end="", flush=True)
            print(f"\n(position {session.position})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
