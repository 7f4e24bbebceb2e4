#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the PostgreSQL store's tests (CI and developers alike).
#   tools/pg-cluster.sh start DIR   installs PostgreSQL 15 when absent (Debian packages), initdb's a
#                                   cluster in DIR as an unprivileged user, listening only on a unix
#                                   socket in DIR, creates the test roles and database, and prints
#                                   the connection strings as `export NAME='...'` lines (eval them)
#   tools/pg-cluster.sh env DIR     prints those lines again for a running cluster
#   tools/pg-cluster.sh restart DIR [SECONDS]
#                                   crashes the server (pg_ctl -m immediate: no shutdown
#                                   checkpoint, WAL recovery at start) and starts it again, after
#                                   SECONDS down (default 0): the "database restarting mid-run"
#                                   and "database down for a while" faults of the store's tests
#   tools/pg-cluster.sh stop DIR    stops the cluster and removes DIR
# Variables printed:
#   RUNTOOLS_TEST_PG        the app role `runtools`: LOGIN, password, CONNECT on its database and
#                           owner of schema `runtools` only (no CREATE on the database, none on public)
#   RUNTOOLS_TEST_PG_ADMIN  the cluster's superuser, for test setup only (fresh schemas, other roles)
#   RUNTOOLS_TEST_PG_DIR    DIR
# The connection strings carry passwords: they live in DIR (mode 0700) and die with the cluster.
set -euo pipefail

usage() { echo "usage: $0 start|restart|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || [ $# -eq 3 ] || usage
cmd=$1
dir=$2
port=5432 # only the socket's file name (.s.PGSQL.5432): nothing listens on TCP
database=runtools_test
pg_bin=${RUNTOOLS_PG_BIN:-/usr/lib/postgresql/15/bin}

# PostgreSQL refuses to run as root: run it as `postgres` (created by the Debian package).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_postgresql() {
    [ -x "$pg_bin/initdb" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "PostgreSQL 15 is not installed ($pg_bin/initdb is missing) and installing it needs root: apt-get install postgresql-15" >&2
        exit 1
    fi
    echo "Installing PostgreSQL 15 (apt-get install postgresql-15)..." >&2
    # No default cluster: the package would otherwise create and try to start one on port 5432.
    mkdir -p /etc/postgresql-common
    [ -e /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    export DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1
    apt-get update -qq >&2
    apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql-15 >&2
    [ -x "$pg_bin/initdb" ] || { echo "apt-get install postgresql-15 did not provide $pg_bin/initdb" >&2; exit 1; }
}

print_env() {
    [ -f "$dir/env" ] || { echo "no cluster in $dir (start it first)" >&2; exit 1; }
    cat "$dir/env"
}

sql() { # as the superuser, over the socket
    as_owner env PGPASSWORD="$(cat "$dir/admin.pw")" "$pg_bin/psql" -h "$dir" -p "$port" -U postgres -d "${2:-postgres}" \
        -v ON_ERROR_STOP=1 -qAt -c "$1" >/dev/null
}

start() {
    install_postgresql
    if [ -f "$dir/data/postmaster.pid" ] && as_owner "$pg_bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        print_env
        return
    fi

    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi

    mkdir -p "$dir"
    chmod 0700 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    local admin_pw app_pw
    admin_pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    app_pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf '%s\n' "$admin_pw" > "$dir/admin.pw"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir/admin.pw"
    chmod 0600 "$dir/admin.pw"

    # Passwords everywhere (scram-sha-256), as a real server would have them.
    as_owner "$pg_bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/admin.pw" -E UTF8 --locale=C.UTF-8 \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k $dir -p $port -c unix_socket_permissions=0777 -c max_connections=60 -c shared_buffers=32MB -c fsync=on -c synchronous_commit=on" \
        start >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    # The socket folder is reachable by the test process (root or the developer), nothing else is.
    chmod 0711 "$dir"

    # The app role: its own schema in its own database, nothing else (docs/postgresql-store.md).
    sql "CREATE ROLE runtools LOGIN PASSWORD '$app_pw'"
    sql "CREATE DATABASE $database"
    sql "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC"
    sql "REVOKE ALL ON DATABASE $database FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE $database TO runtools"
    sql "REVOKE ALL ON SCHEMA public FROM PUBLIC; CREATE SCHEMA runtools AUTHORIZATION runtools" "$database"

    umask 077
    cat > "$dir/env" <<EOF
export RUNTOOLS_TEST_PG='Host=$dir;Port=$port;Database=$database;Username=runtools;Password=$app_pw'
export RUNTOOLS_TEST_PG_ADMIN='Host=$dir;Port=$port;Database=$database;Username=postgres;Password=$admin_pw'
export RUNTOOLS_TEST_PG_DIR='$dir'
EOF
    print_env
}

restart() {
    local down=${1:-0}
    [ -f "$dir/data/postmaster.pid" ] || { echo "no running cluster in $dir" >&2; exit 1; }
    if [ "$down" = 0 ]; then
        # pg_ctl restart starts it again with the options it was started with (postmaster.opts).
        as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m immediate -w -t 60 restart >/dev/null \
            || { tail -20 "$dir/server.log" >&2; exit 1; }
        return
    fi
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
    sleep "$down"
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(sed -n 's/^[^ ]*postgres"* //p' "$dir/data/postmaster.opts" | sed 's/"-D" "[^"]*" //g')" start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; exit 1; }
}

stop() {
    if [ -f "$dir/data/PG_VERSION" ] && [ -x "$pg_bin/pg_ctl" ]; then
        as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "$cmd" in
    start) start ;;
    restart) restart "${3:-0}" ;;
    stop) stop ;;
    env) print_env ;;
    *) usage ;;
esac
