#!/usr/bin/env bash
# DKIM signing cost per message (issue #11): builds N messages (unicode, long headers,
# multipart) unsigned as the baseline, then signed with Ed25519 and with RSA-2048, in one
# process, and prints microseconds per message and the ratio to the baseline.
# Usage: bench/dkim.sh [--debug] [N]   (default: release build, N=500)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
if [[ "${1:-}" == "--debug" ]]; then profile=(); shift; fi
export DKIM_BENCH_N="${1:-500}"
cargo test "${profile[@]}" --test it dkim::bench_signing -- --ignored --nocapture 2>&1 \
    | grep -E "messages per|build|one core|test result"
