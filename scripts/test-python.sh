#!/usr/bin/env bash
# Installs the Python binding into a fresh venv (pip install ./python) and runs its pytest
# suite and the Python example against an installed libadak, found only through ADAK_LIB.
# usage: scripts/test-python.sh PREFIX VENV FIXTURES_DIR [DEMO_MODEL]
set -euo pipefail

prefix=$1
venv=$2
fixtures=$3
demo=${4:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

rm -rf "$venv"
"$python" -m venv "$venv"
# the structured extra (llguidance, jsonschema) for adak.structured and its tests, the server
# extra and the official openai client for tests/test_server.py
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$repo/python[structured,server]" pytest openai

export ADAK_LIB=$prefix/lib
export ADAK_FIXTURES=$fixtures

echo "--- python example"
out=$("$venv/bin/python" "$repo/examples/python/generate.py" "$fixtures/models/tiny-mixtral.f32.gguf" "Hello" 32 0.5)
echo "$out"
echo "$out" | grep -q "routing stats: "

echo "--- pytest"
cd "$repo/python"   # tests import the installed package, not the source folder
status=0
"$venv/bin/pytest" -p no:cacheprovider tests || status=$?
if [ "$status" -eq 5 ]; then
    echo "test-python: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
