#!/bin/bash
# systemd.sh: pgsslgate under systemd's service protocol, without systemd
# running: a small listener stands in for $NOTIFY_SOCKET and records every
# datagram (READY=1 once listening, RELOADING=1 with MONOTONIC_USEC and
# READY=1 around a SIGHUP, STOPPING=1 on SIGTERM, STATUS= lines), and
# socket activation hands the listening sockets in through LISTEN_FDS, by
# systemd-socket-activate and by a hand-made launcher (python3 exec'ing the
# gate with fd 3 inherited), with real libpq clients over TLS and SCRAM to a
# real PostgreSQL 15 through the inherited sockets.
# Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the
# setup itself broke, 1 otherwise.
#
# Run by hand after make check (or make tests/pqprobe):
#   bash tests/systemd.sh
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PY=/usr/bin/python3
PASSWORD=gate-secret-7

needs pqprobe
[ -x "$PY" ] || missing "/usr/bin/python3 (Debian package python3)"
command -v systemd-socket-activate >/dev/null 2>&1 ||
	missing "systemd-socket-activate (Debian package systemd)"
setup_work
make_certs
pg_start

# SCRAM for every TCP login: the sessions through the gate authenticate as
# a client of a real deployment would.
as_pg "$PG_BINDIR/psql" -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres \
	-c "SET password_encryption = 'scram-sha-256'" \
	-c "ALTER ROLE postgres PASSWORD '$PASSWORD'" >"$WORK/psql.log" 2>&1 ||
	{ show "$WORK/psql.log"; die "could not set a password"; }
cat >"$PG_DIR/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
EOF
as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >/dev/null 2>&1 ||
	die "could not reload PostgreSQL"
sleep 0.3

# ---- helpers ------------------------------------------------------------------

# The stand-in for systemd's notify socket: one line per datagram, the
# receiver's CLOCK_MONOTONIC in microseconds first, then the datagram with
# its newlines as '|'.
cat >"$WORK/notify_listener.py" <<'EOF'
import socket, sys, time
name, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + name[1:] if name.startswith("@") else name)
open(out, "w").close()
with open(out, "a") as f:
    while True:
        d = s.recv(65536)
        f.write("%d %s\n" % (time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                             // 1000, d.decode().replace("\n", "|")))
        f.flush()
EOF

# A hand-made socket activation: MODE listen (fd 3 listening on PORT,
# LISTEN_FDS=1, LISTEN_PID ours), otherpid (LISTEN_PID someone else's),
# badfds (LISTEN_FDS not a number), notlistening (fd 3 bound, not
# listening); then exec the rest of the command line, keeping the pid.
cat >"$WORK/launcher.py" <<'EOF'
import os, socket, sys
mode, port, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
if mode != "notlistening":
    s.listen(64)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
    s.close()
os.set_inheritable(3, True)
env = dict(os.environ)
env["LISTEN_FDS"] = "x1" if mode == "badfds" else "1"
env["LISTEN_PID"] = str(os.getpid() + (1 if mode == "otherpid" else 0))
os.execve(argv[0], argv, env)
EOF

declare -A LISTENER_PID=()
NOTIFY_LOG=

# notify_start NAME: a listener on NAME (@abstract or a path); its lines in
# $NOTIFY_LOG.
notify_start() {
	local name=$1
	NOTIFY_LOG=$WORK/notify-${name//[@\/]/_}.log
	"$PY" "$WORK/notify_listener.py" "$name" "$NOTIFY_LOG" &
	LISTENER_PID[$name]=$!
	for _ in $(seq 1 100); do
		[ -f "$NOTIFY_LOG" ] && return 0
		sleep 0.05
	done
	die "the notify listener on $name did not start"
}

notify_stop() {
	local pid
	for pid in "${LISTENER_PID[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	LISTENER_PID=()
}
trap 'rc=$?; notify_stop; (exit $rc); cleanup' EXIT

# notify_has N PATTERN...: within 5 s, at least N datagrams of $NOTIFY_LOG
# match every PATTERN (extended regular expressions); shows the log if not.
notify_has() {
	local want=$1 tries=100 got
	shift
	while :; do
		got=$(log_match "$NOTIFY_LOG" "$@" | grep -c . || true)
		[ "$got" -ge "$want" ] && { log_match "$NOTIFY_LOG" "$@"; return 0; }
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "$got (not $want) datagrams match all of:"
			printf '    %s\n' "$@"
			echo "all datagrams:"
			cat "$NOTIFY_LOG"
			return 1
		fi
		sleep 0.05
	done
}

# notify_count PATTERN: how many datagrams match now.
notify_count() {
	log_match "$NOTIFY_LOG" "$1" | grep -c . || true
}

tls_conninfo() {
	conninfo "$1" verify-full "password=$PASSWORD"
}

# probe PORT: a libpq session over TLS (verify-full) and SCRAM, one query.
probe() {
	"$PQPROBE" --expect connected --ssl 1 --query "select 6*7" \
		--expect-value 42 "$(tls_conninfo "$1")"
}

refused_tcp() {
	! "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 2)" "$1" 2>/dev/null
}

GATE_ARGS=(-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" -c ssl=on
	-c require_ssl=on -c "ssl_cert_file=$CERTS/server-chain.crt"
	-c "ssl_key_file=$CERTS/server.key" -c log_connections=on)

# ---- 1: the notify protocol ---------------------------------------------------

note "notify protocol: READY, RELOADING, STOPPING and STATUS"
NAME=@pgsslgate-test-$$
notify_start "$NAME"
P=$(free_port)
conf=$WORK/gate.conf
printf 'ssl = on\n' >"$conf"
GATE_WRAPPER="env NOTIFY_SOCKET=$NAME" gate_start notify "$conf" \
	-c listen_addresses=127.0.0.1 -c "port=$P" "${GATE_ARGS[@]}" || true

check "READY=1 arrives once the gate listens, in one datagram with its STATUS" \
	notify_has 1 '^[0-9]+ READY=1\|STATUS=ready: ssl = on, require_ssl = on, backend 127\.0\.0\.1:[0-9]+, [0-9]+ workers?\|$'
check "a client gets through once READY=1 was sent (TLS, SCRAM)" probe "$P"
check "exactly one READY=1 at start-up" test "$(notify_count 'READY=1')" -eq 1

kill -HUP "${GATE_PID[notify]}"
check "SIGHUP: RELOADING=1 with MONOTONIC_USEC and a STATUS line" \
	notify_has 1 '^[0-9]+ RELOADING=1\|MONOTONIC_USEC=[0-9]+\|STATUS=reloading the configuration\|$'
# MONOTONIC_USEC is CLOCK_MONOTONIC, which systemd 253 compares with its
# own: the listener's clock at receipt is later, and by little.
mono_close() {
	local line sent got
	line=$(log_match "$NOTIFY_LOG" 'RELOADING=1' | tail -1)
	got=${line%% *}
	sent=$(sed -E 's/.*MONOTONIC_USEC=([0-9]+).*/\1/' <<<"$line")
	echo "sent $sent, received at $got"
	[ "$sent" -le "$got" ] && [ $((got - sent)) -lt 2000000 ]
}
check "MONOTONIC_USEC is CLOCK_MONOTONIC when the reload began" mono_close
check "after the reload: READY=1 again, STATUS says reloaded" \
	notify_has 1 '^[0-9]+ READY=1\|STATUS=configuration reloaded: ssl = on'
reloaded_after_reloading() {
	awk '/RELOADING=1/ { r = NR } /READY=1\|STATUS=configuration reloaded/ { d = NR }
	    END { exit !(r && d > r) }' "$NOTIFY_LOG"
}
check "the READY=1 of the reload comes after its RELOADING=1" reloaded_after_reloading

# A reload that fails still ends "reloading" for systemd, with the reason.
printf 'ssl = maybe\n' >"$conf"
kill -HUP "${GATE_PID[notify]}"
check "a failed reload: RELOADING=1, then READY=1 with STATUS=reload failed and the reason" \
	notify_has 1 '^[0-9]+ READY=1\|STATUS=reload failed, serving the previous configuration: .*ssl'
check "two RELOADING=1 for two SIGHUPs" notify_has 2 'RELOADING=1'
check "still serving after the failed reload" probe "$P"
printf 'ssl = on\n' >"$conf"

# SIGTERM with a session open: STOPPING=1 at once, the session finishes
# (in a transaction: the drain would end an idle one at once).
"$PQPROBE" --expect connected --ssl 1 --query "begin; select 1" --expect-value 1 \
	--hold-file "$WORK/release" --timeout 20 "$(tls_conninfo "$P")" \
	>"$WORK/held.log" 2>&1 &
held=$!
for _ in $(seq 1 100); do grep -q holding "$WORK/held.log" && break; sleep 0.05; done
kill -TERM "${GATE_PID[notify]}"
check "SIGTERM: STOPPING=1, STATUS says draining and how many sessions" \
	notify_has 1 '^[0-9]+ STOPPING=1\|STATUS=draining: waiting up to 30 s for 1 connection\|$'
touch "$WORK/release"
check "the session open at SIGTERM finishes" wait "$held"
gate_stop notify
notify_stop

# A path rather than an abstract name.
NAME=$WORK/notify.sock
notify_start "$NAME"
P=$(free_port)
GATE_WRAPPER="env NOTIFY_SOCKET=$NAME" gate_start notifypath \
	-c listen_addresses=127.0.0.1 -c "port=$P" "${GATE_ARGS[@]}" || true
check "NOTIFY_SOCKET as a path: READY=1" notify_has 1 'READY=1\|STATUS=ready'
gate_stop notifypath
check "NOTIFY_SOCKET as a path: STOPPING=1 (SIGTERM, no session open)" \
	notify_has 1 'STOPPING=1\|STATUS=draining: waiting up to 30 s for 0 connections'
notify_stop

# A value systemd never sets: a warning, and the gate runs all the same.
P=$(free_port)
GATE_WRAPPER="env NOTIFY_SOCKET=relative/name" gate_start notifybad \
	-c listen_addresses=127.0.0.1 -c "port=$P" "${GATE_ARGS[@]}" || true
check "a malformed NOTIFY_SOCKET is named in a warning" \
	log_has notifybad "WARNING: .*not telling systemd.*NOTIFY_SOCKET must be a path"
check "and the gate serves anyway" probe "$P"
gate_stop notifybad

# ---- 2: socket activation -----------------------------------------------------

note "socket activation: systemd-socket-activate, two sockets, two workers"
NAME=@pgsslgate-act-$$
notify_start "$NAME"
A1=$(free_port)
A2=$(free_port)
UNUSED=$(free_port)
GATE_WRAPPER="systemd-socket-activate -l 127.0.0.1:$A1 -l 127.0.0.1:$A2 -E NOTIFY_SOCKET=$NAME" \
	gate_launch act -c listen_addresses=127.0.0.1 -c "port=$UNUSED" \
	-c workers=2 "${GATE_ARGS[@]}"
# systemd-socket-activate execs the gate on the first connection; that
# connection waits in the backlog and is the gate's first client.
for _ in $(seq 1 100); do
	grep -q "Listening on 127.0.0.1:$A2" "$(gate_log act)" 2>/dev/null && break
	sleep 0.05
done
check "the first client, which started the gate, gets through socket 1" probe "$A1"
gate_wait_ready act || true
check "the gate says it accepts on both sockets from systemd" \
	log_has act "listening on 127\.0\.0\.1 port $A1 \(socket 3 from systemd\)"
check "... the second one as socket 4" \
	log_has act "listening on 127\.0\.0\.1 port $A2 \(socket 4 from systemd\)"
check "... and that listen_addresses and port are not used" \
	log_has act "socket activation: accepting on the 2 sockets systemd passed"
check "port from the configuration is not bound" refused_tcp "$UNUSED"
check "READY=1 under socket activation too" notify_has 1 'READY=1\|STATUS=ready: .*2 workers'
check "a client through socket 2" probe "$A2"
many() {
	local pids=() i rc=0
	for i in $(seq 1 12); do
		probe "$([ $((i % 2)) = 0 ] && echo "$A1" || echo "$A2")" >"$WORK/many-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { rc=1; cat "$WORK/many-$((i + 1)).log"; }
	done
	return "$rc"
}
check "12 concurrent clients over both inherited sockets at once" many
kill -HUP "${GATE_PID[act]}"
check "SIGHUP keeps the inherited sockets: READY=1 after the reload" \
	notify_has 1 'READY=1\|STATUS=configuration reloaded'
check "a client after the reload" probe "$A1"
# Two workers, a copy of each socket each, and the notify socket: 5.
check "the originals of systemd's sockets are closed once each worker has its copy" \
	bash -c "ls -l /proc/${GATE_PID[act]}/fd; n=\$(ls -l /proc/${GATE_PID[act]}/fd | grep -c socket:); echo \"\$n sockets\"; [ \"\$n\" -eq 5 ]"
gate_stop act
check "STOPPING=1 on SIGTERM under socket activation" notify_has 1 'STOPPING=1'
notify_stop

note "socket activation: a hand-made LISTEN_FDS launcher"
L=$(free_port)
GATE_WRAPPER="$PY $WORK/launcher.py listen $L" gate_start launch \
	-c listen_addresses=127.0.0.1 -c "port=$(free_port)" "${GATE_ARGS[@]}" || true
check "LISTEN_PID = our pid, LISTEN_FDS = 1: accepts on fd 3" \
	log_has launch "port $L \(socket 3 from systemd\)"
check "a libpq client through the inherited socket (TLS, SCRAM)" probe "$L"
check "wrong password through the inherited socket is refused by PostgreSQL" \
	"$PQPROBE" --expect refused --error-contains "password authentication failed" \
	"$(conninfo "$L" verify-full password=wrong)"
gate_stop launch
check "after the gate stopped, nothing holds the inherited socket" refused_tcp "$L"

L=$(free_port)
P=$(free_port)
GATE_WRAPPER="$PY $WORK/launcher.py otherpid $L" gate_start otherpid \
	-c listen_addresses=127.0.0.1 -c "port=$P" "${GATE_ARGS[@]}" || true
check "LISTEN_PID of another process: the gate binds its own port" probe "$P"
check "... and does not claim the sockets" \
	bash -c "! grep -q 'from systemd' '$(gate_log otherpid)'"
gate_stop otherpid

GATE_WRAPPER="$PY $WORK/launcher.py badfds $(free_port)" expect_start_failure \
	"LISTEN_FDS that is not a number stops start-up, named" \
	"FATAL: .*LISTEN_FDS is not a number of sockets" "${GATE_ARGS[@]}"
GATE_WRAPPER="$PY $WORK/launcher.py notlistening $(free_port)" expect_start_failure \
	"a descriptor that is not a listening socket stops start-up, named" \
	"FATAL: .*descriptor 3 \(of LISTEN_FDS = 1\) is not a listening socket" \
	"${GATE_ARGS[@]}"

finish
