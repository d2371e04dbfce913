#!/bin/bash
# logging.sh: no text a client or backend chooses can start a line of the
# gate's log.  User, database and application_name of a StartupMessage (in
# plaintext under require_ssl = on, and over TLS), the text of a backend's
# ErrorResponse, and a client certificate's common name, each carrying a
# newline and a line of PostgreSQL's stamp after it: the log must show the
# newline followed by a tab, as PostgreSQL writes it, and CR and ESC spelled
# out.  Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the
# setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/logging.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# syslog gets the same escaped text (log.c escapes before choosing where a
# line goes); tests/test_log checks that with syslog(3) caught.
# shellcheck disable=SC2317 # (the helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

FAKEBACKEND=$top_builddir/tests/fakebackend
APP_PASSWORD=logging-test-secret
TAB=$'\t'

declare -A PORT=()		# gate name -> its port
FAKE_PID=

# A line as PostgreSQL (and pgsslgate) would start it, tagged with WHAT.
forged() {
	echo "2030-01-01 00:00:00.000 UTC [1] LOG:  FORGED-$1"
}

# no_forged_line NAME: no line of gate NAME's log starts with a forged stamp.
no_forged_line() {
	local log
	log=$(gate_log "$1")
	if grep -n '^2030-01-01 00:00:00' "$log"; then
		echo "a forged line starts a line of $log:"
		cat -A "$log"
		return 1
	fi
}

# The same as an extended regular expression.
forged_re() {
	forged "$1" | sed 's/[].[]/\\&/g'
}

# continued NAME WHAT PATTERN [REST]: a line of gate NAME's log matching
# PATTERN is followed by a line that is a tab, the forged text WHAT, then
# what matches REST (the newline the client sent, then the tab the gate
# adds).  Waits up to 3 s, as log_has does.
continued() {
	local log what=$2 pattern=$3 rest=${4:-} tries=60
	log=$(gate_log "$1")
	while ! grep -A1 -E -- "$pattern" "$log" |
		grep -qE -- "^$TAB$(forged_re "$what")$rest\$"; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			printf 'no line matching "%s" followed by "\\t%s%s" in %s:\n' \
				"$pattern" "$(forged "$what")" "$rest" "$log"
			cat -A "$log"
			return 1
		fi
		sleep 0.05
	done
}

# refused_client PORT SSLMODE MORE...: a libpq client that is refused.
refused_client() {
	local port=$1 mode=$2
	shift 2
	"$PQPROBE" --expect refused "$(conninfo "$port" "$mode" "$@")"
}

# ---- set-up ----------------------------------------------------------------

# A client certificate whose CN holds a newline and a forged line, signed by
# the intermediate CA (openssl's config reads \n in a value as a newline).
make_forged_cert() {
	local d=$WORK/forged
	mkdir -p "$d"
	cat >"$d/req.cnf" <<-EOF
		[ req ]
		distinguished_name = dn
		prompt = no
		string_mask = utf8only
		utf8 = yes
		[ dn ]
		CN = app\\n$(forged CN)
		[ client ]
		basicConstraints = critical, CA:FALSE
		keyUsage = critical, digitalSignature, keyEncipherment
		extendedKeyUsage = clientAuth
	EOF
	{
		(umask 077 && openssl genpkey -quiet -algorithm EC \
			-pkeyopt ec_paramgen_curve:P-256 -out "$d/forged.key") &&
		openssl req -new -key "$d/forged.key" -config "$d/req.cnf" \
			-out "$d/forged.csr" &&
		openssl x509 -req -in "$d/forged.csr" -CA "$CERTS/intermediate.crt" \
			-CAkey "$CERTS/intermediate.key" -CAcreateserial \
			-CAserial "$d/serial" -days 2 -extfile "$d/req.cnf" \
			-extensions client -out "$d/forged.crt"
	} >"$d/openssl.log" 2>&1 || {
		show "$d/openssl.log"
		die "could not make the forged certificate"
	}
	# The newline is in the certificate itself.
	openssl x509 -in "$d/forged.crt" -noout -subject -nameopt utf8,sep_comma_plus |
		grep -qxF "$(forged CN)" || die "openssl did not put a newline in the CN"
}

# ---- tests -------------------------------------------------------------------

test_plaintext_under_require_ssl() {
	local port=${PORT[require]}
	check "require_ssl=on: a plaintext StartupMessage with a forged user is refused" \
		refused_client "$port" disable "user='app
$(forged USER)'"
	check "require_ssl=on: the refusal logs the forged user's second line after a tab" \
		continued require USER "refused connection from host=127\.0\.0\.1 .* user=app$" \
		" database=postgres: this server requires SSL .*"
	check "require_ssl=on: a plaintext StartupMessage with a forged database is refused" \
		refused_client "$port" disable "user=app" "dbname='db
$(forged DATABASE)'"
	check "require_ssl=on: the refusal logs the forged database's second line after a tab" \
		continued require DATABASE "refused connection from .* user=app database=db$" \
		": this server requires SSL.*"
	check "require_ssl=on: a plaintext StartupMessage with a forged application_name is refused" \
		refused_client "$port" disable "user=app" "application_name='a
$(forged APPNAME)'"
	check "require_ssl=on: CR and ESC in a user name are written as \\r and \\x1b" \
		refused_client "$port" disable "user='cr$(printf '\r')esc$(printf '\033')[2J'"
	check "require_ssl=on: ... and the log holds them spelled out, not as bytes" \
		log_has require 'user=cr\\resc\\x1b\[2J database=postgres'
	check "require_ssl=on: no raw CR or ESC byte in the log" \
		bash -c "! grep -q \$'[\\r\\033]' '$(gate_log require)'"
	check "require_ssl=on: no line of the log starts with a forged stamp" \
		no_forged_line require
}

test_over_tls() {
	local port=${PORT[require]}
	check "over TLS: a forged user, database and application_name reach the backend, which refuses" \
		refused_client "$port" require "user='app
$(forged TLSUSER)'" "dbname='db
$(forged TLSDB)'" "application_name='a
$(forged TLSAPP)'" "password=$APP_PASSWORD"
	check "over TLS: the session line shows the forged user's second line after a tab" \
		continued require TLSUSER "session started: host=127\.0\.0\.1 .* user=app$" \
		" database=db"
	check "over TLS: ... and the forged database's after a tab" \
		continued require TLSDB "^${TAB}2030-01-01 .*FORGED-TLSUSER database=db$" \
		" TLSv1\.3 .*"
	check "over TLS: a real scram-sha-256 login still works, its session line as it was" \
		"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
		--expect-value app "$(conninfo "$port" require user=app "password=$APP_PASSWORD")"
	check "over TLS: ... logged on one line" \
		log_has require '^[0-9-]{10} [0-9:.]{12} UTC \[[0-9]+\] LOG:  session started: host=127\.0\.0\.1 port=[0-9]+ user=app database=postgres TLSv1\.3 [A-Z0-9_]+, backend plaintext$'
	check "over TLS: no line of the log starts with a forged stamp" \
		no_forged_line require
}

test_backend_error_text() {
	local fport
	fport=$(free_port)
	"$FAKEBACKEND" s-then-close "$fport" >"$WORK/fakebackend.log" 2>&1 &
	FAKE_PID=$!
	for _ in $(seq 1 100); do
		grep -q "^listening on" "$WORK/fakebackend.log" && break
		sleep 0.05
	done
	grep -q "^listening on" "$WORK/fakebackend.log" || die "fakebackend did not start"
	# allow: the plaintext StartupMessage gets the fake's ErrorResponse,
	# which quotes the StartupMessage, application_name and all; the TLS
	# retry fails (s-then-close), and the refusal quotes the backend's text.
	tls_gate_start fake off "$fport" -c backend_sslmode=allow || return 0
	check "a backend ErrorResponse quoting a forged application_name: the client is refused" \
		refused_client "${PORT[fake]}" require user=app "application_name='a
$(forged BACKEND)'"
	check "the backend's text is logged with its newline followed by a tab" \
		continued fake BACKEND "the plaintext attempt was refused: \"fakebackend: StartupMessage user=app database=postgres application_name=a$" \
		".* received in plaintext\"\)"
	check "the backend's text: no line of the log starts with a forged stamp" \
		no_forged_line fake
	gate_stop fake
	kill "$FAKE_PID" 2>/dev/null || true
	wait "$FAKE_PID" 2>/dev/null || true
}

test_certificate_subject() {
	make_forged_cert
	tls_gate_start cert off "$PG_PORT" -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-full || return 0
	check "a client certificate whose CN holds a newline is refused for user app" \
		refused_client "${PORT[cert]}" require user=app "password=$APP_PASSWORD" \
		"sslcert=$WORK/forged/forged.crt" "sslkey=$WORK/forged/forged.key"
	check "the certificate's common name is logged with its newline followed by a tab" \
		continued cert CN "common name \"app$" "\" is not the user name \"app\" .*"
	check "the certificate's common name: no line of the log starts with a forged stamp" \
		no_forged_line cert
	gate_stop cert
}

main() {
	needs pqprobe fakebackend
	setup_work
	make_certs
	pg_start_scram_only app "$APP_PASSWORD"
	note "PostgreSQL on 127.0.0.1:$PG_PORT (scram-sha-256), scratch in $WORK"

	tls_gate_start require on "$PG_PORT" || finish
	test_plaintext_under_require_ssl
	test_over_tls
	gate_stop require
	test_backend_error_text
	test_certificate_subject
	finish
}

main "$@"
