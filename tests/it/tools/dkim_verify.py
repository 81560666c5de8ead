"""Independent DKIM verification for the test suite (dkimpy, not our signer).

usage: dkim_verify.py MESSAGE_FILE NAME TXT [NAME TXT ...]
NAME is a DNS owner name (selector._domainkey.domain), TXT its record; lookups of any
other name fail. Prints "pass" and exits 0 when every DKIM-Signature verifies, prints
"fail" and exits 1 otherwise.
"""
import sys

import dkim


def main():
    with open(sys.argv[1], "rb") as f:
        message = f.read()
    pairs = sys.argv[2:]
    records = {}
    for i in range(0, len(pairs), 2):
        records[pairs[i].rstrip(".").lower()] = pairs[i + 1].encode("ascii")

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        return records.get(name.rstrip(".").lower())

    d = dkim.DKIM(message)
    count = message.count(b"\nDKIM-Signature:") + message.startswith(b"DKIM-Signature:")
    if count == 0:
        print("fail: no signature")
        sys.exit(1)
    try:
        ok = all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(count))
    except dkim.DKIMException as e:
        print(f"fail: {e}")
        sys.exit(1)
    print("pass" if ok else "fail")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
