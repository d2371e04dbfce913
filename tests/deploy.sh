#!/bin/bash
# deploy.sh: the Kubernetes manifests in deploy/kubernetes agree with the
# configuration they ship, without a cluster.  The YAML is read with
# Debian's python3-yaml; the ConfigMap's pgsslgate.conf must name the files
# where the Deployment mounts the cert-manager Secret (tls.crt, tls.key),
# listen where the container ports, Service and probes point, give the
# kubelet /readyz and /healthz on the metrics port, and fit its drain into
# terminationGracePeriodSeconds.  Then pgsslgate --check runs on that very
# configuration, against the files laid out as the kubelet lays out a
# Secret volume (..data symlinks, root-owned, mode 0640 from defaultMode
# 0600 and fsGroup) and a real PostgreSQL 15 as the backend.
# Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the
# setup itself broke, 1 otherwise.
#
# Run by hand after make:  bash tests/deploy.sh
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
export LC_ALL=C

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PY=/usr/bin/python3
K8S=$top_srcdir/deploy/kubernetes

needs
[ -x "$PY" ] || missing "/usr/bin/python3 (Debian package python3)"
"$PY" -c 'import yaml' 2>/dev/null || missing "python3-yaml (Debian package python3-yaml)"
setup_work
make_certs

# ---- 1: the manifests against each other and against pgsslgate.conf ---------

# One line per check: "PASS what" or "FAIL what: why".  Facts for the shell
# part go to $WORK/facts as NAME=VALUE lines.
cat >"$WORK/manifests.py" <<'EOF'
import glob, os, re, sys, yaml

k8s, work = sys.argv[1], sys.argv[2]
docs = {}
for f in sorted(glob.glob(os.path.join(k8s, "*.yaml"))):
    for d in yaml.safe_load_all(open(f)):
        if d:
            docs.setdefault(d["kind"], []).append(d)

def result(ok, what, why=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + why))

for kind in ("ConfigMap", "Deployment", "Service", "Certificate"):
    result(len(docs.get(kind, [])) == 1, "one %s in deploy/kubernetes" % kind,
           "found %d" % len(docs.get(kind, [])))
cm, dep = docs["ConfigMap"][0], docs["Deployment"][0]
svc, cert = docs["Service"][0], docs["Certificate"][0]
ns = {d["metadata"].get("namespace") for k in docs for d in docs[k]}
result(len(ns) == 1, "every object in one namespace", repr(ns))

# pgsslgate.conf's syntax: name [=] value, '#' comments, quoted values.
conf = cm["data"]["pgsslgate.conf"]
settings = {}
for line in conf.splitlines():
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=?\s*('(?:[^']|'')*'|[^\s#]*)", line)
    if m and m.group(2) != "":
        v = m.group(2)
        if v.startswith("'"):
            v = v[1:-1].replace("''", "'")
        settings[m.group(1).lower()] = v

def seconds(v):
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|h|d)?\s*", v)
    mult = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}
    return int(m.group(1)) * mult[m.group(2) or "s"]

pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}

# The configuration file: the ConfigMap, mounted where args name it.
cmvol = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
result(len(cmvol) == 1 and cmvol[0] in mounts, "the ConfigMap is a mounted volume", repr(cmvol))
conf_path = os.path.join(mounts[cmvol[0]]["mountPath"], "pgsslgate.conf")
result(c.get("args", [None])[0] == conf_path, "the container runs pgsslgate " + conf_path,
       "args are %r" % c.get("args"))

# The certificate: cert-manager's Secret, mounted where the conf looks.
secvol = [n for n, v in vols.items() if v.get("secret", {}).get("secretName") == cert["spec"]["secretName"]]
result(len(secvol) == 1 and secvol[0] in mounts,
       "the Certificate's Secret %s is a mounted volume" % cert["spec"]["secretName"], repr(secvol))
tls_dir = mounts[secvol[0]]["mountPath"]
for key, name in (("ssl_cert_file", "tls.crt"), ("ssl_key_file", "tls.key")):
    want = os.path.join(tls_dir, name)
    result(settings.get(key) == want, "%s is %s, the Secret's %s" % (key, want, name),
           "it is %r" % settings.get(key))
result(settings.get("ssl") == "on" and settings.get("require_ssl") == "on",
       "ssl and require_ssl are on", "ssl=%r require_ssl=%r" % (settings.get("ssl"), settings.get("require_ssl")))

# The key's mode as the kubelet leaves it: defaultMode, plus group read
# when fsGroup is set, owned by root.  pgsslgate wants 0640 or less for a
# root-owned key, and the gate (not root) must be able to read it.
mode = vols[secvol[0]]["secret"].get("defaultMode", 0o644)
sc = pod.get("securityContext", {})
eff = mode | (0o040 if "fsGroup" in sc else 0)
result(eff & 0o037 == 0, "the key's mode in the pod, 0%o, passes pgsslgate's key check" % eff,
       "group write/execute or other bits set")
result("fsGroup" in sc and eff & 0o040 and sc.get("runAsUser", 0) != 0,
       "the gate runs as a non-root user that reads the key through fsGroup",
       "runAsUser=%r fsGroup=%r mode 0%o" % (sc.get("runAsUser"), sc.get("fsGroup"), eff))

# Ports: the conf's, the container's, the Service's and the probes'.
la = [a.strip() for a in settings.get("listen_addresses", "localhost").split(",")]
result("*" in la or "0.0.0.0" in la, "listen_addresses covers the pod's address", repr(la))
result(ports.get("postgres") == int(settings.get("port", 6432)),
       "containerPort postgres is the conf's port %s" % settings.get("port", 6432), repr(ports))
ml = settings.get("metrics_listen", "")
m = re.fullmatch(r"(\[[^\]]*\]|[^:]*):(\d+)", ml)
result(m is not None and m.group(1) in ("0.0.0.0", "[::]", "*", ""),
       "metrics_listen %r listens on the pod's address (the kubelet probes it)" % ml, "not a wildcard")
mport = int(m.group(2)) if m else None
result(ports.get("metrics") == mport, "containerPort metrics is metrics_listen's port", repr(ports))

def probe_port(p):
    port = p["httpGet"]["port"]
    return ports.get(port) if isinstance(port, str) else port
for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    p = c.get(kind, {})
    result(p.get("httpGet", {}).get("path") == path and probe_port(p) == mport,
           "%s is GET %s on the metrics port" % (kind, path), repr(p))

labels = dep["spec"]["template"]["metadata"]["labels"]
result(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
       "the Service selects the Deployment's pods", repr(svc["spec"]["selector"]))
for sp in svc["spec"]["ports"]:
    tp = sp.get("targetPort", sp["port"])
    result((ports.get(tp) if isinstance(tp, str) else tp) in ports.values(),
           "Service port %s reaches a container port" % sp["name"], repr(tp))
namespace = svc["metadata"].get("namespace", "default")
svc_names = {svc["metadata"]["name"] + s % namespace for s in (".%s.svc", ".%s.svc.cluster.local")}
result(svc_names <= set(cert["spec"].get("dnsNames", [])),
       "the Certificate covers the Service's DNS names", repr(sorted(svc_names)))

# The drain: shutdown_delay (endpoints catch up), then shutdown_timeout.
delay = seconds(settings.get("shutdown_delay", "0"))
timeout = seconds(settings.get("shutdown_timeout", "30s"))
grace = pod.get("terminationGracePeriodSeconds", 30)
result(delay > 0, "shutdown_delay is set (%ss) so that endpoints update before the listeners close" % delay, "0")
# 3: the drain's last step, sessions ended between messages (pgsslgate(8)).
result(grace > delay + timeout + 3,
       "terminationGracePeriodSeconds %s > shutdown_delay %s + shutdown_timeout %s + 3" % (grace, delay, timeout),
       "SIGKILL would cut the drain")
result(pod.get("terminationGracePeriodSeconds") is not None, "terminationGracePeriodSeconds is explicit", "")

with open(os.path.join(work, "pgsslgate.conf"), "w") as f:
    f.write(conf)
with open(os.path.join(work, "facts"), "w") as f:
    f.write("CONF_PATH=%s\nTLS_DIR=%s\nCERT_FILE=%s\nKEY_FILE=%s\n" % (
        conf_path, tls_dir, settings.get("ssl_cert_file"), settings.get("ssl_key_file")))
EOF

"$PY" "$WORK/manifests.py" "$K8S" "$WORK" >"$WORK/manifests.out" 2>&1 ||
	{ show "$WORK/manifests.out"; die "could not read the manifests"; }
while IFS= read -r line; do
	case $line in
	"PASS "*) ok "${line#PASS }" ;;
	"FAIL "*) fail "${line#FAIL }" ;;
	*) note "$line" ;;
	esac
done <"$WORK/manifests.out"
# shellcheck disable=SC1091
. "$WORK/facts"

# ---- 2: pgsslgate --check on the ConfigMap's configuration -------------------

# The pod's file system under $ROOT: the conf where the ConfigMap is
# mounted, and the Secret as the kubelet writes it: a timestamped directory,
# ..data pointing at it, and tls.crt -> ..data/tls.crt.
ROOT=$WORK/root
secret_volume() {
	local dir=$ROOT$TLS_DIR mode=$1 ts=..2026_12_01_00_00_00.000000001
	rm -rf "$dir"
	mkdir -p "$dir/$ts"
	cp "$CERTS/server-chain.crt" "$dir/$ts/tls.crt"
	cp "$CERTS/server.key" "$dir/$ts/tls.key"
	cp "$CERTS/root.crt" "$dir/$ts/ca.crt"
	chmod "$mode" "$dir/$ts"/*
	ln -s "$ts" "$dir/..data"
	for f in tls.crt tls.key ca.crt; do ln -s "..data/$f" "$dir/$f"; done
}
mkdir -p "$(dirname "$ROOT$CONF_PATH")"
cp "$WORK/pgsslgate.conf" "$ROOT$CONF_PATH"
# Root owns a Secret's files in the pod; the key check allows 0640 then.
# Run unprivileged, the files are ours, and ours must be 0600.
if [ "$(id -u)" -eq 0 ]; then KEY_MODE=0640; else KEY_MODE=0600; fi
secret_volume "$KEY_MODE"

pg_start
run_check() {
	"$GATE_BIN" --check "$ROOT$CONF_PATH" \
		-c "ssl_cert_file=$ROOT$CERT_FILE" -c "ssl_key_file=$ROOT$KEY_FILE" \
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT"
}
check_passes() {
	local rc=0
	run_check >"$WORK/check-ok.out" 2>&1 || rc=$?
	cat "$WORK/check-ok.out"
	[ "$rc" = 0 ] && grep -qx 'pgsslgate --check: no problems found' "$WORK/check-ok.out"
}
check "pgsslgate --check passes on the ConfigMap's pgsslgate.conf, Secret files mode $KEY_MODE behind ..data" \
	check_passes
check "... reading the key through the Secret's symlinks" \
	grep -q "private key file \"$ROOT$KEY_FILE\": permissions accepted" "$WORK/check-ok.out"

# Without defaultMode, the kubelet writes 0644: the key check must refuse.
secret_volume 0644
check_refuses() {
	local rc=0
	run_check >"$WORK/check-bad.out" 2>&1 || rc=$?
	cat "$WORK/check-bad.out"
	[ "$rc" = 1 ] && grep -Eq "ERROR: .*$ROOT$KEY_FILE.*(group|others)" "$WORK/check-bad.out"
}
check "with the kubelet's default mode 0644 the key is refused, by name" check_refuses

finish
