#!/bin/sh
# Builds the service component and puts it where SKILL.md expects it.
set -eu
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/guard.wasm" service.wasm
echo "built $(pwd)/service.wasm"
