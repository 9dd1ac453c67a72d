#!/usr/bin/env bash
# A real neutron-server (Neutron 29 API, ML2, noauth, no agents) on loopback,
# the peer that hotport's Neutron client and simulator are held to.
#
#   neutron-server.sh [start]  install what is missing (apt: mariadb-server, curl;
#                              a venv with neutron), start MariaDB and the API
#                              (gunicorn), wait until GET /v2.0/networks answers 200
#   neutron-server.sh stop     stop what this script started (pid files only)
#   neutron-server.sh restart  stop + start (re-renders the config files)
#   neutron-server.sh status   what runs, and one timed GET
#   neutron-server.sh reset-db stop, wipe the MariaDB data dir, start afresh
#   neutron-server.sh env      print the settings as shell assignments
#
# Idempotent: every step checks first. Everything lives in $NEUTRON_STATE_DIR
# (default ${TMPDIR:-/tmp}/hotport-peers/neutron). Settings (environment):
#   NEUTRON_VERSION=29.0.0  NEUTRON_PORT=9696  NEUTRON_DB_PORT=3307
#   NEUTRON_API_WORKERS=2
#   NOVA_ENDPOINT=http://127.0.0.1:18774/v2.1   where Neutron's notifier posts
#       os-server-external-events (the conformance suite listens there; point it
#       at `hotport serve` to have hotport receive the events)
#   SEND_EVENTS_INTERVAL=2
#   MECH_DRIVERS=anchor_loopback  ('' = stock ML2: host bindings fail)
#   ANCHOR_BIND_STATUS=DOWN       (status a port gets when bound: DOWN or ACTIVE)
#
# Facts this recipe rests on (measured, see ../../docs/neutron-peer.md):
# Neutron 29 has no neutron-server console script, the API is the WSGI app
# neutron.wsgi.api:application, run here under gunicorn through
# anchor_mech.wsgi_app (which empties argv for oslo.config); PostgreSQL fails
# neutron-db-manage (MySQL-only SQL), so MariaDB; no RabbitMQ (transport fake:/).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${NEUTRON_STATE_DIR:-${TMPDIR:-/tmp}/hotport-peers/neutron}
VENV=$STATE/venv
NEUTRON_VERSION=${NEUTRON_VERSION:-29.0.0}
API_PORT=${NEUTRON_PORT:-9696}
DB_PORT=${NEUTRON_DB_PORT:-3307}
API_WORKERS=${NEUTRON_API_WORKERS:-2}
NOVA_ENDPOINT=${NOVA_ENDPOINT:-http://127.0.0.1:18774/v2.1}
SEND_EVENTS_INTERVAL=${SEND_EVENTS_INTERVAL:-2}
MECH_DRIVERS=${MECH_DRIVERS-anchor_loopback}
ANCHOR_BIND_STATUS=${ANCHOR_BIND_STATUS:-DOWN}
DB_NAME=neutron DB_USER=neutron DB_PASS=neutron
DB_URL="mysql+pymysql://$DB_USER:$DB_PASS@127.0.0.1:$DB_PORT/$DB_NAME?charset=utf8mb4"

ETC=$STATE/etc RUN=$STATE/run LOG=$STATE/log
MYDATA=$STATE/mysql MYRUN=$STATE/mysql-run
MYSOCK=$MYRUN/mysqld.sock MYPID=$MYRUN/mysqld.pid
API_PID=$RUN/neutron-api.pid
API_URL=http://127.0.0.1:$API_PORT

log() { printf '[neutron-server %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}s')" "$1" "$(now)"; }

# ---------------------------------------------------------------- install
install_os_packages() {
    local need=()
    [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
    command -v curl >/dev/null || need+=(curl)
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${need[*]}"
    local t
    t=$(now)
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$LOG/apt.log" 2>&1 || die "apt-get update failed, see $LOG/apt.log"
    apt-get install -y -q --no-install-recommends "${need[@]}" >>"$LOG/apt.log" 2>&1 \
        || die "apt-get install failed, see $LOG/apt.log"
    log "apt done in $(since "$t")"
}

install_venv() {
    local marker=$VENV/.hotport-neutron-$NEUTRON_VERSION
    if [ ! -f "$marker" ]; then
        local t
        t=$(now)
        log "creating venv $VENV with neutron==$NEUTRON_VERSION gunicorn PyMySQL (about a minute)"
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip >"$LOG/pip.log" 2>&1 || true
        "$VENV/bin/pip" install -q "neutron==$NEUTRON_VERSION" gunicorn PyMySQL \
            >>"$LOG/pip.log" 2>&1 || die "pip install failed, see $LOG/pip.log"
        touch "$marker"
        log "venv done in $(since "$t")"
    fi
    # Our own small package: the agent-less ML2 driver + the gunicorn entry.
    local sum
    sum=$(cd "$HERE/anchor_mech" && find . -name '*.py' -o -name '*.toml' | sort |
          xargs cat | sha1sum | cut -c1-12)
    if [ ! -f "$VENV/.anchor-mech-$sum" ]; then
        log "installing anchor_mech ($sum) into the venv"
        rm -rf "$STATE/src/anchor_mech" && mkdir -p "$STATE/src"
        cp -r "$HERE/anchor_mech" "$STATE/src/anchor_mech"
        "$VENV/bin/pip" install -q --no-deps --force-reinstall \
            "$STATE/src/anchor_mech" >>"$LOG/pip.log" 2>&1 \
            || die "anchor_mech install failed, see $LOG/pip.log"
        rm -f "$VENV"/.anchor-mech-* && touch "$VENV/.anchor-mech-$sum"
    fi
}

# ---------------------------------------------------------------- database
start_db() {
    mkdir -p "$MYRUN" && chown mysql:mysql "$MYRUN"
    if [ ! -d "$MYDATA/mysql" ]; then
        log "initialising MariaDB data dir $MYDATA"
        mkdir -p "$MYDATA" && chown mysql:mysql "$MYDATA"
        mariadb-install-db --no-defaults --user=mysql --datadir="$MYDATA" --tmpdir="$MYRUN" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
    fi
    if ! alive "$MYPID"; then
        log "starting mariadbd on 127.0.0.1:$DB_PORT"
        setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$MYDATA" \
            --tmpdir="$MYRUN" --socket="$MYSOCK" --pid-file="$MYPID" --port="$DB_PORT" \
            --bind-address=127.0.0.1 --skip-name-resolve \
            --log-error="$MYRUN/mariadbd.err" \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
            --max-connections=500 --innodb-buffer-pool-size=256M \
            --innodb-flush-log-at-trx-commit=2 </dev/null >/dev/null 2>&1 &
        for _ in $(seq 1 60); do
            mariadb-admin --socket="$MYSOCK" -uroot ping >/dev/null 2>&1 && break
            sleep 0.5
        done
        mariadb-admin --socket="$MYSOCK" -uroot ping >/dev/null 2>&1 \
            || die "mariadbd did not come up, see $MYRUN/mariadbd.err"
    fi
    mariadb --socket="$MYSOCK" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS $DB_NAME CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
SQL
}

# ---------------------------------------------------------------- config
render_config() {
    mkdir -p "$ETC" "$STATE/state" "$STATE/lock"
    sed -e "s#@STATE@#$STATE#g" -e "s#@DB_URL@#$DB_URL#g" \
        -e "s#@NOVA_ENDPOINT@#$NOVA_ENDPOINT#g" -e "s#@VENV@#$VENV#g" \
        -e "s#@SEND_EVENTS_INTERVAL@#$SEND_EVENTS_INTERVAL#g" \
        "$HERE/etc/neutron.conf.in" >"$ETC/neutron.conf"
    sed -e "s#@MECH_DRIVERS@#$MECH_DRIVERS#g" \
        -e "s#@ANCHOR_BIND_STATUS@#$ANCHOR_BIND_STATUS#g" \
        "$HERE/etc/ml2_conf.ini.in" >"$ETC/ml2_conf.ini"
}

migrate_db() {
    local t
    t=$(now)
    "$VENV/bin/neutron-db-manage" --config-file "$ETC/neutron.conf" \
        --config-file "$ETC/ml2_conf.ini" upgrade heads >"$LOG/db-manage.log" 2>&1 \
        || die "neutron-db-manage failed, see $LOG/db-manage.log"
    log "neutron-db-manage upgrade heads: OK in $(since "$t")"
}

# ---------------------------------------------------------------- services
start_api() {
    if alive "$API_PID"; then
        log "neutron API already running (pid $(cat "$API_PID"))"
        return 0
    fi
    log "starting neutron API: gunicorn $API_WORKERS workers on 127.0.0.1:$API_PORT," \
        "events to $NOVA_ENDPOINT"
    # gunicorn puts its start directory on sys.path: start it from $RUN so a
    # stray ./neutron.py (seen in /tmp) cannot shadow the neutron package.
    mkdir -p "$STATE/tmp"
    cd "$RUN"
    TMPDIR=$STATE/tmp \
    OS_NEUTRON_CONFIG_DIR=$ETC OS_NEUTRON_CONFIG_FILES='neutron.conf;ml2_conf.ini' \
    PYTHONWARNINGS=ignore \
    setsid "$VENV/bin/gunicorn" --bind "127.0.0.1:$API_PORT" \
        --chdir "$RUN" --workers "$API_WORKERS" --timeout 120 --graceful-timeout 10 \
        --no-control-socket --pid "$API_PID" \
        --access-logfile "$LOG/neutron-access.log" \
        --access-logformat '%(t)s "%(r)s" %(s)s %(b)s %(M)sms' \
        anchor_mech.wsgi_app:application </dev/null >>"$LOG/neutron-api.log" 2>&1 &
    # gunicorn rewrites the pid file once up; keep the launch pid meanwhile
    echo $! >"$API_PID"
    cd - >/dev/null
}

wait_api() {
    local t=$1 code=000
    for _ in $(seq 1 240); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$API_URL/v2.0/networks" || true)
        [ "$code" = 200 ] && break
        alive "$API_PID" || die "neutron API exited, see $LOG/neutron-api.log"
        sleep 0.5
    done
    [ "$code" = 200 ] || die "neutron API not answering (last HTTP $code), see $LOG/neutron-api.log"
    log "GET $API_URL/v2.0/networks -> 200, $(since "$t") after start"
}

stop_pid() {  # name pidfile
    local name=$1 f=$2 pid
    if alive "$f"; then
        pid=$(cat "$f")
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name still alive, SIGKILL"
            kill -KILL "$pid" || true
        fi
    fi
    rm -f "$f"
}

do_start() {
    local t0 t
    t0=$(now)
    mkdir -p "$STATE" "$RUN" "$LOG"
    install_os_packages
    install_venv
    start_db
    render_config
    # (re-rendered files only take effect on 'restart')
    alive "$API_PID" || migrate_db
    t=$(now)
    start_api
    wait_api "$t"
    log "ready in $(since "$t0"): neutron $API_URL (pid $(cat "$API_PID")), logs in $LOG"
}

do_stop() {
    stop_pid "neutron API (gunicorn master)" "$API_PID"
    stop_pid mariadbd "$MYPID"
}

do_status() {
    local n f
    for n in neutron-api:$API_PID mariadbd:$MYPID; do
        f=${n#*:}
        if alive "$f"; then echo "${n%%:*}: running, pid $(cat "$f")"; else echo "${n%%:*}: stopped"; fi
    done
    curl -s -o /dev/null -w "GET $API_URL/v2.0/networks -> %{http_code} in %{time_total}s\n" \
        "$API_URL/v2.0/networks" || true
}

do_env() {
    echo "HOTPORT_NEUTRON_URL=$API_URL"
    echo "HOTPORT_NEUTRON_NOTIFY_URL=$NOVA_ENDPOINT"
    echo "NEUTRON_STATE_DIR=$STATE"
}

case "${1:-start}" in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    reset-db) do_stop; rm -rf "$MYDATA"; do_start ;;
    env) do_env ;;
    *) echo "usage: $0 [start|stop|restart|status|reset-db|env]" >&2; exit 2 ;;
esac
