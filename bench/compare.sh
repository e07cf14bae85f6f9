#!/usr/bin/env bash
# Runs bench/compare_llamacpp.py in the bench venv after a release build of the CLI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv.sh"
(cd "$here/.." && swift build -c release --product adak-cli >/dev/null)
exec "$PY" "$here/compare_llamacpp.py" "$@"
