#!/bin/bash
# keys.sh: keys and fingerprints.  Encrypted server keys with
# ssl_passphrase_command (start, wrong passphrase, failing command, reloads
# with ssl_passphrase_command_supports_reload off and on), an encrypted
# backend client key with backend_sslpassword, the SHA-256 fingerprints of
# --check against openssl's, backend_sslcertfingerprint against a real
# PostgreSQL with ssl=on, and pgsslgate --make-test-pki's PKI used by real
# libpq clients.  Prints TAP-ish lines; exits 0 when every test passed, 77
# when a prerequisite is missing (a failure instead when CI=true), 99 when
# the setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/keys.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# Every login is postgres with a SCRAM password: lib.sh's PostgreSQL gets
# "host ... scram-sha-256", and the ssl=on cluster, which serves the
# --make-test-pki server chain,
#
#   hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full
#
# so that a gate gets in only with the password and the client certificate
# of postgres, whose key it holds encrypted (backend_sslpassword).
# shellcheck disable=SC2317,SC2034 # (the helpers run through check; lib.sh
# reads REFUSAL_ARGS)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PASSWORD=gate-test-pw		# postgres's SCRAM password on both clusters
PASSPHRASE=open-sesame		# the encrypted server key's
KEY_PASSWORD=backend-key-pw	# the encrypted backend client key's
PKI=
TLS_PG_DIR=
TLS_PG_PORT=
TLS_PG_RUNNING=0

declare -A PORT=()		# gate name -> its port

# ---- setup -------------------------------------------------------------------

# lib.sh's cluster, with SCRAM for TCP logins.
pg_use_scram() {
	"$PQPROBE" --query "ALTER ROLE postgres PASSWORD '$PASSWORD'" \
		"host=$PG_DIR port=$PG_PORT user=postgres dbname=postgres" \
		>"$WORK/role.log" 2>&1 || {
		show "$WORK/role.log"
		die "could not set the password of postgres"
	}
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		host all all 127.0.0.1/32 scram-sha-256
	EOF
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >"$WORK/pg_ctl.log" 2>&1 ||
		die "pg_ctl reload failed"
	# Until the reload is in, a trust login would still pass.
	for _ in $(seq 1 50); do
		if "$PQPROBE" --expect refused "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable password=wrong" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	die "PostgreSQL does not ask for the SCRAM password"
}

# A second cluster, ssl=on with the test PKI's server chain, for the gate's
# TLS to the backend.
tls_pg_start() {
	local f
	TLS_PG_DIR=$WORK/pgtls
	TLS_PG_PORT=$(free_port)
	mkdir -p "$TLS_PG_DIR"
	for f in server.crt server.key root.crt; do
		cp "$PKI/$f" "$TLS_PG_DIR/$f"
	done
	chmod 0600 "$TLS_PG_DIR/server.key"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$TLS_PG_DIR"
	fi
	as_pg "$PG_BINDIR/initdb" -D "$TLS_PG_DIR/data" -U postgres -A trust \
		-E UTF8 --locale=C --no-sync >"$WORK/initdb-tls.log" 2>&1 || {
		show "$WORK/initdb-tls.log"
		die "initdb (ssl=on cluster) failed"
	}
	cat >>"$TLS_PG_DIR/data/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $TLS_PG_PORT
		unix_socket_directories = '$TLS_PG_DIR'
		ssl = on
		ssl_cert_file = '$TLS_PG_DIR/server.crt'
		ssl_key_file = '$TLS_PG_DIR/server.key'
		ssl_ca_file = '$TLS_PG_DIR/root.crt'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 50
	EOF
	cat >"$TLS_PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full
	EOF
	as_pg "$PG_BINDIR/pg_ctl" -D "$TLS_PG_DIR/data" -l "$TLS_PG_DIR/postgres.log" \
		-w -t 60 start >"$WORK/pg_ctl-tls.log" 2>&1 || {
		show "$WORK/pg_ctl-tls.log" "$TLS_PG_DIR/postgres.log"
		die "PostgreSQL (ssl=on) did not start"
	}
	TLS_PG_RUNNING=1
	"$PQPROBE" --query "ALTER ROLE postgres PASSWORD '$PASSWORD'" \
		"host=$TLS_PG_DIR port=$TLS_PG_PORT user=postgres dbname=postgres" \
		>"$WORK/role-tls.log" 2>&1 || {
		show "$WORK/role-tls.log" "$TLS_PG_DIR/postgres.log"
		die "could not set the password of postgres (ssl=on cluster)"
	}
}

tls_pg_stop() {
	[ "$TLS_PG_RUNNING" = 1 ] || return 0
	TLS_PG_RUNNING=0
	as_pg "$PG_BINDIR/pg_ctl" -D "$TLS_PG_DIR/data" -m immediate stop \
		>/dev/null 2>&1 || true
}

cleanup_all() {
	local rc=$?

	tls_pg_stop
	(exit "$rc")	# cleanup exits with the status it finds
	cleanup
}

# ---- helpers -----------------------------------------------------------------

# A libpq client of gate PORT: TLS in verify-full against CA, SCRAM.
client() {
	local port=$1 ca=$2
	shift 2
	echo "host=localhost hostaddr=127.0.0.1 port=$port user=postgres" \
		"dbname=postgres password=$PASSWORD sslmode=verify-full" \
		"sslrootcert=$ca $*"
}

# hup NAME N: SIGHUP gate NAME and wait for its Nth reload verdict.
hup() {
	local name=$1 want=$2 log got
	log=$(gate_log "$name")
	kill -HUP "${GATE_PID[$name]}"
	for _ in $(seq 1 100); do
		got=$(grep -cE "configuration reloaded|reload failed" "$log" || true)
		if [ "$got" -ge "$want" ]; then
			return 0
		fi
		sleep 0.05
	done
	die "gate $name gave no verdict on reload $want"
}

# lines_are FILE N: FILE has exactly N lines.
lines_are() {
	local got
	got=$(wc -l <"$1")
	if [ "$got" -ne "$2" ]; then
		echo "$1 has $got lines, not $2:"
		cat "$1"
		return 1
	fi
}

# openssl's fingerprint of the first certificate in FILE, hex only.
openssl_fp() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'
}

# fp_line_is REPORT PATTERN FINGERPRINT: a line of REPORT matches PATTERN
# and carries "SHA256 Fingerprint=FINGERPRINT".
fp_line_is() {
	log_file_has "$1" "$2" "SHA256 Fingerprint=$3( |,|\$)"
}

# ---- 1: --make-test-pki ---------------------------------------------------------

test_make_test_pki() {
	local out=$WORK/pki.out f
	check "--make-test-pki DIR NAME --user postgres --user alice exits 0" \
		"$GATE_BIN" --make-test-pki "$PKI" db.example.test 192.0.2.7 \
		--user postgres --user alice
	cp "$CHECK_OUT" "$out"
	check "it says what each file is and gives the gate's -c options and a client conninfo" \
		log_file_has "$out" "ssl_cert_file=$PKI/server.crt -c ssl_key_file=$PKI/server.key"
	check "... and the client's conninfo with sslmode=verify-full and client-postgres" \
		log_file_has "$out" "sslmode=verify-full sslrootcert=$PKI/root.crt sslcert=$PKI/client-postgres.crt"
	check "the server chain is the leaf then the intermediate, and verifies against root.crt" \
		bash -c "[ \$(grep -c 'BEGIN CERTIFICATE' '$PKI/server.crt') = 2 ] &&
			openssl verify -CAfile '$PKI/root.crt' -untrusted '$PKI/server.crt' '$PKI/server.crt'"
	check "the server leaf is for localhost, 127.0.0.1, ::1 and the names given" \
		bash -c "openssl x509 -in '$PKI/server.crt' -noout -ext subjectAltName |
			grep -F 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:db.example.test, IP Address:192.0.2.7'"
	check "every key file is mode 0600" \
		bash -c "for f in '$PKI'/*.key; do [ \$(stat -c %a \"\$f\") = 600 ] || { echo \"\$f\"; exit 1; }; done"
	check "client certificates for both users, CN = the user" \
		bash -c "openssl x509 -in '$PKI/client-alice.crt' -noout -subject | grep -q 'CN *= *alice' &&
			openssl x509 -in '$PKI/client-postgres.crt' -noout -subject | grep -q 'CN *= *postgres'"
	check "openssl agrees: the revoked one is revoked by root.crl, the expired one expired, the rogue one unknown" \
		bash -c "openssl verify -CAfile '$PKI/root.crt' -crl_check -CRLfile '$PKI/root.crl' '$PKI/client-revoked.crt' 2>&1 | grep -q 'certificate revoked' &&
			openssl verify -CAfile '$PKI/root.crt' '$PKI/client-expired.crt' 2>&1 | grep -q 'certificate has expired' &&
			! openssl verify -CAfile '$PKI/root.crt' '$PKI/client-rogue.crt' >/dev/null 2>&1 &&
			openssl verify -CAfile '$PKI/root.crt' -crl_check -CRLfile '$PKI/root.crl' '$PKI/client-postgres.crt'"
	sha256sum "$PKI"/* >"$WORK/pki.sums"
	check "a second --make-test-pki into the same directory refuses, naming a file that exists" \
		bash -c "! '$GATE_BIN' --make-test-pki '$PKI' >'$WORK/pki2.out' 2>&1 &&
			grep -q 'exists; refusing to overwrite' '$WORK/pki2.out' || { cat '$WORK/pki2.out'; exit 1; }"
	check "... and leaves every file as it was" sha256sum -c --quiet "$WORK/pki.sums"
	f=$WORK/pki-partial
	mkdir -p "$f"
	echo keep >"$f/client-rogue.key"
	check "one existing file is enough to write nothing at all" \
		bash -c "! '$GATE_BIN' --make-test-pki '$f' >/dev/null 2>&1 &&
			[ \$(ls '$f' | wc -l) = 1 ] && grep -qx keep '$f/client-rogue.key'"
}

# ---- 2: the PKI for real ---------------------------------------------------------

test_pki_with_libpq() {
	local port
	tls_gate_pki mtls -c "ssl_ca_file=$PKI/root.crt" \
		-c "ssl_crl_file=$PKI/root.crl" -c clientcert=verify-ca || return 0
	port=${PORT[mtls]}
	check "a verify-full client trusting root.crt with client-postgres.crt connects over TLS" \
		"$PQPROBE" --ssl 1 "$(client "$port" "$PKI/root.crt" \
		sslcert="$PKI/client-postgres.crt" sslkey="$PKI/client-postgres.key")"
	check "client-revoked.crt is refused, and the gate logs it as revoked" \
		bash -c "'$PQPROBE' --expect refused \"\$1\" &&
			grep -q 'certificate revoked' '$(gate_log mtls)'" _ \
		"$(client "$port" "$PKI/root.crt" sslcert="$PKI/client-revoked.crt" sslkey="$PKI/client-revoked.key")"
	check "client-expired.crt is refused, and the gate logs it as expired" \
		bash -c "'$PQPROBE' --expect refused \"\$1\" &&
			grep -q 'certificate has expired' '$(gate_log mtls)'" _ \
		"$(client "$port" "$PKI/root.crt" sslcert="$PKI/client-expired.crt" sslkey="$PKI/client-expired.key")"
	check "client-rogue.crt (signed by the rogue CA) is refused, and the gate logs why" \
		bash -c "'$PQPROBE' --expect refused \"\$1\" &&
			grep -q 'unable to get local issuer certificate' '$(gate_log mtls)'" _ \
		"$(client "$port" "$PKI/root.crt" sslcert="$PKI/client-rogue.crt" sslkey="$PKI/client-rogue.key")"
	check "a client trusting only rogue-ca.crt refuses the gate's chain" \
		"$PQPROBE" --expect refused --error-contains "certificate verify failed" \
		"$(client "$port" "$PKI/rogue-ca.crt" sslcert="$PKI/client-postgres.crt" sslkey="$PKI/client-postgres.key")"
	gate_stop mtls
}

# tls_gate_pki NAME ARGS...: a TLS gate with the test PKI's server chain in
# front of lib.sh's PostgreSQL.
tls_gate_pki() {
	local name=$1
	shift
	PORT[$name]=$(free_port)
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=on -c log_connections=on \
		-c "ssl_cert_file=$PKI/server.crt" -c "ssl_key_file=$PKI/server.key" "$@"
}

# ---- 3: encrypted server keys ----------------------------------------------------

# The encrypted key, its self-signed certificate for localhost, and the
# passphrase command: it prints the first line of $WORK/passphrase, or
# exits with $WORK/pass.exit when that exists, and notes each run (and the
# prompt it got) in $WORK/pass.calls.
make_encrypted_key() {
	local key=$WORK/enc.key crt=$WORK/enc.crt
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 \
		-pass "pass:$PASSPHRASE" -out "$key" 2>"$WORK/openssl.log" ||
		die "openssl genpkey -aes256 failed"
	chmod 0600 "$key"
	openssl req -new -x509 -key "$key" -passin "pass:$PASSPHRASE" \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-days 30 -out "$crt" 2>>"$WORK/openssl.log" ||
		die "openssl req -x509 failed"
	grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$key" || die "the key is not encrypted"
	echo "$PASSPHRASE" >"$WORK/passphrase"
	cat >"$WORK/pass.sh" <<-EOF
		echo "\$1" >>"$WORK/pass.calls"
		if [ -f "$WORK/pass.exit" ]; then exit "\$(cat "$WORK/pass.exit")"; fi
		head -n 1 "$WORK/passphrase"
	EOF
	: >"$WORK/pass.calls"
}

enc_gate() {
	local name=$1
	shift
	PORT[$name]=$(free_port)
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c require_ssl=on \
		-c "ssl_cert_file=$WORK/enc.crt" -c "ssl_key_file=$WORK/enc.key" \
		-c "ssl_passphrase_command=sh $WORK/pass.sh '%p'" "$@"
}

test_passphrase_start() {
	REFUSAL_ARGS="-c backend_host=127.0.0.1 -c backend_port=$PG_PORT -c ssl_cert_file=$WORK/enc.crt -c ssl_key_file=$WORK/enc.key"
	echo wrong-passphrase >"$WORK/passphrase"
	expect_start_failure "a wrong passphrase refuses to start, naming the key file and the command's exit status" \
		"private key file \"$WORK/enc.key\" could not be decrypted with the passphrase from ssl_passphrase_command .*\(exit status 0\): wrong passphrase" \
		-c "ssl_passphrase_command=sh $WORK/pass.sh '%p'"
	echo "$PASSPHRASE" >"$WORK/passphrase"
	echo 7 >"$WORK/pass.exit"
	expect_start_failure "a failing passphrase command refuses to start, naming the key file and exit status 7" \
		"ssl_passphrase_command .* gave no passphrase for private key file \"$WORK/enc.key\": the command failed \(exit status 7\)" \
		-c "ssl_passphrase_command=sh $WORK/pass.sh '%p'"
	rm -f "$WORK/pass.exit"
	expect_start_failure "an encrypted key without ssl_passphrase_command refuses to start, saying so" \
		"private key file \"$WORK/enc.key\" is encrypted and ssl_passphrase_command is not set"
	unset REFUSAL_ARGS
	: >"$WORK/pass.calls"

	enc_gate encrypted || return 0
	check "with the right passphrase it starts and logs that the key was decrypted" \
		log_has encrypted "private key file \"$WORK/enc.key\": decrypted with the passphrase from ssl_passphrase_command"
	check "the command ran once" lines_are "$WORK/pass.calls" 1
	check "... with %p replaced by the prompt" \
		grep -qx 'Enter PEM pass phrase:' "$WORK/pass.calls"
	check "a verify-full client trusting the certificate connects over TLS with SCRAM" \
		"$PQPROBE" --ssl 1 "$(client "${PORT[encrypted]}" "$WORK/enc.crt")"
	check "a wrong SCRAM password is refused by PostgreSQL through the gate" \
		"$PQPROBE" --expect refused --error-contains "password authentication failed" \
		"$(client "${PORT[encrypted]}" "$WORK/enc.crt" password=nope)"
	test_reload_without_support encrypted
	gate_stop encrypted
}

# On a reload without ..._supports_reload, the command does not run: the
# key loaded at start serves on while its file is untouched.
test_reload_without_support() {
	local name=$1 port=${PORT[$1]}
	hup "$name" 1
	check "SIGHUP with supports_reload off: reloaded, the unchanged key kept" \
		log_has "$name" "is unchanged: keeping the key decrypted before"
	check "... without running the command again" lines_are "$WORK/pass.calls" 1
	check "... and clients still connect" \
		"$PQPROBE" --ssl 1 "$(client "$port" "$WORK/enc.crt")"

	# The same key, encrypted anew: another file at the same path.
	openssl pkey -in "$WORK/enc.key" -passin "pass:$PASSPHRASE" -aes256 \
		-passout "pass:$PASSPHRASE" -out "$WORK/enc.key.new" 2>>"$WORK/openssl.log"
	chmod 0600 "$WORK/enc.key.new"
	mv "$WORK/enc.key.new" "$WORK/enc.key"
	hup "$name" 2
	check "a changed key file with supports_reload off fails the reload with a message saying why and what to do" \
		log_has "$name" "reload failed, still serving" "private key file \"$WORK/enc.key\" needs a passphrase and has changed since it was loaded" \
		"restart pgsslgate to load it, or set ssl_passphrase_command_supports_reload = on"
	check "... still without running the command" lines_are "$WORK/pass.calls" 1
	check "... and the old key keeps serving" \
		"$PQPROBE" --ssl 1 "$(client "$port" "$WORK/enc.crt")"
}

test_reload_with_support() {
	local port
	: >"$WORK/pass.calls"
	enc_gate reloadable -c ssl_passphrase_command_supports_reload=on || return 0
	port=${PORT[reloadable]}
	hup reloadable 1
	check "SIGHUP with supports_reload on runs the command again and reloads" \
		bash -c "grep -q 'LOG:  configuration reloaded' '$(gate_log reloadable)' &&
			[ \$(wc -l <'$WORK/pass.calls') -eq 2 ]"
	echo wrong-passphrase >"$WORK/passphrase"
	hup reloadable 2
	check "a reload whose command now prints a wrong passphrase fails, naming the key file and exit status" \
		log_has reloadable "reload failed" "private key file \"$WORK/enc.key\" could not be decrypted" "exit status 0"
	check "... and the key of before keeps serving" \
		"$PQPROBE" --ssl 1 "$(client "$port" "$WORK/enc.crt")"
	echo "$PASSPHRASE" >"$WORK/passphrase"
	gate_stop reloadable
}

# ---- 4: fingerprints in --check -----------------------------------------------------

test_check_fingerprints() {
	local report=$WORK/check.report
	cat "$PKI/root.crt" "$PKI/rogue-ca.crt" >"$WORK/two-cas.crt"
	openssl pkey -in "$PKI/client-postgres.key" -aes256 \
		-passout "pass:$KEY_PASSWORD" -out "$WORK/client-enc.key" 2>>"$WORK/openssl.log"
	chmod 0600 "$WORK/client-enc.key"
	# The cluster with TLS, which asks for postgres's certificate and serves
	# the gate's own (so --check finds nothing to say about channel binding).
	"$GATE_BIN" --check -c "backend_host=127.0.0.1" -c "backend_port=$TLS_PG_PORT" \
		-c "ssl_cert_file=$PKI/server.crt" -c "ssl_key_file=$PKI/server.key" \
		-c "ssl_ca_file=$WORK/two-cas.crt" -c clientcert=verify-ca \
		-c backend_sslmode=require -c "backend_sslcert=$PKI/client-postgres.crt" \
		-c "backend_sslkey=$WORK/client-enc.key" \
		-c "backend_sslpassword=$KEY_PASSWORD" >"$report" 2>&1 || true
	check "--check: no problems with an encrypted backend key and backend_sslpassword" \
		log_file_has "$report" "no problems found"
	check "--check prints the server leaf's SHA256 Fingerprint as openssl x509 -fingerprint -sha256 does" \
		fp_line_is "$report" "ssl_cert_file .*leaf certificate" "$(openssl_fp "$PKI/server.crt")"
	check "--check prints the fingerprint of the root in ssl_ca_file" \
		fp_line_is "$report" "trusted CA \"CN=pgsslgate test root CA" "$(openssl_fp "$PKI/root.crt")"
	check "--check prints the fingerprint of the second CA in ssl_ca_file" \
		fp_line_is "$report" "trusted CA \"CN=rogue CA" "$(openssl_fp "$PKI/rogue-ca.crt")"
	check "--check prints the backend client certificate's fingerprint" \
		fp_line_is "$report" "backend_sslcert .*client certificate" "$(openssl_fp "$PKI/client-postgres.crt")"
	check "the start-up log has the same leaf fingerprint" \
		log_has mtls_fp "ssl_cert_file .*leaf certificate.*SHA256 Fingerprint=$(openssl_fp "$PKI/server.crt")"

	REFUSAL_ARGS="-c backend_host=127.0.0.1 -c backend_port=$PG_PORT -c ssl=off -c backend_sslmode=require -c backend_sslcert=$PKI/client-postgres.crt -c backend_sslkey=$WORK/client-enc.key"
	expect_start_failure "an encrypted backend_sslkey with a wrong backend_sslpassword refuses to start, naming the file" \
		"private key file \"$WORK/client-enc.key\" is encrypted and backend_sslpassword does not decrypt it" \
		-c backend_sslpassword=wrong
	expect_start_failure "an encrypted backend_sslkey without backend_sslpassword refuses to start" \
		"private key file \"$WORK/client-enc.key\" is encrypted and backend_sslpassword is not set"
	unset REFUSAL_ARGS
}

# ---- 5: backend_sslcertfingerprint ----------------------------------------------------

# pin_gate NAME ARGS...: the test PKI's chain towards clients; TLS with the
# encrypted client key to the ssl=on cluster.
pin_gate() {
	local name=$1
	shift
	tls_gate_pki "$name" -c "backend_port=$TLS_PG_PORT" \
		-c "backend_sslcert=$PKI/client-postgres.crt" \
		-c "backend_sslkey=$WORK/client-enc.key" \
		-c "backend_sslpassword=$KEY_PASSWORD" "$@"
}

# A client of a gate with a TLS backend.  SCRAM channel binding cannot
# cross a gate (the backend binds to its own certificate, the client to the
# gate's, and libpq refuses SCRAM-SHA-256-PLUS offered over plaintext), so
# channel_binding=disable.
pin_client() {
	client "$1" "$PKI/root.crt" channel_binding=disable
}

over_tls_query() {
	"$PQPROBE" --query "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
		--expect-value t "$(pin_client "$1")"
}

test_backend_pin() {
	local leaf_fp plain wrong=00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
	leaf_fp=$(openssl_fp "$PKI/server.crt")
	plain=$(tr -d : <<<"$leaf_fp" | tr 'A-F' 'a-f')

	pin_gate pin_ok -c backend_sslmode=require \
		-c "backend_sslcertfingerprint=$leaf_fp" || return 0
	check "require with the right pin (colon hex) and no root: the session reaches PostgreSQL over TLS, with the client certificate and SCRAM" \
		over_tls_query "${PORT[pin_ok]}"
	check "the gate logs that the pin is the verification" \
		log_has pin_ok "backend_sslcertfingerprint: .*1 SHA-256 fingerprint .*no root: the pin is the verification"
	gate_stop pin_ok

	pin_gate pin_rotate -c backend_sslmode=verify-full \
		-c "backend_sslrootcert=$PKI/root.crt" \
		-c "backend_sslcertfingerprint=$wrong, $plain" || return 0
	check "verify-full with a root and a list (a stale pin, then the right one in plain lower-case hex) connects" \
		over_tls_query "${PORT[pin_rotate]}"
	gate_stop pin_rotate

	pin_gate pin_wrong -c backend_sslmode=require \
		-c "backend_sslcertfingerprint=$wrong" || return 0
	check "require with a wrong pin: FATAL 08006 naming the presented and the expected fingerprint" \
		"$PQPROBE" --verbose-errors --expect refused \
		--error-contains "08006: could not connect to backend 127.0.0.1:$TLS_PG_PORT: the backend's certificate does not match backend_sslcertfingerprint: it presented SHA256 Fingerprint=$leaf_fp, expected $wrong" \
		"$(pin_client "${PORT[pin_wrong]}")"
	check "the gate logs the mismatch with both fingerprints" \
		log_has pin_wrong "does not match backend_sslcertfingerprint" "$leaf_fp" "$wrong"
	gate_stop pin_wrong

	pin_gate pin_wrong_root -c backend_sslmode=verify-ca \
		-c "backend_sslrootcert=$PKI/root.crt" \
		-c "backend_sslcertfingerprint=$wrong" || return 0
	check "verify-ca with a root that the chain passes, but a wrong pin: still refused with the mismatch" \
		"$PQPROBE" --expect refused --error-contains "does not match backend_sslcertfingerprint" \
		"$(pin_client "${PORT[pin_wrong_root]}")"
	gate_stop pin_wrong_root

	REFUSAL_ARGS="-c backend_host=127.0.0.1 -c backend_port=$TLS_PG_PORT -c ssl=off"
	expect_start_failure "a pin with backend_sslmode = prefer refuses to start (plaintext would bypass it)" \
		"backend_sslcertfingerprint needs backend_sslmode = require" \
		-c backend_sslmode=prefer -c "backend_sslcertfingerprint=$leaf_fp"
	expect_start_failure "a malformed pin refuses to start, naming the item" \
		"invalid value for parameter \"backend_sslcertfingerprint\": item 2" \
		-c backend_sslmode=require -c "backend_sslcertfingerprint=$leaf_fp,AB:CD"
	unset REFUSAL_ARGS
}

# ---- main -------------------------------------------------------------------------

needs pqprobe
setup_work
trap cleanup_all EXIT
PKI=$WORK/pki
pg_start
pg_use_scram

test_make_test_pki
test_pki_with_libpq
make_encrypted_key
test_passphrase_start
test_reload_with_support
tls_pg_start
tls_gate_pki mtls_fp -c "ssl_ca_file=$PKI/root.crt" || true
test_check_fingerprints
gate_stop mtls_fp
test_backend_pin
finish
