#!/bin/sh
# Builds the service component and puts it where SKILL.md expects it. The
# build happens outside the skill ($CARGO_TARGET_DIR, else
# ~/.cache/aos/skill-builds/<this directory's name>), so copying the skill
# into a skill root copies no build output. A running service keeps its old
# code until `aos skill restart <name>`.
set -eu
cd "$(dirname "$0")"
target="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aos/skill-builds/$(basename "$(pwd)")}"
cargo build --release --target wasm32-wasip2 --target-dir "$target"
cp "$target/wasm32-wasip2/release/command.wasm" service.wasm
echo "built $(pwd)/service.wasm"
