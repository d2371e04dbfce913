#!/bin/bash
# soak.sh: pgbench through pgsslgate over TLS for a while, watching the
# gate's memory and file descriptors.  Two pgbench runs at once against a
# gate in front of a real PostgreSQL 15:
#
#   pgbench -S -C -c SOAK_CONNECT_CLIENTS  a new TLS session per transaction
#   pgbench -S -c SOAK_CLIENTS -j 2        long sessions, many at once
#
# both for SOAK_SECONDS with PGSSLMODE=require.  The gate's RSS and fd count
# are sampled every SOAK_INTERVAL seconds and printed as a table.  Passing:
# no failed transaction and no aborted client in either run; the RSS and fd
# count of the last sample (both runs still going) within a small tolerance
# of the sample at the end of the first minute (the first third of a run
# shorter than three minutes); and afterwards the fd count back to where it
# was before the runs, and a clean exit on SIGTERM.
#
# Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the setup
# itself broke, 1 otherwise.  Run by hand after make:
#   bash tests/soak.sh
#   SOAK_SECONDS=30 SOAK_CLIENTS=50 bash tests/soak.sh     (a short one)
#
#   SOAK_SECONDS=120          how long each pgbench runs
#   SOAK_CLIENTS=200          clients of the long-session pgbench
#   SOAK_CONNECT_CLIENTS=2    clients of the connection-per-transaction one
#   SOAK_INTERVAL=5           seconds between samples
#   SOAK_SCALE=1              pgbench -i scale factor
#   SOAK_RSS_TOLERANCE_KB=2048, SOAK_RSS_TOLERANCE_PCT=10
#                             how far the last RSS may be above the
#                             reference: whichever is larger
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

SOAK_SECONDS=${SOAK_SECONDS:-120}
SOAK_CLIENTS=${SOAK_CLIENTS:-200}
SOAK_CONNECT_CLIENTS=${SOAK_CONNECT_CLIENTS:-2}
SOAK_INTERVAL=${SOAK_INTERVAL:-5}
SOAK_SCALE=${SOAK_SCALE:-1}
SOAK_RSS_TOLERANCE_KB=${SOAK_RSS_TOLERANCE_KB:-2048}
SOAK_RSS_TOLERANCE_PCT=${SOAK_RSS_TOLERANCE_PCT:-10}
SETTLE_SECONDS=${SETTLE_SECONDS:-10}
PGBENCH=$PG_BINDIR/pgbench

GATE=soak
GATE_PORT=
BASE_FDS=
declare -a SAMPLE_T=() SAMPLE_RSS=() SAMPLE_FDS=() SAMPLE_RUNNING=()

gate_pid() {
	echo "${GATE_PID[$GATE]:-0}"
}

tls_query_ok() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(conninfo "$GATE_PORT" verify-full)"
}

start_soak_gate() {
	GATE_PORT=$(free_port)
	gate_start "$GATE" -c listen_addresses=127.0.0.1 -c "port=$GATE_PORT" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=on -c log_connections=off \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key"
}

pgbench_init() {
	"$PGBENCH" -i -q -s "$SOAK_SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
		postgres >"$WORK/pgbench-init.log" 2>&1 || {
		show "$WORK/pgbench-init.log"
		die "pgbench -i failed"
	}
}

# run_pgbench NAME ARGS...: in the background through the gate, over TLS.
declare -A BENCH_PID=()
run_pgbench() {
	local name=$1
	shift
	PGSSLMODE=require "$PGBENCH" -n -S -T "$SOAK_SECONDS" -h 127.0.0.1 \
		-p "$GATE_PORT" -U postgres "$@" postgres >"$WORK/$name.log" 2>&1 &
	BENCH_PID[$name]=$!
}

bench_running() {
	local name
	for name in "${!BENCH_PID[@]}"; do
		kill -0 "${BENCH_PID[$name]}" 2>/dev/null || return 1
	done
}

any_bench_running() {
	local name
	for name in "${!BENCH_PID[@]}"; do
		kill -0 "${BENCH_PID[$name]}" 2>/dev/null && return 0
	done
	return 1
}

# Sample every SOAK_INTERVAL s until both runs are over (or long overdue).
sample_loop() {
	local start=$SECONDS t deadline=$((SOAK_SECONDS * 2 + 120)) pid
	pid=$(gate_pid)
	while any_bench_running; do
		sleep "$SOAK_INTERVAL"
		t=$((SECONDS - start))
		SAMPLE_T+=("$t")
		SAMPLE_RSS+=("$(rss_kb "$pid")")
		SAMPLE_FDS+=("$(fd_count "$pid")")
		if bench_running; then SAMPLE_RUNNING+=(yes); else SAMPLE_RUNNING+=(no); fi
		if [ "$t" -gt "$deadline" ]; then
			note "pgbench still running after $t s: stopping it"
			stop_benches
			break
		fi
	done
}

stop_benches() {
	local name
	for name in "${!BENCH_PID[@]}"; do
		kill -TERM "${BENCH_PID[$name]}" 2>/dev/null || true
	done
}

# bench_clean NAME: exit status 0, transactions done, none failed, no client
# aborted.
bench_clean() {
	local name=$1 status=0 log=$WORK/$1.log processed
	wait "${BENCH_PID[$name]}" || status=$?
	grep -E "number of (transactions actually processed|failed transactions)|aborted|error|tps =|latency average" "$log" || true
	echo "pgbench exit status $status"
	[ "$status" -eq 0 ] || return 1
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	if [ -z "$processed" ] || [ "$processed" -eq 0 ]; then
		echo "no transactions processed"
		return 1
	fi
	grep -q "^number of failed transactions: 0 " "$log" ||
		{ echo "failed transactions (or no such line)"; return 1; }
	! grep -Eqi "aborted|error" "$log" || { echo "aborted clients or errors"; return 1; }
}

bench_summary() {
	note "pgbench $1: $(grep -E '^(number of transactions actually processed|number of failed transactions|tps)' \
		"$WORK/$1.log" | sed 's/number of transactions actually processed/processed/; s/number of failed transactions/failed/' |
		tr '\n' ';' | sed 's/;$//; s/;/; /g')"
}

# The reference sample: the first at or after min(60 s, a third of the run).
REF=
LAST=
pick_samples() {
	local ref_t=$((SOAK_SECONDS / 3)) i
	[ "$ref_t" -le 60 ] || ref_t=60
	REF=
	LAST=
	for i in "${!SAMPLE_T[@]}"; do
		[ "${SAMPLE_RUNNING[$i]}" = yes ] || continue
		if [ -z "$REF" ] && [ "${SAMPLE_T[$i]}" -ge "$ref_t" ]; then
			REF=$i
		fi
		LAST=$i
	done
}

print_samples() {
	local i mark
	note ""
	note "the gate (pid $(gate_pid)) every $SOAK_INTERVAL s; * reference, # last:"
	note "$(printf '%6s %10s %6s  %s' 't (s)' 'RSS kB' fds 'both running')"
	note "$(printf '%6s %10s %6s  %s' before "$BASE_RSS" "$BASE_FDS" -)"
	for i in "${!SAMPLE_T[@]}"; do
		mark=" "
		[ "$i" != "$REF" ] || mark="*"
		[ "$i" != "$LAST" ] || mark="#"
		note "$(printf '%6s %10s %6s  %s %s' "${SAMPLE_T[$i]}" "${SAMPLE_RSS[$i]}" \
			"${SAMPLE_FDS[$i]}" "${SAMPLE_RUNNING[$i]}" "$mark")"
	done
	note "$(printf '%6s %10s %6s  %s' after "$AFTER_RSS" "$AFTER_FDS" -)"
}

rss_steady() {
	local ref=${SAMPLE_RSS[$REF]} last=${SAMPLE_RSS[$LAST]} allowed
	allowed=$((ref * SOAK_RSS_TOLERANCE_PCT / 100))
	[ "$allowed" -ge "$SOAK_RSS_TOLERANCE_KB" ] || allowed=$SOAK_RSS_TOLERANCE_KB
	echo "RSS at ${SAMPLE_T[$REF]} s: $ref kB; at ${SAMPLE_T[$LAST]} s: $last kB; allowed growth $allowed kB"
	[ $((last - ref)) -le "$allowed" ]
}

fds_steady() {
	local ref=${SAMPLE_FDS[$REF]} last=${SAMPLE_FDS[$LAST]} allowed diff
	# Each connect-per-transaction client holds 0 or 2 sockets at a time.
	allowed=$((2 * SOAK_CONNECT_CLIENTS + 2))
	diff=$((last - ref))
	[ "$diff" -ge 0 ] || diff=$((-diff))
	echo "fds at ${SAMPLE_T[$REF]} s: $ref; at ${SAMPLE_T[$LAST]} s: $last; allowed difference $allowed"
	[ "$diff" -le "$allowed" ]
}

fds_back() {
	local tries=$((SETTLE_SECONDS * 10)) n
	while :; do
		n=$(fd_count "$(gate_pid)")
		if [ "$n" -eq "$BASE_FDS" ]; then
			echo "$n file descriptors, as before the runs"
			return 0
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "$n file descriptors after $SETTLE_SECONDS s, $BASE_FDS before the runs"
			ls -l "/proc/$(gate_pid)/fd"
			return 1
		fi
		sleep 0.1
	done
}

main() {
	needs pqprobe
	[ -x "$PGBENCH" ] || missing "$PGBENCH (Debian package postgresql-15)"
	setup_work
	make_certs
	pg_start "max_connections = $((SOAK_CLIENTS + 2 * SOAK_CONNECT_CLIENTS + 20))"
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"
	pgbench_init
	start_soak_gate || finish
	tls_query_ok >/dev/null 2>&1 || true
	sleep 0.5
	BASE_FDS=$(fd_count "$(gate_pid)")
	BASE_RSS=$(rss_kb "$(gate_pid)")
	note "soak: $SOAK_SECONDS s, $SOAK_CLIENTS long sessions + $SOAK_CONNECT_CLIENTS connecting per transaction, TLS"

	run_pgbench connect -C -c "$SOAK_CONNECT_CLIENTS" -j 1
	run_pgbench sessions -c "$SOAK_CLIENTS" -j 2
	sample_loop

	check "pgbench -S -C (a new TLS session per transaction, $SOAK_CONNECT_CLIENTS clients): no failed transaction, no aborted client" \
		bench_clean connect
	check "pgbench -S ($SOAK_CLIENTS TLS sessions, -j 2): no failed transaction, no aborted client" \
		bench_clean sessions
	bench_summary connect
	bench_summary sessions
	pick_samples
	if [ -z "$REF" ] || [ "$REF" = "$LAST" ]; then
		fail "at least two samples while both runs went on (run longer than $((SOAK_INTERVAL * 3)) s)"
	else
		check "the gate's RSS at the last sample is within tolerance of the reference sample" rss_steady
		check "the gate's fd count at the last sample is within tolerance of the reference sample" fds_steady
	fi
	check "after the runs the gate's fd count is back to where it was before" fds_back
	AFTER_FDS=$(fd_count "$(gate_pid)")
	AFTER_RSS=$(rss_kb "$(gate_pid)")
	check "after the soak the proxy still answers a TLS query" tls_query_ok
	print_samples
	gate_stop "$GATE"
	finish
}

main "$@"
