#!/bin/bash
# Bring the cluster in line with the image, then run the server in the foreground.
#
# First start (empty volume): initialise in a staging folder inside the volume and move the
# finished cluster into place, the marker last, so an interrupted first start is redone on the
# next one and never served. Every start, before the server listens on TCP: pg_hba from the
# image (TCP only for the app role to the app database), the app role's password from the
# secret file (the file is the source of truth, so lost or replaced secrets heal at restart),
# the superuser without a password (peer over the socket only).
#
# The password is read by psql itself (\set from a backquoted `cat`), never on a command line,
# and the maintenance server neither logs statements nor records them in pg_stat_statements.
set -euo pipefail

MARKER=$DB_INIT_MARKER        # last step of a complete initialisation (the healthcheck looks for it)
STAGE="$PGDATA/.lab-init"     # where a first start builds the cluster
PRIVATE=$(mktemp -d)          # socket of the maintenance server: nothing else can connect to it
RUNNING=""                    # the cluster the maintenance server runs on, stopped on any exit
trap '[ -z "$RUNNING" ] || pg_ctl -D "$RUNNING" -w -s -m fast stop >&2; rm -rf "$PRIVATE"' EXIT

say() { echo "lab-postgres: $*" >&2; }
die() { say "$*"; exit 1; }

# The maintenance server: no TCP, a private socket, no statement in logs or statistics.
maintenance_start() {
  pg_ctl -D "$1" -w -s -o "-c listen_addresses='' -c unix_socket_directories=$PRIVATE \
    -c log_statement=none -c log_min_error_statement=panic -c log_min_duration_statement=-1 \
    -c track_activities=off -c pg_stat_statements.track=none" start >&2 \
    || die "the server did not start on the cluster in $1 (its log is above)"
  RUNNING=$1
}
maintenance_stop() { pg_ctl -D "$1" -w -s -m fast stop >&2; RUNNING=""; }
maintenance_psql() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$PRIVATE" -U postgres -v db_name="$DB_NAME" -v db_user="$DB_USER" "$@"
}

write_hba() {
  cat >"$1/pg_hba.conf" <<EOF
# Written by lab-postgres at every start: edits here are replaced.
# The superuser over the local socket only (peer: the container's user postgres, no password);
# over TCP only the apps' role, to the apps' database, with its password.
local all    postgres                  peer
host  "$DB_NAME" "$DB_USER" all        scram-sha-256
EOF
}

initialise() {
  rm -rf "$STAGE"
  mkdir -m 0700 "$STAGE"
  initdb -D "$STAGE" --username=postgres --auth-local=peer --auth-host=reject \
         --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat /etc/lab/postgresql.conf >>"$STAGE/postgresql.conf"
  write_hba "$STAGE"
  maintenance_start "$STAGE"
  # The role gets its password below, with every start's reset.
  maintenance_psql -d postgres <<'SQL'
CREATE ROLE :"db_user" LOGIN;
CREATE DATABASE :"db_name" OWNER :"db_user";
GRANT pg_read_all_stats TO :"db_user";
\c :"db_name"
CREATE EXTENSION pg_stat_statements;
SQL
  # Schema and seed data belong to the application's role, not to the superuser.
  for f in /docker-entrypoint-initdb.d/*.sql; do
    maintenance_psql -d "$DB_NAME" -c "SET ROLE \"$DB_USER\"" -f "$f"
  done
  maintenance_stop "$STAGE"
  touch "$STAGE/$MARKER"
  move_into_place
  say "initialised $DB_NAME"
}

# Renames within one file system; the marker goes last, so it is in PGDATA only when all is.
move_into_place() {
  local entry
  for entry in "$STAGE"/*; do
    [ "${entry##*/}" = "$MARKER" ] || mv "$entry" "$PGDATA/"
  done
  mv "$STAGE/$MARKER" "$PGDATA/$MARKER"
  rmdir "$STAGE"
}

# A cluster made by an older image has no marker: take it over only if its first start finished.
adopt() {
  maintenance_start "$PGDATA"
  local tables="" rows=""
  if tables=$(maintenance_psql -d "$DB_NAME" -tA -c \
      "SELECT to_regclass('world') IS NOT NULL AND to_regclass('fortune') IS NOT NULL" 2>/dev/null) \
     && [ "$tables" = t ]; then
    rows=$(maintenance_psql -d "$DB_NAME" -tA -c \
      "SELECT EXISTS (SELECT FROM world) AND EXISTS (SELECT FROM fortune)" 2>/dev/null) || true
  fi
  maintenance_stop "$PGDATA"
  [ "$rows" = t ] || die "$PGDATA holds a cluster without a complete database $DB_NAME (a first start of an" \
    "older image interrupted?); it is left as it is. Start afresh with an empty volume (lab down --volumes)."
  touch "$PGDATA/$MARKER"
  say "took over the cluster in $PGDATA"
}

[ -s "$DB_PASSWORD_FILE" ] || die "no database password in $DB_PASSWORD_FILE"

if [ -d "$STAGE" ]; then
  if [ -e "$STAGE/$MARKER" ]; then
    move_into_place  # interrupted while moving the finished cluster
  elif [ -e "$PGDATA/$MARKER" ]; then
    rmdir "$STAGE"
  else
    say "an earlier first start was interrupted; initialising again"
    rm -rf "$STAGE"
  fi
fi

if [ ! -e "$PGDATA/$MARKER" ]; then
  if [ -s "$PGDATA/PG_VERSION" ]; then
    adopt
  elif [ -n "$(ls -A "$PGDATA" | grep -vx 'lost+found')" ]; then
    die "$PGDATA is neither empty nor a cluster; it is left as it is"
  else
    initialise
  fi
fi

write_hba "$PGDATA"
maintenance_start "$PGDATA"
maintenance_psql -d postgres <<'SQL'
\set db_password `cat "$DB_PASSWORD_FILE"`
ALTER ROLE :"db_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'db_password';
\unset db_password
ALTER ROLE postgres PASSWORD NULL;
SQL
maintenance_stop "$PGDATA"
rm -rf "$PRIVATE"

exec postgres -D "$PGDATA"
