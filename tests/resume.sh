#!/bin/bash
# resume.sh: ssl_session_tickets = on never lets a client certificate skip
# its verification.  While client certificates are checked (ssl_ca_file
# set), no ticket is issued and no session resumes, so a certificate that
# expired after the session began is refused as a full handshake refuses
# it.  Without ssl_ca_file, tickets work as asked.  Prints TAP-ish lines;
# exits 0 when every test passed, 77 when a prerequisite is missing (a
# failure instead when CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/resume.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# Every handshake is openssl s_client -starttls postgres: the gate answers
# the SSLRequest, and the TLS session is what is tested (libpq never
# resumes).  A certificate valid for a few seconds is made here, signed by
# tests/certs.sh's intermediate CA.
# shellcheck disable=SC2317 # (the helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

SHORT_LIFE=6			# seconds the short-lived certificate is valid
SHORT_EXPIRES=			# its notAfter, as seconds since the epoch

declare -A PORT=()		# gate name -> its port

# ---- certificates --------------------------------------------------------------

# short-alice.crt/.key: CN=alice, a client certificate that expires
# SHORT_LIFE seconds after it is made (openssl ca, which alone takes an end
# date to the second).
make_short_cert() {
	local d=$WORK/short start end
	mkdir -p "$d/new"
	: >"$d/index.txt"
	start=$(date -u -d '1 hour ago' +%y%m%d%H%M%SZ)
	SHORT_EXPIRES=$(($(date +%s) + SHORT_LIFE))
	end=$(date -u -d "@$SHORT_EXPIRES" +%y%m%d%H%M%SZ)
	cat >"$d/ca.cnf" <<-EOF
		[ ca ]
		default_ca = this_ca
		[ this_ca ]
		database = $d/index.txt
		new_certs_dir = $d/new
		default_md = sha256
		policy = any_name
		unique_subject = no
		rand_serial = yes
		[ any_name ]
		commonName = supplied
		[ client ]
		basicConstraints = critical, CA:FALSE
		keyUsage = critical, digitalSignature, keyEncipherment
		extendedKeyUsage = clientAuth
		[ req ]
		distinguished_name = req_dn
		prompt = no
		[ req_dn ]
		CN = alice
	EOF
	{
		(umask 077 && openssl genpkey -quiet -algorithm EC \
			-pkeyopt ec_paramgen_curve:P-256 -out "$WORK/short-alice.key") &&
		openssl req -new -config "$d/ca.cnf" -key "$WORK/short-alice.key" \
			-out "$d/short.csr" &&
		openssl ca -batch -notext -config "$d/ca.cnf" \
			-cert "$CERTS/intermediate.crt" -keyfile "$CERTS/intermediate.key" \
			-startdate "$start" -enddate "$end" -extensions client \
			-extfile "$d/ca.cnf" -in "$d/short.csr" -out "$WORK/short-alice.crt"
	} >"$d/openssl.log" 2>&1 || {
		show "$d/openssl.log"
		die "could not make the short-lived certificate"
	}
}

# ---- handshakes ------------------------------------------------------------------

# handshake PORT SESSION-FILE sess_out|sess_in CERT VERSION-OPTION: one
# s_client handshake presenting CERT (CERT.crt, CERT.key; a path without
# the extension), saving or offering the session; stdin is held open a
# moment so that TLS 1.3 tickets, sent after the handshake, arrive.
# A session to offer that was never saved (no ticket came, so s_client had
# nothing to save) is not offered: the handshake is then a plain new one.
handshake() {
	local port=$1 sess=$2 how=$3 cert=$4 version=$5
	local -a offer=("-$how" "$sess")
	if [ "$how" = sess_in ] && [ ! -s "$sess" ]; then
		echo "(no session saved: nothing to offer)"
		offer=()
	fi
	sleep 1 | timeout 20 openssl s_client -starttls postgres \
		-connect "127.0.0.1:$port" "$version" -msg \
		-cert "$cert.crt" -key "$cert.key" \
		-CAfile "$CERTS/root.crt" "${offer[@]}" 2>&1 || true
}

# no_resumption NAME VERSION-OPTION CERT: a handshake with CERT to gate NAME
# gets no ticket, and the gate took the certificate; the session, offered
# back if there is one to offer, is not resumed ("New, ").
no_resumption() {
	local name=$1 version=$2 cert=$3 port=${PORT[$1]} sess out
	sess=$WORK/session-$port$version.pem
	rm -f "$sess"
	out=$(handshake "$port" "$sess" sess_out "$cert" "$version")
	echo "$out"
	if grep -q '<<< .*NewSessionTicket' <<<"$out"; then
		echo "a NewSessionTicket came"
		return 1
	fi
	log_count "$name" 0 "TLS handshake .* failed" || return 1
	out=$(handshake "$port" "$sess" sess_in "$cert" "$version")
	echo "$out"
	grep -q '^New, ' <<<"$out" && log_count "$name" 0 "TLS handshake .* failed"
}

# resumption PORT VERSION-OPTION CERT: a ticket came, and the session resumes.
resumption() {
	local port=$1 version=$2 cert=$3 sess out
	sess=$WORK/session-$port$version.pem
	rm -f "$sess"
	out=$(handshake "$port" "$sess" sess_out "$cert" "$version")
	echo "$out"
	grep -q '<<< .*NewSessionTicket' <<<"$out" || {
		echo "no NewSessionTicket came"
		return 1
	}
	out=$(handshake "$port" "$sess" sess_in "$cert" "$version")
	echo "$out"
	grep -q '^Reused, ' <<<"$out"
}

# A TLS gate with tickets on; ARGS follow.  Its port is PORT[NAME].
start_gate() {
	local name=$1
	shift
	PORT[$name]=$(free_port)
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c ssl=on -c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" -c ssl_session_tickets=on \
		-c log_connections=on "$@"
}

# ---- tests -------------------------------------------------------------------

test_no_tickets_with_client_certificates() {
	local clientcert
	for clientcert in verify-ca verify-full off; do
		start_gate "cc_$clientcert" -c "ssl_ca_file=$CERTS/client-ca.crt" \
			-c "clientcert=$clientcert" || continue
		check "tickets on, clientcert=$clientcert: a TLS 1.3 session with alice's valid certificate gets no ticket and does not resume" \
			no_resumption "cc_$clientcert" -tls1_3 "$CERTS/alice"
		check "tickets on, clientcert=$clientcert: nor does a TLS 1.2 one" \
			no_resumption "cc_$clientcert" -tls1_2 "$CERTS/alice"
		check "tickets on, clientcert=$clientcert: the start-up log says tickets are off because client certificates are checked" \
			log_has "cc_$clientcert" "ssl_session_tickets = on .* is not in effect: client certificates are checked"
		gate_stop "cc_$clientcert"
	done
}

test_expired_certificate_cannot_resume() {
	local port sess left version out
	for version in -tls1_3 -tls1_2; do
		make_short_cert
		start_gate "short$version" -c "ssl_ca_file=$CERTS/client-ca.crt" \
			-c clientcert=verify-ca || continue
		port=${PORT[short$version]}
		sess=$WORK/short$version.pem
		out=$(handshake "$port" "$sess" sess_out "$WORK/short-alice" "$version")
		echo "$out" >"$WORK/short-first$version.out"
		check "$version: the short-lived certificate is accepted while valid" \
			log_count "short$version" 0 "TLS handshake .* failed"
		left=$((SHORT_EXPIRES - $(date +%s) + 2))
		[ "$left" -le 0 ] || sleep "$left"
		out=$(handshake "$port" "$WORK/short-full$version.pem" sess_out \
			"$WORK/short-alice" "$version")
		check "$version: once it has expired, a full handshake with it is refused" \
			log_has "short$version" "TLS handshake .* failed: client certificate \"CN=alice\".*certificate has expired"
		out=$(handshake "$port" "$sess" sess_in "$WORK/short-alice" "$version")
		echo "$out" >"$WORK/short-resume$version.out"
		check "$version: offering the session from while it was valid (if any) does not resume it" \
			bash -c "! grep -q '^Reused, ' '$WORK/short-resume$version.out'"
		check "$version: ... and that handshake is refused for the expired certificate too" \
			log_count "short$version" 2 "TLS handshake .* failed: client certificate \"CN=alice\".*certificate has expired"
		gate_stop "short$version"
	done
}

test_tickets_without_client_certificates() {
	start_gate plain_tickets || return 0
	check "tickets on without ssl_ca_file: a TLS 1.3 session gets a ticket and resumes" \
		resumption "${PORT[plain_tickets]}" -tls1_3 "$CERTS/alice"
	check "tickets on without ssl_ca_file: no note that tickets are off" \
		bash -c "! grep -q 'ssl_session_tickets = on .* is not in effect' '$(gate_log plain_tickets)'"
	gate_stop plain_tickets
}

# A ticket issued before a reload that turns client certificates on is not
# taken after it.
test_ticket_from_before_the_reload() {
	local conf=$WORK/reload.conf port sess out pid
	port=$(free_port)
	cat >"$conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $port
		backend_host = '127.0.0.1'
		backend_port = $PG_PORT
		ssl = on
		ssl_cert_file = '$CERTS/server-chain.crt'
		ssl_key_file = '$CERTS/server.key'
		ssl_session_tickets = on
	EOF
	gate_start reload "$conf" || return 0
	sess=$WORK/reload.pem
	out=$(handshake "$port" "$sess" sess_out "$CERTS/alice" -tls1_3)
	check "before the reload (no ssl_ca_file): a ticket comes" \
		grep -q '<<< .*NewSessionTicket' <<<"$out"
	echo "ssl_ca_file = '$CERTS/client-ca.crt'" >>"$conf"
	pid=${GATE_PID[reload]}
	kill -HUP "$pid"
	check "the reload that sets ssl_ca_file logs that tickets are off" \
		log_has reload "ssl_session_tickets = on .*reload\.conf.* is not in effect"
	check "... and the reload succeeds" log_has reload "configuration reloaded"
	out=$(handshake "$port" "$sess" sess_in "$CERTS/eve" -tls1_3)
	echo "$out" >"$WORK/reload-resume.out"
	check "after it, the ticket from before is not taken" \
		bash -c "! grep -q '^Reused, ' '$WORK/reload-resume.out'"
	check "... and eve's certificate (rogue CA) is verified, and refused" \
		log_has reload "TLS handshake .* failed: client certificate \"CN=eve\""
	gate_stop reload
}

test_check_report() {
	local out=$WORK/check.txt
	"$GATE_BIN" --check -c listen_addresses=127.0.0.1 -c "port=$(free_port)" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" -c ssl=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" -c ssl_session_tickets=on \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c clientcert=verify-ca \
		>"$out" 2>&1 || true
	check "--check says tickets are off because client certificates are checked" \
		grep -E "^ssl_session_tickets = on \(-c ssl_session_tickets=on\) is not in effect: client certificates are checked" "$out"
	check "--check: that is a note, not a problem" \
		grep -qx "pgsslgate --check: no problems found" "$out"
}

main() {
	needs pqprobe
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"

	test_no_tickets_with_client_certificates
	test_expired_certificate_cannot_resume
	test_tickets_without_client_certificates
	test_ticket_from_before_the_reload
	test_check_report
	finish
}

main "$@"
