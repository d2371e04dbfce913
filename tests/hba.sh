#!/bin/bash
# hba.sh: hba_file and ident_file (pg_hba.conf / pg_ident.conf rules in the
# gate) between real libpq clients and a real PostgreSQL 15 that logs in
# with scram-sha-256.  Prints TAP-ish lines; exits 0 when every test passed,
# 77 when a prerequisite is missing (a failure instead when CI=true), 99
# when the setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/hba.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# libpq cannot choose its source address, so the address rules are tested
# with a raw StartupMessage from /usr/bin/python3 bound to 127.0.0.2 (any
# 127/8 address is the loopback); everything else with libpq (pqprobe).
# shellcheck disable=SC2317 # (functions run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PW=hba-test-password
PYTHON=/usr/bin/python3
declare -A PORT=()

HBA=
IDENT=

# ---- set-up ----------------------------------------------------------------

scram_backend() {
	local role
	pg_start "password_encryption = 'scram-sha-256'"
	for role in app bob admin mallory; do
		"$PQPROBE" --query "CREATE ROLE $role LOGIN PASSWORD '$PW'" \
			"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable" \
			>"$WORK/role.log" 2>&1 || {
			show "$WORK/role.log"
			die "could not create the role $role"
		}
	done
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		host all all 127.0.0.1/32 scram-sha-256
	EOF
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >"$WORK/pg_ctl.log" 2>&1 ||
		die "pg_ctl reload failed"
	sleep 0.3
}

write_rules() {
	HBA=$WORK/gate/pg_hba.conf
	IDENT=$WORK/gate/pg_ident.conf
	mkdir -p "$WORK/gate"
	cat >"$HBA" <<-'EOF'
		# TYPE    DATABASE USER     ADDRESS        METHOD
		host      all      mallory  all            reject
		hostssl   all      admin    all            cert map=admins
		hostnossl all      app      127.0.0.1/32   pass
		hostnossl all      probe    127.0.0.2 255.255.255.255 \
		                                           pass
		hostssl   all      app,bob  all            pass
	EOF
	cat >"$IDENT" <<-'EOF'
		# MAPNAME  CERTIFICATE-NAME  USER
		admins     alice             admin
	EOF
}

# client PORT USER SSLMODE [CERT]: libpq's conninfo, with CERT's certificate
# and key, or with none at all (paths that do not exist).
client() {
	local port=$1 user=$2 mode=$3 cert=${4:-none}
	if [ "$cert" = none ]; then
		conninfo "$port" "$mode" "user=$user" "password=$PW" \
			"sslcert=$WORK/no-such.crt" "sslkey=$WORK/no-such.key"
	else
		conninfo "$port" "$mode" "user=$user" "password=$PW" \
			"sslcert=$CERTS/$cert.crt" "sslkey=$CERTS/$cert.key"
	fi
}

# logs_in PORT USER SSLMODE SSL [CERT]: a scram-sha-256 login through the
# gate, SSL 0 or 1, and current_user is USER.
logs_in() {
	"$PQPROBE" --expect connected --ssl "$4" --query "SELECT current_user" \
		--expect-value "$2" "$(client "$1" "$2" "$3" "${5:-none}")"
}

# refused PORT USER SSLMODE TEXT [CERT]
refused() {
	"$PQPROBE" --expect refused --error-contains "$4" \
		"$(client "$1" "$2" "$3" "${5:-none}")"
}

# raw_startup SOURCE PORT USER: a plaintext StartupMessage from SOURCE;
# prints "R" (the backend asks for a password: the gate let it through) or
# "E <message>" (the gate's ErrorResponse).
raw_startup() {
	"$PYTHON" - "$@" <<-'EOF'
		import socket, struct, sys
		src, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
		s = socket.socket()
		s.settimeout(10)
		s.bind((src, 0))
		s.connect(("127.0.0.1", port))
		body = struct.pack("!I", 196608)
		for k, v in (("user", user), ("database", "postgres")):
		    body += k.encode() + b"\0" + v.encode() + b"\0"
		body += b"\0"
		s.sendall(struct.pack("!I", len(body) + 4) + body)
		data = b""
		while len(data) < 5 or len(data) < 1 + struct.unpack("!I", data[1:5])[0]:
		    chunk = s.recv(4096)
		    if not chunk:
		        break
		    data += chunk
		if data[:1] == b"R":
		    print("R")
		elif data[:1] == b"E":
		    fields = dict((f[:1], f[1:]) for f in data[5:].split(b"\0") if f)
		    print("E", fields.get(b"C", b"").decode(), fields.get(b"M", b"").decode())
		else:
		    print("unexpected", data[:20])
	EOF
}

# expect_raw SOURCE PORT USER WANT: raw_startup's answer starts with WANT.
expect_raw() {
	local out
	out=$(raw_startup "$1" "$2" "$3") || return 1
	echo "$out"
	case $out in
	"$4"*) return 0 ;;
	esac
	return 1
}

gate_with_rules() {
	local name=$1
	shift
	tls_gate_start "$name" off "$PG_PORT" -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c "hba_file=$HBA" -c "ident_file=$IDENT" "$@"
}

# refusals_counted PORT N: the metrics endpoint on PORT counts N refusals
# with reason hba_file (through bash's /dev/tcp: curl may be missing).
refusals_counted() {
	local body value
	body=$(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		tr -d '\r' <&3
	) || return 1
	value=$(awk '$1 == "pgsslgate_refused_total{reason=\"hba_file\"}" { print $2 }' <<<"$body")
	echo "pgsslgate_refused_total{reason=\"hba_file\"} = ${value:-missing}"
	[ "$value" = "$2" ]
}

# ---- tests -------------------------------------------------------------------

test_rules() {
	local p mp
	mp=$(free_port)
	gate_with_rules rules -c "metrics_listen=127.0.0.1:$mp" || return 0
	p=${PORT[rules]}

	check "hostnossl from 127.0.0.1: app logs in in plaintext (scram-sha-256)" \
		logs_in "$p" app disable 0
	check "hostssl: app over TLS (sslmode=verify-full) is served too" \
		logs_in "$p" app verify-full 1
	check "no line for bob in plaintext: PostgreSQL's own FATAL text" \
		refused "$p" bob disable \
		'no pg_hba.conf entry for host "127.0.0.1", user "bob", database "postgres", no encryption'
	check "the log names the gate's hba_file for it" \
		log_has rules "hba_file: host=127.0.0.1" "user=bob" "no line of hba_file $HBA matches"
	check "sslmode=allow: bob's plaintext attempt is refused, libpq retries over TLS and logs in" \
		logs_in "$p" bob allow 1
	check "... after a plaintext attempt that the gate refused (two in the log now)" \
		log_count rules 2 "hba_file: host=127.0.0.1" "user=bob" "no line of hba_file"
	check "a reject line: PostgreSQL's rejects text, with SSL encryption" \
		refused "$p" mallory require \
		'pg_hba.conf rejects connection for host "127.0.0.1", user "mallory", database "postgres", SSL encryption'
	check "the log says which line rejected it" \
		log_has rules "user=mallory" "rejected by $HBA:2"
	check "cert map=admins: alice's certificate logs in as admin" \
		logs_in "$p" admin verify-full 1 alice
	check "cert: admin without a certificate is refused" \
		refused "$p" admin verify-full "connection requires a valid client certificate"
	check "cert: bob's certificate does not map to admin" \
		refused "$p" admin verify-full 'certificate authentication failed for user "admin"' bob
	check "the log says the usermap had no match" \
		log_has rules 'no match in usermap "admins" for user "admin" authenticated as "bob"'
	check "cert: alice's certificate as bob (pass line, no map) logs in as bob" \
		logs_in "$p" bob verify-full 1 alice
	check "address: app from 127.0.0.2 in plaintext matches no line" \
		expect_raw 127.0.0.2 "$p" app \
		'E 28000 no pg_hba.conf entry for host "127.0.0.2", user "app", database "postgres", no encryption'
	check "address and mask columns: probe from 127.0.0.2 reaches the backend" \
		expect_raw 127.0.0.2 "$p" probe R
	check "address and mask columns: probe from 127.0.0.1 does not" \
		expect_raw 127.0.0.1 "$p" probe 'E 28000 no pg_hba.conf entry for host "127.0.0.1", user "probe"'
	check "metrics: the 7 refusals above are counted with reason hba_file" \
		refusals_counted "$mp" 7
	gate_stop rules
}

# bad_reload: a broken file at SIGHUP keeps the old rules; a good one
# applies to new connections.
test_reload() {
	local p
	write_rules
	gate_with_rules reload || return 0
	p=${PORT[reload]}
	check "before the reload: bob in plaintext is refused" \
		refused "$p" bob disable "no pg_hba.conf entry"
	cp "$HBA" "$WORK/good.conf"
	printf 'host all bob all trust\n' >>"$HBA"
	kill -HUP "${GATE_PID[reload]}"
	check "a bad file at SIGHUP: reload failed, naming file:line, what was read and what is allowed" \
		log_has reload "reload failed" "$HBA:8: authentication method \"trust\" is the backend's" \
		"allowed: pass"
	check "after the failed reload the old rules still serve app in plaintext" \
		logs_in "$p" app disable 0
	check "... and still refuse bob in plaintext" \
		refused "$p" bob disable "no pg_hba.conf entry"
	{ cat "$WORK/good.conf"; printf 'hostnossl all bob 127.0.0.0/8 pass\n'; } >"$HBA"
	kill -HUP "${GATE_PID[reload]}"
	check "a good file at SIGHUP is applied" \
		log_has reload "hba_file $HBA: 6 rules for new connections"
	check "after it, bob logs in in plaintext" \
		logs_in "$p" bob disable 0
	gate_stop reload
}

check_prints_rules() {
	"$GATE_BIN" --check -c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c "ssl_cert_file=$CERTS/server-chain.crt" -c "ssl_key_file=$CERTS/server.key" \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c "hba_file=$HBA" \
		-c "ident_file=$IDENT" >"$WORK/check.txt" 2>&1 || { cat "$WORK/check.txt"; return 1; }
	cat "$WORK/check.txt"
	grep -F "hba_file $HBA: 5 rules, first match wins; ident_file $IDENT" "$WORK/check.txt" &&
	grep -F "$HBA:3: hostssl database all user \"admin\" address all: cert (certificate CN must map to the user through map \"admins\")" "$WORK/check.txt" &&
	grep -F "$HBA:5: hostnossl database all user \"probe\" address 127.0.0.2/32: pass" "$WORK/check.txt" &&
	grep -F "$IDENT:2: map \"admins\": certificate name \"alice\" -> user \"admin\"" "$WORK/check.txt"
}

check_prints_equivalent() {
	"$GATE_BIN" --check -c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
		-c "ssl_cert_file=$CERTS/server-chain.crt" -c "ssl_key_file=$CERTS/server.key" \
		-c "ssl_ca_file=$CERTS/client-ca.crt" -c require_ssl=on \
		-c clientcert=verify-full >"$WORK/check2.txt" 2>&1 || { cat "$WORK/check2.txt"; return 1; }
	cat "$WORK/check2.txt"
	grep -F "hostnossl database all user all address all: reject" "$WORK/check2.txt" &&
	grep -F "hostssl database all user all address all: pass clientcert=verify-full" "$WORK/check2.txt"
}

test_check_and_start() {
	write_rules
	check "--check prints the rules and the maps as understood" check_prints_rules
	check "--check without hba_file prints the two lines require_ssl and clientcert stand for" \
		check_prints_equivalent
	printf 'host all all all pass\nhostx all all all pass\n' >"$WORK/bad.conf"
	expect_start_failure "a bad hba_file stops start-up naming file:line and what is allowed" \
		"$WORK/bad.conf:2: invalid connection type \"hostx\"; allowed: host, hostssl, hostnossl" \
		-c "hba_file=$WORK/bad.conf"
	printf 'hostssl all all all cert\n' >"$WORK/cert.conf"
	expect_start_failure "a cert line without ssl_ca_file stops start-up" \
		"cert.conf:1: a line that requires a client certificate needs ssl = on and ssl_ca_file" \
		-c "ssl_cert_file=$CERTS/server-chain.crt" -c "ssl_key_file=$CERTS/server.key" \
		-c "hba_file=$WORK/cert.conf"
	printf 'host all +admins all pass\n' >"$WORK/group.conf"
	expect_start_failure "+group is refused with the reason" \
		"group.conf:1: user \"\\+admins\": role membership \\(\\+group\\) is known only to the backend" \
		-c ssl=off -c "hba_file=$WORK/group.conf"
}

main() {
	needs pqprobe
	[ -x "$PYTHON" ] || missing "$PYTHON (Debian package python3)"
	setup_work
	make_certs
	scram_backend
	note "PostgreSQL on 127.0.0.1:$PG_PORT (scram-sha-256), scratch in $WORK"
	write_rules
	test_rules
	test_reload
	test_check_and_start
	finish
}

main "$@"
