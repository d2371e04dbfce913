#!/bin/bash
# faults.sh: pgsslgate under faults, between real clients and a real
# PostgreSQL 15: a backend killed or restarted under a session, a client
# that resets in the TLS handshake, stalls in the startup packet, never
# reads its result, writes while its backend reads nothing, or opens a
# thousand connections and drops them.  After each fault the gate must hold
# no more file descriptors than it did at the baseline and still answer a
# TLS query.  Last, a gate started with a small open file limit
# (prlimit) must neither spin nor flood its log while accept() fails with
# EMFILE, and recover afterwards.  Prints TAP-ish lines; exits 0 when
# every test passed, 77 when a prerequisite is missing (a failure instead
# when CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make check (or make tests/pqprobe tests/rawprobe):
#   bash tests/faults.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# Sizes, for a quick run or a harder one:
#   FAULT_CONNS=1000       connections the flood opens and drops
#   FAULT_RESETS=50        connections reset in the TLS handshake
#   NOREAD_SECONDS=3       how long the RSS of a never-reading client is watched
#   RSS_GROWTH_MAX_KB=2048 how much the gate's RSS may grow meanwhile
#   SETTLE_SECONDS=5       how long the fd count has to come back
#   FAULT_FD_LIMIT=64      open file limit of the gate that runs out of them
#   FAULT_EMFILE_SECONDS=2 how long it stays out of them
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

FAULT_CONNS=${FAULT_CONNS:-1000}
FAULT_RESETS=${FAULT_RESETS:-50}
NOREAD_SECONDS=${NOREAD_SECONDS:-3}
RSS_GROWTH_MAX_KB=${RSS_GROWTH_MAX_KB:-2048}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}
FAULT_FD_LIMIT=${FAULT_FD_LIMIT:-64}
FAULT_EMFILE_SECONDS=${FAULT_EMFILE_SECONDS:-2}
AUTH_TIMEOUT_S=2
PSQL=$PG_BINDIR/psql

GATE=faults			# the gate's name for lib.sh
GATE_PORT=
METRICS_PORT=			# its metrics_listen port
BASE_FDS=			# the gate's fd count at the baseline
BASE_RSS=
declare -a TABLE=()		# "fault|fds|rss" after each fault

# ---- the gate's resources ------------------------------------------------------

gate_pid() {
	echo "${GATE_PID[$GATE]:-0}"
}

gate_running() {
	kill -0 "$(gate_pid)" 2>/dev/null
}

# What the gate holds, for a failure's output.
show_gate_fds() {
	local pid
	pid=$(gate_pid)
	echo "file descriptors of the gate (pid $pid):"
	find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf "%f -> %l\n" 2>&1 | sort -n
	echo "its TCP sockets:"
	ss -tanp 2>/dev/null | grep -E "pid=$pid," || true
}

# fds_back: the fd count returns to the baseline within SETTLE_SECONDS.
fds_back() {
	local tries=$((SETTLE_SECONDS * 10)) n
	while :; do
		if ! gate_running; then
			echo "the gate is not running any more"
			tail -20 "$(gate_log "$GATE")"
			return 1
		fi
		n=$(fd_count "$(gate_pid)")
		if [ "$n" -eq "$BASE_FDS" ]; then
			echo "$n file descriptors, as at the baseline"
			return 0
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "$n file descriptors after ${SETTLE_SECONDS} s, $BASE_FDS at the baseline"
			show_gate_fds
			return 1
		fi
		sleep 0.1
	done
}

tls_query_ok() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(conninfo "$GATE_PORT" verify-full)"
}

# after_fault WHAT: the checks every fault ends with.
after_fault() {
	local fds rss
	check "after $1: no leaked file descriptors (back to the baseline's $BASE_FDS)" fds_back
	fds=$(fd_count "$(gate_pid)")
	rss=$(rss_kb "$(gate_pid)")
	check "after $1: the proxy still answers a TLS query" tls_query_ok
	check "after $1: the gate counts no connection open (pgsslgate_connections_active 0)" \
		wait_for "$SETTLE_SECONDS" no_active_connections
	TABLE+=("$1|$fds|$rss")
}

# The gate's own count of open connections, from its metrics endpoint (an
# HTTP/1.0 GET over bash's /dev/tcp).
active_connections() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" || exit 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 5 cat <&3
	) | tr -d '\r' | awk '$1 == "pgsslgate_connections_active" { print $2 }'
}

no_active_connections() {
	[ "$(active_connections)" = 0 ]
}

# ---- small helpers -------------------------------------------------------------

# pg_sql SQL: run SQL directly on PostgreSQL (not through the gate).
pg_sql() {
	"$PSQL" -X -A -t -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"
}

# wait_for SECONDS COMMAND...: COMMAND succeeds within SECONDS (every 0.1 s).
wait_for() {
	local tries=$(($1 * 10))
	shift
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.1
	done
}

# wait_pid SECONDS PID: PID has exited within SECONDS; its status in WAITED.
WAITED=
wait_pid() {
	local tries=$(($1 * 20)) pid=$2
	while kill -0 "$pid" 2>/dev/null; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			return 1
		fi
		sleep 0.05
	done
	WAITED=0
	wait "$pid" || WAITED=$?
	return 0
}

# stop_bg PID: end a background client of ours that is still running.
stop_bg() {
	if kill -0 "$1" 2>/dev/null; then
		kill -TERM "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

file_has() {
	grep -q -- "$2" "$1"
}

backend_count() {
	pg_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'"
}

backend_gone() {
	[ "$(backend_count "$1")" = 0 ]
}

# ---- the gate ------------------------------------------------------------------

start_fault_gate() {
	# Under AddressSanitizer freed memory sits in a quarantine, so RSS
	# would grow with churn however bounded the live memory is; these
	# tests weigh the gate, so the quarantine is switched off.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
	GATE_PORT=$(free_port)
	METRICS_PORT=$(free_port)
	gate_start "$GATE" -c listen_addresses=127.0.0.1 -c "port=$GATE_PORT" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=off -c log_connections=off -c workers=2 \
		-c "authentication_timeout=${AUTH_TIMEOUT_S}s" \
		-c "metrics_listen=127.0.0.1:$METRICS_PORT" \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key"
}

# The baseline: both workers have served TLS and plaintext sessions once, so
# whatever is made lazily exists; then the fd count must be steady.
take_baseline() {
	local i
	for i in 1 2 3 4 5 6; do
		tls_query_ok >/dev/null 2>&1 || true
		"$PQPROBE" --ssl 0 --query "SELECT 1" "$(conninfo "$GATE_PORT" disable)" \
			>/dev/null 2>&1 || true
	done
	sleep 0.5
	BASE_FDS=$(fd_count "$(gate_pid)")
	BASE_RSS=$(rss_kb "$(gate_pid)")
	note "baseline: $BASE_FDS file descriptors, RSS $BASE_RSS kB (pid $(gate_pid))"
	TABLE+=("baseline|$BASE_FDS|$BASE_RSS")
	check "the baseline is steady: a TLS query and the same fd count afterwards" \
		steady_baseline
}

steady_baseline() {
	tls_query_ok && fds_back
}

# ---- faults --------------------------------------------------------------------

# A psql over TLS runs pg_sleep(30); its backend is terminated under it.
test_backend_killed() {
	local victim=$WORK/victim.out held=$WORK/held.out release=$WORK/release1
	local vpid hpid t0 elapsed

	"$PSQL" -X -v ON_ERROR_STOP=1 \
		"$(conninfo "$GATE_PORT" verify-full application_name=fault_victim)" \
		-c "SELECT pg_sleep(30)" >"$victim" 2>&1 &
	vpid=$!
	"$PQPROBE" --ssl 1 --query "SELECT 42" --expect-value 42 --timeout 30 \
		--hold-file "$release" "$(conninfo "$GATE_PORT" verify-full)" >"$held" 2>&1 &
	hpid=$!
	if ! wait_for 10 pg_sql_has_sleeper || ! wait_for 10 file_has "$held" "holding until"; then
		fail "a TLS session running pg_sleep(30) and a second held session are set up" "$victim"
		show "$held"
		stop_bg "$vpid"
		touch "$release"
		stop_bg "$hpid"
		return 0
	fi
	t0=$EPOCHREALTIME
	pg_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'fault_victim'" >/dev/null
	if wait_pid 5 "$vpid"; then
		elapsed=$(since "$t0")
		check "backend terminated under a TLS session: psql ends within 2 s ($elapsed s) with an error" \
			victim_ended "$WAITED" "$elapsed" "$victim"
	else
		fail "backend terminated under a TLS session: psql ends within 2 s (still running after 5 s)" \
			"$victim"
		stop_bg "$vpid"
	fi
	touch "$release"
	if wait_pid 10 "$hpid"; then
		check "another session held open meanwhile runs its query again afterwards" \
			exited_zero "$WAITED" "$held"
	else
		fail "another session held open meanwhile runs its query again afterwards (hung)" "$held"
		stop_bg "$hpid"
	fi
	after_fault "a backend terminated mid-session"
}

pg_sql_has_sleeper() {
	[ "$(pg_sql "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'fault_victim' AND query LIKE '%pg_sleep%'")" = 1 ]
}

# victim_ended STATUS ELAPSED FILE: psql failed, in time, with the FATAL that
# PostgreSQL sent (so the gate relayed it before closing).
victim_ended() {
	cat "$3"
	echo "psql exit status $1 after $2 s"
	[ "$1" -ne 0 ] || { echo "psql succeeded?"; return 1; }
	num_between "$2" 0 2 || { echo "too slow"; return 1; }
	grep -q "terminating connection due to administrator command" "$3" ||
		{ echo "no FATAL from PostgreSQL relayed"; return 1; }
}

exited_zero() {
	cat "$2"
	[ "$1" -eq 0 ]
}

# pg_ctl restart under a held session; new sessions must work afterwards.
test_backend_restart() {
	local held=$WORK/held2.out release=$WORK/release2 hpid

	"$PQPROBE" --ssl 1 --query "SELECT 7" --expect-value 7 --timeout 30 \
		--hold-file "$release" "$(conninfo "$GATE_PORT" verify-full)" >"$held" 2>&1 &
	hpid=$!
	wait_for 10 file_has "$held" "holding until" || true
	if ! as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
		-m fast -w -t 60 restart >"$WORK/pg_ctl.log" 2>&1; then
		show "$WORK/pg_ctl.log"
		die "pg_ctl restart failed"
	fi
	pg_wait_ready
	touch "$release"
	if wait_pid 10 "$hpid"; then
		check "a session open across the backend restart gets an error on its next query, not a hang" \
			held_failed "$WAITED" "$held"
	else
		fail "a session open across the backend restart gets an error on its next query, not a hang (hung)" \
			"$held"
		stop_bg "$hpid"
	fi
	check "after the backend restart a new TLS session runs SELECT 1" tls_query_ok

	# While it is down, a client is told so at once, not left waiting.
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop \
		>"$WORK/pg_ctl.log" 2>&1 || die "pg_ctl stop failed"
	PG_RUNNING=0
	check "with the backend stopped, a TLS client is refused saying it could not connect to the backend" \
		"$PQPROBE" --expect refused --timeout 5 \
		--error-contains "could not connect to backend" \
		"$(conninfo "$GATE_PORT" verify-full connect_timeout=5)"
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
		-w -t 60 start >"$WORK/pg_ctl.log" 2>&1 || die "pg_ctl start failed"
	PG_RUNNING=1
	pg_wait_ready
	after_fault "a backend restart"
}

held_failed() {
	cat "$2"
	echo "pqprobe exit status $1"
	[ "$1" -ne 0 ] && grep -q "query failed" "$2"
}

test_handshake_reset() {
	check "$FAULT_RESETS clients reset the connection halfway through their ClientHello" \
		env RAWPROBE_COUNT="$FAULT_RESETS" "$RAWPROBE" tls-reset 127.0.0.1 "$GATE_PORT"
	after_fault "$FAULT_RESETS resets during the TLS handshake"
}

test_half_close() {
	check "a plaintext client that sends a query and then shutdown(SHUT_WR) still gets the result, as from PostgreSQL directly" \
		"$RAWPROBE" --timeout 10 halfclose 127.0.0.1 "$GATE_PORT"
	after_fault "a client half-close"
}

# closed_between FILE MIN MAX: rawprobe said "closed after S s", MIN <= S < MAX.
closed_between() {
	local secs
	cat "$1"
	secs=$(sed -n 's/^closed after \([0-9.]*\) s$/\1/p' "$1" | tail -1)
	[ -n "$secs" ] || { echo "no 'closed after' line"; return 1; }
	num_between "$secs" "$2" "$3"
}

test_half_startup() {
	local out=$WORK/half.out lo hi
	lo=$(awk -v t="$AUTH_TIMEOUT_S" 'BEGIN { print t * 0.75 }')
	hi=$((AUTH_TIMEOUT_S * 2))
	"$RAWPROBE" --timeout 10 half 127.0.0.1 "$GATE_PORT" >"$out" 2>&1 || true
	check "half a startup packet, then silence: closed after authentication_timeout (${AUTH_TIMEOUT_S} s), within $lo to $hi s" \
		closed_between "$out" "$lo" "$hi"
	"$RAWPROBE" --timeout 10 tls-half 127.0.0.1 "$GATE_PORT" >"$out" 2>&1 || true
	check "after a TLS handshake, half a startup packet, then silence: closed after authentication_timeout, within $lo to $hi s" \
		closed_between "$out" "$lo" "$hi"
	after_fault "half a startup packet"
}

# pressure_case MODE LABEL WAIT: a client that does not read (noread: a big
# COPY ... TO STDOUT, never read) or a backend that does not (push: the
# client writes while the backend sleeps).  The gate must push back on the
# sender instead of buffering: the backend is seen in state active/WAIT (for
# noread ClientWrite: blocked writing to the gate) and the gate's RSS stays
# flat.
pressure_case() {
	local mode=$1 label=$2 want=$3 out=$WORK/$1.out pid rss0 max=0 now i
	local samples=() wait_event

	rss0=$(rss_kb "$(gate_pid)")
	"$RAWPROBE" --timeout $((NOREAD_SECONDS + 5)) "$mode" 127.0.0.1 "$GATE_PORT" \
		>"$out" 2>&1 &
	pid=$!
	if ! wait_for 10 file_has "$out" "query sent\|pushing"; then
		fail "$label: the client logs in and starts" "$out"
		stop_bg "$pid"
		return 0
	fi
	sleep 1
	for ((i = 0; i < NOREAD_SECONDS * 2; i++)); do
		now=$(rss_kb "$(gate_pid)")
		samples+=("$now")
		[ "$now" -le "$max" ] || max=$now
		sleep 0.5
	done
	wait_event=$(pg_sql "SELECT state || '/' || coalesce(wait_event, '-')
		FROM pg_stat_activity WHERE application_name = 'rawprobe'")
	kill -0 "$pid" 2>/dev/null ||
		wait_event="$wait_event (but the client had already finished: too slow a machine?)"
	note "$label: gate RSS $rss0 kB before; then ${samples[*]} kB; backend $wait_event"
	check "$label: the backend is still at it (state/wait_event $want, seen $wait_event)" \
		test "$wait_event" = "$want"
	check "$label: the gate's RSS grows by less than $RSS_GROWTH_MAX_KB kB over $((NOREAD_SECONDS + 1)) s (grew $((max - rss0)) kB)" \
		test $((max - rss0)) -lt "$RSS_GROWTH_MAX_KB"
	if wait_pid $((NOREAD_SECONDS + 10)) "$pid"; then
		check "$label: the client logged in, did its part, and went away" \
			exited_zero "$WAITED" "$out"
		note "$label: $(grep -E '^(pushed|query sent)' "$out" | head -1)"
	else
		fail "$label: the client logged in, did its part, and went away (hung)" "$out"
		stop_bg "$pid"
	fi
	check "$label: once the client is gone, its backend session ends too" \
		wait_for "$SETTLE_SECONDS" backend_gone rawprobe
	after_fault "$label"
}

test_noread() {
	pressure_case noread "a plaintext client that never reads a 200 MB COPY" \
		active/ClientWrite
	pressure_case tls-noread "a TLS client that never reads a 200 MB COPY" \
		active/ClientWrite
}

test_push() {
	pressure_case push "a plaintext client writing while its backend reads nothing" \
		active/PgSleep
	pressure_case tls-push "a TLS client writing while its backend reads nothing" \
		active/PgSleep
}

# cpu_ticks PID: user + system time, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# A gate whose open file limit runs out: accept() fails with EMFILE while
# the connections wait in the listen queue.  It must neither spin nor log
# every failed accept, and must recover once they are gone.
test_fd_exhaustion() {
	local name=fdlimit port pid base hz cpu0 cpu1 log n0 n1 out=$WORK/fdlimit-flood.out
	port=$(free_port)
	GATE_WRAPPER="prlimit --nofile=$FAULT_FD_LIMIT:$FAULT_FD_LIMIT" \
		gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=$port" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=off -c log_connections=off -c workers=2 \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" || return 0
	pid=${GATE_PID[$name]}
	log=$(gate_log "$name")
	"$PQPROBE" --ssl 1 --query "SELECT 1" "$(conninfo "$port" verify-full)" >/dev/null 2>&1 || true
	sleep 0.3
	base=$(fd_count "$pid")
	hz=$(getconf CLK_TCK)
	n0=$(grep -c "could not accept" "$log" || true)
	cpu0=$(cpu_ticks "$pid")
	RAWPROBE_COUNT=$((FAULT_FD_LIMIT * 2)) RAWPROBE_HOLD_MS=$((FAULT_EMFILE_SECONDS * 1000)) \
		"$RAWPROBE" --timeout 30 flood 127.0.0.1 "$port" >"$out" 2>&1 || true
	cpu1=$(cpu_ticks "$pid")
	n1=$(grep -c "could not accept" "$log" || true)
	note "open file limit $FAULT_FD_LIMIT, $base fds at rest: $((FAULT_FD_LIMIT * 2)) connections held" \
		"$FAULT_EMFILE_SECONDS s cost the gate $((cpu1 - cpu0)) ticks of CPU ($hz a second)" \
		"and $((n1 - n0)) 'could not accept' log lines"
	# At rest it has nothing to do: accepting what fits is a tick or two.
	check "out of file descriptors (limit $FAULT_FD_LIMIT, $((FAULT_FD_LIMIT * 2)) connections waiting ${FAULT_EMFILE_SECONDS} s): the gate does not spin (under 0.1 s of CPU; used $((cpu1 - cpu0)) ticks at $hz/s)" \
		test $(((cpu1 - cpu0) * 10)) -lt "$hz"
	check "out of file descriptors: 'could not accept a connection' is not logged for every failed accept (at most 20 lines; logged $((n1 - n0)))" \
		test $((n1 - n0)) -le 20
	check "out of file descriptors: once the connections are gone the fd count is back to $base" \
		wait_for "$SETTLE_SECONDS" test_fds "$pid" "$base"
	check "out of file descriptors: afterwards the gate answers a TLS query" \
		"$PQPROBE" --ssl 1 --query "SELECT 1" --expect-value 1 "$(conninfo "$port" verify-full)"
	# Its log may hold a million lines: keep only the first and last few.
	{ head -20 "$log"; echo "[...]"; tail -20 "$log"; } >"$log.short"
	mv "$log.short" "$log"
	gate_stop "$name"
}

test_fds() {
	[ "$(fd_count "$1")" -eq "$2" ]
}

test_flood() {
	local out=$WORK/flood.out
	check "$FAULT_CONNS connections opened at once and dropped without a word (every other one reset)" \
		env RAWPROBE_COUNT="$FAULT_CONNS" "$RAWPROBE" --timeout 30 flood 127.0.0.1 "$GATE_PORT"
	cp "$CHECK_OUT" "$out"
	after_fault "$FAULT_CONNS connections dropped without a word"
}

print_table() {
	local row
	note ""
	note "the gate's file descriptors and RSS after each fault:"
	note "$(printf '%-58s %6s %9s' fault fds 'RSS kB')"
	for row in "${TABLE[@]}"; do
		IFS='|' read -r what fds rss <<<"$row"
		note "$(printf '%-58s %6s %9s' "$what" "$fds" "$rss")"
	done
}

main() {
	needs pqprobe rawprobe
	[ -x "$PSQL" ] || missing "$PSQL (Debian package postgresql-client-15)"
	command -v ss >/dev/null 2>&1 || missing "ss (Debian package iproute2)"
	command -v prlimit >/dev/null 2>&1 || missing "prlimit (Debian package util-linux)"
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"
	start_fault_gate || finish
	take_baseline

	test_backend_killed
	test_backend_restart
	test_handshake_reset
	test_half_close
	test_half_startup
	test_noread
	test_push
	test_flood
	test_fd_exhaustion

	gate_stop "$GATE"
	print_table
	finish
}

main "$@"
