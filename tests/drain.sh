#!/bin/bash
# drain.sh: SIGTERM's drain and rolling restarts, with psycopg (libpq)
# clients, a real PostgreSQL 15 (scram-sha-256 logins) and HAProxy.
# After SIGTERM /readyz answers 503 at once and connections are still
# accepted for shutdown_delay; then an idle session ends with FATAL 57P01
# "terminating connection due to administrator command", a transaction's
# session once it commits, a long transaction's at shutdown_timeout between
# two messages (never a cut message); PostgreSQL logs no unexpected EOF.  A
# second SIGTERM, and SIGQUIT, end everything at once.  Then two gates
# behind HAProxy (send-proxy-v2, health checks on /readyz) are restarted in
# turn under 8 writers: no statement fails, every session comes back.
# Prints TAP-ish lines and the rolling restart's counts; exits 0 when every
# test passed, 77 when a prerequisite is missing (a failure when CI=true),
# 99 when the setup broke, 1 otherwise.
#
# Run by hand after make check (or make tests/pqprobe):
#   bash tests/drain.sh
# (VERBOSE=1 shows every client's output, KEEP_TMP=1 keeps the logs.)
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PYTHON=/usr/bin/python3		# Debian's, with python3-psycopg
CLIENT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/drainclient.py
ADMIN_TEXT="terminating connection due to administrator command"
# What psycopg prints for it (drainclient.py's admin_shutdown() says why
# the SQLSTATE may be missing there; pqprobe's libpq checks it exactly).
PSYCOPG_57P01="^error sqlstate=(57P01|none) severity=(FATAL|none) message=(consuming input failed: )?$ADMIN_TEXT( .*)?"
WRITERS=8
HAPROXY_PID=
WORKLOAD_PID=

declare -A PORT=() METRICS=() CLIENT_PID=()

# ---- helpers -----------------------------------------------------------------

# start NAME ARGS...: a TLS gate on a fresh port with a metrics port.
start() {
	local name=$1
	shift
	METRICS[$name]=$(free_port)
	tls_gate_start "$name" on "$PG_PORT" \
		-c "metrics_listen=127.0.0.1:${METRICS[$name]}" "$@"
}

dsn() {
	conninfo "$1" require connect_timeout=10
}

# client NAME ARGS...: drainclient.py ARGS in the background, output in
# $WORK/NAME.out.
client() {
	local name=$1
	shift
	"$PYTHON" "$CLIENT" "$@" >"$WORK/$name.out" 2>&1 &
	CLIENT_PID[$name]=$!
}

# says NAME ERE [SECONDS]: the client's output has a line matching ERE.
says() {
	for _ in $(seq 1 $((${3:-10} * 20))); do
		grep -Eq -- "$2" "$WORK/$1.out" 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$WORK/$1.out"
	return 1
}

# client_end NAME: the client exits 0 within 10 s.
client_end() {
	local pid=${CLIENT_PID[$1]} status=0
	timeout 10 tail --pid="$pid" -f /dev/null || { kill "$pid"; return 1; }
	wait "$pid" || status=$?
	cat "$WORK/$1.out"
	[ "$status" = 0 ]
}

# readyz PORT: the HTTP status /readyz answers.
readyz() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		"http://127.0.0.1:$1/readyz" || true
}

readyz_is() {
	local got
	got=$(readyz "$1")
	echo "GET /readyz: $got, expected $2"
	[ "$got" = "$2" ]
}

# exits_within NAME SECONDS [MIN]: the gate exits 0 within SECONDS (and not
# before MIN seconds, counted from now).
exits_within() {
	local name=$1 pid=${GATE_PID[$1]} start status=0 took
	start=$(date +%s.%N)
	timeout "$2" tail --pid="$pid" -f /dev/null || {
		echo "still running after $2 s"
		kill_gate "$name"
		return 1
	}
	took=$(since "$start")
	unset "GATE_PID[$name]"
	wait "$pid" || status=$?
	echo "exit status $status after $took s"
	[ "$status" = 0 ] || return 1
	! grep -Eq "$SANITIZER_TEXT" "$(gate_log "$name")" || return 1
	[ -z "${3:-}" ] || num_between "$took" "$3" "$2"
}

# pg_log_mark: pg_log_clean looks at what PostgreSQL logs from now on.
PG_LOG_MARK=0
pg_log_mark() {
	PG_LOG_MARK=$(wc -l <"$PG_DIR/postgres.log")
}

# pg_log_clean: since pg_log_mark, PostgreSQL logged no connection that
# ended without Terminate from the gate.
pg_log_clean() {
	! tail -n +$((PG_LOG_MARK + 1)) "$PG_DIR/postgres.log" |
		grep -E "unexpected EOF|could not receive data from client"
}

# probe_57p01 NAME: pqprobe NAME's query after the hold failed with FATAL
# 57P01 and PostgreSQL's text (libpq's verbose form shows the SQLSTATE
# field of the ErrorResponse), and libpq reported it just as it does when
# PostgreSQL itself ends an idle session (REFERENCE, from
# test_reference).
REFERENCE=
probe_57p01() {
	says "$1" "FATAL:  57P01: $ADMIN_TEXT\$" &&
		says "$1" "^$REFERENCE\$"
}

# ---- 0: what PostgreSQL's own 57P01 looks like to libpq ------------------------------

# pg_terminate_backend() on an idle session, straight to PostgreSQL: the
# ErrorResponse arrives while libpq is idle, so the next query's result is
# the connection's loss, with the FATAL in its message.
test_reference() {
	"$PQPROBE" --verbose-errors --timeout 30 --query "SELECT 1" \
		--hold-file "$WORK/ref.go" \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable application_name=drainref" \
		>"$WORK/ref.out" 2>&1 &
	CLIENT_PID[ref]=$!
	says ref ^holding >/dev/null || die "the reference session did not connect"
	pg_admin "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'drainref'" >/dev/null ||
		die "pg_terminate_backend failed"
	sleep 0.3
	touch "$WORK/ref.go"
	check "reference: PostgreSQL's own 57P01 to an idle libpq session reads FATAL:  57P01: $ADMIN_TEXT" \
		says ref "FATAL:  57P01: $ADMIN_TEXT\$"
	REFERENCE=$(grep -m1 "^query failed: " "$WORK/ref.out" || true)
	note "reference: libpq reports it as \"$REFERENCE\""
}

# ---- 1: idle sessions and transactions ----------------------------------------------

test_idle_and_transaction() {
	local pid t0
	pg_log_mark
	start a -c shutdown_delay=2 -c shutdown_timeout=30 || return 0
	client idle hold "$(dsn "${PORT[a]}")" "$WORK/idle.go"
	client txn hold "$(dsn "${PORT[a]}")" "$WORK/txn.go" --begin
	"$PQPROBE" --verbose-errors --timeout 30 --query "SELECT 1" \
		--hold-file "$WORK/idle.go" "$(dsn "${PORT[a]}")" \
		>"$WORK/pq.out" 2>&1 &
	CLIENT_PID[pq]=$!
	check "idle sessions (psycopg, libpq) and one in a transaction are open" \
		eval 'says idle ^ready && says txn ^ready && says pq ^holding'
	check "before SIGTERM, /readyz answers 200" readyz_is "${METRICS[a]}" 200
	pid=${GATE_PID[a]}
	t0=$(date +%s.%N)
	kill -TERM "$pid"
	sleep 0.3
	check "right after SIGTERM, /readyz answers 503" readyz_is "${METRICS[a]}" 503
	check "during shutdown_delay, a new session still connects" \
		"$PQPROBE" --expect connected "$(dsn "${PORT[a]}")"
	check "the idle session is ended after shutdown_delay (2 s), not at its next statement" \
		log_wait a "disconnection: .*\(server shutting down: session idle\)" 0
	check "... about 2 s after SIGTERM" num_between "$(since "$t0")" 1.9 4
	check "during the drain, /readyz still answers 503" readyz_is "${METRICS[a]}" 503
	touch "$WORK/idle.go"
	check "the idle session's libpq client gets FATAL, SQLSTATE 57P01, PostgreSQL's own text" \
		probe_57p01 pq
	check "the idle session's psycopg client gets the same FATAL" \
		says idle "$PSYCOPG_57P01\$"
	check "the session in a transaction is still open: the gate runs on" \
		kill -0 "$pid"
	touch "$WORK/txn.go"
	check "the transaction commits through the drain" says txn "^commit ok\$"
	check "after the commit's ReadyForQuery, the client gets FATAL 57P01" \
		says txn "$PSYCOPG_57P01\$"
	check "with no session left the gate exits 0, well before shutdown_timeout (30 s)" \
		exits_within a 5
	check "the log says sessions end at their idle points" \
		log_has a "shutdown_delay is over; no longer accepting connections"
	check "PostgreSQL logged no unexpected EOF: the gate sent Terminate" pg_log_clean
}

# log_wait NAME ERE [MIN]: the gate's log gets a line matching ERE within
# 10 s.
log_wait() {
	for _ in $(seq 1 200); do
		grep -Eq -- "$2" "$(gate_log "$1")" && return 0
		sleep 0.05
	done
	echo "no line matching: $2"
	tail -5 "$(gate_log "$1")"
	return 1
}

# ---- 2: a long transaction at shutdown_timeout --------------------------------------

test_long_transaction() {
	pg_log_mark
	start b -c shutdown_timeout=2 || return 0
	client stream stream "$(dsn "${PORT[b]}")"
	check "a session streams 4 MB results in a transaction" says stream ^ready
	sleep 0.5
	kill -TERM "${GATE_PID[b]}"
	check "at shutdown_timeout (2 s) the gate exits 0 (2 s to 7 s)" \
		exits_within b 7 1.9
	check "the streaming client gets FATAL 57P01 between two messages, no cut message" \
		says stream "$PSYCOPG_57P01 rounds=[0-9]+\$"
	check "the log says shutdown_timeout expired" \
		log_has b "shutdown_timeout expired; ending 1 connection between messages"
	check "its session ended for the timeout" \
		log_has b "disconnection: .*shutdown_timeout expired"
	check "PostgreSQL logged no unexpected EOF: the gate sent Terminate" pg_log_clean
}

# ---- 3: at once: a second SIGTERM, SIGQUIT -----------------------------------------

# at_once NAME SIGNALS...: a session in a transaction; the signals, 0.5 s
# apart; the gate exits 0 within 2 s of the last.
at_once() {
	local name=$1 sig
	shift
	start "$name" -c shutdown_timeout=60 || return 0
	client "$name" hold "$(dsn "${PORT[$name]}")" "$WORK/never" --begin
	says "$name" ^ready >/dev/null || true
	for sig in "$@"; do
		sleep 0.5
		kill -"$sig" "${GATE_PID[$name]}"
	done
	exits_within "$name" 2
}

test_at_once() {
	check "a second SIGTERM ends a transaction's session at once, exit 0" \
		at_once c TERM TERM
	check "... and the log says so" log_has c "received SIGTERM again; closing 1 connection now"
	check "SIGQUIT ends a transaction's session at once, exit 0" at_once q QUIT
	check "... and the log says so" log_has q "received SIGQUIT; closing 1 connection now"
	check "SIGQUIT during a SIGTERM drain ends it at once, exit 0" \
		at_once cq TERM QUIT
	for name in c q cq; do
		kill "${CLIENT_PID[$name]}" 2>/dev/null || true
	done
}

# ---- 4: a rolling restart behind HAProxy --------------------------------------------

# HAProxy in TCP mode on PORT[hap]: gates g1 and g2, PROXY v2 to them,
# health checks GET /readyz on their metrics ports; a gate is down after
# two failed checks (0.4 s) and up after two good ones.
haproxy_start() {
	PORT[hap]=$(free_port)
	cat >"$WORK/haproxy.cfg" <<-EOF
		global
		    maxconn 200
		    stats socket $WORK/haproxy.sock mode 600 level admin
		defaults
		    mode tcp
		    timeout connect 5s
		    timeout client 60s
		    timeout server 60s
		    retries 3
		    option redispatch
		frontend pg
		    bind 127.0.0.1:${PORT[hap]}
		    default_backend gates
		backend gates
		    balance roundrobin
		    option httpchk GET /readyz
		    http-check expect status 200
		    default-server inter 200ms fall 2 rise 2 send-proxy-v2
		    server g1 127.0.0.1:${PORT[g1]} check port ${METRICS[g1]}
		    server g2 127.0.0.1:${PORT[g2]} check port ${METRICS[g2]}
	EOF
	haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
	HAPROXY_PID=$!
	for _ in $(seq 1 100); do
		[ -S "$WORK/haproxy.sock" ] && return 0
		kill -0 "$HAPROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	show "$WORK/haproxy.log"
	die "HAProxy did not start"
}

haproxy_stop() {
	if [ -n "$HAPROXY_PID" ]; then
		kill "$HAPROXY_PID" 2>/dev/null || true
		wait "$HAPROXY_PID" 2>/dev/null || true
		HAPROXY_PID=
	fi
}

# server_state NAME: UP or DOWN, as HAProxy's stats socket says.
server_state() {
	"$PYTHON" - "$WORK/haproxy.sock" "$1" <<-'EOF'
		import socket, sys
		s = socket.socket(socket.AF_UNIX)
		s.connect(sys.argv[1])
		s.sendall(b"show stat\n")
		data = b""
		while True:
		    chunk = s.recv(65536)
		    if not chunk:
		        break
		    data += chunk
		lines = data.decode().splitlines()
		cols = lines[0].lstrip("# ").split(",")
		for line in lines[1:]:
		    f = dict(zip(cols, line.split(",")))
		    if f.get("pxname") == "gates" and f.get("svname") == sys.argv[2]:
		        print(f["status"].split()[0])
	EOF
}

# haproxy_sees NAME STATE SECONDS
haproxy_sees() {
	local got
	for _ in $(seq 1 $(($3 * 10))); do
		got=$(server_state "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.1
	done
	echo "HAProxy says $1 is $got, not $2"
	return 1
}

# gate_up NAME: gate NAME on its own (fixed) ports, proxy_protocol from
# HAProxy, shutdown_delay=2 so that HAProxy marks it down first.
gate_up() {
	local name=$1
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=on -c log_connections=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" \
		-c proxy_protocol=on -c proxy_protocol_networks=127.0.0.1/32 \
		-c "metrics_listen=127.0.0.1:${METRICS[$name]}" \
		-c shutdown_delay=2 -c shutdown_timeout=20
}

# state KEY: a number from the workload's counts.
state() {
	"$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$WORK/workload.json" "$1"
}

# restart NAME: SIGTERM, HAProxy marks it down, it exits, it starts again,
# HAProxy marks it up.  Prints the reconnects it caused.
restart() {
	local name=$1 pid=${GATE_PID[$1]} before after n0 n1
	before=$(state reconnects)
	n0=$(state statements)
	pg_log_mark
	kill -TERM "$pid"
	check "rolling restart of $name: HAProxy marks it down during shutdown_delay" \
		haproxy_sees "$name" DOWN 2
	check "rolling restart of $name: it exits 0 once its sessions have moved" \
		exits_within "$name" 15
	check "rolling restart of $name: PostgreSQL logged no unexpected EOF" pg_log_clean
	mv "$(gate_log "$name")" "$WORK/$name.before-restart.log"
	gate_up "$name" || return 0
	check "rolling restart of $name: HAProxy marks it up again" \
		haproxy_sees "$name" UP 5
	sleep 1			# a little work through both again
	after=$(state reconnects)
	n1=$(state statements)
	note "restart of $name: $((after - before)) sessions reconnected, $((n1 - n0)) statements meanwhile"
	RESTART_COUNTS+=" $name:reconnects=$((after - before)),statements=$((n1 - n0))"
}

# every_session_back: each writer was ended by a drain at least once, and
# ran statements on its new session after its last reconnect.
every_session_back() {
	"$PYTHON" - "$WORK/workload.json" "$WRITERS" <<-'EOF'
		import json, sys
		st = json.load(open(sys.argv[1]))
		ws = st["workers"]
		bad = [i for i, w in enumerate(ws)
		       if w["reconnects"] < 1 or w["after_last_reconnect"] < 1]
		print("per writer (reconnects, statements since):",
		      [(w["reconnects"], w["after_last_reconnect"]) for w in ws])
		sys.exit(1 if bad or len(ws) != int(sys.argv[2]) else 0)
	EOF
}

statements_ran() {
	[ "$(state statements)" -gt 0 ]
}

none_failed() {
	echo "failed statements: $(state failed)"
	[ "$(state failed)" = 0 ]
}

rows_match() {
	local rows n
	rows=$("$PSQL" -XAtq -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres \
		-c "SELECT count(*) FROM drain_rows")
	n=$(state statements)
	echo "rows in drain_rows: $rows, statements counted: $n"
	[ "$rows" = "$n" ]
}

test_rolling_restart() {
	RESTART_COUNTS=
	pg_admin "CREATE TABLE drain_rows (w int, n int, PRIMARY KEY (w, n))" ||
		die "could not create drain_rows"
	PORT[g1]=$(free_port)
	METRICS[g1]=$(free_port)
	PORT[g2]=$(free_port)
	METRICS[g2]=$(free_port)
	gate_up g1 || return 0
	gate_up g2 || return 0
	haproxy_start
	check "HAProxy sees both gates up" eval 'haproxy_sees g1 UP 5 && haproxy_sees g2 UP 5'
	"$PYTHON" "$CLIENT" workload "$(dsn "${PORT[hap]}")" "$WORK/workload.json" \
		"$WORK/workload.stop" "$WRITERS" >"$WORK/workload.out" 2>&1 &
	WORKLOAD_PID=$!
	sleep 2
	check "the $WRITERS writers are running statements through HAProxy" \
		statements_ran
	restart g1
	restart g2
	touch "$WORK/workload.stop"
	timeout 20 tail --pid="$WORKLOAD_PID" -f /dev/null || kill "$WORKLOAD_PID"
	wait "$WORKLOAD_PID" || true
	WORKLOAD_PID=
	show "$WORK/workload.json"
	note "rolling restart: statements=$(state statements) failed=$(state failed)" \
		"reconnects=$(state reconnects) connect_retries=$(state connect_retries)" \
		"per restart:$RESTART_COUNTS"
	check "no statement failed during the rolling restart" none_failed
	check "every session was ended by a drain and re-established" every_session_back
	check "every statement counted as executed is in the table once (none ran twice or was lost)" \
		rows_match
	haproxy_stop
	gate_stop g1
	gate_stop g2
}

# lib.sh's cleanup, after HAProxy and the clients.
on_exit() {
	local rc=$?
	haproxy_stop
	[ -z "$WORKLOAD_PID" ] || kill "$WORKLOAD_PID" 2>/dev/null || true
	for pid in "${CLIENT_PID[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	(exit "$rc")
	cleanup
}

main() {
	needs pqprobe
	command -v haproxy >/dev/null 2>&1 || missing "haproxy (Debian package haproxy)"
	command -v curl >/dev/null 2>&1 || missing "curl (Debian package curl)"
	"$PYTHON" -c "import psycopg" 2>/dev/null ||
		missing "psycopg for $PYTHON (Debian package python3-psycopg)"
	setup_work
	trap on_exit EXIT
	make_certs
	pg_start
	PSQL=$PG_BINDIR/psql
	note "PostgreSQL on 127.0.0.1:$PG_PORT"

	test_reference
	test_idle_and_transaction
	test_long_transaction
	test_at_once
	test_rolling_restart
	finish
}

main "$@"
