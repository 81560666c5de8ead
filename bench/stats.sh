#!/usr/bin/env bash
# Reports and dashboard queries on a demo database with a batch of N email logs (default
# 1,000,000), SQLite. Baselines in the same run: `recalliq tenant list` (process start, open,
# one trivial query) and the spec's own tenant-statistics SQL (four LEFT JOINs with
# COUNT(DISTINCT)) through Python's sqlite3.
# Usage: bench/stats.sh [LOGS]   PROFILE=release bench/stats.sh  (debug by default)
set -euo pipefail
cd "$(dirname "$0")/.."
logs=${1:-1000000}
profile=${PROFILE:-debug}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$profile" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
bin=target/$profile/recalliq
export RECALLIQ_DATA_DIR="$work/data" RECALLIQ_CONFIG_DIR="$work/config"
db="$work/demo.db"
$bin demo --no-tui --db "$db" --logs "$logs" >/dev/null 2>&1
export RECALLIQ_DATABASE_URL="sqlite://$db"
# The tenant of the batch holding the million logs (the demo's newest batch).
domain=$(python3 - "$db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
print(con.execute("""SELECT t.domain FROM batches_batch b JOIN tenants_tenant t ON t.id = b.tenant_id
                     ORDER BY b.id DESC LIMIT 1""").fetchone()[0])
PY
)

# Median wall time of 3 runs, in ms.
median() {
  python3 - "$@" <<'PY'
import subprocess, sys, time, statistics
ts = []
for _ in range(3):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
    ts.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(ts):.0f}")
PY
}
base=$(median $bin tenant list)
echo "profile $profile, $logs logs (tenant $domain), load $(cut -d' ' -f1 /proc/loadavg)"
printf "%-44s %8s %7s\n" "command" "ms" "x base"
printf "%-44s %8s %7s\n" "tenant list (baseline)" "$base" "1.0"
for args in "stats tenants" "stats batches --tenant $domain" "stats activity --tenant $domain" \
            "stats activity --tenant $domain --from 2000-01-01" \
            "stats groups --tenant $domain" "maintenance recount-usage"; do
  ms=$(median $bin $args)
  printf "%-44s %8s %7s\n" "$args" "$ms" "$(python3 -c "print(f'{$ms/$base:.1f}')")"
done
python3 - "$db" <<'PY'
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1])
spec = """SELECT t.name, t.monthly_email_limit, t.emails_sent_this_month,
 COUNT(DISTINCT u.id), COUNT(DISTINCT g.id), COUNT(DISTINCT et.id), COUNT(DISTINCT b.id)
 FROM tenants_tenant t LEFT JOIN core_user u ON t.id = u.tenant_id
 LEFT JOIN tenants_group g ON t.id = g.tenant_id LEFT JOIN emails_emailtemplate et ON t.id = et.tenant_id
 LEFT JOIN batches_batch b ON t.id = b.tenant_id WHERE t.is_active = TRUE
 GROUP BY t.id, t.name, t.monthly_email_limit, t.emails_sent_this_month"""
t = time.perf_counter(); con.execute(spec).fetchall()
print(f"spec tenant statistics SQL in python sqlite3 (no process start): {(time.perf_counter()-t)*1000:.1f} ms")
PY
echo "logs in the default activity window: $($bin stats activity --tenant "$domain" --json | python3 -c 'import json,sys; print(sum(d["total_emails"] for d in json.load(sys.stdin)))'), since 2000: $($bin stats activity --tenant "$domain" --from 2000-01-01 --json | python3 -c 'import json,sys; print(sum(d["total_emails"] for d in json.load(sys.stdin)))')"
