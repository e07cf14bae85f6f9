# Sourced by the bench scripts: a venv with numpy, gguf and llama-cpp-python (built from source
# by pip on first use, which takes a while on 2 cores). Sets $PY.
bench_venv=${ADAK_BENCH_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv}
if [ ! -x "$bench_venv/bin/python" ]; then
    python3 -m venv "$bench_venv"
fi
PY="$bench_venv/bin/python"
if ! "$PY" -c "import numpy, gguf, llama_cpp" 2>/dev/null; then
    "$PY" -m pip install -q numpy gguf "llama-cpp-python==0.3.36"
fi
