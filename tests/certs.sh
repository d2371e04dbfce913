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
# Every certificate is valid from one day ago to 365 days ahead; every key is
# mode 0600.  Nothing is done when DIR/.done exists.  Silent unless it fails.
set -euo pipefail

usage() {
	echo "usage: $0 DIR" >&2
	exit 2
}

[ $# -eq 1 ] || usage
dir=$1

if [ -e "$dir/.done" ]; then
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
EOF
}

# A minimal "openssl ca" setup for one signing CA; openssl ca is used rather
# than openssl x509 because only it can backdate the start of validity.
write_ca_config() {
	local name=$1 cadir=$work/ca-$1

	mkdir -p "$cadir/new"
	: >"$cadir/index.txt"
	cat >"$cadir/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca

[ this_ca ]
database = $cadir/index.txt
new_certs_dir = $cadir/new
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no
rand_serial = yes

[ any_name ]
commonName = supplied
organizationName = optional

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

make_intermediate() {
	write_ca_config intermediate
	new_rsa_key "$work/intermediate.key"
	sign root intermediate_ca "/O=pgsslgate tests/CN=pgsslgate test intermediate CA" \
		"$work/intermediate.key" "$work/intermediate.crt"
}

# make_leaf NAME rsa|ec EXTENSION CN: NAME.crt, NAME.key, NAME-chain.crt
make_leaf() {
	local name=$1 kind=$2 ext=$3 cn=$4
	"new_${kind}_key" "$work/$name.key"
	sign intermediate "$ext" "/O=pgsslgate tests/CN=$cn" "$work/$name.key" "$work/$name.crt"
	cat "$work/$name.crt" "$work/intermediate.crt" >"$work/$name-chain.crt"
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
		rogue.crt rogue.key; do
		mv -f "$work/$f" "$dir/$f"
	done
	chmod 0600 "$dir"/*.key
	chmod 0644 "$dir"/*.crt
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
	install_files
	touch "$dir/.done"
}

main
