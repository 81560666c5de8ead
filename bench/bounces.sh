#!/usr/bin/env bash
# Benchmark of `recalliq bounces ingest` (issue #9): N RFC 3464 reports (Postfix shape,
# each quoting a Message-ID the database does not have, so every one is parsed, looked up
# through the message_id index and left unmatched) in a maildir, on SQLite. Baseline in the
# same run: Python's `email` package parsing the same files and reading their
# delivery-status part, without any database.
# Usage: bench/bounces.sh [N] [--release]   (default 2000, debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
profile=debug
if [[ "${2:-}" == "--release" ]]; then cargo build --release --quiet; profile=release; else cargo build --quiet; fi
bin=target/$profile/recalliq
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/md/new" "$work/md/cur" "$work/md/tmp"
python3 - "$work/md/new" "$n" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    to = f"user{i}@example{i % 97}.com"
    with open(f"{d}/{i:07d}.eml", "w", newline="") as f:
        f.write(
            "From: MAILER-DAEMON@mx.acme.test (Mail Delivery System)\r\nTo: news@acme.test\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            f"--B\r\nContent-Type: text/plain\r\n\r\n<{to}>: host mx said: 550 5.1.1 User unknown\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.test\r\n\r\n"
            f"Final-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
            f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@acme.test\r\nTo: {to}\r\n"
            f"Subject: Spring\r\nMessage-ID: <{i}.bench@acme.test>\r\n\r\n--B--\r\n"
        )
PY
export RECALLIQ_CONFIG_DIR="$work/config" RECALLIQ_DATA_DIR="$work/data"
unset RECALLIQ_DATABASE_URL RECALLIQ_SECRET_KEY
"$bin" migrate >/dev/null
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

t0=$(now)
"$bin" bounces ingest "$work/md" --json | python3 -c "import json,sys; s=json.load(sys.stdin); print('recalliq: messages', s['messages'], 'unmatched', s['unmatched'])"
t1=$(now)
python3 - "$work/md/new" <<'PY'
import email, email.policy, os, sys
d = sys.argv[1]; n = 0
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    for part in m.walk():
        if part.get_content_type() == "message/delivery-status":
            n += 1
print("python email: delivery-status parts", n)
PY
t2=$(now)
echo "recalliq bounces ingest ($profile, SQLite): $(elapsed "$t0" "$t1") s for $n reports"
echo "baseline python email parse only:          $(elapsed "$t1" "$t2") s"
