#!/usr/bin/env bash
# Bring up the GAVO DaCHS peer (../shared/peers/up.sh) on this machine, working around the
# Debian pg_sphere script that newer PostgreSQL 15 releases refuse. Prints the TAP URL last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peers=${CONSTELLATION_PEERS:-$here/../../../shared/peers}
export DEBIAN_FRONTEND=noninteractive
if ! dpkg-query -W -f='${Status}' postgresql-15-pgsphere 2>/dev/null | grep -q 'install ok installed'; then
  apt-get install -y --no-install-recommends postgresql-15-pgsphere >&2 || { apt-get update >&2; apt-get install -y --no-install-recommends postgresql-15-pgsphere >&2; }
fi
"$here/fix-pgsphere.sh"
exec "$peers/up.sh"
