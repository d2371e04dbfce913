#!/bin/bash
# certs.sh DIR: make the throwaway PKI the integration tests use.
#
#   root.crt                 root CA; clients use it as sslrootcert
#   intermediate.crt/.key    CA signed by root, pathlen:0
#   server.crt/.key          RSA-2048 leaf, SAN DNS:localhost,IP:127.0.0.1
#   server-chain.crt         server.crt then intermediate.crt
#   server-ec.crt/.key       ECDSA P-256 leaf, same SANs
#   server-ec-chain.crt      server-ec.crt then intermediate.crt
#   wronghost.crt/.key       leaf for DNS:wronghost.example only
#   wronghost-chain.crt      wronghost.crt then intermediate.crt
#   rogue.crt/.key           an unrelated self-signed CA
#
# For client certificates (mutual TLS) and revocation lists:
#
#   alice, bob, carol        client leaves (clientAuth, subject CN=<name> only)
#                            signed by intermediate: NAME.crt, NAME.key and
#                            NAME-chain.crt (leaf then intermediate.crt)
#   intermediate2.crt/.key   a second CA signed by root, pathlen:0, subject
#                            "pgsslgate test second intermediate CA"; root
#                            revokes it
#   dave.crt/.key            client leaf signed by intermediate2;
#   dave-chain.crt           dave.crt then intermediate2.crt
#   eve.crt/.key             client leaf signed by the rogue CA;
#   eve-chain.crt            eve.crt then rogue.crt
#   client-ca.crt            root.crt, intermediate.crt, intermediate2.crt: the
#                            ssl_ca_file for client certificates
#   root.crl                 by root, revoking intermediate2
#   intermediate.crl         by intermediate, revoking carol
#   intermediate2.crl        by intermediate2, revoking nothing (with CRL
#                            checks on the whole chain dave needs one from his
#                            issuer, so that the intermediate's revocation is
#                            what refuses him)
#   crl-bundle.crl           root.crl, intermediate.crl, intermediate2.crl
#   crl-dir/                 the same three, hashed (<hash>.r0 symlinks, as
#                            openssl rehash makes them)
#   rogue.crl                by the rogue CA, revoking eve: an issuer that no
#                            certificate in client-ca.crt matches
#   expired.crl              by intermediate, revoking carol, but its
#                            nextUpdate was a day ago
#
# For live operations (reload, expiry warnings):
#
#   server-rogue.crt/.key    RSA-2048 leaf, same SANs as server.crt, signed by
#                            the rogue CA: what a reload swaps in
#   server-rogue-chain.crt   server-rogue.crt then rogue.crt
#   server-expired.crt/.key  leaf like server.crt, signed by intermediate,
#                            valid from 30 days ago to 1 day ago
#   server-expired-chain.crt server-expired.crt then intermediate.crt
#   server-soon.crt/.key     leaf like server.crt, signed by intermediate,
#                            valid from 1 day ago to 10 days ahead
#   server-soon-chain.crt    server-soon.crt then intermediate.crt
#
# For TLS between pgsslgate and the backend (backend_sslcert; the backend
# itself serves server-chain.crt or wronghost-chain.crt):
#
#   proxy.crt/.key           client leaf (clientAuth, subject CN=proxy only)
#                            signed by intermediate: what pgsslgate presents
#                            to a PostgreSQL with cert authentication, which
#                            logs it in as the role proxy
#   proxy-chain.crt          proxy.crt then intermediate.crt
#   server-revoked.crt/.key  leaf like server.crt, signed by intermediate,
#                            which revokes it
#   server-revoked-chain.crt server-revoked.crt then intermediate.crt
#   backend-crl-bundle.crl   root.crl, then a later CRL by intermediate
#                            revoking carol and server-revoked (what
#                            backend_sslcrl gets; intermediate.crl, made
#                            before, does not list server-revoked)
#   backend-crl-dir/         the same two, hashed
#
# Every certificate (but server-expired.crt and server-soon.crt) is valid
# from one day ago to 365 days ahead, every CRL (but expired.crl) from one
# day ago to 365 days ahead; every key is mode 0600.  Nothing is done when
# DIR/.done-v4 exists (certificates made by an older version of this script,
# marked .done, .done-v2 or .done-v3, are made again).  Silent unless it
# fails.
set -euo pipefail

usage() {
	echo "usage: $0 DIR" >&2
	exit 2
}

[ $# -eq 1 ] || usage
dir=$1

if [ -e "$dir/.done-v4" ]; then
	exit 0
fi

command -v openssl >/dev/null 2>&1 || {
	echo "certs.sh: openssl not found (Debian package openssl)" >&2
	exit 1
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d "$dir/.work.XXXXXX")
log=$work/openssl.log

cleanup() {
	local rc=$?
	if [ $rc -ne 0 ]; then
		echo "certs.sh: generating certificates in $dir failed:" >&2
		[ -f "$log" ] && sed 's/^/  /' "$log" >&2
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

# openssl with its chatter going to the log, each command noted first.
ossl() {
	echo "+ openssl $*" >>"$log"
	openssl "$@" >>"$log" 2>&1
}

# UTCTime, as openssl ca -startdate/-enddate want it.
utc_time() {
	date -u -d "$1" +%y%m%d%H%M%SZ
}

not_before=$(utc_time '1 day ago')
not_after=$(utc_time '365 days')

new_rsa_key() {
	(umask 077 && ossl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1")
	chmod 0600 "$1"
}

new_ec_key() {
	(umask 077 && ossl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1")
	chmod 0600 "$1"
}

# The extension sections every certificate picks one of.
write_extensions() {
	cat >"$work/ext.cnf" <<'EOF'
[ root_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ intermediate_ca ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ wronghost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wronghost.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
}

# A minimal "openssl ca" setup for one signing CA; openssl ca is used rather
# than openssl x509 because only it can backdate the start of validity.
write_ca_config() {
	local name=$1 cadir=$work/ca-$1

	mkdir -p "$cadir/new"
	: >"$cadir/index.txt"
	echo 1000 >"$cadir/crlnumber"
	cat >"$cadir/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca

[ this_ca ]
database = $cadir/index.txt
new_certs_dir = $cadir/new
crlnumber = $cadir/crlnumber
crl_extensions = crl_ext
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no
rand_serial = yes

[ any_name ]
commonName = supplied
organizationName = optional

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = $name
EOF
}

# sign CA_NAME EXTENSION SUBJECT KEY OUT [selfsign]
sign() {
	local ca=$1 ext=$2 subject=$3 key=$4 out=$5 mode=${6:-}
	local cadir=$work/ca-$ca csr
	csr=$work/$(basename "$out").csr

	ossl req -new -config "$cadir/ca.cnf" -key "$key" -subj "$subject" -out "$csr"
	if [ "$mode" = selfsign ]; then
		ossl ca -batch -notext -preserveDN -config "$cadir/ca.cnf" -selfsign \
			-keyfile "$key" -startdate "$not_before" -enddate "$not_after" \
			-extfile "$work/ext.cnf" -extensions "$ext" -in "$csr" -out "$out"
	else
		ossl ca -batch -notext -preserveDN -config "$cadir/ca.cnf" \
			-cert "$work/$ca.crt" -keyfile "$work/$ca.key" \
			-startdate "$not_before" -enddate "$not_after" \
			-extfile "$work/ext.cnf" -extensions "$ext" -in "$csr" -out "$out"
	fi
}

make_self_signed_ca() {
	local name=$1 subject=$2
	write_ca_config "$name"
	new_rsa_key "$work/$name.key"
	sign "$name" root_ca "$subject" "$work/$name.key" "$work/$name.crt" selfsign
}

# make_intermediate [NAME SUBJECT]: a CA signed by root
make_intermediate() {
	local name=${1:-intermediate}
	local subject=${2:-"/O=pgsslgate tests/CN=pgsslgate test intermediate CA"}
	write_ca_config "$name"
	new_rsa_key "$work/$name.key"
	sign root intermediate_ca "$subject" "$work/$name.key" "$work/$name.crt"
}

# make_leaf NAME rsa|ec EXTENSION CN: NAME.crt, NAME.key, NAME-chain.crt
make_leaf() {
	local name=$1 kind=$2 ext=$3 cn=$4
	"new_${kind}_key" "$work/$name.key"
	sign intermediate "$ext" "/O=pgsslgate tests/CN=$cn" "$work/$name.key" "$work/$name.crt"
	cat "$work/$name.crt" "$work/intermediate.crt" >"$work/$name-chain.crt"
}

# make_client NAME CA: a client certificate for CN=NAME signed by CA:
# NAME.crt, NAME.key, NAME-chain.crt
make_client() {
	local name=$1 ca=$2
	new_rsa_key "$work/$name.key"
	sign "$ca" client "/CN=$name" "$work/$name.key" "$work/$name.crt"
	cat "$work/$name.crt" "$work/$ca.crt" >"$work/$name-chain.crt"
}

# revoke CA NAME: mark NAME.crt revoked in CA's database
revoke() {
	local ca=$1 name=$2
	ossl ca -batch -config "$work/ca-$ca/ca.cnf" -cert "$work/$ca.crt" \
		-keyfile "$work/$ca.key" -revoke "$work/$name.crt" -crl_reason keyCompromise
}

# make_crl CA OUT [LASTUPDATE NEXTUPDATE]: CA's CRL of what it revoked
make_crl() {
	local ca=$1 out=$2 last=${3:-$not_before} next=${4:-$not_after}
	ossl ca -batch -config "$work/ca-$ca/ca.cnf" -cert "$work/$ca.crt" \
		-keyfile "$work/$ca.key" -gencrl -crl_lastupdate "$last" \
		-crl_nextupdate "$next" -out "$out"
}

# hash_dir DIR: <hash>.rN symlinks to every *.crl in DIR, as openssl rehash
# makes them (done by hand: not every openssl build has rehash).
hash_dir() {
	local d=$1 f hash n
	for f in "$d"/*.crl; do
		hash=$(openssl crl -hash -noout -in "$f")
		n=0
		while [ -e "$d/$hash.r$n" ] || [ -L "$d/$hash.r$n" ]; do
			n=$((n + 1))
		done
		ln -s "$(basename "$f")" "$d/$hash.r$n"
	done
}

make_client_pki() {
	make_intermediate intermediate2 \
		"/O=pgsslgate tests/CN=pgsslgate test second intermediate CA"
	make_client alice intermediate
	make_client bob intermediate
	make_client carol intermediate
	make_client dave intermediate2
	make_client eve rogue
	cat "$work/root.crt" "$work/intermediate.crt" "$work/intermediate2.crt" \
		>"$work/client-ca.crt"

	revoke intermediate carol
	revoke root intermediate2
	revoke rogue eve
	make_crl root "$work/root.crl"
	make_crl intermediate "$work/intermediate.crl"
	make_crl intermediate2 "$work/intermediate2.crl"
	make_crl rogue "$work/rogue.crl"
	make_crl intermediate "$work/expired.crl" \
		"$(utc_time '10 days ago')" "$(utc_time '1 day ago')"
	cat "$work/root.crl" "$work/intermediate.crl" "$work/intermediate2.crl" \
		>"$work/crl-bundle.crl"
	mkdir "$work/crl-dir"
	cp "$work/root.crl" "$work/intermediate.crl" "$work/intermediate2.crl" \
		"$work/crl-dir/"
	hash_dir "$work/crl-dir"
}

# verify_client NAME CERTFILE [REASON]: with CRL checks on the whole chain,
# CERTFILE verifies against client-ca.crt (no REASON) or fails with REASON.
verify_client() {
	local name=$1 cert=$2 reason=${3:-} out=$work/verify.out
	echo "+ openssl verify (client $name, expecting ${reason:-OK}) $cert" >>"$log"
	if openssl verify -crl_check_all -purpose sslclient -CAfile "$work/client-ca.crt" \
		-CRLfile "$work/crl-bundle.crl" "$cert" >"$out" 2>&1; then
		cat "$out" >>"$log"
		[ -z "$reason" ] && return 0
		echo "certs.sh: $name verified, but should fail: $reason" >>"$log"
		return 1
	fi
	cat "$out" >>"$log"
	if [ -z "$reason" ]; then
		echo "certs.sh: $name should verify" >>"$log"
		return 1
	fi
	grep -q "$reason" "$out" || {
		echo "certs.sh: $name failed, but not with: $reason" >>"$log"
		return 1
	}
}

check_client_pki() {
	local name
	for name in alice bob; do
		verify_client "$name" "$work/$name.crt"
	done
	verify_client carol "$work/carol.crt" "certificate revoked"
	verify_client dave "$work/dave.crt" "certificate revoked"
	verify_client eve "$work/eve.crt" "unable to get local issuer certificate"
	# Without the CRLs, carol and dave are fine: revocation is all that
	# stops them.
	for name in carol dave; do
		ossl verify -purpose sslclient -CAfile "$work/client-ca.crt" "$work/$name.crt"
	done
	ossl verify -purpose sslclient -CAfile "$work/rogue.crt" "$work/eve.crt"
	ossl verify -crl_check_all -purpose sslclient -CAfile "$work/client-ca.crt" \
		-CRLfile "$work/crl-dir/intermediate.crl" -CRLfile "$work/crl-dir/root.crl" \
		"$work/alice.crt"
}

check_chain() {
	ossl verify -CAfile "$work/root.crt" -untrusted "$work/intermediate.crt" \
		-purpose sslserver "$work/$1.crt"
}

install_files() {
	local f
	for f in root.crt root.key intermediate.crt intermediate.key \
		server.crt server.key server-chain.crt \
		server-ec.crt server-ec.key server-ec-chain.crt \
		wronghost.crt wronghost.key wronghost-chain.crt \
		rogue.crt rogue.key \
		alice.crt alice.key alice-chain.crt bob.crt bob.key bob-chain.crt \
		carol.crt carol.key carol-chain.crt \
		intermediate2.crt intermediate2.key dave.crt dave.key dave-chain.crt \
		eve.crt eve.key eve-chain.crt client-ca.crt \
		root.crl intermediate.crl intermediate2.crl crl-bundle.crl \
		rogue.crl expired.crl; do
		mv -f "$work/$f" "$dir/$f"
	done
	rm -rf "$dir/crl-dir"
	mv "$work/crl-dir" "$dir/crl-dir"
	chmod 0644 "$dir"/*.crl "$dir"/crl-dir/*.crl
	chmod 0755 "$dir/crl-dir"
	chmod 0600 "$dir"/*.key
	chmod 0644 "$dir"/*.crt
}

# sign_dated CA EXTENSION SUBJECT KEY OUT NOT_BEFORE NOT_AFTER: as sign, for
# a certificate with validity dates of its own (UTCTime, as utc_time gives).
sign_dated() {
	local ca=$1 ext=$2 subject=$3 key=$4 out=$5 start=$6 end=$7
	local cadir=$work/ca-$ca csr
	csr=$work/$(basename "$out").csr

	ossl req -new -config "$cadir/ca.cnf" -key "$key" -subj "$subject" -out "$csr"
	ossl ca -batch -notext -preserveDN -config "$cadir/ca.cnf" \
		-cert "$work/$ca.crt" -keyfile "$work/$ca.key" \
		-startdate "$start" -enddate "$end" \
		-extfile "$work/ext.cnf" -extensions "$ext" -in "$csr" -out "$out"
}

# make_dated_leaf NAME CA NOT_BEFORE NOT_AFTER: a localhost server leaf signed
# by CA: NAME.crt, NAME.key, NAME-chain.crt (leaf then CA.crt)
make_dated_leaf() {
	local name=$1 ca=$2 start=$3 end=$4
	new_rsa_key "$work/$name.key"
	sign_dated "$ca" server "/O=pgsslgate tests/CN=localhost" "$work/$name.key" \
		"$work/$name.crt" "$start" "$end"
	cat "$work/$name.crt" "$work/$ca.crt" >"$work/$name-chain.crt"
}

make_ops_certs() {
	make_dated_leaf server-rogue rogue "$not_before" "$not_after"
	make_dated_leaf server-expired intermediate "$(utc_time '30 days ago')" \
		"$(utc_time '1 day ago')"
	make_dated_leaf server-soon intermediate "$not_before" "$(utc_time '10 days')"
}

check_ops_certs() {
	ossl verify -CAfile "$work/rogue.crt" -purpose sslserver "$work/server-rogue.crt"
	ossl verify -CAfile "$work/root.crt" -untrusted "$work/intermediate.crt" \
		-purpose sslserver "$work/server-soon.crt"
	# Expired, but otherwise sound: only the dates are wrong with it.
	ossl verify -no_check_time -CAfile "$work/root.crt" \
		-untrusted "$work/intermediate.crt" -purpose sslserver \
		"$work/server-expired.crt"
	if openssl verify -CAfile "$work/root.crt" -untrusted "$work/intermediate.crt" \
		"$work/server-expired.crt" >>"$log" 2>&1; then
		echo "certs.sh: server-expired.crt verifies, but should have expired" >>"$log"
		return 1
	fi
}

install_ops_files() {
	local name
	for name in server-rogue server-expired server-soon; do
		mv -f "$work/$name.crt" "$dir/$name.crt"
		mv -f "$work/$name.key" "$dir/$name.key"
		mv -f "$work/$name-chain.crt" "$dir/$name-chain.crt"
		chmod 0644 "$dir/$name.crt" "$dir/$name-chain.crt"
		chmod 0600 "$dir/$name.key"
	done
}

# The client certificate pgsslgate presents to the backend.  Made after the
# client PKI, so that the CRLs above (made before it) stay as they were.
make_backend_certs() {
	make_client proxy intermediate
	make_dated_leaf server-revoked intermediate "$not_before" "$not_after"
	revoke intermediate server-revoked
	mkdir "$work/backend-crl-dir"
	cp "$work/root.crl" "$work/backend-crl-dir/root.crl"
	make_crl intermediate "$work/backend-crl-dir/intermediate.crl"
	cat "$work/backend-crl-dir/root.crl" "$work/backend-crl-dir/intermediate.crl" \
		>"$work/backend-crl-bundle.crl"
	hash_dir "$work/backend-crl-dir"
}

check_backend_certs() {
	ossl verify -purpose sslclient -CAfile "$work/root.crt" \
		-untrusted "$work/intermediate.crt" "$work/proxy.crt"
	ossl verify -purpose sslclient -CAfile "$work/root.crt" \
		-untrusted "$work/proxy-chain.crt" "$work/proxy.crt"
	check_chain server-revoked
	if openssl verify -crl_check_all -purpose sslserver -CAfile "$work/root.crt" \
		-untrusted "$work/intermediate.crt" -CRLfile "$work/backend-crl-bundle.crl" \
		"$work/server-revoked.crt" >>"$log" 2>&1; then
		echo "certs.sh: server-revoked.crt verifies with backend-crl-bundle.crl" >>"$log"
		return 1
	fi
	ossl verify -crl_check_all -purpose sslserver -CAfile "$work/root.crt" \
		-untrusted "$work/intermediate.crt" -CRLfile "$work/backend-crl-bundle.crl" \
		"$work/server.crt"
}

install_backend_files() {
	mv -f "$work/proxy.crt" "$dir/proxy.crt"
	mv -f "$work/proxy.key" "$dir/proxy.key"
	mv -f "$work/proxy-chain.crt" "$dir/proxy-chain.crt"
	chmod 0644 "$dir/proxy.crt" "$dir/proxy-chain.crt"
	chmod 0600 "$dir/proxy.key"
	mv -f "$work/server-revoked.crt" "$dir/server-revoked.crt"
	mv -f "$work/server-revoked.key" "$dir/server-revoked.key"
	mv -f "$work/server-revoked-chain.crt" "$dir/server-revoked-chain.crt"
	chmod 0644 "$dir/server-revoked.crt" "$dir/server-revoked-chain.crt"
	chmod 0600 "$dir/server-revoked.key"
	mv -f "$work/backend-crl-bundle.crl" "$dir/backend-crl-bundle.crl"
	chmod 0644 "$dir/backend-crl-bundle.crl"
	rm -rf "$dir/backend-crl-dir"
	mv "$work/backend-crl-dir" "$dir/backend-crl-dir"
	chmod 0755 "$dir/backend-crl-dir"
	chmod 0644 "$dir"/backend-crl-dir/*.crl
}

main() {
	write_extensions
	make_self_signed_ca root "/O=pgsslgate tests/CN=pgsslgate test root CA"
	make_intermediate
	make_leaf server rsa server localhost
	make_leaf server-ec ec server localhost
	make_leaf wronghost rsa wronghost wronghost.example
	make_self_signed_ca rogue "/O=somebody else/CN=rogue CA"
	check_chain server
	check_chain server-ec
	check_chain wronghost
	make_client_pki
	check_client_pki
	make_ops_certs
	check_ops_certs
	make_backend_certs
	check_backend_certs
	install_files
	install_ops_files
	install_backend_files
	touch "$dir/.done-v4"
}

main
