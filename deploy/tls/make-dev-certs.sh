#!/bin/sh
# Make a throw-away CA and one certificate per NATS node, for trying the
# compose file or a test cluster. NOT for production: there, certificates
# come from the organisation's own CA (and a private key never leaves its
# host). Usage: make-dev-certs.sh OUTDIR
#
# OUTDIR/ca.pem                   the CA certificate (clients pin it)
# OUTDIR/nats-N/{ca.pem,node.pem,node-key.pem}
#                                 what node N mounts at /etc/nats/tls
# Each node certificate names its host (nats-N), localhost and 127.0.0.1,
# and allows server and client use: the cluster routes use mutual TLS.
set -eu
out=${1:?usage: make-dev-certs.sh OUTDIR}
umask 077
mkdir -p "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=Spoor dev NATS CA" -keyout "$out/ca-key.pem" -out "$out/ca.pem" 2>/dev/null
for n in 1 2 3; do
  d="$out/nats-$n"
  mkdir -p "$d"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=nats-$n" -keyout "$d/node-key.pem" -out "$d/node.csr" 2>/dev/null
  printf 'subjectAltName=DNS:nats-%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$n" > "$d/ext.cnf"
  openssl x509 -req -in "$d/node.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -days 365 -extfile "$d/ext.cnf" -out "$d/node.pem" 2>/dev/null
  cp "$out/ca.pem" "$d/ca.pem"
  rm -f "$d/node.csr" "$d/ext.cnf"
done
rm -f "$out/ca.srl"
chmod 0644 "$out/ca.pem" "$out"/nats-*/ca.pem "$out"/nats-*/node.pem
echo "certificates in $out (the CA key is $out/ca-key.pem: keep it or delete it)"
