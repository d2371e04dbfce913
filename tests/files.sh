#!/bin/bash
# files.sh: every file pgsslgate reads (the configuration file, certificates,
# keys, CAs, CRLs, the entries of a CRL directory) must be a regular file.
# A FIFO in place of one is refused at once, by name, with "not a regular
# file": at start-up, by --check, and at a reload, which then keeps the old
# configuration serving, the main loop free (SIGTERM is answered at once).
# Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the
# setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/files.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
# shellcheck disable=SC2317 # (the helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

APP_PASSWORD=files-test-secret
STOP_WITHIN=3			# seconds SIGTERM may take with nothing open

declare -A PORT=()		# gate name -> its port

# ---- set-up ----------------------------------------------------------------

# serves PORT: a scram-sha-256 login over TLS through the gate on PORT.
serves() {
	"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
		--expect-value app \
		"$(conninfo "$1" verify-full user=app "password=$APP_PASSWORD")"
}

# stops_promptly NAME: SIGTERM ends gate NAME, exit 0, within STOP_WITHIN s.
stops_promptly() {
	local name=$1 pid=${GATE_PID[$1]} t0 status=0
	unset "GATE_PID[$name]"
	t0=$EPOCHREALTIME
	kill -TERM "$pid"
	for _ in $(seq 1 $((STOP_WITHIN * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "still running $STOP_WITHIN s after SIGTERM"
		cat "$(gate_log "$name")"
		return 1
	fi
	wait "$pid" || status=$?
	echo "exited with status $status after $(since "$t0") s"
	[ "$status" -eq 0 ]
}

# write_conf FILE PORT [LINES...]: a TLS gate's configuration file.
write_conf() {
	local file=$1 port=$2 line
	shift 2
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "backend_host = '127.0.0.1'"
		echo "backend_port = $PG_PORT"
		echo "ssl = on"
		echo "require_ssl = on"
		echo "ssl_cert_file = '$CERTS/server-chain.crt'"
		echo "ssl_key_file = '$CERTS/server.key'"
		for line; do
			echo "$line"
		done
	} >"$file"
}

# ---- tests -------------------------------------------------------------------

# The configuration file itself turns into a FIFO, then SIGHUP.
test_config_file_fifo_at_reload() {
	local conf=$WORK/fifo.conf port
	port=$(free_port)
	write_conf "$conf" "$port"
	gate_start conf_fifo "$conf" || return 0
	check "before: the gate serves a scram-sha-256 login over TLS" serves "$port"
	mv "$conf" "$conf.real"
	mkfifo "$conf"
	kill -HUP "${GATE_PID[conf_fifo]}"
	check "the configuration file replaced by a FIFO: the reload fails with \"not a regular file\", naming it" \
		log_has conf_fifo "ERROR:  reload failed, still serving with the previous configuration.*fifo\.conf.*not a regular file"
	check "... and the gate still serves with the old configuration" serves "$port"
	check "... and answers SIGTERM within $STOP_WITHIN s (the main loop is not stuck)" \
		stops_promptly conf_fifo
	rm -f "$conf"
}

# A certificate file turns into a FIFO, then SIGHUP.
test_cert_fifo_at_reload() {
	local conf=$WORK/cert.conf port cert=$WORK/cert-chain.crt
	port=$(free_port)
	cp "$CERTS/server-chain.crt" "$cert"
	write_conf "$conf" "$port" "ssl_cert_file = '$cert'"
	gate_start cert_fifo "$conf" || return 0
	rm -f "$cert"
	mkfifo "$cert"
	kill -HUP "${GATE_PID[cert_fifo]}"
	check "ssl_cert_file replaced by a FIFO: the reload fails with \"not a regular file\", naming it" \
		log_has cert_fifo "ERROR:  reload failed.*certificate file \"$cert\" is not a regular file"
	check "... and the gate still serves with the old certificate" serves "$port"
	check "... and answers SIGTERM within $STOP_WITHIN s" stops_promptly cert_fifo
}

# expect_not_regular DESCRIPTION TEXT ARGS...: start-up and --check both
# refuse ARGS, promptly, with TEXT.
expect_not_regular() {
	local desc=$1 text=$2 out=$WORK/check-report.txt status=0
	shift 2
	REFUSAL_ARGS="-c backend_host=127.0.0.1 -c backend_port=$PG_PORT -c ssl=on \
-c ssl_cert_file=$CERTS/server-chain.crt -c ssl_key_file=$CERTS/server.key"
	expect_start_failure "$desc: start-up is refused" "$text" "$@"
	# shellcheck disable=SC2086 # (REFUSAL_ARGS is split on purpose)
	timeout 10 "$GATE_BIN" --check -c listen_addresses=127.0.0.1 \
		-c "port=$(free_port)" $REFUSAL_ARGS "$@" >"$out" 2>&1 || status=$?
	if [ "$status" -ne 1 ]; then
		fail "$desc: --check exits 1 (it exited $status)" "$out"
	elif ! grep -Eq -- "$text" "$out"; then
		fail "$desc: --check exits 1, but does not say \"$text\"" "$out"
	else
		ok "$desc: --check exits 1 and says why"
	fi
	unset REFUSAL_ARGS
}

test_fifos_at_start() {
	local f=$WORK/a-fifo crl_dir=$WORK/crl-dir-fifo plain_dir=$WORK/crl-dir-other
	mkfifo "$f"
	expect_not_regular "ssl_cert_file a FIFO" \
		"ssl_cert_file.*certificate file \"$f\" is not a regular file" \
		-c "ssl_cert_file=$f"
	expect_not_regular "ssl_key_file a FIFO" \
		"ssl_key_file.*private key file \"$f\" is not a regular file" \
		-c "ssl_key_file=$f"
	expect_not_regular "ssl_ca_file a FIFO" \
		"ssl_ca_file.*root certificate file \"$f\" is not a regular file" \
		-c "ssl_ca_file=$f"
	expect_not_regular "ssl_crl_file a FIFO" \
		"ssl_crl_file.*CRL file \"$f\" is not a regular file" \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c "ssl_crl_file=$f"
	expect_not_regular "ssl_ca_file a directory" \
		"root certificate file \"$CERTS\" is not a regular file" \
		-c "ssl_ca_file=$CERTS"
	mkdir -p "$crl_dir"
	cp -L "$CERTS"/crl-dir/* "$crl_dir/"
	mkfifo "$crl_dir/0badc0de.r0"
	expect_not_regular "ssl_crl_dir with a FIFO named as a CRL" \
		"ssl_crl_dir.*CRL directory \"$crl_dir\": \"0badc0de\.r0\" is not a regular file" \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c "ssl_crl_dir=$crl_dir"
	expect_not_regular "ssl_crl_dir naming a regular file" \
		"ssl_crl_dir.*CRL directory \"$CERTS/root\.crl\" is not a directory" \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c "ssl_crl_dir=$CERTS/root.crl"
	expect_not_regular "backend_sslrootcert a FIFO" \
		"backend_sslrootcert.*root certificate file \"$f\" is not a regular file" \
		-c backend_sslmode=require -c "backend_sslrootcert=$f"
	expect_not_regular "the configuration file a FIFO" \
		"$f: could not read configuration file: not a regular file" \
		"$f"

	# A FIFO OpenSSL would never open (not named as a CRL) is no problem.
	mkdir -p "$plain_dir"
	cp -L "$CERTS"/crl-dir/* "$plain_dir/"
	mkfifo "$plain_dir/README"
	PORT[crl_dir_ok]=$(free_port)
	gate_start crl_dir_ok -c listen_addresses=127.0.0.1 -c "port=${PORT[crl_dir_ok]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" -c ssl=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" -c "ssl_key_file=$CERTS/server.key" \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c "ssl_crl_dir=$plain_dir" &&
		ok "ssl_crl_dir with a FIFO not named as a CRL: it starts" &&
		gate_stop crl_dir_ok
}

main() {
	needs pqprobe
	setup_work
	make_certs
	pg_start_scram_only app "$APP_PASSWORD"
	note "PostgreSQL on 127.0.0.1:$PG_PORT (scram-sha-256), scratch in $WORK"

	test_config_file_fifo_at_reload
	test_cert_fifo_at_reload
	test_fifos_at_start
	finish
}

main "$@"
