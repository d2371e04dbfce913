#!/bin/bash
# ops.sh: pgsslgate's live operations between real libpq clients and a real
# PostgreSQL 15: reloads (SIGHUP), draining and stopping (SIGTERM, SIGINT),
# max_connections, authentication_timeout, the metrics endpoint, certificate
# expiry warnings, --check, log_connections, log_destination,
# backend_connect_timeout and TCP keepalives.  Prints TAP-ish lines; exits 0 when every test passed, 77 when
# a prerequisite is missing (a failure instead when CI=true), 99 when the
# setup itself broke, 1 otherwise.
#
# Run by hand after make check (or make tests/pqprobe tests/rawprobe):
#   bash tests/ops.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# The certificates are tests/certs.sh's; those made for this file:
# server-rogue-chain.crt (localhost, signed by the rogue CA, what a reload
# swaps in), server-expired-chain.crt (expired a day ago) and
# server-soon-chain.crt (expires in about 10 days).  Background clients are
# pqprobe --hold-file (a session held open across a signal) and rawprobe's
# silent, half and listen-full modes.
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
# Decimal points in $EPOCHREALTIME and awk, whatever the user's locale.
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

declare -A PORT=()		# gate name -> its port
declare -A METRICS_PORT=()	# gate name -> its metrics_listen port
declare -A PROBE_PID=()		# background pqprobe name -> its pid
declare -a SECTIONS=()		# the summary: "title|tests|failed"
declare -a FINDINGS=()		# what the daemon did, for the summary
SIGNALLED_AT=			# $EPOCHREALTIME when signal_gate last signalled

# ---- small helpers -----------------------------------------------------------

# skip DESCRIPTION REASON: a test that could not run here (TAP's SKIP).
skip() {
	TESTS_RUN=$((TESTS_RUN + 1))
	echo "ok $TESTS_RUN - $1 # SKIP $2"
}

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (tried every
# 0.1 s); the last try's output is shown.
eventually() {
	local tries=$(($1 * 10)) out=$WORK/eventually.out
	shift
	while :; do
		if "$@" >"$out" 2>&1; then
			cat "$out"
			return 0
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			cat "$out"
			return 1
		fi
		sleep 0.1
	done
}

# section TITLE FUNCTION: run FUNCTION and note its tally for the summary.
section() {
	local title=$1 run=$TESTS_RUN failed=$TESTS_FAILED
	note ""
	note "---- $title"
	"$2"
	SECTIONS+=("$title|$((TESTS_RUN - run))|$((TESTS_FAILED - failed))")
}

finding() {
	FINDINGS+=("$*")
}

# ---- gates -------------------------------------------------------------------

# start_gate NAME [ARGS...]: a TLS gate (ssl=on, require_ssl=on,
# log_connections=on, server-chain.crt) in front of the test PostgreSQL on a
# fresh port, kept in PORT[NAME]; ARGS come last, so they override.  Returns
# 1 if it did not start (counted as a failed test).
start_gate() {
	local name=$1
	shift
	# The reloads here are SIGHUP's: no file watcher racing the cp(1)s.
	tls_gate_start "$name" on "$PG_PORT" -c file_check_interval=0 "$@"
}

# start_metrics_gate NAME [ARGS...]: start_gate with metrics_listen on a fresh
# port, kept in METRICS_PORT[NAME].
start_metrics_gate() {
	local name=$1
	shift
	METRICS_PORT[$name]=$(free_port)
	start_gate "$name" -c "metrics_listen=127.0.0.1:${METRICS_PORT[$name]}" "$@"
}

# running NAME: gate NAME is still running.
running() {
	[ -n "${GATE_PID[$1]:-}" ] && kill -0 "${GATE_PID[$1]}" 2>/dev/null
}

# signal_gate NAME SIGNAL: send it, noting when in SIGNALLED_AT.
signal_gate() {
	SIGNALLED_AT=$EPOCHREALTIME
	kill -"$2" "${GATE_PID[$1]}"
}

# gate_exits_ok NAME MAX [MIN]: gate NAME, already signalled, exits with
# status 0 between MIN (default 0) and MAX seconds after SIGNALLED_AT, and
# its log holds no sanitizer report.  A gate still running is killed.
gate_exits_ok() {
	local name=$1 max=$2 min=${3:-0} pid=${GATE_PID[$1]:-} log status=0 took
	log=$(gate_log "$name")
	if [ -z "$pid" ]; then
		echo "pgsslgate $name is not running"
		return 1
	fi
	while kill -0 "$pid" 2>/dev/null &&
		num_between "$(since "$SIGNALLED_AT")" 0 "$max"; do
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "pgsslgate $name is still running $max s after the signal; its log:"
		cat "$log"
		kill_gate "$name"
		return 1
	fi
	wait "$pid" || status=$?
	unset "GATE_PID[$name]"
	took=$(since "$SIGNALLED_AT")
	echo "pgsslgate $name exited with status $status, $took s after the signal"
	if [ "$status" -ne 0 ] || ! num_between "$took" "$min" 1000000 ||
		grep -Eq "$SANITIZER_TEXT" "$log"; then
		[ "$status" -eq 0 ] || echo "FAIL: expected status 0"
		num_between "$took" "$min" 1000000 || echo "FAIL: expected $min s or more"
		echo "its log:"
		cat "$log"
		return 1
	fi
}

# ---- gate logs -----------------------------------------------------------------

# log_wait NAME ERE [SECONDS]: a line of gate NAME's log matches ERE within
# SECONDS (default 3: the gate may log after the client saw the outcome).
# Prints the matching lines, or the whole log when none.
log_wait() {
	local name=$1 re=$2 tries=$((${3:-3} * 20)) log
	log=$(gate_log "$name")
	while ! grep -Eq -- "$re" "$log"; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "no line of $log matches: $re"
			echo "the log:"
			cat "$log"
			return 1
		fi
		sleep 0.05
	done
	grep -E -- "$re" "$log"
}

# log_lines NAME ERE: how many lines of gate NAME's log match ERE.
log_lines() {
	grep -Ec -- "$2" "$(gate_log "$1")" || true
}

# log_count_is NAME N ERE: exactly N lines match.
log_count_is() {
	local got
	got=$(log_lines "$1" "$3")
	if [ "$got" -ne "$2" ]; then
		echo "$got lines (not $2) of $(gate_log "$1") match: $3"
		cat "$(gate_log "$1")"
		return 1
	fi
	echo "$got lines match: $3"
}

# ---- background clients --------------------------------------------------------

# bg_run NAME COMMAND...: COMMAND in the background, its output in
# $WORK/NAME.probe (there at once, empty), its pid in PROBE_PID[NAME].
bg_run() {
	local name=$1
	shift
	: >"$WORK/$name.probe"
	"$@" >>"$WORK/$name.probe" 2>&1 &
	PROBE_PID[$name]=$!
}

# probe_bg NAME PQPROBE-ARGS...: pqprobe in the background.
probe_bg() {
	local name=$1
	shift
	bg_run "$name" "$PQPROBE" "$@"
}

# probe_says NAME ERE SECONDS: the probe's output matches ERE within
# SECONDS (1 if it exits first without).
probe_says() {
	local name=$1 re=$2 tries=$(($3 * 50))
	while [ "$tries" -gt 0 ]; do
		grep -Eq -- "$re" "$WORK/$name.probe" && return 0
		if ! kill -0 "${PROBE_PID[$name]}" 2>/dev/null; then
			grep -Eq -- "$re" "$WORK/$name.probe" && return 0
			break
		fi
		sleep 0.02
		tries=$((tries - 1))
	done
	echo "$name did not print \"$re\"; its output:"
	cat "$WORK/$name.probe"
	return 1
}

# probe_end NAME SECONDS: wait for the probe to exit; its status goes in
# PROBE_STATUS ("running" if it did not, and then it is killed).
PROBE_STATUS=
probe_end() {
	local name=$1 pid=${PROBE_PID[$1]:-}
	PROBE_STATUS=running
	[ -n "$pid" ] || return 0
	pid_end "$pid" "$2"
	PROBE_STATUS=$PID_STATUS
	unset "PROBE_PID[$name]"
}

# hold_session NAME CONNINFO: a session that ran SELECT 1 and now waits, open,
# for release_session NAME (pqprobe --hold-file).
hold_session() {
	local name=$1 conninfo=$2
	rm -f "$WORK/$name.release"
	probe_bg "$name" --timeout 30 --query "SELECT 1" --expect-value 1 \
		--hold-file "$WORK/$name.release" "$conninfo"
	probe_says "$name" "^holding until" 10 || return 1
	cat "$WORK/$name.probe"
}

# release_session NAME [fails]: let the held session run SELECT 1 again and
# end; passing iff that succeeded (or, with "fails", iff it did not).
release_session() {
	local name=$1 want=${2:-succeeds}
	touch "$WORK/$name.release"
	probe_end "$name" 10
	cat "$WORK/$name.probe"
	echo "pqprobe exit status: $PROBE_STATUS"
	case $want,$PROBE_STATUS in
	succeeds,0) return 0 ;;
	fails,running | fails,0) return 1 ;;
	fails,*) return 0 ;;
	*) return 1 ;;
	esac
}

kill_probes() {
	local name
	for name in "${!PROBE_PID[@]}"; do
		kill "${PROBE_PID[$name]}" 2>/dev/null || true
	done
}

# The EXIT trap: background clients first, then lib.sh's cleanup, which
# takes the exit status from $? (errexit off, or "(exit 1)" would end the
# trap before anything is stopped).
ops_cleanup() {
	local rc=$?
	set +e
	kill_probes
	(exit "$rc")
	cleanup
}

# ---- clients -----------------------------------------------------------------

# tls_conninfo PORT [ROOT [MORE...]]: verify-full trusting ROOT (a file of
# certs.sh, default root.crt), with no client certificate (paths that do not
# exist, so that libpq does not fall back to ~/.postgresql/postgresql.crt).
tls_conninfo() {
	local port=$1 root=${2:-root.crt}
	shift $(($# < 2 ? $# : 2))
	conninfo "$port" verify-full "sslrootcert=$CERTS/$root" \
		"sslcert=$WORK/no-such.crt" "sslkey=$WORK/no-such.key" "$@"
}

# tls_ok PORT [ROOT]: connects over TLS, verify-full, and SELECT 1 works.
tls_ok() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(tls_conninfo "$@")"
}

# tls_refused PORT [ROOT]: a verify-full client is refused.
tls_refused() {
	"$PQPROBE" --expect refused "$(tls_conninfo "$@")"
}

# ---- metrics -----------------------------------------------------------------

# http_get PORT PATH: an HTTP/1.0 GET to 127.0.0.1:PORT through bash's
# /dev/tcp (curl may not be installed); the response, CRs removed.
http_get() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
		line=
		while IFS= read -r -t 5 line <&3 || [ -n "$line" ]; do
			printf '%s\n' "${line%$'\r'}"
			line=
		done
	)
}

# scrape NAME OUT [PATH]: GET PATH (default /metrics) from gate NAME's
# metrics endpoint into OUT.
scrape() {
	http_get "${METRICS_PORT[$1]}" "${3:-/metrics}" >"$2" 2>&1 || {
		echo "could not GET ${3:-/metrics} from 127.0.0.1:${METRICS_PORT[$1]}"
		cat "$2"
		return 1
	}
}

# The body of a response: what follows the first empty line.
http_body() {
	sed '1,/^$/d' "$1"
}

# metric FILE SERIES: the value of SERIES (name{labels}, exactly as written)
# in the response FILE, or nothing.
metric() {
	http_body "$1" | awk -v s="$2" '$1 == s { print $2 }'
}

# metric_in NAME SERIES MIN MAX [SECONDS]: scraping gate NAME, SERIES reaches
# MIN within SECONDS (default 3) and is then at most MAX.
metric_in() {
	local name=$1 series=$2 min=$3 max=$4 tries=$((${5:-3} * 10)) out value
	out=$WORK/metric-$name.out
	while :; do
		scrape "$name" "$out" || return 1
		value=$(metric "$out" "$series")
		if [ -n "$value" ] && [ "$value" -ge "$min" ]; then
			break
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "$series is ${value:-missing}, expected at least $min; the scrape:"
			cat "$out"
			return 1
		fi
		sleep 0.1
	done
	echo "$series = $value (expected $min..$max)"
	if [ "$value" -gt "$max" ]; then
		cat "$out"
		return 1
	fi
}

# metrics_well_formed FILE: 200, Prometheus text, every sample line
# well-formed, every family with # HELP and # TYPE.
metrics_well_formed() {
	local file=$1 line family bad=0
	local sample='^pgsslgate_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9]+$'
	local -A help=() type=() seen=()
	if ! head -n 1 "$file" | grep -Eq '^HTTP/1\.[01] 200 '; then
		echo "not a 200 response:"
		cat "$file"
		return 1
	fi
	if ! sed '/^$/q' "$file" | grep -iq '^content-type: text/plain'; then
		echo "no Content-Type: text/plain header"
		bad=1
	fi
	while IFS= read -r line; do
		case $line in
		"") ;;
		"# HELP "*)
			family=${line#"# HELP "}
			help[${family%% *}]=1 ;;
		"# TYPE "*)
			family=${line#"# TYPE "}
			type[${family%% *}]=1
			if ! [[ $line =~ ^\#\ TYPE\ [a-z_]+\ (counter|gauge|histogram|summary|untyped)$ ]]; then
				echo "bad TYPE line: $line"
				bad=1
			fi ;;
		"#"*) ;;
		*)
			if ! [[ $line =~ $sample ]]; then
				echo "malformed sample line: $line"
				bad=1
			fi
			family=${line%%[ \{]*}
			seen[$family]=1 ;;
		esac
	done < <(http_body "$file")
	if [ "${#seen[@]}" -eq 0 ]; then
		echo "no samples at all"
		bad=1
	fi
	for family in "${!seen[@]}"; do
		[ -n "${help[$family]:-}" ] || { echo "no # HELP for $family"; bad=1; }
		[ -n "${type[$family]:-}" ] || { echo "no # TYPE for $family"; bad=1; }
	done
	echo "${#seen[@]} families: ${!seen[*]}"
	[ "$bad" -eq 0 ] || { echo "the response:"; cat "$file"; }
	return "$bad"
}

# has_series FILE SERIES...: every SERIES has a sample in the response.
has_series() {
	local file=$1 series missing=0
	shift
	for series; do
		if [ -z "$(metric "$file" "$series")" ]; then
			echo "missing: $series"
			missing=1
		fi
	done
	[ "$missing" -eq 0 ] || cat "$file"
	return "$missing"
}

# ---- 1, 2: reloads -------------------------------------------------------------

test_reload_swaps_certificate() {
	local live_crt=$WORK/live.crt live_key=$WORK/live.key port
	cp "$CERTS/server-chain.crt" "$live_crt"
	cp "$CERTS/server.key" "$live_key"
	chmod 0600 "$live_key"
	start_metrics_gate reload -c "ssl_cert_file=$live_crt" \
		-c "ssl_key_file=$live_key" || return 0
	port=${PORT[reload]}

	check "before the reload, verify-full trusting root.crt connects" tls_ok "$port"
	check "before the reload, verify-full trusting rogue.crt is refused" \
		tls_refused "$port" rogue.crt
	check "a session opened before the reload runs SELECT 1 and stays open" \
		hold_session held_reload "$(tls_conninfo "$port")"

	# Same paths, new contents: a reload must read them again.
	cp "$CERTS/server-rogue-chain.crt" "$live_crt"
	cp "$CERTS/server-rogue.key" "$live_key"
	signal_gate reload HUP
	check "SIGHUP with new contents at the same paths logs 'configuration reloaded'" \
		log_wait reload "LOG:  configuration reloaded"
	check "after the reload, a new verify-full client trusting rogue.crt connects: it gets the new certificate" \
		tls_ok "$port" rogue.crt
	check "after the reload, a new verify-full client trusting root.crt is refused" \
		tls_refused "$port" root.crt
	check "the session opened before the reload runs SELECT 1 again on the same connection" \
		release_session held_reload
	check "reloads_total{trigger=\"signal\"}: ok 1, failed 0" \
		metric_pair reload 1 0
	check "no ERROR or WARNING in the log of a clean reload" \
		log_count_is reload 0 "(ERROR|WARNING):"
	gate_stop reload
}

# metric_pair NAME OK FAILED: the SIGHUP reload counters of gate NAME.
metric_pair() {
	metric_in "$1" 'pgsslgate_reloads_total{trigger="signal",result="ok"}' "$2" "$2" &&
		metric_in "$1" 'pgsslgate_reloads_total{trigger="signal",result="failed"}' "$3" "$3"
}

test_reload_broken_key() {
	local live_crt=$WORK/live2.crt live_key=$WORK/live2.key port
	cp "$CERTS/server-chain.crt" "$live_crt"
	cp "$CERTS/server.key" "$live_key"
	chmod 0600 "$live_key"
	start_metrics_gate badkey -c "ssl_cert_file=$live_crt" \
		-c "ssl_key_file=$live_key" || return 0
	port=${PORT[badkey]}

	# A garbage key, mode 0600 still: only its contents are wrong.
	echo "this is not a PEM key" >"$live_key"
	signal_gate badkey HUP
	check "SIGHUP with a garbage key logs ERROR 'reload failed, still serving with the previous configuration and certificates', naming the key file" \
		log_wait badkey "ERROR:  reload failed, still serving with the previous configuration and certificates: .*$live_key"
	check "after the failed reload, the old certificate still serves verify-full clients trusting root.crt" \
		tls_ok "$port" root.crt
	check "after the failed reload, no 'configuration reloaded' is logged" \
		log_count_is badkey 0 "configuration reloaded"
	check "reloads_total{trigger=\"signal\",result=\"failed\"} counts the failed reload (ok 0, failed 1)" \
		metric_pair badkey 0 1

	cp "$CERTS/server.key" "$live_key"
	signal_gate badkey HUP
	check "with the key restored, the next SIGHUP reloads (ok 1, failed 1)" \
		eventually 3 metric_pair badkey 1 1
	check "and the gate still serves verify-full clients trusting root.crt" \
		tls_ok "$port" root.crt
	gate_stop badkey
}

test_reload_config_file() {
	local conf=$WORK/reload.conf port new_port
	port=$(free_port)
	new_port=$(free_port)
	PORT[conffile]=$port
	write_reload_conf "$conf" "$port" on
	gate_start conffile "$conf" || return 0

	check "a configuration file gate with require_ssl = on refuses sslmode=disable" \
		"$PQPROBE" --expect refused --error-contains "requires SSL" \
		"$(conninfo "$port" disable)"
	write_reload_conf "$conf" "$new_port" off
	signal_gate conffile HUP
	check "SIGHUP re-reads the file: a changed port gets a WARNING that it takes effect only at a restart" \
		log_wait conffile "WARNING:  .*port.*restart"
	check "after that reload the gate still listens on the old port" \
		tls_ok "$port"
	check "a setting changed in the file (require_ssl = off) applies to new connections: sslmode=disable connects" \
		"$PQPROBE" --expect connected --ssl 0 "$(conninfo "$port" disable)"
	gate_stop conffile
}

# cert_client_ok PORT USER: verify-full, presenting USER's certificate (USER.crt,
# USER.key) as user USER; SELECT current_user must say USER.
cert_client_ok() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
		--expect-value "$2" "$(conninfo "$1" verify-full "user=$2" \
		"sslcert=$CERTS/$2.crt" "sslkey=$CERTS/$2.key")"
}

cert_client_refused() {
	"$PQPROBE" --expect refused "$(conninfo "$1" verify-full "user=$2" \
		"sslcert=$CERTS/$2.crt" "sslkey=$CERTS/$2.key")"
}

# Client certificates: ssl_ca_file and ssl_crl_file are read again too.
test_reload_ca_and_crl() {
	local ca=$WORK/live-ca.crt crl=$WORK/live.crl port
	cp "$CERTS/client-ca.crt" "$ca"
	start_gate careload -c "ssl_ca_file=$ca" -c clientcert=verify-ca || return 0
	port=${PORT[careload]}
	check "ssl_ca_file client-ca.crt: alice's certificate connects" \
		cert_client_ok "$port" alice
	check "ssl_ca_file client-ca.crt: eve's certificate (rogue CA) is refused" \
		cert_client_refused "$port" eve
	cp "$CERTS/rogue.crt" "$ca"
	signal_gate careload HUP
	check "SIGHUP after ssl_ca_file became rogue.crt at the same path: 'configuration reloaded'" \
		log_wait careload "LOG:  configuration reloaded"
	check "after that reload, eve's certificate connects" cert_client_ok "$port" eve
	check "after that reload, alice's certificate is refused" \
		cert_client_refused "$port" alice
	gate_stop careload

	cp "$CERTS/crl-bundle.crl" "$crl"
	start_gate crlreload -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$crl" || return 0
	port=${PORT[crlreload]}
	check "ssl_crl_file with every CA's CRL: alice's certificate connects" \
		cert_client_ok "$port" alice
	# Without the intermediate's CRL, no certificate under it passes.
	cat "$CERTS/root.crl" "$CERTS/intermediate2.crl" >"$crl"
	signal_gate crlreload HUP
	check "SIGHUP after the intermediate's CRL left ssl_crl_file: 'configuration reloaded'" \
		log_wait crlreload "LOG:  configuration reloaded"
	check "after that reload, alice's certificate is refused (no CRL from her issuer)" \
		cert_client_refused "$port" alice
	gate_stop crlreload
}

# Roles for the client certificates' CNs, so that the backend accepts them
# (with the password every test role has: the backend asks for it, SCRAM).
create_roles() {
	pg_create_roles alice eve
}

# write_reload_conf FILE PORT REQUIRE_SSL
write_reload_conf() {
	cat >"$1" <<-EOF
		# ops.sh: a gate configured from a file, reloaded with SIGHUP
		listen_addresses = '127.0.0.1'
		port = $2
		backend_host = '127.0.0.1'
		backend_port = $PG_PORT
		ssl = on
		require_ssl = $3
		ssl_cert_file = '$CERTS/server-chain.crt'
		ssl_key_file = '$CERTS/server.key'
	EOF
}

# ---- 3: SIGTERM and SIGINT -------------------------------------------------------

test_sigterm_idle() {
	start_gate idle || return 0
	signal_gate idle TERM
	check "SIGTERM with no session open: the gate exits 0 at once (within 1 s)" \
		gate_exits_ok idle 1
}

test_sigterm_drain() {
	local port
	start_gate drain || return 0
	port=${PORT[drain]}
	probe_bg sleeper --timeout 20 --query "SELECT 'slept' FROM pg_sleep(2)" \
		--expect-value slept "$(tls_conninfo "$port")"
	if ! probe_says sleeper "^connected" 10 >"$WORK/sleeper.why"; then
		fail "a session to drain connects" "$WORK/sleeper.why"
		return 0
	fi
	sleep 0.3		# the query is on its way
	signal_gate drain TERM
	check "during the drain, a new connection is refused (the listening socket is closed)" \
		"$PQPROBE" --expect refused --error-contains "Connection refused" \
		"$(tls_conninfo "$port")"
	check "during the drain, the gate is still running" running drain
	check "the drain is logged: no longer accepting connections, waiting for 1 connection" \
		log_wait drain "LOG:  received SIGTERM; no longer accepting connections"
	check "the session running pg_sleep(2) when SIGTERM came completes with its result" \
		probe_result sleeper 10
	check "once that session ended, the gate exits 0 (within 5 s of SIGTERM, not shutdown_timeout's 30 s)" \
		gate_exits_ok drain 5 1
}

# probe_result NAME SECONDS: the background probe exits 0 within SECONDS.
probe_result() {
	probe_end "$1" "$2"
	cat "$WORK/$1.probe"
	echo "pqprobe exit status: $PROBE_STATUS"
	[ "$PROBE_STATUS" = 0 ]
}

test_shutdown_timeout() {
	local port
	start_gate cut -c shutdown_timeout=1 || return 0
	port=${PORT[cut]}
	probe_bg long --timeout 20 --query "SELECT pg_sleep(10)" "$(tls_conninfo "$port")"
	if ! probe_says long "^connected" 10 >"$WORK/long.why"; then
		fail "a session to cut connects" "$WORK/long.why"
		return 0
	fi
	sleep 0.3
	signal_gate cut TERM
	check "shutdown_timeout=1: with a pg_sleep(10) session the gate exits 0 about 1 s after SIGTERM (1 s to 4 s)" \
		gate_exits_ok cut 4 0.9
	check "the log says shutdown_timeout expired" \
		log_wait cut "shutdown_timeout expired" 0
	check "the pg_sleep(10) session was cut: its query fails" cut_session long
}

# cut_session NAME: the background probe ended, its query failing.
cut_session() {
	probe_end "$1" 5
	cat "$WORK/$1.probe"
	echo "pqprobe exit status: $PROBE_STATUS"
	[ "$PROBE_STATUS" != 0 ] && [ "$PROBE_STATUS" != running ] &&
		grep -q "^query failed" "$WORK/$1.probe"
}

test_sigint() {
	start_gate intr || return 0
	if ! hold_session held_intr "$(tls_conninfo "${PORT[intr]}")" >"$WORK/intr.why"; then
		fail "a session to interrupt connects" "$WORK/intr.why"
		kill_gate intr
		return 0
	fi
	signal_gate intr INT
	check "SIGINT with an open session: the gate exits 0 at once (within 2 s)" \
		gate_exits_ok intr 2
	check "the session open at SIGINT was closed: its second query fails" \
		release_session held_intr fails
}

# ---- 4: max_connections ------------------------------------------------------------

test_max_connections() {
	local port
	start_gate maxconn -c max_connections=1 || return 0
	port=${PORT[maxconn]}
	check "max_connections=1: the first session connects and stays open" \
		hold_session held_max "$(tls_conninfo "$port")"
	check "max_connections=1: a second concurrent verify-full client gets FATAL 53300 'sorry, too many clients already' (over TLS)" \
		"$PQPROBE" --expect refused --verbose-errors \
		--error-contains "FATAL:  53300: sorry, too many clients already" \
		"$(tls_conninfo "$port")"
	check "that refusal is logged" \
		log_wait maxconn "refused connection from host=127\.0\.0\.1 .*sorry, too many clients already"
	check "the first session still works" release_session held_max
	check "with the first session gone, a new client connects" \
		eventually 3 tls_ok "$port"
	gate_stop maxconn
}

# ---- backend_connect_timeout -----------------------------------------------------------

test_backend_connect_timeout() {
	local silent started took
	silent=$(free_port)
	bg_run blackhole "$RAWPROBE" --timeout 30 listen-full 127.0.0.1 "$silent"
	if ! probe_says blackhole "^listening with a full queue" 5 >"$WORK/blackhole.why"; then
		fail "a backend that never answers the TCP connect is set up (rawprobe listen-full)" \
			"$WORK/blackhole.why"
		return 0
	fi
	start_metrics_gate slowbackend -c "backend_port=$silent" \
		-c backend_connect_timeout=500ms || return 0
	started=$EPOCHREALTIME
	check "backend_connect_timeout=500ms, a backend that never answers: the client gets 08006 'could not connect to backend 127.0.0.1:$silent: Connection timed out'" \
		"$PQPROBE" --expect refused --verbose-errors \
		--error-contains "08006: could not connect to backend 127.0.0.1:$silent: Connection timed out" \
		"$(tls_conninfo "${PORT[slowbackend]}")"
	took=$(since "$started")
	check "that refusal comes after about 500 ms (0.4 s to 5 s, here $took s)" \
		num_between "$took" 0.4 5
	check "refused_total{reason=\"backend_unreachable\"} is 1" \
		metric_in slowbackend 'pgsslgate_refused_total{reason="backend_unreachable"}' 1 1
	gate_stop slowbackend
	probe_end blackhole 0
}

# ---- 5: authentication_timeout -------------------------------------------------------

# closed_in_time MODE PORT: rawprobe MODE is closed by the gate 0.5 s to 5 s
# after it went quiet.
closed_in_time() {
	local out took rc=0
	out=$("$RAWPROBE" --timeout 10 "$1" 127.0.0.1 "$2") || rc=$?
	echo "$out"
	[ "$rc" -eq 0 ] || return 1
	took=$(sed -n 's/^closed after \([0-9.]*\) s$/\1/p' <<<"$out")
	if [ -z "$took" ] || ! num_between "$took" 0.5 5; then
		echo "FAIL: expected the close 0.5 s to 5 s after going quiet, not ${took:-never}"
		return 1
	fi
}

test_authentication_timeout() {
	local port
	start_metrics_gate authto -c authentication_timeout=1s || return 0
	port=${PORT[authto]}
	check "authentication_timeout=1s: a client that sends nothing is closed in about 1 s" \
		closed_in_time silent "$port"
	check "authentication_timeout=1s: a client that sends half a packet (a length word) is closed in about 1 s" \
		closed_in_time half "$port"
	check "the log names authentication_timeout for each" \
		log_count_is authto 2 "authentication_timeout"
	check "refused_total{reason=\"authentication_timeout\"} is 2" \
		metric_in authto 'pgsslgate_refused_total{reason="authentication_timeout"}' 2 2
	check "after the timeouts the gate still serves verify-full clients" tls_ok "$port"
	gate_stop authto
}

# ---- 6: metrics ----------------------------------------------------------------------

test_metrics() {
	local name=metrics port before=$WORK/metrics-before.out after=$WORK/metrics-after.out
	local series v days hs_before
	start_metrics_gate "$name" || return 0
	port=${PORT[$name]}

	check "GET /metrics answers 200 in Prometheus text format: every sample line well-formed, every family with # HELP and # TYPE" \
		scrape_well_formed "$name" "$before"
	check "every counter the contract names is there, with every label value" \
		has_series "$before" pgsslgate_connections_accepted_total \
		pgsslgate_connections_active \
		'pgsslgate_sessions_total{transport="tls"}' \
		'pgsslgate_sessions_total{transport="plain"}' \
		pgsslgate_cancel_requests_total \
		'pgsslgate_refused_total{reason="ssl_required"}' \
		'pgsslgate_refused_total{reason="certificate_user_mismatch"}' \
		'pgsslgate_refused_total{reason="client_certificate_missing"}' \
		'pgsslgate_refused_total{reason="too_many_connections"}' \
		'pgsslgate_refused_total{reason="protocol_violation"}' \
		'pgsslgate_refused_total{reason="unencrypted_data_after_ssl_request"}' \
		'pgsslgate_refused_total{reason="backend_unreachable"}' \
		'pgsslgate_refused_total{reason="authentication_timeout"}' \
		'pgsslgate_tls_handshake_failures_total{reason="client_certificate_rejected"}' \
		'pgsslgate_tls_handshake_failures_total{reason="server_certificate_rejected"}' \
		'pgsslgate_tls_handshake_failures_total{reason="protocol_version"}' \
		'pgsslgate_tls_handshake_failures_total{reason="no_shared_cipher"}' \
		'pgsslgate_tls_handshake_failures_total{reason="not_tls"}' \
		'pgsslgate_tls_handshake_failures_total{reason="client_closed"}' \
		'pgsslgate_tls_handshake_failures_total{reason="other"}' \
		'pgsslgate_bytes_relayed_total{direction="client_to_backend"}' \
		'pgsslgate_bytes_relayed_total{direction="backend_to_client"}' \
		'pgsslgate_reloads_total{trigger="signal",result="ok"}' \
		'pgsslgate_reloads_total{trigger="signal",result="failed"}' \
		'pgsslgate_reloads_total{trigger="file",result="ok"}' \
		'pgsslgate_reloads_total{trigger="file",result="failed"}' \
		pgsslgate_last_reload_success_timestamp_seconds \
		pgsslgate_certificate_expiry_seconds
	[ -s "$before" ] || return 0

	check "a verify-full session runs SELECT 1" tls_ok "$port"
	v=$(metric "$before" 'pgsslgate_sessions_total{transport="tls"}')
	check "that session adds 1 to sessions_total{transport=\"tls\"}" \
		metric_in "$name" 'pgsslgate_sessions_total{transport="tls"}' $((${v:-0} + 1)) $((${v:-0} + 1))
	v=$(metric "$before" 'pgsslgate_sessions_total{transport="plain"}')
	check "and nothing to sessions_total{transport=\"plain\"}" \
		metric_in "$name" 'pgsslgate_sessions_total{transport="plain"}' "${v:-0}" "${v:-0}"
	v=$(metric "$before" pgsslgate_connections_accepted_total)
	check "and 1 to connections_accepted_total" \
		metric_in "$name" pgsslgate_connections_accepted_total $((${v:-0} + 1)) $((${v:-0} + 1))
	for series in 'pgsslgate_bytes_relayed_total{direction="client_to_backend"}' \
		'pgsslgate_bytes_relayed_total{direction="backend_to_client"}'; do
		v=$(metric "$before" "$series")
		check "and bytes to $series" \
			metric_in "$name" "$series" $((${v:-0} + 1)) 1000000000
	done

	v=$(metric "$before" 'pgsslgate_refused_total{reason="ssl_required"}')
	check "an sslmode=disable client under require_ssl = on is refused" \
		"$PQPROBE" --expect refused "$(conninfo "$port" disable)"
	check "which adds 1 to refused_total{reason=\"ssl_required\"}" \
		metric_in "$name" 'pgsslgate_refused_total{reason="ssl_required"}' $((${v:-0} + 1)) $((${v:-0} + 1))

	scrape "$name" "$before" || true
	hs_before=$(http_body "$before" | grep '^pgsslgate_tls_handshake_failures_total' || true)
	v=$(metric "$before" 'pgsslgate_tls_handshake_failures_total{reason="server_certificate_rejected"}')
	check "a verify-full client trusting rogue.crt is refused" tls_refused "$port" rogue.crt
	check "which adds 1 to tls_handshake_failures_total{reason=\"server_certificate_rejected\"}" \
		metric_in "$name" 'pgsslgate_tls_handshake_failures_total{reason="server_certificate_rejected"}' \
		$((${v:-0} + 1)) $((${v:-0} + 1))
	scrape "$name" "$after" || true
	finding "a verify-full client trusting rogue.crt was counted as:" \
		"$(diff <(echo "$hs_before") <(http_body "$after" |
			grep '^pgsslgate_tls_handshake_failures_total' || true) |
			sed -n 's/^> pgsslgate_tls_handshake_failures_total//p' | tr '\n' ' ')"

	v=$(metric "$before" pgsslgate_cancel_requests_total)
	check "a CancelRequest stops pg_sleep(30)" \
		"$PQPROBE" --query "SELECT pg_sleep(30)" --cancel-after 300 --timeout 5 \
		"$(tls_conninfo "$port")"
	check "which adds 1 to cancel_requests_total" \
		metric_in "$name" pgsslgate_cancel_requests_total $((${v:-0} + 1)) $((${v:-0} + 1))

	check "with a session held open, connections_active is 1" \
		active_while_held "$name"
	release_session held_metrics >/dev/null || true
	check "once it ended, connections_active is 0 again" \
		eventually 3 metric_in "$name" pgsslgate_connections_active 0 0

	scrape "$name" "$after" || true
	v=$(metric "$after" pgsslgate_certificate_expiry_seconds)
	days=$(awk -v s="${v:-0}" 'BEGIN { printf "%.1f", s / 86400 }')
	check "certificate_expiry_seconds is 300 to 400 days for server.crt ($days days)" \
		num_between "${v:-0}" $((300 * 86400)) $((400 * 86400))
	check "no crl_next_update_seconds without CRLs" \
		no_series "$after" pgsslgate_crl_next_update_seconds
	check "GET /nope answers 404" \
		answers_404 "$name" /nope
	check "after all that, the scrape is still well-formed" \
		scrape_well_formed "$name" "$after"
	gate_stop "$name"

	start_metrics_gate metrics_crl -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c "ssl_crl_file=$CERTS/crl-bundle.crl" || return 0
	check "with ssl_ca_file and ssl_crl_file, crl_next_update_seconds has a line for each CRL's issuer, about 365 days ahead" \
		crl_lines metrics_crl
	check "and the scrape is well-formed" \
		scrape_well_formed metrics_crl "$after"
	gate_stop metrics_crl
}

# scrape_well_formed NAME OUT: scrape gate NAME into OUT, and it is
# well-formed.
scrape_well_formed() {
	scrape "$1" "$2" && metrics_well_formed "$2"
}

# active_while_held NAME: with a session held open through gate NAME,
# connections_active is 1.
active_while_held() {
	hold_session held_metrics "$(tls_conninfo "${PORT[$1]}")" &&
		metric_in "$1" pgsslgate_connections_active 1 1
}

# no_series FILE NAME: no sample of the family NAME in the response.
no_series() {
	if http_body "$1" | grep -E "^$2[{ ]"; then
		echo "FAIL: unexpected $2 samples"
		return 1
	fi
}

# answers_404 NAME PATH: GET PATH from gate NAME's metrics endpoint is 404.
answers_404() {
	local out=$WORK/http-404.out
	scrape "$1" "$out" "$2" || return 1
	cat "$out"
	head -n 1 "$out" | grep -Eq '^HTTP/1\.[01] 404 '
}

# crl_lines NAME: crl_next_update_seconds{issuer="..."} for the root and both
# intermediates, each 300 to 400 days.
crl_lines() {
	local out=$WORK/crl-metrics.out cn line value bad=0
	scrape "$1" "$out" || return 1
	for cn in "pgsslgate test root CA" "pgsslgate test intermediate CA" \
		"pgsslgate test second intermediate CA"; do
		line=$(http_body "$out" | grep "^pgsslgate_crl_next_update_seconds{issuer=\"[^\"]*CN=${cn}[,\"]" || true)
		value=${line##* }
		if [ -z "$line" ] || ! num_between "$value" $((300 * 86400)) $((400 * 86400)); then
			echo "no good crl_next_update_seconds line for CN=$cn: ${line:-none}"
			bad=1
		else
			echo "$line"
		fi
	done
	[ "$bad" -eq 0 ] || cat "$out"
	return "$bad"
}

# ---- 7: expiry warnings -----------------------------------------------------------------

test_expiry_warnings() {
	local n
	if start_gate expired -c "ssl_cert_file=$CERTS/server-expired-chain.crt" \
		-c "ssl_key_file=$CERTS/server-expired.key"; then
		ok "an expired certificate does not stop start-up"
		check "it gets a WARNING that the certificate expired" \
			log_wait expired "WARNING:  .*server-expired-chain\.crt.*the certificate expired" 0
		check "verify-full clients refuse the expired certificate" \
			tls_refused "${PORT[expired]}"
		gate_stop expired
	fi
	if start_gate soon -c "ssl_cert_file=$CERTS/server-soon-chain.crt" \
		-c "ssl_key_file=$CERTS/server-soon.key"; then
		ok "a certificate expiring in about 10 days does not stop start-up"
		check "it gets a WARNING 'the certificate expires in N days' (N up to 10, ssl_cert_expiry_warning 30 days by default)" \
			soon_warning soon 1
		signal_gate soon HUP
		check "the WARNING comes again on every reload" \
			eventually 3 soon_warning soon 2
		check "the certificate still serves verify-full clients" tls_ok "${PORT[soon]}"
		gate_stop soon
	fi
	if start_gate soon_quiet -c "ssl_cert_file=$CERTS/server-soon-chain.crt" \
		-c "ssl_key_file=$CERTS/server-soon.key" -c ssl_cert_expiry_warning=5d; then
		n=$(log_lines soon_quiet "WARNING")
		if [ "$n" -eq 0 ]; then
			ok "ssl_cert_expiry_warning = 5d: no WARNING for a certificate expiring in about 10 days"
		else
			fail "ssl_cert_expiry_warning = 5d: no WARNING for a certificate expiring in about 10 days" \
				"$(gate_log soon_quiet)"
		fi
		gate_stop soon_quiet
	fi
	start_gate far || return 0
	n=$(log_lines far "WARNING")
	if [ "$n" -eq 0 ]; then
		ok "a certificate valid for another 365 days gets no WARNING"
	else
		fail "a certificate valid for another 365 days gets no WARNING" "$(gate_log far)"
	fi
	gate_stop far
}

# soon_warning NAME COUNT: COUNT expiry warnings, each for N <= 10 days.
soon_warning() {
	local re="WARNING:  .*server-soon-chain\.crt.*the certificate expires in ([0-9]+) days" days
	log_count_is "$1" "$2" "$re" || return 1
	days=$(grep -E -- "$re" "$(gate_log "$1")" | tail -n 1 |
		sed -E 's/.*expires in ([0-9]+) days.*/\1/')
	grep -E -- "$re" "$(gate_log "$1")"
	[ "$days" -le 10 ] || { echo "FAIL: $days days, expected 10 or fewer"; return 1; }
}

# ---- 8: --check ----------------------------------------------------------------------------

CHECK_RC=
# run_check NAME ARGS...: pgsslgate --check ARGS; stdout in
# $WORK/check-NAME.out, stderr in $WORK/check-NAME.err, status in CHECK_RC.
run_check() {
	local name=$1
	shift
	CHECK_RC=0
	# shellcheck disable=SC2153 # GATE_BIN is lib.sh's
	"$GATE_BIN" --check "$@" >"$WORK/check-$name.out" 2>"$WORK/check-$name.err" ||
		CHECK_RC=$?
}

# check_report NAME: show the report of run_check NAME.
check_report() {
	echo "pgsslgate --check exit status $CHECK_RC; stdout:"
	cat "$WORK/check-$1.out"
	if [ -s "$WORK/check-$1.err" ]; then
		echo "stderr:"
		cat "$WORK/check-$1.err"
	fi
}

# report_plain FILE: the --check report has no timestamps and no "LOG:".
report_plain() {
	if grep -E '^[0-9]{4}-|LOG:' "$1"; then
		echo "FAIL: the lines above are not plain"
		return 1
	fi
}

# check_clean NAME ARGS...: exit 0, last line "no problems found", no
# WARNING or ERROR lines.
check_clean() {
	local name=$1 out=$WORK/check-$1.out
	run_check "$@"
	check_report "$name"
	[ "$CHECK_RC" -eq 0 ] &&
		[ "$(tail -n 1 "$out")" = "pgsslgate --check: no problems found" ] &&
		! grep -Eq '^(WARNING|ERROR):' "$out"
}

# check_problem NAME ERE ARGS...: exit 1, a WARNING or ERROR line matching
# ERE, and a last line counting every WARNING and ERROR line.
check_problem() {
	local name=$1 re=$2 out=$WORK/check-$1.out n want
	shift 2
	run_check "$name" "$@"
	check_report "$name"
	n=$(grep -Ec '^(WARNING|ERROR):  ' "$out" || true)
	if [ "$n" -eq 1 ]; then
		want="pgsslgate --check: 1 problem found"
	else
		want="pgsslgate --check: $n problems found"
	fi
	[ "$CHECK_RC" -eq 1 ] || { echo "FAIL: expected exit status 1"; return 1; }
	grep -Eq -- "$re" "$out" || { echo "FAIL: no line matches: $re"; return 1; }
	[ "$(tail -n 1 "$out")" = "$want" ] ||
		{ echo "FAIL: expected the last line \"$want\""; return 1; }
}

test_check() {
	local good=$WORK/good.conf bad=$WORK/bad.conf loose=$WORK/loose.key dead
	local -a tls
	# port = PostgreSQL's: --check must not try to listen.
	cat >"$good" <<-EOF
		# ops.sh: a good configuration for --check
		listen_addresses = '127.0.0.1'
		port = $PG_PORT
		backend_host = '127.0.0.1'
		backend_port = $PG_PORT
		ssl = on
		require_ssl = on
		ssl_cert_file = '$CERTS/server-chain.crt'
		ssl_key_file = '$CERTS/server.key'
	EOF
	check "--check on a good configuration file (port in use by PostgreSQL) exits 0, last line 'no problems found'" \
		check_clean good "$good"
	check "--check shows the host names the certificate covers (DNS:localhost, IP:127.0.0.1)" \
		grep -E "for DNS:localhost, IP:127\.0\.0\.1" "$WORK/check-good.out"
	check "--check says the chain is in order: '2 certificates in order, leaf first, each signed by the next'" \
		grep -E "2 certificates in order, leaf first, each signed by the next" "$WORK/check-good.out"
	check "--check says the backend accepts connections" \
		grep -E "backend 127\.0\.0\.1:$PG_PORT accepts connections" "$WORK/check-good.out"
	check "--check prints LOG lines plain: no timestamps, no 'LOG:' prefix" \
		report_plain "$WORK/check-good.out"

	tls=(-c listen_addresses=127.0.0.1 -c "port=$PG_PORT" -c backend_host=127.0.0.1
		-c "backend_port=$PG_PORT" -c ssl=on -c require_ssl=on
		-c "ssl_cert_file=$CERTS/server-chain.crt" -c "ssl_key_file=$CERTS/server.key")

	cp "$CERTS/server.key" "$loose"
	chmod 0644 "$loose"
	check "--check: a key file of mode 0644 is an ERROR naming the file and 'chmod 0600' (exit 1)" \
		check_problem loose "^ERROR:  .*$loose.*chmod 0600" "${tls[@]}" \
		-c "ssl_key_file=$loose"
	check "--check: the key of another certificate is an ERROR: does not match certificate file ..., whose first certificate is \"CN=localhost\" (exit 1)" \
		check_problem otherkey "^ERROR:  .*$CERTS/wronghost\.key\" does not match certificate file \"$CERTS/server-chain\.crt\", whose first certificate is \"CN=localhost" \
		"${tls[@]}" -c "ssl_key_file=$CERTS/wronghost.key"

	cat "$CERTS/intermediate.crt" "$CERTS/server.crt" >"$WORK/reversed-chain.crt"
	check "--check: a chain file with the intermediate before the leaf is an ERROR whose first certificate is the intermediate (exit 1)" \
		check_problem reversed "^ERROR:  .*does not match certificate file \"$WORK/reversed-chain\.crt\", whose first certificate is \"CN=pgsslgate test intermediate CA" \
		"${tls[@]}" -c "ssl_cert_file=$WORK/reversed-chain.crt"

	cat "$CERTS/server.crt" "$CERTS/rogue.crt" >"$WORK/rogue-middle-chain.crt"
	check "--check: leaf then the unrelated rogue CA as 'intermediate' is a WARNING: certificate 2 is not the issuer of certificate 1 (exit 1)" \
		check_problem roguemid "^WARNING:  .*rogue-middle-chain\.crt.*certificate 2 \(\"CN=rogue CA[^\"]*\"\) is not the issuer of certificate 1" \
		"${tls[@]}" -c "ssl_cert_file=$WORK/rogue-middle-chain.crt"

	check "--check: an expired certificate is a WARNING saying it expired (exit 1)" \
		check_problem expired "^WARNING:  .*server-expired-chain\.crt.*expired" \
		"${tls[@]}" -c "ssl_cert_file=$CERTS/server-expired-chain.crt" \
		-c "ssl_key_file=$CERTS/server-expired.key"

	check "--check: a CRL from an issuer not in ssl_ca_file (rogue.crl with client-ca.crt) is a WARNING naming it (exit 1)" \
		check_problem foreigncrl "^WARNING:  .*CRL issued by \"CN=rogue CA[^\"]*\" matches no certificate in ssl_ca_file" \
		"${tls[@]}" -c "ssl_ca_file=$CERTS/client-ca.crt" -c "ssl_crl_file=$CERTS/rogue.crl"

	dead=$(free_port)
	check "--check: a backend that is not listening is a WARNING: backend 127.0.0.1:$dead: could not connect (exit 1)" \
		check_problem deadbackend "^WARNING:  backend 127\.0\.0\.1:$dead: could not connect" \
		"${tls[@]}" -c "backend_port=$dead"

	{
		echo "# ops.sh: a configuration with a bad value on line 4"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $PG_PORT"
		echo "max_connections = lots"
		echo "ssl = off"
	} >"$bad"
	check "--check: a bad value in a configuration file is an ERROR naming file:line and the key (exit 1)" \
		check_problem badvalue "^ERROR:  $bad:4: .*max_connections" "$bad"
}

# ---- 9: log_connections, log_destination -----------------------------------------------------

test_log_connections() {
	local port
	start_gate logconn || return 0
	port=${PORT[logconn]}
	check "a verify-full session runs SELECT 1" tls_ok "$port"
	# ", backend plaintext" (or the backend's TLS) came with backend TLS.
	check "log_connections=on: a 'session started' line with host, port, user, database, TLSv1.3 and the cipher" \
		log_wait logconn "LOG:  session started: host=127\.0\.0\.1 port=[0-9]+ user=postgres database=postgres TLSv1\.3 [A-Z0-9_]+(, backend (plaintext|TLSv1\.[23] [A-Z0-9_-]+))?$"
	check "log_connections=on: a 'disconnection' line with the session time, user, database, bytes both ways (> 0) and the reason" \
		log_wait logconn "LOG:  disconnection: session time: [0-9]+\.[0-9]{3} s host=127\.0\.0\.1 (port=[0-9]+ )?user=postgres database=postgres bytes_from_client=[1-9][0-9]* bytes_from_backend=[1-9][0-9]* \(.+\)$"
	gate_stop logconn

	start_gate quiet -c log_connections=off || return 0
	port=${PORT[quiet]}
	check "log_connections=off: a verify-full session runs SELECT 1" tls_ok "$port"
	check "log_connections=off: an sslmode=disable client is refused" \
		"$PQPROBE" --expect refused "$(conninfo "$port" disable)"
	check "log_connections=off: the refusal is still logged" \
		log_wait quiet "refused connection from host=127\.0\.0\.1 .*requires SSL"
	check "log_connections=off: no session lines are logged" \
		log_count_is quiet 0 "session started|disconnection"
	gate_stop quiet
}

test_log_destination() {
	start_gate syslogged -c log_destination=syslog || return 0
	check "log_destination=syslog: a verify-full session runs SELECT 1" \
		tls_ok "${PORT[syslogged]}"
	sleep 0.2
	check "log_destination=syslog: after the ready line, session lines no longer go to stderr" \
		log_count_is syslogged 0 "session started|disconnection"
	gate_stop syslogged
}

# ---- 10: keepalives ---------------------------------------------------------------------------

# keepalive_timer SS-FILTER: exactly the sockets ss finds for the filter
# (at least one) have a keepalive timer of 7 s or less.
keepalive_timer() {
	local out=$WORK/ss.out line timer value unit bad=0
	ss -tno state established "$1" >"$out" 2>&1 || { cat "$out"; return 1; }
	cat "$out"
	if ! grep -q 'timer:' "$out"; then
		echo "FAIL: no socket with a timer matches $1"
		return 1
	fi
	while IFS= read -r line; do
		timer=$(grep -o 'timer:([a-z]*,[^,]*' <<<"$line" || true)
		[ -n "$timer" ] || continue
		case $timer in
		"timer:(keepalive,"*) ;;
		*) echo "FAIL: not a keepalive timer: $timer"; bad=1; continue ;;
		esac
		value=${timer#timer:(keepalive,}
		# iproute2 prints e.g. 6.496sec, 6.496ms (6.1 says ms for seconds
		# under a minute), 1min9sec, 119min: a minute or more is too long.
		unit=${value##*[0-9.]}
		value=${value%"$unit"}
		case $unit in
		sec) num_between "$value" 0 7.001 || bad=1 ;;
		ms) num_between "$value" 0 7000.001 || bad=1 ;;
		*) bad=1 ;;
		esac
		[ "$bad" -eq 0 ] || echo "FAIL: keepalive timer $timer is over 7 s"
	done <"$out"
	return "$bad"
}

test_keepalives() {
	local port
	if ! command -v ss >/dev/null 2>&1; then
		if [ "${CI:-}" = true ]; then
			fail "tcp_keepalives_idle=7: keepalive timers (ss not found: install iproute2)"
		else
			skip "tcp_keepalives_idle=7: keepalive timers" "ss not found (Debian package iproute2)"
		fi
		return 0
	fi
	start_gate keepalive -c tcp_keepalives_idle=7 || return 0
	port=${PORT[keepalive]}
	check "tcp_keepalives_idle=7: a session connects and stays open" \
		hold_session held_keepalive "$(tls_conninfo "$port")"
	sleep 0.2
	check "tcp_keepalives_idle=7: ss shows a keepalive timer of 7 s or less on the gate's client-side socket" \
		keepalive_timer "( sport = :$port )"
	check "tcp_keepalives_idle=7: ss shows a keepalive timer of 7 s or less on the gate's backend-side socket" \
		keepalive_timer "( dport = :$PG_PORT )"
	release_session held_keepalive >/dev/null || true
	gate_stop keepalive
}

# ---- summary ------------------------------------------------------------------------------------

print_summary() {
	local entry title tests failed finding
	note ""
	note "summary (tests, failed):"
	for entry in "${SECTIONS[@]}"; do
		IFS='|' read -r title tests failed <<<"$entry"
		note "$(printf '%-48s %3d %3d%s' "$title" "$tests" "$failed" \
			"$([ "$failed" -eq 0 ] || echo '  <-- FAILED')")"
	done
	for finding in "${FINDINGS[@]}"; do
		note "$finding"
	done
}

main() {
	needs pqprobe rawprobe
	setup_work
	trap ops_cleanup EXIT
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	create_roles
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"

	section "1 reload swaps the certificate" test_reload_swaps_certificate
	section "2 reload with a broken key keeps the old one" test_reload_broken_key
	section "  reload re-reads the configuration file" test_reload_config_file
	section "  reload re-reads ssl_ca_file and ssl_crl_file" test_reload_ca_and_crl
	section "3 SIGTERM with no session" test_sigterm_idle
	section "3 SIGTERM drains sessions" test_sigterm_drain
	section "3 shutdown_timeout cuts sessions" test_shutdown_timeout
	section "3 SIGINT stops at once" test_sigint
	section "4 max_connections" test_max_connections
	section "5 authentication_timeout" test_authentication_timeout
	section "  backend_connect_timeout" test_backend_connect_timeout
	section "6 metrics" test_metrics
	section "7 certificate expiry warnings" test_expiry_warnings
	section "8 --check" test_check
	section "9 log_connections" test_log_connections
	section "  log_destination" test_log_destination
	section "10 tcp keepalives" test_keepalives
	print_summary
	finish
}

main "$@"
