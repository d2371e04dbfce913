#!/bin/bash
# selftest-nodejava.sh: client-node-pg and client-pgjdbc by hand against a
# real PostgreSQL 15 (scram-sha-256 logins) behind real pgsslgate gates: the
# 18 cells of the ssl/require_ssl x sslmode matrix, verify-full against the
# wrong host name, client certificates (one accepted, one revoked), a big
# result, cancel, SCRAM over plaintext and TLS.  A development aid for these
# two clients; the driver matrix proper is tests/drivers.sh.
#
#   bash tests/drivers/selftest-nodejava.sh          (after make)
#   CLIENTS=pgjdbc BIG_ROWS=1300000 bash tests/drivers/selftest-nodejava.sh
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

CLIENTS=${CLIENTS:-"node-pg pgjdbc"}
BIG_ROWS=${BIG_ROWS:-1300000}
SSLMODES="disable allow prefer require verify-ca verify-full"
POSTURES="on,on on,off off,off"
USER_NAME=matrix
USER_PW='s3cret pw'

declare -A PORT=()
declare -A CELL=()		# "client,ssl,require,mode" -> observed

# ---- setup -------------------------------------------------------------------

psql_pg() {
	as_pg "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" \
		-U postgres -d postgres "$@"
}

setup() {
	needs pqprobe
	setup_work
	make_certs
	pg_start "password_encryption = 'scram-sha-256'"
	psql_pg -c "CREATE ROLE $USER_NAME LOGIN PASSWORD '$USER_PW'" >/dev/null
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		host all all 127.0.0.1/32 scram-sha-256
	EOF
	# TLS for the gates that ask for it (backend_sslmode; the default,
	# disable, keeps the matrix gates' backend leg plaintext), with a
	# certificate (server-ec) other than the gates' own (server).
	install -o postgres -m 0644 "$CERTS/server-ec-chain.crt" "$PG_DIR/backend.crt"
	install -o postgres -m 0600 "$CERTS/server-ec.key" "$PG_DIR/backend.key"
	psql_pg -c "ALTER SYSTEM SET ssl = on" \
		-c "ALTER SYSTEM SET ssl_cert_file = '$PG_DIR/backend.crt'" \
		-c "ALTER SYSTEM SET ssl_key_file = '$PG_DIR/backend.key'" >/dev/null
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >/dev/null
	sleep 0.5
	local pair ssl require name
	for pair in $POSTURES; do
		ssl=${pair%,*} require=${pair#*,}
		name=$(gate_name "$ssl" "$require")
		if [ "$ssl" = on ]; then
			tls_gate_start "$name" "$require" "$PG_PORT" || die "gate $name"
		else
			PORT[$name]=$(free_port)
			gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
				-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" \
				-c ssl=off -c require_ssl=off -c log_connections=on || die "gate $name"
		fi
	done
	tls_gate_start wronghost on "$PG_PORT" \
		-c "ssl_cert_file=$CERTS/wronghost-chain.crt" \
		-c "ssl_key_file=$CERTS/wronghost.key" || die "gate wronghost"
	tls_gate_start revoked on "$PG_PORT" \
		-c "ssl_cert_file=$CERTS/server-revoked-chain.crt" \
		-c "ssl_key_file=$CERTS/server-revoked.key" || die "gate revoked"
	tls_gate_start tlsbackend off "$PG_PORT" -c backend_sslmode=require || die "gate tlsbackend"
	tls_gate_start mtls on "$PG_PORT" -c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c clientcert=verify-ca -c "ssl_crl_file=$CERTS/crl-bundle.crl" || die "gate mtls"
}

# ---- running a client --------------------------------------------------------

# run CLIENT ACTION PORT [KEY=VALUE...]: the client's one line in $OUT, its
# exit status in $RC, its stderr in $WORK/client.err.
OUT=
RC=
run() {
	local client=$1 action=$2 port=$3
	shift 3
	RC=0
	OUT=$("$top_srcdir/tests/drivers/client-$client" "$action" host=127.0.0.1 \
		"port=$port" "user=$USER_NAME" "password=$USER_PW" dbname=postgres \
		"sslrootcert=$CERTS/root.crt" "$@" 2>"$WORK/client.err") || RC=$?
}

# What a client's line says happened.
outcome() {
	case $RC:$OUT in
	"0:OK ssl=on"*) echo TLS ;;
	"0:OK ssl=off"*) echo plain ;;
	1:ERROR\ sqlstate=*) echo refused ;;
	3:UNSUPPORTED\ *) echo n/a ;;
	*) echo "?($RC:$OUT)" ;;
	esac
}

# expect DESCRIPTION WANT CLIENT ACTION PORT [KEY=VALUE...]: one test.
expect() {
	local desc=$1 want=$2 got
	shift 2
	run "$@"
	got=$(outcome)
	if [ "$got" = "$want" ]; then
		ok "$desc -> $want ($OUT)"
	else
		echo "$OUT" >"$WORK/detail"
		cat "$WORK/client.err" >>"$WORK/detail"
		fail "$desc: wanted $want, got $got" "$WORK/detail"
	fi
}

# ---- tests -------------------------------------------------------------------

test_matrix() {
	local client=$1 pair ssl require mode want got port
	for pair in $POSTURES; do
		ssl=${pair%,*} require=${pair#*,}
		port=${PORT[$(gate_name "$ssl" "$require")]}
		for mode in $SSLMODES; do
			want=$(sslmode_outcome "$ssl" "$require" "$mode")
			run "$client" connect "$port" "sslmode=$mode"
			got=$(outcome)
			CELL[$client,$ssl,$require,$mode]=$got
			if [ "$got" = "$want" ]; then
				ok "$client ssl=$ssl require_ssl=$require sslmode=$mode -> $got ($OUT)"
			elif [ "$got" = n/a ]; then
				ok "$client ssl=$ssl require_ssl=$require sslmode=$mode -> n/a: $OUT"
			else
				echo "$OUT" >"$WORK/detail"
				fail "$client ssl=$ssl require_ssl=$require sslmode=$mode: wanted $want, got $got" \
					"$WORK/detail"
			fi
		done
	done
}

print_matrix() {
	local client=$1 pair ssl require mode line
	note "$client observed:"
	note "$(printf '%-4s %-8s' ssl require; for mode in $SSLMODES; do printf ' %-11s' "$mode"; done)"
	for pair in $POSTURES; do
		ssl=${pair%,*} require=${pair#*,}
		line=$(printf '%-4s %-8s' "$ssl" "$require")
		for mode in $SSLMODES; do
			line+=$(printf ' %-11s' "${CELL[$client,$ssl,$require,$mode]}")
		done
		note "$line"
	done
}

test_extras() {
	local client=$1 t0 pgmd5 want_bytes
	local on_on=${PORT[$(gate_name on on)]} on_off=${PORT[$(gate_name on off)]}
	local off=${PORT[$(gate_name off off)]}

	expect "$client verify-full, wrong host name in the certificate" refused \
		"$client" connect "${PORT[wronghost]}" sslmode=verify-full
	expect "$client verify-ca, same gate (the name is not checked)" TLS \
		"$client" connect "${PORT[wronghost]}" sslmode=verify-ca
	expect "$client verify-full host=localhost hostaddr=127.0.0.1" TLS \
		"$client" connect "$on_on" sslmode=verify-full host=localhost hostaddr=127.0.0.1
	expect "$client verify-full host=wronghost.example hostaddr=127.0.0.1" refused \
		"$client" connect "$on_on" sslmode=verify-full host=wronghost.example hostaddr=127.0.0.1
	expect "$client verify-full host=wronghost.example hostaddr=127.0.0.1, wronghost gate" TLS \
		"$client" connect "${PORT[wronghost]}" sslmode=verify-full host=wronghost.example \
		hostaddr=127.0.0.1

	# libpq: require with a root certificate checks the chain, as
	# verify-ca does; client-node-pg follows libpq, pgjdbc does not check.
	expect "$client require with sslrootcert=rogue.crt" \
		"$([ "$client" = pgjdbc ] && echo TLS || echo refused)" \
		"$client" connect "$on_on" sslmode=require "sslrootcert=$CERTS/rogue.crt"
	expect "$client verify-ca with sslrootcert=rogue.crt" refused \
		"$client" connect "$on_on" sslmode=verify-ca "sslrootcert=$CERTS/rogue.crt"
	expect "$client verify-full, a CRL that does not revoke the gate's certificate" \
		"$([ "$client" = pgjdbc ] && echo n/a || echo TLS)" \
		"$client" connect "$on_on" sslmode=verify-full "sslcrl=$CERTS/backend-crl-bundle.crl"
	expect "$client verify-full, the same CRLs, gate's certificate revoked" \
		"$([ "$client" = pgjdbc ] && echo n/a || echo refused)" \
		"$client" connect "${PORT[revoked]}" sslmode=verify-full \
		"sslcrl=$CERTS/backend-crl-bundle.crl"
	expect "$client client certificate alice accepted (clientcert=verify-ca)" TLS \
		"$client" connect "${PORT[mtls]}" sslmode=verify-full \
		"sslcert=$CERTS/alice.crt" "sslkey=$CERTS/alice.key"
	expect "$client revoked client certificate carol refused" refused \
		"$client" connect "${PORT[mtls]}" sslmode=verify-full \
		"sslcert=$CERTS/carol.crt" "sslkey=$CERTS/carol.key"
	expect "$client no client certificate refused" refused \
		"$client" connect "${PORT[mtls]}" sslmode=verify-full

	expect "$client SCRAM, wrong password refused" refused \
		"$client" connect "$off" sslmode=disable password=wrong
	check "$client SCRAM wrong password gives 28P01" grep -q "sqlstate=28P01" <<<"$OUT"
	expect "$client SCRAM over a plaintext client leg" plain \
		"$client" connect "$off" sslmode=disable
	expect "$client SCRAM over a TLS client leg" TLS \
		"$client" connect "$on_off" sslmode=require
	expect "$client channel_binding=disable over TLS" TLS \
		"$client" connect "$on_on" sslmode=require channel_binding=disable
	run "$client" connect "$on_on" sslmode=require channel_binding=require
	note "$client channel_binding=require over TLS (backend leg plaintext): $OUT"

	pgmd5=$(psql_pg -At -c "SELECT md5(string_agg(i || ',' || md5(i::text) || E'\n', '' ORDER BY i)) FROM generate_series(1, $BIG_ROWS) i")
	want_bytes=$(psql_pg -At -c "SELECT sum(length(i || ',' || md5(i::text)) + 1) FROM generate_series(1, $BIG_ROWS) i")
	for port in "$on_on" "$off"; do
		t0=$EPOCHREALTIME
		run "$client" big "$port" sslmode=prefer "rows=$BIG_ROWS"
		[ "$RC" = 3 ] && run "$client" big "$port" \
			"sslmode=$([ "$port" = "$off" ] && echo disable || echo require)" "rows=$BIG_ROWS"
		if [ "$OUT" = "OK ssl=$([ "$port" = "$off" ] && echo off || echo on) rows=$BIG_ROWS bytes=$want_bytes md5=$pgmd5" ]; then
			ok "$client big rows=$BIG_ROWS bytes=$want_bytes on port $port in $(since "$t0") s ($OUT)"
		else
			echo "$OUT" >"$WORK/detail"
			cat "$WORK/client.err" >>"$WORK/detail"
			fail "$client big rows=$BIG_ROWS: want md5=$pgmd5 bytes=$want_bytes" "$WORK/detail"
		fi
	done

	for port in "$on_on" "$off"; do
		t0=$EPOCHREALTIME
		run "$client" cancel "$port" \
			"sslmode=$([ "$port" = "$off" ] && echo disable || echo verify-full)"
		if [ "$RC:$OUT" = "0:OK cancelled sqlstate=57014" ] && num_between "$(since "$t0")" 0 12; then
			ok "$client cancel on port $port in $(since "$t0") s"
		else
			echo "$RC:$OUT" >"$WORK/detail"
			cat "$WORK/client.err" >>"$WORK/detail"
			fail "$client cancel on port $port" "$WORK/detail"
		fi
	done
}

# Channel binding through a gate whose backend leg is TLS too: the backend
# offers SCRAM-SHA-256-PLUS bound to ITS certificate, which the client,
# talking TLS to the gate, never sees.  Observed and noted; only what must
# work (no channel binding) is asserted.
test_channel_binding() {
	local client=$1 port=${PORT[tlsbackend]} cb mode
	for mode in disable require; do
		expect "$client sslmode=$mode channel_binding=disable, backend leg TLS" \
			"$([ $mode = disable ] && echo plain || echo TLS)" \
			"$client" connect "$port" "sslmode=$mode" channel_binding=disable
		for cb in prefer require; do
			run "$client" connect "$port" "sslmode=$mode" "channel_binding=$cb"
			note "$client sslmode=$mode channel_binding=$cb, backend leg TLS: $OUT"
		done
	done
}

libpq_channel_binding() {
	local port=${PORT[tlsbackend]} cb mode
	for mode in disable require; do
		for cb in disable prefer require; do
			"$PQPROBE" "host=127.0.0.1 port=$port user=$USER_NAME password='$USER_PW' dbname=postgres sslmode=$mode channel_binding=$cb" \
				>"$WORK/pq.out" 2>&1 || true
			note "libpq sslmode=$mode channel_binding=$cb, backend leg TLS: $(head -c 300 "$WORK/pq.out" | tr '\n' ' ')"
		done
	done
}

setup
libpq_channel_binding
for c in $CLIENTS; do
	t0=$EPOCHREALTIME
	run "$c" connect "${PORT[$(gate_name on on)]}" sslmode=require
	note "$c first run (compile, start): $(since "$t0") s: $OUT"
	test_matrix "$c"
	print_matrix "$c"
	test_extras "$c"
	test_channel_binding "$c"
done
finish
