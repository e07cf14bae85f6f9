#!/usr/bin/env bash
# Issue 20, acceptance 4: runs today's trap tests (python/tests/test_session_features.py) against
# the binding, CLI and install of the commit before the traps were fixed, to show that each
# fails there. Not part of `make test`; the recorded result is docs/traps-before-fix.md.
#
# usage: scripts/traps-before-fix.sh [OLD_COMMIT [PYTHON]]
#   OLD_COMMIT  default d761dcf: the session branch just before 0ee8ba7 ("exceptions subclass the
#               built-ins, types checked, ... CLI adak chat and the traps"), with the C API of
#               0.5 but the old Python binding, CLI and install rules
#   PYTHON      an interpreter with numpy and pytest (default python3)
# Builds OLD_COMMIT in a temporary worktree (make lib cli; its own libadak: the old binding and
# CLI need their own library), installs it into that worktree's build/test-prefix, copies today's
# test file and conftest there and runs pytest with ADAK_LIB pointing at the old install. The
# header trap (sampling defaults) was fixed earlier, in 512d122; it is checked on 512d122^'s
# header.
set -euo pipefail

old=${1:-d761dcf}
python=${2:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
wt=$(mktemp -d /tmp/adak-traps-XXXXXX)
trap 'git -C "$repo" worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT

git -C "$repo" worktree add --detach "$wt" "$old" >/dev/null
make -C "$wt" lib cli >/dev/null
make -C "$wt" install PREFIX="$wt/build/test-prefix" >/dev/null
cp "$repo/python/tests/test_session_features.py" "$repo/python/tests/conftest.py" "$wt/python/tests/"

echo "=== today's trap tests against $old"
cd "$wt/python"
PYTHONPATH="$wt/python" ADAK_LIB="$wt/build/test-prefix/lib" ADAK_FIXTURES="$repo/Tests/Fixtures" \
    "$python" -m pytest -p no:cacheprovider -rA -q tests/test_session_features.py | grep -E "^(PASSED|FAILED|SKIPPED|ERROR)|passed|failed" || true

echo "=== test_header_states_the_sampling_defaults against 512d122^'s include/adak.h"
git -C "$repo" show 512d122^:include/adak.h | "$python" -c '
import re, sys
h = sys.stdin.read()
missing = [n for n, v in (("temperature", "0.8"), ("top_k", "40"), ("top_p", "0.95"), ("min_p", "0.05"))
           if not re.search(rf"\b{n}\s+{re.escape(v)}\b", h)]
print("FAILED (not stated: " + ", ".join(missing) + ")" if missing else "PASSED")'
