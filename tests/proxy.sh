#!/bin/bash
# proxy.sh: proxy_protocol, between HAProxy (send-proxy and send-proxy-v2),
# raw headers from tests/proxyprobe.py, pgsslgate and a real PostgreSQL 15
# with scram-sha-256 logins.  The client's address from the header is the
# one the log and the per-host startup cap use; LOCAL (health checks) is
# the balancer itself; TLVs 0xEA and 0xEE reach the log line; a header from
# an address not in proxy_protocol_networks is refused, and so is a missing
# or malformed one from a listed address, each with a log line; a header
# split byte by byte, or followed by an SSLRequest in the same packet,
# works; only the first of stacked headers is read; a silent connection is
# closed at authentication_timeout.  Prints TAP-ish lines; exits 0 when
# every test passed, 77 when a prerequisite is missing (a failure instead
# when CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make check (or make tests/pqprobe):
#   bash tests/proxy.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
# shellcheck disable=SC2317 # (functions run through check look unreachable)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

APP_PASSWORD=proxy-test-secret
PYTHON=/usr/bin/python3		# Debian's, with nothing added
PROBE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/proxyprobe.py
BALANCER=127.0.0.2		# HAProxy's source address toward the gate
AUTH_TIMEOUT_MS=2000
HAPROXY_PID=

declare -A PORT=()

# ---- set-up ----------------------------------------------------------------

# HAProxy in TCP mode: PORT[hap_v1] on 127.0.0.1 with send-proxy,
# PORT[hap_v2] on ::1 with send-proxy-v2, both from $BALANCER to the gate.
haproxy_start() {
	PORT[hap_v1]=$(free_port)
	PORT[hap_v2]=$(free_port)
	cat >"$WORK/haproxy.cfg" <<-EOF
		global
		    maxconn 100
		defaults
		    mode tcp
		    timeout connect 5s
		    timeout client 30s
		    timeout server 30s
		frontend v1
		    bind 127.0.0.1:${PORT[hap_v1]}
		    default_backend gate_v1
		frontend v2
		    bind [::1]:${PORT[hap_v2]}
		    default_backend gate_v2
		backend gate_v1
		    server gate 127.0.0.1:${PORT[pp]} send-proxy source $BALANCER
		backend gate_v2
		    server gate 127.0.0.1:${PORT[pp]} send-proxy-v2 source $BALANCER
	EOF
	haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
	HAPROXY_PID=$!
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/${PORT[hap_v1]}") 2>/dev/null; then
			return 0
		fi
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

# lib.sh's cleanup, after HAProxy; cleanup exits with the status it sees.
on_exit() {
	local rc=$?
	haproxy_stop
	(exit "$rc")
	cleanup
}

# The gate under test: TLS, proxy_protocol on for $BALANCER only.
gate_pp_start() {
	PORT[pp]=$(free_port)
	PORT[pp_metrics]=$(free_port)
	gate_start pp -c listen_addresses=127.0.0.1 -c "port=${PORT[pp]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=on -c log_connections=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" \
		-c proxy_protocol=on \
		-c "proxy_protocol_networks=192.0.2.0/24, $BALANCER, 2001:db8::/32" \
		-c "authentication_timeout=${AUTH_TIMEOUT_MS}ms" \
		-c max_startup_connections_per_host=2 \
		-c "metrics_listen=127.0.0.1:${PORT[pp_metrics]}"
}

# ---- helpers -----------------------------------------------------------------

# login PORT HOSTADDR: a scram-sha-256 login, verify-full, to PORT.
login() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
		--expect-value app \
		"host=localhost hostaddr=$2 port=$1 user=app dbname=postgres \
sslmode=verify-full sslrootcert=$CERTS/root.crt password=$APP_PASSWORD"
}

# probe ARGS...: proxyprobe.py against the gate.
probe() {
	"$PYTHON" "$PROBE" --port "${PORT[pp]}" --cafile "$CERTS/root.crt" "$@"
}

# from_balancer ARGS...: the same, from the balancer's address.
from_balancer() {
	probe --bind "$BALANCER" "$@"
}

# login_as HEADER SRC_PATTERN: a header then an SSLRequest in one packet,
# TLS, a StartupMessage answered by the backend's authentication request;
# and the gate's connection line names the client as SRC_PATTERN.
header_login() {
	from_balancer --header "$1" --tls --expect auth || return 1
	log_has pp "connection received: host=$2 proxy=$BALANCER( |$)"
}

metric() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/${PORT[pp_metrics]}" || exit 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 5 cat <&3
	) | tr -d '\r' | awk -v s="$1" '$1 == s { print $2 }'
}

metric_at_least() {
	local got
	got=$(metric "$1")
	echo "$1 = ${got:-absent} (want at least $2)"
	[ -n "$got" ] && [ "$got" -ge "$2" ]
}

# ---- through HAProxy ---------------------------------------------------------

test_haproxy() {
	check "libpq through HAProxy send-proxy (v1): scram login over TLS" \
		login "${PORT[hap_v1]}" 127.0.0.1
	check "... the gate logs the client's address as HAProxy saw it, via the balancer" \
		log_has pp "connection received: host=127.0.0.1 port=[0-9]+ proxy=$BALANCER\$"
	check "libpq through HAProxy send-proxy-v2 on ::1: scram login over TLS" \
		login "${PORT[hap_v2]}" ::1
	check "... the gate logs host=::1, an address it does not even listen on" \
		log_has pp "connection received: host=::1 port=[0-9]+ proxy=$BALANCER\$"
}

# ---- raw headers: what works -----------------------------------------------

test_raw_headers_that_work() {
	check "v1 TCP4 header and SSLRequest in one packet: TLS and a login start" \
		header_login "v1:PROXY TCP4 198.51.100.7 127.0.0.1 7777 ${PORT[pp]}" \
		"198.51.100.7 port=7777"
	check "v1 TCP6 header: the IPv6 client is the one logged" \
		header_login "v1:PROXY TCP6 2001:db8::77 ::1 7778 ${PORT[pp]}" \
		"2001:db8::77 port=7778"
	check "v1 UNKNOWN: the balancer's own address stands" \
		header_login "v1:PROXY UNKNOWN" "$BALANCER port=[0-9]+"
	check "v2 PROXY TCP4, with a valid CRC32C TLV" \
		header_login "v2:tcp4:203.0.113.9:9001+crc" "203.0.113.9 port=9001"
	check "v2 LOCAL (an AWS NLB health check): served as the balancer itself" \
		from_balancer --header v2:local --tls --expect auth
	check "... logged as the balancer, marked proxy_local" \
		log_has pp "connection received: host=$BALANCER port=[0-9]+ proxy=$BALANCER proxy_local\$"
	check "v2 TLVs 0xEA (AWS VPC endpoint) and 0xEE (Azure Private Link) accepted" \
		from_balancer --header "v2:tcp4:203.0.113.10:9002+aws=vpce-0abc12de34f567890+azure=305419896" \
		--tls --expect auth
	check "... and both ids are in the connection log line" \
		log_has pp "connection received: host=203.0.113.10 port=9002 proxy=$BALANCER aws_vpce=vpce-0abc12de34f567890 azure_linkid=305419896\$"
	check "v1 header sent a byte at a time, then the SSLRequest: TLS works" \
		from_balancer --header "v1:PROXY TCP4 198.51.100.8 127.0.0.1 7779 ${PORT[pp]}" \
		--split --ssl after --tls --expect auth
	check "v2 header sent a byte at a time: TLS works" \
		from_balancer --header "v2:tcp6:2001:db8::99:7780" --split \
		--ssl after --tls --expect auth
	check "... both split headers gave their clients' addresses" \
		log_has pp "connection received: host=(198.51.100.8 port=7779|2001:db8::99 port=7780)"
	check "v2 header, then direct TLS (sslnegotiation=direct): a login starts" \
		from_balancer --header "v2:tcp4:203.0.113.11:9003" --direct --expect auth
	check "... logged under the header's address" \
		log_has pp "connection received: host=203.0.113.11 port=9003 proxy=$BALANCER\$"
	check "an address not in proxy_protocol_networks without a header: served as ever" \
		login "${PORT[pp]}" 127.0.0.1
	check "... logged as itself, with no proxy=" \
		log_has pp "connection received: host=127.0.0.1 port=[0-9]+\$"
}

# ---- raw headers: what is refused ------------------------------------------

# refused_with HEADER EXPECTED_ANSWER LOG_PATTERN [PROBE ARGS...]
refused_with() {
	local header=$1 answer=$2 pattern=$3
	shift 3
	from_balancer --header "$header" --expect "$answer" "$@" || return 1
	log_has pp "$pattern"
}

test_refusals() {
	local long
	long="v1:PROXY UNKNOWN $(printf 'x%.0s' $(seq 1 100))"

	check "a v1 header from an address not listed: refused (spoofing)" \
		probe --bind 127.0.0.1 --header "v1:PROXY TCP4 10.9.9.9 127.0.0.1 1 2" \
		--expect "error: 08P01 PROXY protocol header from an address not in proxy_protocol_networks"
	check "... logged as such, naming the real peer" \
		log_has pp "refused connection from host=127.0.0.1 port=[0-9]+: it sent a PROXY protocol header but is not in proxy_protocol_networks"
	check "a v2 signature from an address not listed: refused too" \
		probe --bind 127.0.0.1 --header v2:local \
		--expect "error: 08P01 PROXY protocol header from an address not in"
	check "a listed address without a header: refused, logged" \
		refused_with none "error: 08P01 expected a PROXY protocol header" \
		"refused connection from host=$BALANCER port=[0-9]+: no PROXY protocol header, and the address is in proxy_protocol_networks"
	check "a v1 header longer than 107 bytes: refused, logged" \
		refused_with "$long" "error: 08P01 invalid PROXY protocol header: version 1 header longer than 107 bytes" \
		"invalid PROXY protocol header: version 1 header longer than 107 bytes"
	check "a v1 header cut short by the SSLRequest after it: refused, logged" \
		refused_with "hex:$(printf 'PROXY TCP4 192.0.2.1 127.0.0.1 1' | od -An -tx1 | tr -d ' \n')" \
		"error: 08P01 invalid PROXY protocol header: version 1 header with a byte that is not printable" \
		"host=$BALANCER .*version 1 header with a byte that is not printable"
	check "a v1 header with a bad address: refused, logged" \
		refused_with "v1:PROXY TCP4 192.0.2.300 127.0.0.1 1 2" \
		"error: 08P01 invalid PROXY protocol header: version 1 header with an invalid IPv4 address" \
		"invalid IPv4 address"
	check "a wrong v2 signature: not a header, refused, logged" \
		refused_with "hex:0d0a0d0a000d0a515549580a21110000" \
		"error: 08P01 expected a PROXY protocol header" \
		"no PROXY protocol header"
	check "v2 with an unknown version: refused, logged" \
		refused_with "hex:0d0a0d0a000d0a515549540a31110000" \
		"error: 08P01 invalid PROXY protocol header: version 2 signature with an unknown version" \
		"unknown version"
	check "v2 with an unknown command: refused, logged" \
		refused_with "hex:0d0a0d0a000d0a515549540a2f110000" \
		"error: 08P01 invalid PROXY protocol header: version 2 header with an unknown command" \
		"unknown command"
	check "v2 with an unknown family: refused, logged" \
		refused_with "hex:0d0a0d0a000d0a515549540a21410000" \
		"error: 08P01 invalid PROXY protocol header: version 2 header with an unknown address family" \
		"unknown address family"
	check "v2 longer than 4096 bytes: refused from its first 16, logged" \
		refused_with "hex:0d0a0d0a000d0a515549540a2111ffff" \
		"error: 08P01 invalid PROXY protocol header: version 2 header longer than 4096 bytes" \
		"longer than 4096 bytes"
	check "v2 with a TLV running past the header: refused, logged" \
		refused_with "hex:0d0a0d0a000d0a515549540a21110010c000020a7f0000011f400a2805000a41" \
		"error: 08P01 invalid PROXY protocol header: version 2 header with a TLV longer than the header" \
		"TLV longer than the header"
	check "v2 with a CRC32C that does not match: refused, logged" \
		refused_with "hex:0d0a0d0a000d0a515549540a21110013c000020a7f0000011f400a280300040000beef" \
		"error: 08P01 invalid PROXY protocol header: version 2 header whose CRC32C does not match" \
		"CRC32C does not match"
	check "stacked headers: only the first is read, the second is a bad startup packet" \
		refused_with "hex:$(printf 'PROXY TCP4 192.0.2.5 127.0.0.1 5 6\r\nPROXY TCP4 192.0.2.6 127.0.0.1 5 6\r\n' | od -An -tx1 | tr -d ' \n')" \
		"error: 08P01 invalid length of startup packet" \
		"refused connection from host=192.0.2.5 port=5: invalid length of startup packet"
	check "the metrics count refused headers (proxy_header_invalid)" \
		metric_at_least 'pgsslgate_refused_total{reason="proxy_header_invalid"}' 11
	check "... and headers from unlisted addresses (proxy_header_untrusted)" \
		metric_at_least 'pgsslgate_refused_total{reason="proxy_header_untrusted"}' 2
}

# ---- time and caps -------------------------------------------------------

# closed_in_time ARGS...: the probe is closed by the gate between 1.5 s and
# 5 s (authentication_timeout is 2 s), not answered, not left hanging.
closed_in_time() {
	local out t
	out=$(from_balancer --ssl no --timeout 8 --expect closed "$@") || {
		echo "$out"
		return 1
	}
	echo "$out"
	t=$(awk '{ print $3 }' <<<"$out")
	num_between "$t" 1.5 5
}

# closed_at_once ARGS...: the gate closes within a second.
closed_at_once() {
	local out t
	out=$(from_balancer --timeout 8 --expect closed "$@") || {
		echo "$out"
		return 1
	}
	echo "$out"
	t=$(awk '{ print $3 }' <<<"$out")
	num_between "$t" 0 1
}

test_timeout_and_caps() {
	local i refused pids
	check "a silent connection from the balancer: closed at authentication_timeout" \
		closed_in_time
	check "... logged as waiting for the PROXY header" \
		log_has pp "closing connection from host=$BALANCER port=[0-9]+: authentication_timeout \\($AUTH_TIMEOUT_MS ms\\) expired while waiting for the PROXY header"
	check "half a header, then silence: closed at authentication_timeout too" \
		closed_in_time --header "hex:0d0a0d0a000d0a515549540a211100"
	check "half a header, then the balancer's FIN: closed at once, not at the timeout" \
		closed_at_once --header "hex:$(printf 'PROXY TCP4 192.0.2.1' | od -An -tx1 | tr -d ' \n')" \
		--ssl no --shut
	check "... logged as closed in the middle of its PROXY header" \
		log_has pp "connection from host=$BALANCER port=[0-9]+ closed in the middle of its PROXY header"

	# max_startup_connections_per_host = 2, counted by the header's address.
	pids=()
	for i in 1 2 3; do
		from_balancer --header "v1:PROXY TCP4 192.0.2.$((60 + i)) 127.0.0.1 1 2" \
			--ssl no --timeout 5 --expect x >"$WORK/distinct.$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	refused=$(cat "$WORK"/distinct.* | grep -c 53300 || true)
	check "three clients behind one balancer, per-host cap 2: none refused ($refused)" \
		test "$refused" -eq 0
	pids=()
	for i in 1 2 3; do
		from_balancer --header "v1:PROXY TCP4 192.0.2.99 127.0.0.1 $i 2" \
			--ssl no --timeout 5 --expect x >"$WORK/same.$i" 2>&1 &
		pids+=($!)
		sleep 0.2
	done
	wait "${pids[@]}" || true
	refused=$(cat "$WORK"/same.* | grep -c "53300 sorry, too many connections from 192.0.2.99 in the startup phase" || true)
	check "three connections naming one client, per-host cap 2: one refused ($refused)" \
		test "$refused" -eq 1
}

test_start_refusals() {
	expect_start_failure "proxy_protocol = on without proxy_protocol_networks: refused at start" \
		"proxy_protocol = on needs proxy_protocol_networks" -c proxy_protocol=on
	expect_start_failure "a host name in proxy_protocol_networks: refused at start" \
		"host names are not allowed" -c "proxy_protocol_networks=lb.example.com"
}

main() {
	needs pqprobe
	command -v haproxy >/dev/null 2>&1 || missing "haproxy (Debian package haproxy)"
	[ -x "$PYTHON" ] || missing "$PYTHON (Debian package python3)"
	setup_work
	trap on_exit EXIT
	make_certs
	pg_start_scram_only app "$APP_PASSWORD"
	gate_pp_start || finish
	haproxy_start
	note "PostgreSQL on 127.0.0.1:$PG_PORT, gate on ${PORT[pp]}, HAProxy on ${PORT[hap_v1]} and [::1]:${PORT[hap_v2]}"

	test_haproxy
	test_raw_headers_that_work
	test_refusals
	test_timeout_and_caps
	test_start_refusals
	haproxy_stop
	gate_stop pp
	finish
}

main "$@"
