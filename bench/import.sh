#!/usr/bin/env bash
# Benchmark of `recalliq group import` (issue #4: a 100,000-row CSV in under 3 s on SQLite
# and on Postgres). Baselines in the same run: Python's sqlite3 executemany into the same
# table (SQLite) and psql's \copy (Postgres), the raw loaders a sysadmin would reach for.
# Usage: bench/import.sh [ROWS]   (needs: cargo, python3, psql; Postgres at 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -h 127.0.0.1 -U root -d postgres -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
pgdb="recalliq_bench_$$"

cargo build --release --quiet
bin=target/release/recalliq
csv="$work/contacts.csv"
python3 - "$csv" "$rows" <<'PY'
import sys, random
path, n = sys.argv[1], int(sys.argv[2])
cities = ["Oslo", "Rome", "Lima", "Kyoto", "Accra", "Quito", "Porto", "Dakar"]
with open(path, "w", newline="") as f:
    f.write("email,name,city,plan,score\r\n")
    for i in range(n):
        f.write(f"user{i}@example{i % 97}.com,\"Person {i}, Jr\",{random.choice(cities)},gold,{i % 1000}\r\n")
PY
echo "CSV: $rows rows, $(du -h "$csv" | cut -f1)"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# SQLite
surl="sqlite://$work/bench.db"
export RECALLIQ_DATA_DIR="$work/data" RECALLIQ_CONFIG_DIR="$work/config"
RECALLIQ_DATABASE_URL=$surl $bin tenant create --name Bench --domain bench.test >/dev/null
t0=$(now)
RECALLIQ_DATABASE_URL=$surl $bin group import --tenant bench.test --group G "$csv" --create --json >/dev/null
t1=$(now)
sqlite_s=$(elapsed "$t0" "$t1")
t0=$(now)
RECALLIQ_DATABASE_URL=$surl $bin group import --tenant bench.test --group G "$csv" --json >/dev/null
t1=$(now)
sqlite_re=$(elapsed "$t0" "$t1")
t0=$(now)
python3 - "$work/bench.db" "$csv" <<'PY'
import csv, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
gid = db.execute("INSERT INTO tenants_group (tenant_id, name) VALUES (1, 'Py') RETURNING id").fetchone()[0]
with open(sys.argv[2], newline="") as f:
    r = csv.DictReader(f)
    db.executemany(
        "INSERT INTO tenants_groupemail (group_id, email, name, variables) VALUES (?, ?, ?, ?)",
        ((gid, row["email"], row["name"], json.dumps({k: row[k] for k in ("city", "plan", "score")})) for row in r))
db.commit()
PY
t1=$(now)
py_s=$(elapsed "$t0" "$t1")

# Postgres
psql -h 127.0.0.1 -U root -d postgres -qc "CREATE DATABASE $pgdb" >/dev/null
purl="postgres://root@127.0.0.1:5432/$pgdb"
RECALLIQ_DATABASE_URL=$purl $bin migrate >/dev/null
RECALLIQ_DATABASE_URL=$purl $bin tenant create --name Bench --domain bench.test >/dev/null
t0=$(now)
RECALLIQ_DATABASE_URL=$purl $bin group import --tenant bench.test --group G "$csv" --create --json >/dev/null
t1=$(now)
pg_s=$(elapsed "$t0" "$t1")
t0=$(now)
RECALLIQ_DATABASE_URL=$purl $bin group import --tenant bench.test --group G "$csv" --json >/dev/null
t1=$(now)
pg_re=$(elapsed "$t0" "$t1")
psql -h 127.0.0.1 -U root -d "$pgdb" -qc "INSERT INTO tenants_group (tenant_id, name) VALUES (1, 'Copy')" >/dev/null
t0=$(now)
psql -h 127.0.0.1 -U root -d "$pgdb" -q >/dev/null <<SQL
CREATE TEMP TABLE raw (email text, name text, city text, plan text, score text);
\copy raw FROM '$csv' WITH (FORMAT csv, HEADER true)
INSERT INTO tenants_groupemail (group_id, email, name, variables)
SELECT (SELECT id FROM tenants_group WHERE name = 'Copy'), email, name,
       jsonb_build_object('city', city, 'plan', plan, 'score', score) FROM raw;
SQL
t1=$(now)
copy_s=$(elapsed "$t0" "$t1")

echo
printf '%-44s %8s\n' "run ($rows rows)" "seconds"
printf '%-44s %8s\n' "recalliq import, SQLite (new)" "$sqlite_s"
printf '%-44s %8s\n' "recalliq import, SQLite (re-import: updates)" "$sqlite_re"
printf '%-44s %8s\n' "baseline: python sqlite3 executemany" "$py_s"
printf '%-44s %8s\n' "recalliq import, Postgres (new)" "$pg_s"
printf '%-44s %8s\n' "recalliq import, Postgres (re-import)" "$pg_re"
printf '%-44s %8s\n' "baseline: psql \\copy + INSERT SELECT" "$copy_s"
python3 -c "print(f'ratio recalliq/baseline: SQLite {$sqlite_s/$py_s:.2f}x, Postgres {$pg_s/$copy_s:.2f}x (lower is better; includes process start, CSV validation)')"
