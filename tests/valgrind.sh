#!/bin/bash
# valgrind.sh: pgsslgate under valgrind's memcheck, driven through the
# 24-cell sslmode matrix of integration.sh (ssl on/off x require_ssl on/off
# x libpq's six sslmodes, real libpq clients and a real PostgreSQL 15), and
# through the paths where memory is most easily lost: refusals, a TLS
# handshake the client aborts or resets, abusive startup packets,
# authentication_timeout, a cancel, a 1 MB result, a reload, a client that
# never reads, a backend that is down and a shutdown that has to close a
# session.  Each gate then gets SIGTERM; passing means its exit status is 0
# (valgrind exits 99 on any error, a definite or indirect leak included),
# "ERROR SUMMARY: 0 errors" and no definitely or indirectly lost byte.
#
# Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the setup
# itself broke, 1 otherwise.  Run by hand after make:
#   bash tests/valgrind.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs, with
# valgrind's report at the end of each gate's.)
#
#   VALGRIND_TIMEOUT=120  seconds a gate under valgrind has to get ready, and
#                         to exit after SIGTERM
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

VALGRIND_TIMEOUT=${VALGRIND_TIMEOUT:-120}
GATE_READY_TIMEOUT=$VALGRIND_TIMEOUT
GATE_STOP_TIMEOUT=$VALGRIND_TIMEOUT
# shellcheck disable=SC2054 # (the commas are valgrind's)
VALGRIND_ARGS=(--error-exitcode=99 --leak-check=full
	--errors-for-leak-kinds=definite,indirect
	--show-leak-kinds=definite,indirect --num-callers=30)
GATE_WRAPPER="valgrind ${VALGRIND_ARGS[*]}"	# lib.sh splits it on blanks
CONNECT_TIMEOUT=60		# libpq's connect_timeout: valgrind is slow
SLOW_AUTH_TIMEOUT_S=5		# authentication_timeout of ssl_off_require_off

SSLMODES="disable allow prefer require verify-ca verify-full"
SERVER_SETTINGS="on,on on,off off,on off,off"

declare -A PORT=()		# gate name -> its port
declare -A OBSERVED=()		# "ssl,require_ssl,sslmode" -> TLS/plain/refused
declare -a GATES=()		# every gate started, in order

# conninfo of lib.sh with a connect_timeout for valgrind's pace.
vconninfo() {
	conninfo "$@" "connect_timeout=$CONNECT_TIMEOUT"
}

# ---- gates (under valgrind, started together) ---------------------------------

# launch NAME SSL REQUIRE_SSL [MORE ARGS...]: start a gate without waiting.
launch() {
	local name=$1 ssl=$2 require=$3
	local -a args
	shift 3
	PORT[$name]=$(free_port)
	args=(-c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}"
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT"
		-c "ssl=$ssl" -c "require_ssl=$require" -c log_connections=on)
	if [ "$ssl" = on ]; then
		args+=(-c "ssl_cert_file=$CERTS/server-chain.crt"
			-c "ssl_key_file=$CERTS/server.key")
	fi
	gate_launch "$name" "${args[@]}" "$@"
	GATES+=("$name")
}

# Wait for every launched gate, as gate_start would; one that does not get
# ready is a failed test (and is dropped from GATES).
wait_all_ready() {
	local name rc kept=()
	for name in "${GATES[@]}"; do
		rc=0
		gate_wait_ready "$name" || rc=$?
		case $rc in
		0) kept+=("$name") ;;
		1) fail "pgsslgate $name starts under valgrind (it exited with status $GATE_STATUS)" \
			"$(gate_log "$name")" ;;
		*) fail "pgsslgate $name starts under valgrind (not ready after $GATE_READY_TIMEOUT s)" \
			"$(gate_log "$name")"
		   kill_gate "$name" ;;
		esac
	done
	GATES=("${kept[@]}")
}

started() {
	[ -n "${GATE_PID[$1]:-}" ]
}

start_gates() {
	local pair ssl require
	for pair in $SERVER_SETTINGS; do
		ssl=${pair%,*} require=${pair#*,}
		case $pair in
		off,off) launch "$(gate_name "$ssl" "$require")" "$ssl" "$require" \
			-c "authentication_timeout=${SLOW_AUTH_TIMEOUT_S}s" ;;
		on,off) launch "$(gate_name "$ssl" "$require")" "$ssl" "$require" \
			-c shutdown_timeout=2s ;;
		*) launch "$(gate_name "$ssl" "$require")" "$ssl" "$require" ;;
		esac
	done
	launch no_backend on off -c "backend_port=$(free_port)"
	wait_all_ready
}

# ---- the matrix (as integration.sh has it; the outcomes are lib.sh's) ---------

test_matrix() {
	local pair ssl require mode want name
	for pair in $SERVER_SETTINGS; do
		ssl=${pair%,*} require=${pair#*,}
		name=$(gate_name "$ssl" "$require")
		started "$name" || continue
		for mode in $SSLMODES; do
			want=$(sslmode_outcome "$ssl" "$require" "$mode")
			# shellcheck disable=SC2046
			check "under valgrind: matrix ssl=$ssl require_ssl=$require sslmode=$mode -> $want" \
				"$PQPROBE" $(probe_expectation "$want") --timeout "$CONNECT_TIMEOUT" \
				--query "SELECT 1" "$(vconninfo "${PORT[$name]}" "$mode")"
			OBSERVED[$ssl,$require,$mode]=$(observed_outcome "$CHECK_OUT")
		done
	done
}

print_matrix() {
	local pair ssl require mode line seen want
	note ""
	note "observed under valgrind (expected where different):"
	note "$(printf '%-9s %-11s' ssl require_ssl; for mode in $SSLMODES; do printf ' %-11s' "$mode"; done)"
	for pair in $SERVER_SETTINGS; do
		ssl=${pair%,*} require=${pair#*,}
		line=$(printf '%-9s %-11s' "$ssl" "$require")
		for mode in $SSLMODES; do
			seen=${OBSERVED[$ssl,$require,$mode]:-"-"}
			want=$(sslmode_outcome "$ssl" "$require" "$mode")
			[ "$seen" = "$want" ] || seen="$seen($want)!"
			line+=$(printf ' %-11s' "$seen")
		done
		note "$line"
	done
}

# ---- the paths where memory gets lost -------------------------------------------

test_tls_paths() {
	local name=ssl_on_require_on port
	started "$name" || return 0
	port=${PORT[$name]}
	check "under valgrind: a 1 MB result comes back whole over TLS" \
		"$PQPROBE" --ssl 1 --timeout "$CONNECT_TIMEOUT" \
		--query "SELECT repeat('x', 1000000)" --expect-length 1000000 \
		"$(vconninfo "$port" verify-full)"
	check "under valgrind: a CancelRequest stops pg_sleep(30) with 57014" \
		"$PQPROBE" --query "SELECT pg_sleep(30)" --cancel-after 1000 --timeout 30 \
		"$(vconninfo "$port" require)"
	check "under valgrind: a client that rejects the certificate (rogue root) aborts the handshake" \
		"$PQPROBE" --expect refused --timeout "$CONNECT_TIMEOUT" \
		"$(vconninfo "$port" verify-ca "sslrootcert=$CERTS/rogue.crt")"
	check "under valgrind: SSLRequest and StartupMessage in one write get 'S' then 08P01" \
		"$RAWPROBE" --timeout 30 inject 127.0.0.1 "$port"
	check "under valgrind: bad length words get 08P01 or EOF" \
		"$RAWPROBE" --timeout 30 badlen 127.0.0.1 "$port"
	check "under valgrind: garbage gets an error or EOF" \
		"$RAWPROBE" --timeout 30 garbage 127.0.0.1 "$port"
	check "under valgrind: 5 clients reset the connection halfway through their ClientHello" \
		env RAWPROBE_COUNT=5 "$RAWPROBE" --timeout 30 tls-reset 127.0.0.1 "$port"
	check "under valgrind: SIGHUP reloads the configuration" reload_gate "$name"
	check "under valgrind: after the reload a TLS session runs SELECT 1" \
		"$PQPROBE" --ssl 1 --timeout "$CONNECT_TIMEOUT" --query "SELECT 1" \
		--expect-value 1 "$(vconninfo "$port" verify-full)"
}

reload_gate() {
	local log tries=$((VALGRIND_TIMEOUT * 10))
	log=$(gate_log "$1")
	kill -HUP "${GATE_PID[$1]}"
	until grep -q "configuration reloaded" "$log"; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ] || grep -q "reload failed" "$log"; then
			grep -E "reload|SIGHUP" "$log"
			return 1
		fi
		sleep 0.1
	done
	grep "configuration reloaded" "$log"
}

test_plain_paths() {
	local name=ssl_off_require_off port
	started "$name" || return 0
	port=${PORT[$name]}
	check "under valgrind: a second SSLRequest after 'N' gets an error or EOF" \
		"$RAWPROBE" --timeout 30 double-ssl 127.0.0.1 "$port"
	check "under valgrind: GSSENCRequest is declined, then a plaintext StartupMessage authenticates" \
		"$RAWPROBE" --timeout 30 gss-then-startup 127.0.0.1 "$port"
	check "under valgrind: half a startup packet is closed by authentication_timeout (${SLOW_AUTH_TIMEOUT_S} s)" \
		"$RAWPROBE" --timeout 30 half 127.0.0.1 "$port"
}

test_mixed_paths() {
	local name=ssl_on_require_off port
	started "$name" || return 0
	port=${PORT[$name]}
	check "under valgrind: a TLS client that never reads a big COPY logs in, then goes away" \
		"$RAWPROBE" --timeout 3 tls-noread 127.0.0.1 "$port"
	check "under valgrind: a plaintext client that never reads a big COPY logs in, then goes away" \
		"$RAWPROBE" --timeout 3 noread 127.0.0.1 "$port"
	if started no_backend; then
		check "under valgrind: with the backend down the client is told it could not connect" \
			"$PQPROBE" --expect refused --timeout "$CONNECT_TIMEOUT" \
			--error-contains "could not connect to backend" \
			"$(vconninfo "${PORT[no_backend]}" require)"
	fi
}

# A session still open at SIGTERM: idle, so the drain ends it with 57P01.
HOLD_PID=
hold_session_for_shutdown() {
	local name=ssl_on_require_off out=$WORK/held.out tries=$((CONNECT_TIMEOUT * 10))
	started "$name" || return 0
	"$PQPROBE" --ssl 1 --timeout 300 --query "SELECT 1" \
		--hold-file "$WORK/never" "$(vconninfo "${PORT[$name]}" verify-full)" \
		>"$out" 2>&1 &
	HOLD_PID=$!
	until grep -qs "holding until" "$out"; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ] || ! kill -0 "$HOLD_PID" 2>/dev/null; then
			fail "under valgrind: a session is open when SIGTERM comes" "$out"
			return 0
		fi
		sleep 0.1
	done
	ok "under valgrind: a session is open when SIGTERM comes (the drain ends it)"
}

# ---- valgrind's verdict ----------------------------------------------------------

# valgrind_clean NAME: memcheck's report in the gate's log says no error and
# no definite or indirect leak.
valgrind_clean() {
	local log good=0
	log=$(gate_log "$1")
	grep -E '^==[0-9]+== ' "$log" | head -300
	grep -Eq '== ERROR SUMMARY: 0 errors' "$log" || good=1
	if ! grep -q 'All heap blocks were freed' "$log"; then
		grep -Eq '==    definitely lost: 0 bytes' "$log" || good=1
		grep -Eq '==    indirectly lost: 0 bytes' "$log" || good=1
	fi
	return "$good"
}

stop_gates() {
	local name
	# SIGTERM to all first: the exits under valgrind then overlap.
	for name in "${GATES[@]}"; do
		kill -TERM "${GATE_PID[$name]}" 2>/dev/null || true
	done
	for name in "${GATES[@]}"; do
		gate_stop "$name"
		check "pgsslgate $name under valgrind: ERROR SUMMARY: 0 errors, nothing definitely or indirectly lost" \
			valgrind_clean "$name"
		note "$name: $(grep -Eo 'ERROR SUMMARY: [0-9,]+ errors' "$(gate_log "$name")" | tail -1);" \
			"$(grep -Eo '(definitely lost: [0-9,]+ bytes|All heap blocks were freed)' "$(gate_log "$name")" | tail -1)"
	done
	if [ -n "$HOLD_PID" ]; then
		# Idle at SIGTERM: the drain ends it at once with 57P01.
		check "the session open at SIGTERM was ended by the drain at its idle point" \
			grep "disconnection: .*(server shutting down: session idle)" \
			"$(gate_log ssl_on_require_off)"
		kill -TERM "$HOLD_PID" 2>/dev/null || true
		wait "$HOLD_PID" 2>/dev/null || true
	fi
}

main() {
	needs pqprobe rawprobe
	command -v valgrind >/dev/null 2>&1 || missing "valgrind (Debian package valgrind)"
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"
	note "gates run under: $GATE_WRAPPER"
	export GATE_WRAPPER

	start_gates
	test_matrix
	test_tls_paths
	test_plain_paths
	test_mixed_paths
	hold_session_for_shutdown
	stop_gates
	print_matrix
	finish
}

main "$@"
