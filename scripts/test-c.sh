#!/usr/bin/env bash
# Builds the C and C++ examples and the C tests against an installed libadak using only
# `pkg-config --cflags --libs adak`, and runs them with an empty environment (env -i), also with
# the Swift toolchain's library folder hidden when the system allows a private mount namespace.
# usage: scripts/test-c.sh PREFIX FIXTURES_DIR [DEMO_MODEL]
set -euo pipefail

prefix=$1
fixtures=$2
demo=${3:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/build/c
mkdir -p "$out"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs adak)

cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/examples/c/generate.c" -o "$out/generate" $flags
cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/Tests/C/misuse.c" -o "$out/misuse" $flags -lm
cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/Tests/C/carve_train.c" -o "$out/carve_train" $flags -lm
cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/Tests/C/typed_settings.c" -o "$out/typed_settings" $flags -lm
cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/Tests/C/session_features.c" -o "$out/session_features" $flags -lm
cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/Tests/C/regex_constraint.c" -o "$out/regex_constraint" $flags
c++ -std=c++17 -Wall -Wextra -Werror -O2 "$repo/examples/cpp/chat.cpp" -o "$out/chat" $flags
# Reliability tests (issue 8): second misuse suite, shared model across threads, fuzz-corpus
# replay, soak.
for t in misuse_more threads fuzz_replay soak; do
    cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE "$repo/Tests/C/$t.c" -o "$out/$t" $flags -lpthread
done

tiny=$fixtures/models/tiny-mixtral.f32.gguf
if [ ! -f "$tiny" ]; then
    echo "test-c: fixture model $tiny is missing" >&2
    exit 1
fi

passed=0
failed=0
run() {
    local name=$1
    shift
    echo "--- $name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "test-c: FAILED: $name" >&2; fi
}

other=$fixtures/models/tiny-olmoe.f32.gguf
run "misuse (env -i)" env -i "$out/misuse" "$tiny" "$other"
run "typed routing and sampling settings (env -i)" env -i "$out/typed_settings" "$tiny"
demo_arg=()
if [ -n "$demo" ] && [ -f "$demo" ]; then demo_arg=("$demo"); fi
run "chat template, stop reasons, state, truncate, copy (env -i)" env -i "$out/session_features" "$tiny" "${demo_arg[@]}"
run "regex constraint (env -i)" env -i "$out/regex_constraint" "$tiny" "${demo_arg[@]}"
calib=$fixtures/text/train.txt
run "carve/train API, training on tiny-mixtral (env -i)" env -i "$out/carve_train" "$tiny" "$calib"
run "generate tiny-mixtral, budget 0.5 (env -i)" sh -c \
    'out=$(env -i "$0" "$1" "Hello" 48 0.5) || exit 1; echo "$out"; echo "$out" | grep -q "routing stats: "' \
    "$out/generate" "$tiny"
run "misuse_more (env -i)" env -i "$out/misuse_more" "$tiny"
run "threads: 4 sessions on one model (env -i)" env -i "$out/threads" "$tiny" 4 3 2
run "fuzz regression corpus replay (env -i)" env -i "$out/fuzz_replay" "$repo/fuzz/regress/gguf" "$fixtures"/models/tiny-*.gguf
run "soak: 20000 tokens, reset every 500, RSS within 1% (env -i)" env -i "$out/soak" "$tiny" 20000 500
run "C++ chat tiny-mixtral (env -i)" sh -c 'printf "hi\nagain\n" | env -i "$0" "$1" 4' "$out/chat" "$tiny"

# A host compiled against a header of another major version must notice at run time: the C
# example and the C++ wrapper are built against a copy of adak.h whose major is one higher.
skew=$out/version-skew
mkdir -p "$skew/include"
major=$(sed -n 's/^#define ADAK_VERSION_MAJOR \([0-9]*\)$/\1/p' "$prefix/include/adak.h")
sed -e "s/^#define ADAK_VERSION_MAJOR $major\$/#define ADAK_VERSION_MAJOR $((major + 1))/" \
    -e "s/^#define ADAK_VERSION_STRING \"$major\./#define ADAK_VERSION_STRING \"$((major + 1))./" \
    "$prefix/include/adak.h" > "$skew/include/adak.h"
cp "$prefix/include/adak.hpp" "$skew/include/adak.hpp"
libs=$(pkg-config --libs adak)
cc -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE -I"$skew/include" "$repo/examples/c/generate.c" -o "$skew/generate" $libs
c++ -std=c++17 -Wall -Wextra -Werror -O2 -I"$skew/include" "$repo/examples/cpp/chat.cpp" -o "$skew/chat" $libs
run "C example refuses a library of another major version (env -i)" sh -c \
    'if msg=$(env -i "$0" "$1" 2>&1); then exit 1; fi; echo "$msg"; echo "$msg" | grep -q "does not match"' \
    "$skew/generate" "$tiny"
run "C++ example refuses a library of another major version (env -i)" sh -c \
    'if msg=$(echo hi | env -i "$0" "$1" 2>&1); then exit 1; fi; echo "$msg"; echo "$msg" | grep -q "does not match"' \
    "$skew/chat" "$tiny"

# Hide the toolchain's libraries: the installed library must not need them.
if unshare --mount true 2>/dev/null; then
    run "misuse, Swift toolchain hidden" unshare --mount sh -c \
        'mount -t tmpfs none /opt/swift/usr/lib && exec env -i "$0" "$1"' "$out/misuse" "$tiny"
else
    echo "test-c: no private mount namespace here; skipped the run with the toolchain hidden"
fi

if [ -n "$demo" ] && [ -f "$demo" ]; then
    run "misuse on a dense model (env -i)" env -i "$out/misuse" "$demo"
    run "carve/train API, carving SmolLM2 layer 0 (env -i)" env -i "$out/carve_train" "$tiny" "$calib" "$demo"
    # The output is shown and must mention Paris (captured, not tee'd: stderr may be a file).
    run "generate SmolLM2 (env -i)" sh -c \
        'out=$(env -i "$0" "$1" "The capital of France is" 16) || exit 1; echo "$out"; echo "$out" | grep -q Paris' \
        "$out/generate" "$demo"
    run "C++ chat SmolLM2 (env -i)" sh -c \
        'out=$(printf "What is the capital of France?\nAnd of Italy?\n" | env -i "$0" "$1" 24 "You are a helpful assistant.") || exit 1; echo "$out"; echo "$out" | grep -q Paris' \
        "$out/chat" "$demo"
else
    echo "test-c: demo model not fetched (make model); skipped the SmolLM2 run"
fi
echo "test-c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
