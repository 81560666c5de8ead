#!/usr/bin/env bash
# The log viewer on a batch of 1,000,000 logs, on SQLite and on Postgres (issue #7):
# opening the screen, scroll/page keypresses (Down, PgDn, End, PgUp, Up, Home x 20), status
# filter toggles, and keypresses plus the live refresh while a writer adds 2,000 rows/s.
# Drawn on ratatui's TestBackend at 200x60. Targets: open < 100 ms, keypress to frame
# < 16 ms, status filter < 200 ms, responsive while writing.
# Postgres: RECALLIQ_TEST_PG_URL (default postgres://root@127.0.0.1:5432).
# Usage: bench/logs.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
if [[ "${1:-}" == "--debug" ]]; then profile=(); fi
for t in bench_logs_1m_sqlite bench_logs_1m_postgres; do
    cargo test "${profile[@]}" --test it "tui_logs::$t" -- --ignored --nocapture --exact 2>&1 \
        | grep -E "^\[|test result"
done
