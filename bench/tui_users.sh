#!/usr/bin/env bash
# Seeds 100,000 users on SQLite (one INSERT ... SELECT over a recursive CTE) and measures the
# users screen: first frame and keypress-to-frame (Down, PgDn, End, PgUp, Up, Home), drawn
# on ratatui's TestBackend at 200x60. Targets: first frame < 50 ms, keypress to frame < 16 ms.
# Usage: bench/tui_users.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
if [[ "${1:-}" == "--debug" ]]; then profile=(); fi
cargo test "${profile[@]}" --test it tui::bench_users_100k -- --ignored --nocapture 2>&1 \
    | grep -E "seeded|first frame|test result"
