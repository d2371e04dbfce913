#!/bin/bash
# metrics.sh: what a stranger can make metrics_listen spend, and the health
# endpoints.  Against a real PostgreSQL 15 (SCRAM logins) and real libpq:
# idle connections under a low descriptor limit, accept errors, the
# deadline, an endless header line, request bodies and methods, /healthz,
# /readyz (ready, draining after SIGTERM, an expired certificate).  Prints
# TAP-ish lines; exits 0 when every test passed, 77 when a prerequisite is
# missing (a failure instead when CI=true), 99 when the setup broke, 1
# otherwise.
#
# Run by hand after make check (or make tests/pqprobe):
#   bash tests/metrics.sh        (VERBOSE=1, KEEP_TMP=1 as in lib.sh)
#
# The HTTP clients are tests/httpprobe.py (Debian's /usr/bin/python3).
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PYTHON=/usr/bin/python3
HTTPPROBE=$top_srcdir/tests/httpprobe.py
ROLE=scout
PASSWORD=scout-pw-7
declare -A PORT=() METRICS_PORT=() BG_PID=()

# ---- helpers -------------------------------------------------------------------

http() {
	"$PYTHON" "$HTTPPROBE" "$@"
}

# start NAME [ARGS...]: a gate (ssl=on with server-chain.crt, require_ssl
# off, one worker) in front of the test PostgreSQL, metrics_listen on a
# fresh port; ARGS come last, so they override.
start() {
	local name=$1
	shift
	METRICS_PORT[$name]=$(free_port)
	tls_gate_start "$name" off "$PG_PORT" -c workers=1 \
		-c "metrics_listen=127.0.0.1:${METRICS_PORT[$name]}" "$@"
}

gate_pid() {
	echo "${GATE_PID[$1]}"
}

# A SCRAM login through gate NAME runs SELECT 1 (sslmode MODE, default
# require).
login_ok() {
	"$PQPROBE" --timeout 10 --expect connected --query "SELECT 1" \
		--expect-value 1 "$(scram_conninfo "${PORT[$1]}" "${2:-require}")"
}

scram_conninfo() {
	echo "host=127.0.0.1 port=$1 user=$ROLE password=$PASSWORD" \
		"dbname=postgres sslmode=$2 sslcert=$WORK/no.crt sslkey=$WORK/no.key"
}

# bg NAME COMMAND...: in the background, output in $WORK/NAME.bg.
bg() {
	local name=$1
	shift
	: >"$WORK/$name.bg"
	"$@" >>"$WORK/$name.bg" 2>&1 &
	BG_PID[$name]=$!
}

# bg_says NAME ERE SECONDS
bg_says() {
	local tries=$(($3 * 20))
	while [ "$tries" -gt 0 ]; do
		grep -Eq -- "$2" "$WORK/$1.bg" && { cat "$WORK/$1.bg"; return 0; }
		sleep 0.05
		tries=$((tries - 1))
	done
	echo "$1 did not print \"$2\":"
	cat "$WORK/$1.bg"
	return 1
}

# bg_end NAME: wait (at most 15 s) for it; its output is shown, its exit
# status left in BG_STATUS ("running" when it had to be killed).
BG_STATUS=
bg_end() {
	local pid=${BG_PID[$1]:-}
	BG_STATUS=running
	[ -n "$pid" ] || return 0
	pid_end "$pid" 15
	BG_STATUS=$PID_STATUS
	unset "BG_PID[$1]"
	cat "$WORK/$1.bg"
}

metrics_cleanup() {
	local rc=$? name
	set +e
	for name in "${!BG_PID[@]}"; do
		kill "${BG_PID[$name]}" 2>/dev/null
	done
	(exit "$rc")
	cleanup
}

# status_is OUT CODE [BODY-ERE]: the response in OUT has status CODE (and a
# body line matching BODY-ERE).
status_is() {
	cat "$1"
	head -n 1 "$1" | grep -Eq "^HTTP/1\.1 $2 " || { echo "FAIL: not $2"; return 1; }
	# grep -q would stop reading at the first match, and sed, still
	# writing, would die of SIGPIPE: under pipefail, a failure.
	[ -z "${3:-}" ] || sed '1,/^$/d' "$1" | grep -E -- "$3" >/dev/null ||
		{ echo "FAIL: no body line matching $3"; return 1; }
}

# no_body OUT: nothing after the head of the response in OUT.
no_body() {
	cat "$1"
	! sed '1,/^$/d' "$1" | grep . >/dev/null
}

# answers NAME PATH CODE [BODY-ERE] [METHOD]
answers() {
	local out=$WORK/answer.out
	http get "${METRICS_PORT[$1]}" "$2" "${5:-GET}" >"$out" 2>&1 || true
	status_is "$out" "$3" "${4:-}"
}

# raw_answers NAME RAW CODE [BODY-ERE]
raw_answers() {
	local out=$WORK/answer.out
	http request "${METRICS_PORT[$1]}" "$2" >"$out" 2>&1 || true
	status_is "$out" "$3" "${4:-}"
}

# accept_lines NAME: log lines about failed accepts, libevent's own included.
accept_lines() {
	grep -Eic "accept\(\) call|could not accept" "$(gate_log "$1")" || true
}

# ---- setup ---------------------------------------------------------------------

setup_scram() {
	"$PQPROBE" --query "SET password_encryption = 'scram-sha-256'; CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable" \
		>"$WORK/role.log" 2>&1 || { show "$WORK/role.log"; die "could not create $ROLE"; }
	{
		echo "host all $ROLE 127.0.0.1/32 scram-sha-256"
		cat "$PG_DIR/data/pg_hba.conf"
	} >"$WORK/hba" && cat "$WORK/hba" >"$PG_DIR/data/pg_hba.conf"
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >/dev/null ||
		die "could not reload PostgreSQL"
	sleep 0.3
}

# ---- a: idle connections and accept errors under a low descriptor limit ------

test_low_descriptor_limit() {
	local name=lowfd limiter=$WORK/lowfd base fds n
	printf '#!/bin/bash\nulimit -n 256\nexec "$@"\n' >"$limiter"
	chmod +x "$limiter"
	GATE_WRAPPER=$limiter start "$name" -c max_connections=20 || return 0
	base=$(fd_count "$(gate_pid $name)")
	check "with ulimit -n 256, a SCRAM login through the gate works (baseline: $base descriptors)" \
		login_ok "$name"
	check "a wrong password is refused: the login is SCRAM, not trust" \
		"$PQPROBE" --timeout 10 --expect refused --error-contains "password authentication failed" \
		"host=127.0.0.1 port=${PORT[$name]} user=$ROLE password=wrong dbname=postgres sslmode=require"

	rm -f "$WORK/idle.release"
	bg idle http idle "${METRICS_PORT[$name]}" 300 "$WORK/idle.release"
	if ! bg_says idle "^opened" 20 >"$WORK/idle.why"; then
		fail "300 idle connections to the metrics port are opened" "$WORK/idle.why"
		return 0
	fi
	fds=$(fd_count "$(gate_pid $name)")
	check "with 300 idle connections to the metrics port, the gate holds at most METRICS_MAX_CLIENTS (8) more descriptors ($base -> $fds)" \
		num_between "$fds" 0 $((base + 9))
	check "and a SCRAM login through the database port still works" \
		login_ok "$name"
	n=$(accept_lines "$name")
	check "and the log has no accept error ($n lines)" num_between "$n" 0 1
	touch "$WORK/idle.release"
	bg_end idle >/dev/null
	check "once they are gone, /metrics answers 200" \
		answers "$name" /metrics 200 '^pgsslgate_workers 1$'
	gate_stop "$name"

	# Descriptors exhausted through the database port, then a scrape.
	# max_connections is high so that no cap on connections (nor on those
	# in the startup phase from one address) turns the 300 away first.
	GATE_WRAPPER=$limiter start fdout -c max_connections=1000 || return 0
	rm -f "$WORK/idle.release"
	bg hog http idle "${PORT[fdout]}" 300 "$WORK/idle.release"
	if ! bg_says hog "^opened" 20 >"$WORK/hog.why"; then
		fail "300 idle connections to the database port are opened" "$WORK/hog.why"
		return 0
	fi
	check "with the descriptors used up through the database port, the gate logs it (EMFILE)" \
		grep -E "Too many open files|out of file descriptors" "$(gate_log fdout)"
	bg scrape http get "${METRICS_PORT[fdout]}" /metrics
	sleep 2
	n=$(grep -Eic "accept\(\) call|metrics_listen: could not accept" "$(gate_log fdout)" || true)
	check "a scrape arriving then: its accept error is logged, at most once a second ($n lines in 2 s), no libevent flood" \
		num_between "$n" 1 5
	touch "$WORK/idle.release"
	bg_end hog >/dev/null
	bg_end scrape >"$WORK/scrape.out"
	check "once the descriptors are back, that scrape is answered 200" \
		status_is "$WORK/scrape.out" 200 '^pgsslgate_workers 1$'
	check "and a SCRAM login works again" login_ok fdout
	gate_stop fdout
}

# ---- b, c, d: the deadline, the head limit, bodies and methods ----------------

test_bounds() {
	local name=bounds out pid rss0 rss1 secs sent base
	start "$name" || return 0
	pid=$(gate_pid $name)
	base=$(fd_count "$pid")

	out=$WORK/idle-close.out
	http idle-close "${METRICS_PORT[$name]}" >"$out" 2>&1 || true
	secs=$(sed -n 's/^closed after \([0-9.]*\) s.*/\1/p' "$out")
	check "an idle metrics connection is closed by the gate 5 s after accept ($(cat "$out"))" \
		num_between "${secs:-99}" 4.5 7

	rss0=$(rss_kb "$pid")
	out=$WORK/flood.out
	http flood "${METRICS_PORT[$name]}" 50 >"$out" 2>&1 || true
	secs=$(sed -n 's/^closed .* after \([0-9.]*\) s.*/\1/p' "$out")
	sent=$(sed -n 's/.*sent \([0-9]*\)$/\1/p' "$out")
	rss1=$(rss_kb "$pid")
	check "an endless header line (up to 50 MB) is cut off within 3 s ($(cat "$out"))" \
		num_between "${secs:-99}" 0 3
	check "and well before 50 MB were sent (${sent:-?} bytes)" \
		num_between "${sent:-999999999}" 0 $((16 * 1024 * 1024))
	check "and the gate's RSS grew by less than 1 MB ($rss0 -> $rss1 kB)" \
		num_between $((rss1 - rss0)) -100000 1024
	check "a 9000-byte header line gets 431" \
		raw_answers "$name" "GET /metrics HTTP/1.1\\r\\nX-Long: $(printf 'a%.0s' $(seq 9000))\\r\\n\\r\\n" \
		431 "request head over 8192 bytes"
	check "a request with a body (Content-Length: 5) gets 413" \
		raw_answers "$name" 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde' \
		413 "no request body"
	check "a chunked request gets 413" \
		raw_answers "$name" 'GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n' 413
	check "Content-Length: 0 is no body: 200" \
		raw_answers "$name" 'GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n' 200 '^ok$'
	check "POST gets 405 (Allow: GET, HEAD)" \
		answers "$name" /metrics 405 "only GET and HEAD" POST
	check "and the 405 names Allow: GET, HEAD" \
		grep '^Allow: GET, HEAD$' "$WORK/answer.out"
	check "HEAD /metrics gets 200 and no body" \
		answers "$name" /metrics 200 "" HEAD
	check "and HEAD's answer has no body" \
		no_body "$WORK/answer.out"
	check "a request line that is not HTTP/1.x gets 400" \
		raw_answers "$name" 'GET /metrics SPDY/9\r\n\r\n' 400
	check "GET /nope gets 404 with a hint" \
		answers "$name" /nope 404 "try /metrics, /healthz or /readyz"
	check "a query string is ignored: GET /metrics?x=1 gets 200" \
		answers "$name" '/metrics?x=1' 200 '^pgsslgate_workers 1$'
	check "after all that the gate holds no more descriptors than at start ($base)" \
		num_between "$(fd_count "$pid")" 0 $((base + 1))
	check "and a SCRAM login works" login_ok "$name"
	gate_stop "$name"
}

# ---- e: /healthz and /readyz ---------------------------------------------------

test_health() {
	local name=health pid
	start "$name" -c shutdown_timeout=20 || return 0
	check "GET /healthz: 200 ok" answers "$name" /healthz 200 '^ok$'
	check "GET /readyz: 200 ready" answers "$name" /readyz 200 '^ready$'
	rm -f "$WORK/held.release"
	# In a transaction: the drain ends an idle session at once.
	bg held "$PQPROBE" --timeout 30 --query "BEGIN; SELECT 1" --expect-value 1 \
		--ssl 0 --hold-file "$WORK/held.release" \
		"$(scram_conninfo "${PORT[$name]}" disable)"
	if ! bg_says held "^holding until" 10 >"$WORK/held.why"; then
		fail "a plaintext SCRAM session in a transaction is held open" "$WORK/held.why"
		return 0
	fi
	pid=$(gate_pid $name)
	kill -TERM "$pid"
	check "after SIGTERM with a session open, the gate is still draining" \
		log_file_has "$(gate_log $name)" "received SIGTERM; no longer accepting"
	check "and GET /readyz answers 503 draining" \
		answers "$name" /readyz 503 '^draining$'
	check "while GET /healthz still answers 200 ok (the worker's loop runs)" \
		answers "$name" /healthz 200 '^ok$'
	check "and GET /metrics still answers 200" \
		answers "$name" /metrics 200 '^pgsslgate_connections_active 1$'
	touch "$WORK/held.release"
	bg_end held >"$WORK/held.out"
	check "the held session runs SELECT 1 again in its transaction and ends (pqprobe status ${BG_STATUS})" \
		test "$BG_STATUS" = 0
	gate_stop "$name"

	start expired -c "ssl_cert_file=$CERTS/server-expired-chain.crt" \
		-c "ssl_key_file=$CERTS/server-expired.key" || return 0
	check "with an expired certificate, GET /readyz answers 503 naming it" \
		answers expired /readyz 503 'certificate expired [0-9]+ s ago'
	check "and GET /healthz 200 ok" answers expired /healthz 200 '^ok$'
	gate_stop expired

	start plain -c ssl=off || return 0
	check "with ssl = off, GET /readyz answers 200 ready" \
		answers plain /readyz 200 '^ready$'
	gate_stop plain
}

main() {
	needs pqprobe
	[ -x "$PYTHON" ] || missing "$PYTHON (Debian package python3)"
	setup_work
	trap metrics_cleanup EXIT
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	setup_scram
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"
	test_low_descriptor_limit
	test_bounds
	test_health
	finish
}

main "$@"
