#!/bin/bash
# limits.sh: pgsslgate's bounds, between real clients and a real
# PostgreSQL 15.  After a client's half-close, an answer that takes long
# (pg_sleep(13)) or is read slowly (a 40 MB COPY) still arrives whole, in
# plaintext and over TLS after close_notify, while half_close_timeout still
# ends a backend that stays silent.  Out of file descriptors, a client gets
# 53300 rather than silence, and the descriptor budget counts the
# over-limit band.  max_startup_connections and
# max_startup_connections_per_host refuse with 53300, say which cap, log
# once a second at most, and show in the metrics.  Prints TAP-ish lines;
# exits 0 when every test passed, 77 when a prerequisite is missing (a
# failure instead when CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make check (or make tests/pqprobe tests/rawprobe):
#   bash tests/limits.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# A COPY of 40,040,000 bytes, read at 3 MiB/s: about 13 s, more than the
# 10 s the gate once gave a backend after the client's end.
COPY_ROWS=40000
COPY_BYTES=$((COPY_ROWS * 1001))
COPY_SQL="COPY (SELECT repeat('x', 1000) FROM generate_series(1, $COPY_ROWS)) TO STDOUT"
SLOW_KBPS=3072
FD_LIMIT=64

declare -A PORT=() METRICS=()

# start NAME ARGS...: a TLS gate in front of PostgreSQL on fresh ports, its
# metrics on METRICS[NAME]; ARGS override.
start() {
	local name=$1
	shift
	PORT[$name]=$(free_port)
	METRICS[$name]=$(free_port)
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=off -c log_connections=on \
		-c "metrics_listen=127.0.0.1:${METRICS[$name]}" \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" "$@"
}

# metric NAME SERIES: the value of one series (name and labels as served).
metric() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/${METRICS[$1]}" || exit 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 5 cat <&3
	) | tr -d '\r' | awk -v s="$2" '$1 == s { print $2 }'
}

metric_is() {
	local got
	got=$(metric "$1" "$2")
	echo "$2 = ${got:-absent} (want $3)"
	[ "$got" = "$3" ]
}

metric_at_least() {
	local got
	got=$(metric "$1" "$2")
	echo "$2 = ${got:-absent} (want at least $3)"
	[ -n "$got" ] && [ "$got" -ge "$3" ]
}

# wait_for SECONDS COMMAND...: COMMAND succeeds within SECONDS.
wait_for() {
	local tries=$(($1 * 10))
	shift
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || { "$@"; return 1; }
		sleep 0.1
	done
}

# passed FILE PATTERN: rawprobe's output in FILE passed and matches PATTERN.
passed() {
	cat "$1"
	grep -q ": PASS$" "$1" && grep -Eq -- "$2" "$1"
}

tls_query_ok() {
	"$PQPROBE" --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(conninfo "${PORT[$1]}" verify-full)"
}

# ---- 4: the answer after a client's half-close -----------------------------------

test_half_close_long_answer() {
	local p=${PORT[hc]} a=$WORK/sleep-plain.out b=$WORK/sleep-tls.out
	local c=$WORK/copy-plain.out d=$WORK/copy-tls.out pids=()

	# Side by side: nothing here depends on the second.
	"$RAWPROBE" --timeout 40 halfclose-wait 127.0.0.1 "$p" >"$a" 2>&1 & pids+=($!)
	"$RAWPROBE" --timeout 40 tls-halfclose-wait 127.0.0.1 "$p" >"$b" 2>&1 & pids+=($!)
	RAWPROBE_QUERY=$COPY_SQL RAWPROBE_READ_KBPS=$SLOW_KBPS \
		"$RAWPROBE" --timeout 60 halfclose-wait 127.0.0.1 "$p" >"$c" 2>&1 & pids+=($!)
	RAWPROBE_QUERY=$COPY_SQL RAWPROBE_READ_KBPS=$SLOW_KBPS \
		"$RAWPROBE" --timeout 60 tls-halfclose-wait 127.0.0.1 "$p" >"$d" 2>&1 & pids+=($!)
	wait "${pids[@]}" || true
	check "SELECT pg_sleep(13), 42 then shutdown(SHUT_WR): the row with 42 arrives after 13 s, as from PostgreSQL" \
		passed "$a" "1 row\(s\).* 1 ReadyForQuery"
	check "the same over TLS, ending with close_notify: the row arrives" \
		passed "$b" "1 row\(s\).* 1 ReadyForQuery"
	check "a 40 MB COPY out read at 3 MiB/s after shutdown(SHUT_WR): all $COPY_BYTES bytes arrive" \
		passed "$c" " $COPY_BYTES COPY bytes"
	check "the same over TLS after close_notify: all $COPY_BYTES bytes arrive" \
		passed "$d" " $COPY_BYTES COPY bytes"
	check "after the half-closes the gate still answers a TLS query" tls_query_ok hc
}

# half_close_timeout=2s: a backend silent for 2 s after the client's end is
# let go; one held back by a client that reads slowly is not silent.
test_half_close_timeout() {
	local p=${PORT[hc2]} out=$WORK/silent.out t0 took pids=()
	local c=$WORK/stall-plain.out d=$WORK/stall-tls.out

	t0=$EPOCHREALTIME
	RAWPROBE_QUERY="SELECT pg_sleep(6), 42" \
		"$RAWPROBE" --timeout 20 halfclose-wait 127.0.0.1 "$p" >"$out" 2>&1 || true
	took=$(since "$t0")
	check "half_close_timeout=2s: a backend silent for longer after the client's end is let go after 2 s (took $took s)" \
		num_between "$took" 1.8 5
	check "... and the log says why" \
		log_has hc2 "no end from the backend after the client closed: silent for half_close_timeout \(2000 ms\)"
	RAWPROBE_QUERY=$COPY_SQL RAWPROBE_STALL_MS=5000 \
		"$RAWPROBE" --timeout 60 halfclose-wait 127.0.0.1 "$p" >"$c" 2>&1 & pids+=($!)
	RAWPROBE_QUERY=$COPY_SQL RAWPROBE_STALL_MS=5000 \
		"$RAWPROBE" --timeout 60 tls-halfclose-wait 127.0.0.1 "$p" >"$d" 2>&1 & pids+=($!)
	wait "${pids[@]}" || true
	check "half_close_timeout=2s: a COPY whose client stops reading for 5 s after shutdown(SHUT_WR) still arrives whole (the gate paused the backend: not silence)" \
		passed "$c" " $COPY_BYTES COPY bytes"
	check "the same over TLS after close_notify" \
		passed "$d" " $COPY_BYTES COPY bytes"
}

# ---- 5: out of file descriptors -----------------------------------------------------

soft_fd_limit() {
	awk '/^Max open files/ { print $4 }' "/proc/$1/limits"
}

test_fd_budget() {
	local pid soft
	GATE_WRAPPER="prlimit --nofile=256:$(ulimit -Hn)" \
		start budget -c max_connections=150 -c workers=2 || return 0
	pid=${GATE_PID[budget]}
	soft=$(soft_fd_limit "$pid")
	check "max_connections=150: the open file limit is raised to cover 2 x 150 connections of 2 descriptors each, and the metrics clients (got $soft)" \
		test "$soft" -ge $((4 * 150 + 8))
	gate_stop budget
}

test_fd_exhaustion() {
	local out=$WORK/fd-flood.out fpid
	GATE_WRAPPER="prlimit --nofile=$FD_LIMIT:$FD_LIMIT" \
		start fds -c max_connections=100 -c workers=1 \
		-c authentication_timeout=30s -c max_startup_connections=1000 \
		-c max_startup_connections_per_host=1000 || return 0
	check "an open file limit below the budget is logged at start" \
		log_has fds "open file limit $FD_LIMIT is below"
	RAWPROBE_COUNT=$((FD_LIMIT + 20)) RAWPROBE_HOLD_MS=6000 RAWPROBE_SOURCE=127.0.0.2 \
		"$RAWPROBE" --timeout 30 flood 127.0.0.1 "${PORT[fds]}" >"$out" 2>&1 &
	fpid=$!
	wait_for 10 grep -q "holding them" "$out" || true
	check "out of descriptors (limit $FD_LIMIT, filled with idle connections): a libpq client gets FATAL 53300 'sorry, too many clients already', not silence" \
		"$PQPROBE" --timeout 10 --expect refused --verbose-errors \
		--error-contains "53300: sorry, too many clients already" \
		"$(conninfo "${PORT[fds]}" disable)"
	# libpq (15.10, 16.6, 17.2 on) no longer shows an error sent in
	# answer to its SSLRequest (CVE-2024-10977), but it is an answer.
	check "... and one that asks for SSL first is answered at once too" \
		"$PQPROBE" --timeout 10 --expect refused \
		--error-contains "error response during SSL exchange" \
		"$(conninfo "${PORT[fds]}" prefer)"
	check "... and a raw SSLRequest gets the same ErrorResponse" \
		"$RAWPROBE" --timeout 10 busy 127.0.0.1 "${PORT[fds]}"
	check "the gate logs that it answered from its reserve descriptor" \
		log_has fds "out of file descriptors: answered [0-9]+ clients? with 53300"
	wait "$fpid" || true
	check "once the idle connections are gone, the gate answers a TLS query" \
		wait_for 10 tls_query_ok fds
	check "the metrics count those refusals (refused_total{reason=\"out_of_file_descriptors\"})" \
		metric_at_least fds 'pgsslgate_refused_total{reason="out_of_file_descriptors"}' 2
	gate_stop fds
}

# ---- 6: the startup-phase caps ----------------------------------------------------

# hold NAME SOURCE COUNT MS: COUNT silent connections from SOURCE, held MS.
hold() {
	RAWPROBE_COUNT=$3 RAWPROBE_HOLD_MS=$4 RAWPROBE_SOURCE=$2 \
		"$RAWPROBE" --timeout 30 flood 127.0.0.1 "${PORT[$1]}" \
		>"$WORK/hold-$2.out" 2>&1 &
	HOLD_PIDS+=($!)
}

test_startup_caps() {
	local p log n0 n1 r0 r1
	HOLD_PIDS=()
	start caps -c max_connections=20 -c workers=2 -c authentication_timeout=30s || return 0
	p=${PORT[caps]}
	log=$(gate_log caps)
	check "max_connections=20: the derived caps are 20 in the startup phase, 10 per source" \
		metric_is caps 'pgsslgate_startup_connections_limit{scope="per_host"}' 10
	hold caps 127.0.0.2 10 8000
	check "10 stalled connections from 127.0.0.2 are counted in the startup phase" \
		wait_for 10 metric_is caps pgsslgate_startup_connections 10
	check "... and 127.0.0.2 is shown among the sources holding the most" \
		metric_is caps 'pgsslgate_startup_connections_by_source{source="127.0.0.2"}' 10
	check "the 11th from 127.0.0.2 gets FATAL 53300 naming max_startup_connections_per_host" \
		env RAWPROBE_SOURCE=127.0.0.2 "$RAWPROBE" --timeout 10 busy 127.0.0.1 "$p"
	grep -q "max_startup_connections_per_host = 10" "$CHECK_OUT" ||
		fail "the per-host refusal names its cap" "$CHECK_OUT"
	check "meanwhile a client from 127.0.0.1 logs in over TLS" tls_query_ok caps
	check "the per-host refusal is counted" \
		metric_at_least caps 'pgsslgate_refused_total{reason="max_startup_connections_per_host"}' 1
	check "the per-host refusal is logged with the source" \
		log_has caps "refused connection from host=127\.0\.0\.2 .*max_startup_connections_per_host = 10"
	hold caps 127.0.0.3 10 6000
	check "10 more from 127.0.0.3: 20 in the startup phase" \
		wait_for 10 metric_is caps pgsslgate_startup_connections 20
	check "a libpq client from 127.0.0.1 now gets FATAL 53300 naming max_startup_connections" \
		"$PQPROBE" --timeout 10 --expect refused --verbose-errors \
		--error-contains "53300: sorry, too many connections in the startup phase (max_startup_connections = 20)" \
		"$(conninfo "$p" disable)"
	n0=$(grep -c "in the startup phase" "$log" || true)
	r0=$(metric caps 'pgsslgate_refused_total{reason="max_startup_connections"}')
	RAWPROBE_COUNT=200 RAWPROBE_SOURCE=127.0.0.4 \
		"$RAWPROBE" --timeout 30 flood 127.0.0.1 "$p" >"$WORK/burst.out" 2>&1 || true
	sleep 0.5
	n1=$(grep -c "in the startup phase" "$log" || true)
	r1=$(metric caps 'pgsslgate_refused_total{reason="max_startup_connections"}')
	check "200 refusals in a burst: all counted ($((r1 - r0)))" test $((r1 - r0)) -ge 200
	check "... but logged once a second at most ($((n1 - n0)) lines)" test $((n1 - n0)) -le 3
	wait "${HOLD_PIDS[@]}" || true
	check "once the stalled connections are gone, none is counted in the startup phase" \
		wait_for 10 metric_is caps pgsslgate_startup_connections 0
	check "... no source is listed" \
		metric_is caps 'pgsslgate_startup_connections_by_source{source="127.0.0.2"}' ""
	check "... and a client connects again" tls_query_ok caps
	gate_stop caps
}

main() {
	needs pqprobe rawprobe
	command -v prlimit >/dev/null 2>&1 || missing "prlimit (Debian package util-linux)"
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"

	if start hc && start hc2 -c half_close_timeout=2s; then
		test_half_close_long_answer
		test_half_close_timeout
	fi
	[ -z "${GATE_PID[hc]:-}" ] || gate_stop hc
	[ -z "${GATE_PID[hc2]:-}" ] || gate_stop hc2
	test_fd_budget
	test_fd_exhaustion
	test_startup_caps
	finish
}

main "$@"
