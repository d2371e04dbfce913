#!/bin/bash
# filewatch.sh: certificates reloaded when their files change
# (file_check_interval), and shutdown_delay.  The certificate and key sit in
# a Kubernetes secret volume's layout (tls.crt -> ..data/tls.crt, ..data ->
# ..2026_12_01_...): an update swaps ..data at once and keeps the mtimes, so
# only the content tells.  Pinned down: new TLS clients get the new
# certificate within a few seconds while open sessions stay up; a half-written
# pair (new certificate, old key) keeps the old one serving, logged once,
# until the key comes; a broken file keeps the old one; nothing reloads when
# nothing changed; the configuration file is watched too;
# file_check_interval = 0 turns it off; after SIGTERM, shutdown_delay keeps
# accepting, then the listener closes.  Prints TAP-ish lines; exits 0 when
# every test passed, 77 when a prerequisite is missing (a failure instead when
# CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make check: bash tests/filewatch.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
# shellcheck disable=SC2317 # (the helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

APP_PASSWORD=filewatch-test-secret
WITHIN=6			# seconds a change may take to be served

declare -A METRICS_PORT=()	# gate name -> its metrics_listen port
HOLD_PID=

# ---- set-up ----------------------------------------------------------------

# A secret volume DIR as the kubelet makes it, holding CERT and KEY.
SECRET_SEQ=0
secret_init() {
	local dir=$1
	mkdir -p "$dir"
	secret_data "$dir" "$2" "$3"
	ln -s ..data/tls.crt "$dir/tls.crt"
	ln -s ..data/tls.key "$dir/tls.key"
}

# secret_data DIR CERT KEY: a new timestamped directory with CERT and KEY
# (mode KEY_MODE, 0600 unless set),
# their mtimes those of the files in force (when there are), then ..data
# swapped to it atomically and the old directory removed.
secret_data() {
	local dir=$1 old new
	SECRET_SEQ=$((SECRET_SEQ + 1))
	new=..2026_12_01_00_00_00.$SECRET_SEQ
	old=$(readlink "$dir/..data" 2>/dev/null || true)
	mkdir "$dir/$new"
	install -m 0644 "$2" "$dir/$new/tls.crt"
	install -m "${KEY_MODE:-0600}" "$3" "$dir/$new/tls.key"
	if [ -n "$old" ]; then
		touch -r "$dir/$old/tls.crt" "$dir/$new/tls.crt"
		touch -r "$dir/$old/tls.key" "$dir/$new/tls.key"
	fi
	ln -s "$new" "$dir/..data_tmp"
	mv -T "$dir/..data_tmp" "$dir/..data"
	if [ -n "$old" ]; then
		rm -rf "${dir:?}/$old"
	fi
}

# write_conf FILE PORT SECRET_DIR [LINE...]
write_conf() {
	local file=$1 port=$2 dir=$3 line
	shift 3
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "backend_host = '127.0.0.1'"
		echo "backend_port = $PG_PORT"
		echo "ssl = on"
		echo "require_ssl = on"
		echo "ssl_cert_file = '$dir/tls.crt'"
		echo "ssl_key_file = '$dir/tls.key'"
		echo "ssl_cert_expiry_warning = 0"
		for line; do
			echo "$line"
		done
	} >"$file"
}

# ---- probes ----------------------------------------------------------------

# serves PORT: a scram-sha-256 login over TLS (verify-full) through the gate.
serves() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
		--expect-value app \
		"$(conninfo "$1" verify-full user=app "password=$APP_PASSWORD")"
}

# serial_of FILE: the serial number of the first certificate in FILE.
serial_of() {
	openssl x509 -in "$1" -noout -serial
}

# served_serial PORT: the serial of the certificate a new TLS client gets.
served_serial() {
	openssl s_client -connect "127.0.0.1:$1" -starttls postgres \
		</dev/null 2>/dev/null | openssl x509 -noout -serial
}

# serves_cert PORT FILE: a new client gets FILE's certificate, and logs in.
serves_cert() {
	local want got
	want=$(serial_of "$2")
	got=$(served_serial "$1" || true)
	echo "served: ${got:-nothing}; wanted ($2): $want"
	[ "$got" = "$want" ] && serves "$1"
}

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (tried every
# 0.2 s); the last try's output is shown.
eventually() {
	local tries=$(($1 * 5)) out=$WORK/eventually.out
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
		sleep 0.2
	done
}

# still SECONDS COMMAND...: COMMAND succeeds now and at every check for
# SECONDS (every 0.5 s).
still() {
	local tries=$(($1 * 2))
	shift
	while [ "$tries" -gt 0 ]; do
		"$@" || return 1
		sleep 0.5
		tries=$((tries - 1))
	done
	"$@"
}

# http_get PORT PATH: the whole response to GET PATH, CRs dropped.
http_get() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
		cat <&3
	) | tr -d '\r'
}

# metric NAME SERIES: the value of SERIES in gate NAME's /metrics.
metric() {
	http_get "${METRICS_PORT[$1]}" /metrics | awk -v s="$2" '$1 == s { print $2 }'
}

# readyz NAME STATUS BODY: GET /readyz answers STATUS with BODY.
readyz() {
	local out
	out=$(http_get "${METRICS_PORT[$1]}" /readyz)
	printf '%s\n' "$out"
	head -n 1 <<<"$out" | grep -q " $2 " && tail -n 1 <<<"$out" | grep -qx "$3"
}

# metric_is NAME SERIES VALUE
metric_is() {
	local got
	got=$(metric "$1" "$2")
	echo "$2 = ${got:-missing} (want $3)"
	[ "$got" = "$3" ]
}

# file_reloads NAME OK FAILED: the file-triggered reload counters.
file_reloads() {
	metric_is "$1" 'pgsslgate_reloads_total{trigger="file",result="ok"}' "$2" &&
		metric_is "$1" 'pgsslgate_reloads_total{trigger="file",result="failed"}' "$3"
}

# hold_session PORT: a session that ran SELECT 1 and waits for
# $WORK/held.release; passing once it holds.
hold_session() {
	rm -f "$WORK/held.release"
	"$PQPROBE" --timeout 60 --query "SELECT 1" --expect-value 1 \
		--hold-file "$WORK/held.release" \
		"$(conninfo "$1" verify-full user=app "password=$APP_PASSWORD")" \
		>"$WORK/held.probe" 2>&1 &
	HOLD_PID=$!
	for _ in $(seq 1 100); do
		grep -q '^holding until' "$WORK/held.probe" && return 0
		sleep 0.1
	done
	cat "$WORK/held.probe"
	return 1
}

# release_session: the held session runs SELECT 1 again, on the same
# connection, and ends with status 0.
release_session() {
	local status=0
	touch "$WORK/held.release"
	wait "$HOLD_PID" || status=$?
	HOLD_PID=
	cat "$WORK/held.probe"
	[ "$status" -eq 0 ]
}

# recent_reload NAME T: the last successful reload was at most 2 s before
# the Unix time T.
recent_reload() {
	local v
	v=$(metric "$1" pgsslgate_last_reload_success_timestamp_seconds)
	echo "pgsslgate_last_reload_success_timestamp_seconds = ${v:-missing}, checked at $2"
	[ -n "$v" ] && [ "$v" -le "$2" ] && [ $(($2 - v)) -le 2 ]
}

# tried_once NAME FILE: one "FILE changed" line and one "reload failed".
tried_once() {
	log_count "$1" 1 "certificate files changed: $2; reloading" &&
		log_count "$1" 1 "reload failed"
}

# refused_tcp PORT: nothing listens on PORT any more.
refused_tcp() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---- tests -------------------------------------------------------------------

test_secret_volume() {
	local dir=$WORK/secret conf=$WORK/watch.conf port mport t0 reloaded_at
	port=$(free_port)
	mport=$(free_port)
	METRICS_PORT[watch]=$mport
	secret_init "$dir" "$CERTS/server-chain.crt" "$CERTS/server.key"
	write_conf "$conf" "$port" "$dir" "file_check_interval = 1" \
		"metrics_listen = '127.0.0.1:$mport'"
	gate_start watch "$conf" || return 0
	t0=$EPOCHREALTIME

	check "before: new clients get server.crt, and log in with scram-sha-256" \
		serves_cert "$port" "$CERTS/server.crt"
	check "a session opened before any change holds, after SELECT 1" \
		hold_session "$port"
	sleep 3.2
	check "nothing changed over 3 intervals: no file-triggered reload (ok 0, failed 0)" \
		file_reloads watch 0 0
	check "... and no 'configuration reloaded' in the log" \
		log_count watch 0 "configuration reloaded"

	# The kubelet's update: same mtimes, new ..data.
	secret_data "$dir" "$CERTS/server-soon-chain.crt" "$CERTS/server-soon.key"
	check "..data swapped to a new certificate with the old mtimes: new clients get it within $WITHIN s" \
		eventually "$WITHIN" serves_cert "$port" "$CERTS/server-soon.crt"
	check "the change is logged, naming both files" \
		log_has watch "LOG:  certificate files changed: $dir/tls.crt and $dir/tls.key; reloading"
	check "... then 'configuration reloaded'" \
		log_has watch "LOG:  configuration reloaded"
	check "reloads_total{trigger=\"file\"}: ok 1, failed 0" file_reloads watch 1 0

	# A half-written pair: the new certificate, the key still the old one.
	secret_data "$dir" "$CERTS/server-ec-chain.crt" "$CERTS/server-soon.key"
	check "a new certificate with the old key: the reload fails, logged as a key mismatch" \
		log_has watch "ERROR:  reload failed, still serving .*private key file \"$dir/tls.key\" does not match"
	sleep 3.2
	check "... and that is logged once in 3 more intervals, not retried" \
		tried_once watch "$dir/tls.crt"
	check "... counted once (ok 1, failed 1)" file_reloads watch 1 1
	check "... while the previous certificate (server-soon.crt) still serves" \
		serves_cert "$port" "$CERTS/server-soon.crt"
	secret_data "$dir" "$CERTS/server-ec-chain.crt" "$CERTS/server-ec.key"
	check "the pair completed: new clients get server-ec.crt within $WITHIN s" \
		eventually "$WITHIN" serves_cert "$port" "$CERTS/server-ec.crt"
	check "... (ok 2, failed 1)" file_reloads watch 2 1

	# A broken certificate file.
	printf 'not a certificate\n' >"$WORK/garbage.crt"
	secret_data "$dir" "$WORK/garbage.crt" "$CERTS/server-ec.key"
	check "a garbage certificate: the reload fails, naming the file" \
		log_has watch "ERROR:  reload failed.*could not load server certificate file \"$dir/tls.crt\""
	check "... counted (ok 2, failed 2)" file_reloads watch 2 2
	check "... and server-ec.crt goes on serving" \
		still 2 serves_cert "$port" "$CERTS/server-ec.crt"
	secret_data "$dir" "$CERTS/server-chain.crt" "$CERTS/server.key"
	check "the secret fixed: new clients get server.crt again within $WITHIN s" \
		eventually "$WITHIN" serves_cert "$port" "$CERTS/server.crt"
	check "... (ok 3, failed 2)" file_reloads watch 3 2

	# A new key with group and world access: refused until chmod fixes it.
	KEY_MODE=0644 secret_data "$dir" "$CERTS/server-soon-chain.crt" \
		"$CERTS/server-soon.key"
	check "a new pair whose key has mode 0644: the reload fails, saying so" \
		log_has watch "ERROR:  reload failed.*private key file \"$dir/tls.key\" has group or world access"
	check "... (ok 3, failed 3)" eventually 2 file_reloads watch 3 3
	check "... while server.crt still serves" \
		serves_cert "$port" "$CERTS/server.crt"
	chmod 0600 "$dir/tls.key"
	check "chmod 0600 on the key alone (content unchanged) is a change: server-soon.crt within $WITHIN s" \
		eventually "$WITHIN" serves_cert "$port" "$CERTS/server-soon.crt"
	check "... (ok 4, failed 3)" file_reloads watch 4 3

	# The configuration file is watched too: a changed setting applies.
	echo "ssl_min_protocol_version = 'TLSv1.3'" >>"$conf"
	check "an edited configuration file is logged as such and reloaded" \
		log_has watch "LOG:  configuration file changed: $conf; reloading"
	check "... and applies: a TLS 1.2 client is refused within $WITHIN s" \
		eventually "$WITHIN" bash -c "! openssl s_client -connect 127.0.0.1:$port \
			-starttls postgres -tls1_2 </dev/null >/dev/null 2>&1"
	check "... (ok 5, failed 3)" file_reloads watch 5 3
	reloaded_at=$(date +%s)

	check "the session opened before the first change runs SELECT 1 again on its connection" \
		release_session

	# Past FILEWATCH_REHASH_EVERY (12) checks, contents are hashed anew
	# even when stat shows nothing: still nothing to reload.
	sleep "$(awk -v s="$(since "$t0")" 'BEGIN { r = 14 - s; print (r > 3 ? r : 3) }')"
	check "after more than 12 intervals in all, still ok 5, failed 3: unchanged files are never reloaded" \
		file_reloads watch 5 3
	check "SIGHUP is counted apart: reloads_total{trigger=\"signal\",result=\"ok\"} 0" \
		metric_is watch 'pgsslgate_reloads_total{trigger="signal",result="ok"}' 0
	check "pgsslgate_last_reload_success_timestamp_seconds is the time of the last reload" \
		recent_reload watch "$reloaded_at"
	check "no sanitizer report, no WARNING" \
		log_count watch 0 "WARNING:|$SANITIZER_TEXT"
	gate_stop watch
}

test_interval_zero() {
	local dir=$WORK/secret0 conf=$WORK/off.conf port
	port=$(free_port)
	secret_init "$dir" "$CERTS/server-chain.crt" "$CERTS/server.key"
	write_conf "$conf" "$port" "$dir" "file_check_interval = 0"
	gate_start off "$conf" || return 0
	secret_data "$dir" "$CERTS/server-soon-chain.crt" "$CERTS/server-soon.key"
	check "file_check_interval = 0: after the swap, server.crt goes on serving for 3 s" \
		still 3 serves_cert "$port" "$CERTS/server.crt"
	check "... and nothing is logged as changed" \
		log_count off 0 "changed:|configuration reloaded"
	kill -HUP "${GATE_PID[off]}"
	check "... while SIGHUP still reloads: server-soon.crt within $WITHIN s" \
		eventually "$WITHIN" serves_cert "$port" "$CERTS/server-soon.crt"
	gate_stop off
}

test_shutdown_delay() {
	local port pid t0 closed_at
	port=$(free_port)
	METRICS_PORT[delay]=$(free_port)
	tls_gate_start_local delay "$port" -c shutdown_delay=2 \
		-c "metrics_listen=127.0.0.1:${METRICS_PORT[delay]}" || return 0
	pid=${GATE_PID[delay]}
	check "before SIGTERM, GET /readyz answers 200 ready" readyz delay 200 ready
	t0=$EPOCHREALTIME
	kill -TERM "$pid"
	check "SIGTERM with shutdown_delay = 2: logged as still accepting" \
		log_has delay "LOG:  received SIGTERM; still accepting connections for shutdown_delay = 2 s"
	check "... and GET /readyz answers 503 draining at once, during the delay" \
		readyz delay 503 draining
	sleep "$(awk -v s="$(since "$t0")" 'BEGIN { r = 1 - s; print (r > 0 ? r : 0) }')"
	check "... and a new connection 1 s after SIGTERM still logs in" \
		serves "$port"
	closed_at=
	for _ in $(seq 1 100); do
		if refused_tcp "$port"; then
			closed_at=$(since "$t0")
			break
		fi
		sleep 0.05
	done
	check "then the listener closes, 2 s after SIGTERM (between 1.8 and 4.5 s: ${closed_at:-never})" \
		num_between "${closed_at:-99}" 1.8 4.5
	check "... logged as the end of shutdown_delay" \
		log_has delay "LOG:  shutdown_delay is over; no longer accepting connections"
	note "shutdown_delay = 2: the listener closed ${closed_at:-never} s after SIGTERM"
	# gate_stop's SIGTERM finds a gate stopping or gone: judge it by hand.
	unset "GATE_PID[delay]"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	check "... and, no session being open, the gate exits 0" wait "$pid"

	port=$(free_port)
	tls_gate_start_local delay2 "$port" -c shutdown_delay=60 || return 0
	pid=${GATE_PID[delay2]}
	unset "GATE_PID[delay2]"
	kill -TERM "$pid"
	log_has delay2 "still accepting connections" >/dev/null || true
	t0=$EPOCHREALTIME
	kill -TERM "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	check "a second SIGTERM cuts shutdown_delay = 60 short: exit 0 within 5 s ($(since "$t0") s)" \
		wait "$pid"
	check "... logged" log_has delay2 "received SIGTERM again during shutdown_delay"
}

# tls_gate_start_local NAME PORT ARGS...: a TLS gate in front of the test
# PostgreSQL, on PORT.
tls_gate_start_local() {
	local name=$1 port=$2
	shift 2
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=$port" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" -c ssl=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" "$@"
}

main() {
	needs pqprobe
	setup_work
	make_certs
	pg_start_scram_only app "$APP_PASSWORD"
	note "PostgreSQL on 127.0.0.1:$PG_PORT (scram-sha-256), scratch in $WORK"

	test_secret_volume
	test_interval_zero
	test_shutdown_delay
	finish
}

main "$@"
