#!/bin/bash
# Initialise the cluster on first start (empty volume), then run the server in the foreground.
set -euo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ ! -s "$DB_PASSWORD_FILE" ]; then
    echo "lab-postgres: no database password in $DB_PASSWORD_FILE" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  tr -d '\n' <"$DB_PASSWORD_FILE" >"$pwfile"
  initdb --username=postgres --pwfile="$pwfile" --auth-local=peer --auth-host=scram-sha-256 \
         --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat /etc/lab/postgresql.conf >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/run/postgresql" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 -q -h /run/postgresql -U postgres -d postgres \
       -v db_name="$DB_NAME" -v db_user="$DB_USER" -v db_password="$(cat "$pwfile")" <<'SQL'
CREATE ROLE :"db_user" LOGIN PASSWORD :'db_password';
CREATE DATABASE :"db_name" OWNER :"db_user";
GRANT pg_read_all_stats TO :"db_user";
\c :"db_name"
CREATE EXTENSION pg_stat_statements;
SQL
  # Schema and seed data belong to the application's role, not to the superuser.
  for f in /docker-entrypoint-initdb.d/*.sql; do
    psql -v ON_ERROR_STOP=1 -q -h /run/postgresql -U postgres -d "$DB_NAME" \
         -c "SET ROLE \"$DB_USER\"" -f "$f"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "lab-postgres: initialised $DB_NAME"
fi

exec postgres -D "$PGDATA"
