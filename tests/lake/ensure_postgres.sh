#!/usr/bin/env bash
# Make sure the lake tests can start their own PostgreSQL cluster on this machine.
# Idempotent; run as root on a fresh machine (CI calls it before `make test`).
# The tests prefer /usr/lib/postgresql/15/bin and fall back to the newest /usr/lib/postgresql/*/bin.
set -euo pipefail
have_server() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
if [ -x /usr/lib/postgresql/15/bin/initdb ] || have_server; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_postgres: no PostgreSQL server binaries, and installing them needs root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql-15 >/dev/null 2>&1 || apt-get install -y -qq postgresql >/dev/null
have_server || { echo "ensure_postgres: apt installed no server binaries" >&2; exit 1; }
# initdb/pg_ctl refuse to run as root; the tests run them as this user, which the package makes
id postgres >/dev/null
