#!/usr/bin/env bash
# Debian 12's pg_sphere 1.2.0 script fails on PostgreSQL 15.19+ ("commutator operator @> is
# already the commutator of operator <@"): its DaCHS compatibility operators `@ (bigint|spoint,
# smoc)` name a commutator and negator that newer servers refuse to share. Dropping those
# clauses from those compatibility operators (nothing else) lets CREATE EXTENSION pg_sphere succeed, which
# DaCHS's installation needs. Idempotent; run as root before ../shared/peers/up.sh.
set -euo pipefail
f=/usr/share/postgresql/15/extension/pg_sphere--1.2.0.sql
[ -f "$f" ] || exit 0
grep -q 'constellation: compat commutator removed' "$f" && exit 0
python3 - "$f" <<'PY'
import re, sys
path = sys.argv[1]
s = open(path).read()
marker = 'a minimal set of backwards-compatible operators for GAVO DaCHS'
head, _, tail = s.partition(marker)
if not tail:
    sys.exit(0)
def strip(m):
    return re.sub(r"\n\s*(COMMUTATOR|NEGATOR)\s*=\s*'[^']*',", "", m.group(0))
tail = re.sub(r"CREATE OPERATOR @ \([^;]*?smoc[^;]*?\);", strip, tail)
open(path, 'w').write(head + marker + tail + '\n-- constellation: compat commutator removed\n')
PY
