#!/bin/bash
# mtls.sh: client certificates (ssl_ca_file, clientcert) and certificate
# revocation lists (ssl_crl_file, ssl_crl_dir) between real libpq clients and
# a real PostgreSQL 15.  Prints TAP-ish lines; exits 0 when every test
# passed, 77 when a prerequisite is missing (a failure instead when CI=true),
# 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/mtls.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# The certificates are tests/certs.sh's: alice, bob and carol are signed by
# the intermediate CA, carol is revoked by it; dave is signed by
# intermediate2, which the root revokes; eve is signed by the rogue CA.
# shellcheck disable=SC2317 # (log_has and the like run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ROLES="alice bob carol dave eve"
# The matrix: every client certificate against every gate.
MATRIX_CERTS="none alice carol dave eve"
MATRIX_GATES="verify_ca_crl_file verify_ca_crl_dir verify_ca_no_crl verify_full clientcert_off"

ROOT_CN="pgsslgate test root CA"
INTERMEDIATE_CN="pgsslgate test intermediate CA"
INTERMEDIATE2_CN="pgsslgate test second intermediate CA"
ROGUE_CN="rogue CA"

declare -A PORT=()		# gate name -> its port
declare -A OBSERVED=()		# "gate,cert" -> TLS/plain/refused

# ---- gates -------------------------------------------------------------------

# start_gate NAME [MORE ARGS...]: a TLS gate (require_ssl=off, so that
# clientcert alone decides about plaintext) in front of the test PostgreSQL
# on a fresh port, kept in PORT[NAME].  Returns 1 if it did not start
# (counted as a failed test).
start_gate() {
	local name=$1
	shift
	tls_gate_start "$name" off "$PG_PORT" "$@"
}

# start_gate_require NAME [MORE ARGS...]: the same with require_ssl=on.
start_gate_require() {
	local name=$1
	shift
	tls_gate_start "$name" on "$PG_PORT" "$@"
}

# What each gate of the matrix is.
gate_args() {
	case $1 in
	verify_ca_crl_file)
		echo "-c ssl_ca_file=$CERTS/client-ca.crt -c clientcert=verify-ca" \
			"-c ssl_crl_file=$CERTS/crl-bundle.crl" ;;
	verify_ca_crl_dir)
		echo "-c ssl_ca_file=$CERTS/client-ca.crt -c clientcert=verify-ca" \
			"-c ssl_crl_dir=$CERTS/crl-dir" ;;
	verify_ca_no_crl)
		echo "-c ssl_ca_file=$CERTS/client-ca.crt -c clientcert=verify-ca" ;;
	verify_full)
		echo "-c ssl_ca_file=$CERTS/client-ca.crt -c clientcert=verify-full" \
			"-c ssl_crl_file=$CERTS/crl-bundle.crl" ;;
	clientcert_off)
		echo "-c ssl_ca_file=$CERTS/client-ca.crt -c clientcert=off" \
			"-c ssl_crl_file=$CERTS/crl-bundle.crl" ;;
	esac
}

gate_title() {
	case $1 in
	verify_ca_crl_file) echo "clientcert=verify-ca with ssl_crl_file" ;;
	verify_ca_crl_dir) echo "clientcert=verify-ca with ssl_crl_dir" ;;
	verify_ca_no_crl) echo "clientcert=verify-ca without CRLs" ;;
	verify_full) echo "clientcert=verify-full with ssl_crl_file" ;;
	clientcert_off) echo "clientcert=off with ssl_ca_file and ssl_crl_file" ;;
	esac
}

# ---- clients -----------------------------------------------------------------

# client PORT USER CERT [SSLMODE [MORE...]]: the conninfo of USER presenting
# CERT: none (no certificate at all: paths that do not exist, so that libpq
# does not fall back to ~/.postgresql/postgresql.crt), NAME (NAME.crt) or
# NAME-chain (NAME-chain.crt, sending the issuing CA too); the key is
# NAME.key either way.
client() {
	local port=$1 user=$2 cert=$3 mode=${4:-verify-full}
	shift $(($# < 4 ? $# : 4))
	if [ "$cert" = none ]; then
		conninfo "$port" "$mode" "user=$user" "sslcert=$WORK/no-such.crt" \
			"sslkey=$WORK/no-such.key" "$@"
	else
		conninfo "$port" "$mode" "user=$user" "sslcert=$CERTS/$cert.crt" \
			"sslkey=$CERTS/${cert%-chain}.key" "$@"
	fi
}

# expect_tls DESCRIPTION PORT USER CERT [SSLMODE]: connects over TLS, and the
# backend sees USER.
expect_tls() {
	local desc=$1
	shift
	check "$desc" "$PQPROBE" --expect connected --ssl 1 \
		--query "SELECT current_user" --expect-value "$2" "$(client "$@")"
}

# expect_refused DESCRIPTION PORT USER CERT [SSLMODE [TEXT...]]: refused, and
# the error holds every TEXT (each checked on a connection of its own).
expect_refused() {
	local desc=$1 port=$2 user=$3 cert=$4 mode=${5:-verify-full}
	shift $(($# < 5 ? $# : 5))
	if [ $# -eq 0 ]; then
		check "$desc" "$PQPROBE" --expect refused "$(client "$port" "$user" "$cert" "$mode")"
	else
		check "$desc" refused_saying "$(client "$port" "$user" "$cert" "$mode")" "$@"
	fi
}

refused_saying() {
	local conninfo=$1 text
	shift
	for text; do
		"$PQPROBE" --expect refused --error-contains "$text" "$conninfo" || return 1
	done
}

# ---- gate logs -----------------------------------------------------------------

# The serial of a certificate as a pattern for 0x-prefixed hex: leading
# zeros optional, any case.
serial_pattern() {
	local hex
	hex=$(openssl x509 -noout -serial -in "$CERTS/$1.crt")
	hex=${hex#serial=}
	hex=${hex#"${hex%%[!0]*}"}
	echo "0x0*$hex"
}

# ---- the tests -----------------------------------------------------------------

# Roles for every certificate's CN, so that the backend accepts them (with
# the password every test role has: the backend asks for it, SCRAM).
create_roles() {
	# shellcheck disable=SC2086 # the names are words
	pg_create_roles $ROLES
}

cert_title() {
	case $1 in
	none) echo "no client certificate" ;;
	alice) echo "alice's valid certificate" ;;
	carol) echo "carol's revoked certificate" ;;
	dave) echo "dave's certificate under the revoked intermediate2" ;;
	eve) echo "eve's certificate from the rogue CA" ;;
	esac
}

# What a client presenting CERT (as the user of its CN) gets from GATE.
expected_outcome() {
	case $1,$2 in
	*,alice) echo TLS ;;
	clientcert_off,none) echo TLS ;;
	verify_ca_no_crl,carol | verify_ca_no_crl,dave) echo TLS ;;
	*) echo refused ;;
	esac
}

start_matrix_gates() {
	local gate
	for gate in $MATRIX_GATES; do
		# shellcheck disable=SC2046 # the settings are words
		start_gate "$gate" $(gate_args "$gate") || true
	done
}

test_matrix() {
	local gate cert user want desc
	for gate in $MATRIX_GATES; do
		[ -n "${GATE_PID[$gate]:-}" ] || continue
		for cert in $MATRIX_CERTS; do
			user=$cert
			[ "$cert" != none ] || user=alice
			want=$(expected_outcome "$gate" "$cert")
			desc="$(gate_title "$gate"): $(cert_title "$cert") -> $want"
			if [ "$want" = TLS ]; then
				desc+=" as $user"
				expect_tls "$desc" "${PORT[$gate]}" "$user" "$cert"
			else
				expect_refused "$desc" "${PORT[$gate]}" "$user" "$cert"
			fi
			OBSERVED[$gate,$cert]=$(observed_outcome "$CHECK_OUT")
		done
	done
}

# The refusals of the matrix, as the gates logged them.
test_refusal_logs() {
	local g=verify_ca_crl_file
	[ -n "${GATE_PID[$g]:-}" ] || return 0
	check "verify-ca: a refusal without certificate is logged with host=127.0.0.1 and 'did not send a certificate'" \
		log_has $g "host=127\.0\.0\.1" "did not send a certificate"
	check "verify-ca: carol's refusal is logged with 'certificate revoked', her subject, issuer and serial" \
		log_has $g "host=127\.0\.0\.1" "certificate revoked" "CN=carol" \
		"$INTERMEDIATE_CN" "$(serial_pattern carol)"
	check "verify-ca: dave's refusal is logged with 'certificate revoked', naming his certificate and issuer first, then the revoked intermediate2" \
		log_has $g "host=127\.0\.0\.1" "certificate revoked" \
		"client certificate \"CN=dave\" \(issuer \"CN=$INTERMEDIATE2_CN" \
		"CA certificate \"CN=$INTERMEDIATE2_CN.*at depth 1"
	check "verify-ca: eve's refusal is logged with 'unable to get local issuer certificate' and her subject" \
		log_has $g "host=127\.0\.0\.1" "unable to get local issuer certificate" \
		"CN=eve" "$(serial_pattern eve)"
	if [ -n "${GATE_PID[verify_ca_crl_dir]:-}" ]; then
		check "verify-ca with ssl_crl_dir: carol's refusal is logged with 'certificate revoked'" \
			log_has verify_ca_crl_dir "certificate revoked" "CN=carol"
		check "verify-ca with ssl_crl_dir: dave's refusal is logged with 'certificate revoked'" \
			log_has verify_ca_crl_dir "certificate revoked" "CN=dave"
	fi
	if [ -n "${GATE_PID[clientcert_off]:-}" ]; then
		check "clientcert=off: carol's certificate, presented though optional, is refused as revoked in the log" \
			log_has clientcert_off "certificate revoked" "CN=carol"
	fi
}

test_session_log() {
	local g=verify_ca_crl_file
	[ -n "${GATE_PID[$g]:-}" ] || return 0
	check "log_connections=on: the session-start line names alice's certificate subject" \
		log_has $g "session started" "user=alice" "CN=alice"
}

test_user_names() {
	local full=${PORT[verify_full]:-} ca=${PORT[verify_ca_crl_file]:-}
	if [ -n "${GATE_PID[verify_full]:-}" ]; then
		expect_refused "verify-full: alice's certificate as user bob is refused with 28000 naming bob, and CN alice in the detail" \
			"$full" bob alice verify-full \
			'certificate authentication failed for user "bob"' alice
		expect_tls "verify-full: bob's certificate as user bob connects" \
			"$full" bob bob
		expect_refused "verify-full: eve's certificate (CN=eve, rogue CA) as user eve is refused" \
			"$full" eve eve
	fi
	if [ -n "${GATE_PID[verify_ca_crl_file]:-}" ]; then
		expect_tls "verify-ca: alice's certificate as user bob connects (only verify-full matches the CN)" \
			"$ca" bob alice
	fi
}

test_plaintext() {
	local ca=${PORT[verify_ca_crl_file]:-} off=${PORT[clientcert_off]:-}
	if [ -n "${GATE_PID[verify_ca_crl_file]:-}" ]; then
		expect_refused "verify-ca, require_ssl=off: sslmode=disable is refused saying it requires SSL" \
			"$ca" alice alice disable "requires SSL"
		check "verify-ca, require_ssl=off: the plaintext refusal is logged" \
			log_has verify_ca_crl_file "refused connection from host=127\.0\.0\.1"
		expect_tls "verify-ca, require_ssl=off: sslmode=allow with alice's certificate retries over TLS and connects" \
			"$ca" alice alice allow
		expect_refused "verify-ca, require_ssl=off: sslmode=allow without a certificate is refused" \
			"$ca" alice none allow
	fi
	if [ -n "${GATE_PID[clientcert_off]:-}" ]; then
		check "clientcert=off, require_ssl=off: sslmode=disable still connects in plaintext" \
			"$PQPROBE" --expect connected --ssl 0 \
			"$(client "$off" alice none disable)"
	fi
}

# ---- no certificate where one is required ------------------------------------

# metric_value PORT SERIES: SERIES (name{labels}, as written) from the gate's
# metrics endpoint on 127.0.0.1:PORT, or nothing.
metric_value() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 5 cat <&3
	) | tr -d '\r' | awk -v s="$2" '$1 == s { print $2 }'
}

# metric_is PORT SERIES N: SERIES is N (within 3 s: counted after the client
# saw its refusal).
metric_is() {
	local v tries=30
	while v=$(metric_value "$1" "$2"); [ "$v" != "$3" ]; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "$2 is ${v:-missing}, not $3"
			return 1
		fi
		sleep 0.1
	done
}

# no_metric PORT PATTERN: no series of the scrape matches PATTERN.
no_metric() {
	local body
	body=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
		timeout 5 cat <&3) | tr -d '\r')
	[ -n "$body" ] || { echo "no scrape"; return 1; }
	! grep -E -- "$2" <<<"$body"
}

# py_driver psycopg|asyncpg PORT TEXT: the Python driver connects as alice
# over TLS (root.crt verified, no client certificate), is refused, and its
# exception holds TEXT (asyncpg's with SQLSTATE 28000).
py_driver() {
	/usr/bin/python3 - "$@" "$CERTS/root.crt" "$WORK/no-such.crt" "$WORK/no-such.key" <<-'PY'
		import asyncio, ssl, sys
		driver, port, text, root, nocert, nokey = sys.argv[1:]
		def judge(e, sqlstate_ok=True):
		    print(type(e).__name__ + ": " + " ".join(str(e).split()))
		    sys.exit(0 if text in str(e) and sqlstate_ok else 1)
		if driver == "psycopg":
		    import psycopg
		    try:
		        psycopg.connect(host="localhost", hostaddr="127.0.0.1",
		                        port=port, user="alice", dbname="postgres",
		                        sslmode="verify-full", sslrootcert=root,
		                        sslcert=nocert, sslkey=nokey, connect_timeout=10)
		    except psycopg.Error as e:
		        judge(e)
		else:
		    import asyncpg
		    async def main():
		        ctx = ssl.create_default_context(cafile=root)
		        try:
		            await asyncpg.connect(host="localhost", port=int(port),
		                                  user="alice", database="postgres",
		                                  ssl=ctx, timeout=10)
		        except Exception as e:
		            print("sqlstate", getattr(e, "sqlstate", None))
		            judge(e, getattr(e, "sqlstate", None) == "28000")
		    asyncio.run(main())
		print("connected without a certificate")
		sys.exit(1)
	PY
}

# hint_asks_for_certificate CONNINFO: psql, refused in plaintext, shows the
# DETAIL asking for a client certificate and not one for sslmode alone.
hint_asks_for_certificate() {
	local out
	if out=$(psql "$1" -c "SELECT 1" 2>&1); then
		echo "connected: $out"
		return 1
	fi
	echo "$out"
	grep -q "DETAIL:  Connect over SSL with a client certificate (sslcert, sslkey)." <<<"$out" &&
		! grep -q "sslmode=require" <<<"$out"
}

# clientcert = verify-ca or verify-full without a certificate: the handshake
# completes and the StartupMessage gets PostgreSQL's FATAL 28000, which
# every driver shows; a failed handshake reached them as a broken pipe or a
# closed connection.  A bad certificate still fails the handshake.
test_missing_certificate() {
	local port mport text="connection requires a valid client certificate"
	local refused='pgsslgate_refused_total{reason="client_certificate_missing"}'
	if [ -n "${GATE_PID[verify_ca_crl_file]:-}" ]; then
		check "verify-ca, libpq without a certificate: FATAL 28000 '$text'" \
			"$PQPROBE" --expect refused --verbose-errors \
			--error-contains "28000: $text" \
			"$(client "${PORT[verify_ca_crl_file]}" alice none)"
		check "verify-ca: that refusal is logged with host=127.0.0.1, user=alice and the reason" \
			log_has verify_ca_crl_file "refused connection from host=127\.0\.0\.1" \
			"user=alice" "$text" "did not send a certificate"
	fi
	if [ -n "${GATE_PID[verify_full]:-}" ]; then
		expect_refused "verify-full, libpq without a certificate: FATAL '$text'" \
			"${PORT[verify_full]}" alice none verify-full "$text"
	fi

	mport=$(free_port)
	start_gate_require missing_cert -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$CERTS/crl-bundle.crl" \
		-c "metrics_listen=127.0.0.1:$mport" || return 0
	port=${PORT[missing_cert]}
	expect_refused "require_ssl=on with clientcert=verify-ca: sslmode=disable is refused asking for a client certificate (sslcert, sslkey)" \
		"$port" alice alice disable "require_ssl = on" \
		"Connect over SSL with a client certificate (sslcert, sslkey)."
	check "require_ssl=on with clientcert=verify-ca: psql shows that DETAIL, and no 'Connect with sslmode=require' (which would fail again)" \
		hint_asks_for_certificate "$(client "$port" alice alice disable)"
	expect_refused "require_ssl=on with clientcert=verify-ca: sslmode=require without a certificate gets '$text'" \
		"$port" alice none require "$text"
	expect_refused "require_ssl=on with clientcert=verify-ca: sslmode=prefer without a certificate gets '$text' too" \
		"$port" alice none prefer "$text"
	expect_tls "require_ssl=on with clientcert=verify-ca: alice's certificate connects" \
		"$port" alice alice
	expect_refused "require_ssl=on with clientcert=verify-ca: carol's revoked certificate is still refused" \
		"$port" carol carol
	check "carol's refusal is still a failed handshake, logged as 'certificate revoked'" \
		log_has missing_cert "TLS handshake with host=127\.0\.0\.1.*failed" "certificate revoked" "CN=carol"
	check "refused_total{reason=\"client_certificate_missing\"} counts the two clients without a certificate (sslmode=require, prefer)" \
		metric_is "$mport" "$refused" 2
	check "tls_handshake_failures_total{reason=\"client_certificate_rejected\"} counts carol" \
		metric_is "$mport" 'pgsslgate_tls_handshake_failures_total{reason="client_certificate_rejected"}' 1
	check "no handshake failure is counted as client_certificate_missing any more" \
		no_metric "$mport" 'handshake_failures_total\{reason="client_certificate_missing"\}'
	if /usr/bin/python3 -c 'import psycopg, asyncpg' 2>/dev/null; then
		check "psycopg without a certificate: the exception says '$text'" \
			py_driver psycopg "$port" "$text"
		check "asyncpg without a certificate: the exception says '$text', SQLSTATE 28000" \
			py_driver asyncpg "$port" "$text"
	elif [ "${CI:-}" = true ]; then
		fail "/usr/bin/python3 has psycopg and asyncpg (Debian: python3-psycopg, python3-asyncpg)"
	else
		note "skipped the psycopg and asyncpg checks: /usr/bin/python3 lacks them"
	fi
	gate_stop missing_cert
}

# ssl_ca_file holding only the root: the client must send its intermediate.
test_chain_from_client() {
	start_gate root_only_ca -c "ssl_ca_file=$CERTS/root.crt" -c clientcert=verify-ca \
		-c "ssl_crl_file=$CERTS/crl-bundle.crl" || return 0
	local port=${PORT[root_only_ca]}
	expect_tls "ssl_ca_file with the root only: alice sending her intermediate connects" \
		"$port" alice alice-chain
	expect_refused "ssl_ca_file with the root only: alice without her intermediate is refused" \
		"$port" alice alice
	check "ssl_ca_file with the root only: that refusal is logged with 'unable to get local issuer certificate'" \
		log_has root_only_ca "unable to get local issuer certificate" "CN=alice"
	expect_refused "ssl_ca_file with the root only: dave sending the revoked intermediate2 is refused" \
		"$port" dave dave-chain
	check "ssl_ca_file with the root only: dave's refusal is logged with 'certificate revoked'" \
		log_has root_only_ca "certificate revoked" "CN=dave"
	expect_refused "ssl_ca_file with the root only: carol sending her intermediate is refused (revoked)" \
		"$port" carol carol-chain
	gate_stop root_only_ca
}

# CRL checks cover the whole chain: the root's CRL is needed too.
test_crl_whole_chain() {
	start_gate intermediate_crl_only -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$CERTS/intermediate.crl" || return 0
	expect_refused "ssl_crl_file with the intermediate's CRL only: even alice is refused (no CRL from the root)" \
		"${PORT[intermediate_crl_only]}" alice alice
	gate_stop intermediate_crl_only
}

# ssl_crl_file and ssl_crl_dir together: the root's CRL in the file, the
# intermediates' in the directory.
test_crl_file_and_dir() {
	local dir=$WORK/intermediate-crls f hash
	mkdir -p "$dir"
	cp "$CERTS/intermediate.crl" "$CERTS/intermediate2.crl" "$dir/"
	for f in intermediate.crl intermediate2.crl; do
		hash=$(openssl crl -hash -noout -in "$dir/$f")
		ln -s "$f" "$dir/$hash.r0"
	done
	start_gate crl_file_and_dir -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$CERTS/root.crl" \
		-c "ssl_crl_dir=$dir" || return 0
	local port=${PORT[crl_file_and_dir]}
	expect_tls "ssl_crl_file (root's CRL) with ssl_crl_dir (the intermediates'): alice connects" \
		"$port" alice alice
	expect_refused "ssl_crl_file (root's CRL) with ssl_crl_dir (the intermediates'): carol is refused" \
		"$port" carol carol
	expect_refused "ssl_crl_file (root's CRL) with ssl_crl_dir (the intermediates'): dave is refused" \
		"$port" dave dave
	gate_stop crl_file_and_dir
}

test_trust_summary() {
	local g=verify_ca_crl_file cn
	[ -n "${GATE_PID[$g]:-}" ] || return 0
	for cn in "$ROOT_CN" "$INTERMEDIATE_CN" "$INTERMEDIATE2_CN"; do
		check "start-up logs a LOG line 'trusted CA' for \"$cn\"" \
			log_has $g "LOG:" "trusted CA" "$cn"
	done
	for cn in "$ROOT_CN" "$INTERMEDIATE_CN" "$INTERMEDIATE2_CN"; do
		check "start-up logs the CRL issued by \"$cn\" with its next update" \
			log_has $g "next update" "$cn"
	done
	check "the trust summary is logged once, not per connection" \
		log_count $g 1 "trusted CA" "$INTERMEDIATE_CN"
	check "a gate with a CRL from every CA in ssl_ca_file logs no warning about CRLs" \
		log_count $g 0 "WARNING" "CRL"
}

test_startup_refusals() {
	local tls=(-c ssl=on -c "ssl_cert_file=$CERTS/server-chain.crt"
		-c "ssl_key_file=$CERTS/server.key")
	expect_start_failure "clientcert=verify-ca without ssl_ca_file stops start-up, naming clientcert" \
		clientcert "${tls[@]}" -c clientcert=verify-ca
	expect_start_failure "clientcert=verify-full without ssl_ca_file stops start-up, naming clientcert" \
		clientcert "${tls[@]}" -c clientcert=verify-full
	expect_start_failure "clientcert=verify-ca with ssl=off stops start-up, naming clientcert" \
		clientcert -c ssl=off -c "ssl_ca_file=$CERTS/client-ca.crt" -c clientcert=verify-ca
	expect_start_failure "clientcert=sometimes (not off, verify-ca or verify-full) stops start-up, naming clientcert" \
		clientcert "${tls[@]}" -c "ssl_ca_file=$CERTS/client-ca.crt" -c clientcert=sometimes
	expect_start_failure "an ssl_ca_file that does not exist stops start-up, naming the file" \
		"$WORK/no-such-ca.crt" "${tls[@]}" -c "ssl_ca_file=$WORK/no-such-ca.crt" \
		-c clientcert=verify-ca
	expect_start_failure "an ssl_crl_file that does not exist stops start-up, naming the file" \
		"$WORK/no-such.crl" "${tls[@]}" -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$WORK/no-such.crl"
}

# CRLs that are suspicious but not fatal: start-up goes on with a warning.
test_startup_warnings() {
	local with_rogue=$WORK/with-rogue.crl
	cat "$CERTS/crl-bundle.crl" "$CERTS/rogue.crl" >"$with_rogue"
	if start_gate foreign_crl -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$with_rogue"; then
		ok "a CRL from an issuer not in ssl_ca_file does not stop start-up"
		check "that CRL gets a WARNING: it matches no certificate in ssl_ca_file, naming \"$ROGUE_CN\"" \
			log_has foreign_crl "WARNING" "matches no certificate in ssl_ca_file" "$ROGUE_CN"
		check "no such warning for the CRLs whose issuers are in ssl_ca_file" \
			log_count foreign_crl 1 "matches no certificate in ssl_ca_file"
		expect_tls "with the foreign CRL alongside, alice still connects" \
			"${PORT[foreign_crl]}" alice alice
		expect_refused "with the foreign CRL alongside, carol is still refused" \
			"${PORT[foreign_crl]}" carol carol
		gate_stop foreign_crl
	fi
	if start_gate expired_crl -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$CERTS/expired.crl"; then
		ok "a CRL past its nextUpdate does not stop start-up"
		check "that CRL gets a WARNING saying it expired" \
			log_has expired_crl "WARNING" "expired"
		gate_stop expired_crl
	fi
}

stop_matrix_gates() {
	local gate
	for gate in $MATRIX_GATES; do
		[ -z "${GATE_PID[$gate]:-}" ] || gate_stop "$gate"
	done
}

print_summary() {
	local gate cert line seen want
	note ""
	note "observed (expected where different), each client as the user of its CN:"
	line=$(printf '%-20s' "")
	for cert in $MATRIX_CERTS; do
		line+=$(printf ' %-13s' "$cert")
	done
	note "$line"
	for gate in $MATRIX_GATES; do
		line=$(printf '%-20s' "$gate")
		for cert in $MATRIX_CERTS; do
			seen=${OBSERVED[$gate,$cert]:-"-"}
			want=$(expected_outcome "$gate" "$cert")
			[ "$seen" = "$want" ] || seen="$seen($want)!"
			line+=$(printf ' %-13s' "$seen")
		done
		note "$line"
	done
}

main() {
	needs pqprobe
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	create_roles
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"

	start_matrix_gates
	test_matrix
	test_refusal_logs
	test_session_log
	test_user_names
	test_plaintext
	test_missing_certificate
	test_trust_summary
	test_chain_from_client
	test_crl_whole_chain
	test_crl_file_and_dir
	test_startup_warnings
	test_startup_refusals
	stop_matrix_gates
	print_summary
	finish
}

main "$@"
