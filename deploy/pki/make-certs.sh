#!/bin/sh
# Creates a private CA and the certificates a fedmeta federation needs for mutual TLS:
#   ca.pem / ca-key.pem                 the private CA (keep ca-key.pem offline once the certificates exist)
#   coordinator.pem / coordinator-key.pem   the coordinator's server certificate (serverAuth)
#   site-<name>.pem / site-<name>-key.pem   one client certificate per site (clientAuth); CN and subjectAltName
#                                       are the site name, which the coordinator checks against the site's hello
#
# Usage: make-certs.sh OUT_DIR COORDINATOR_HOST[,MORE_NAMES_OR_IPS] [SITE ...]
#   e.g. make-certs.sh ./pki coordinator.soc.example,10.0.0.5 branch-lyon branch-oslo
# Run it again with new site names to add sites: an existing CA (and an existing coordinator certificate) is
# reused, never overwritten. Environment: DAYS (validity of the leaf certificates, default 825), CA_DAYS
# (default 3650). Keys are EC P-256, written with mode 0600.
set -eu

if [ "$#" -lt 2 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 64
fi
command -v openssl >/dev/null 2>&1 || { echo "make-certs.sh: openssl is required" >&2; exit 69; }

OUT=$1
HOSTS=$2
shift 2
DAYS=${DAYS:-825}
CA_DAYS=${CA_DAYS:-3650}
umask 077
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

valid_name() {
  # Site names as the coordinator registers them: letters, digits, ".", "_", "-", starting with a letter or digit.
  printf '%s' "$1" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
}

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# subjectAltName from a comma-separated list: IPv4/IPv6 literals become IP entries, the rest DNS entries.
san_of() {
  printf '%s\n' "$1" | tr ',' '\n' | while IFS= read -r n; do
    [ -z "$n" ] && continue
    if printf '%s' "$n" | grep -Eq '^[0-9.]+$|:'; then printf 'IP:%s\n' "$n"; else printf 'DNS:%s\n' "$n"; fi
  done | paste -sd, -
}

sign() { # sign NAME CN SAN EXTKEYUSAGE
  cat >"$WORK/$1.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = $4
subjectAltName = $3
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EXT
  openssl req -new -key "$OUT/$1-key.pem" -subj "/O=fedmeta/CN=$2" -out "$WORK/$1.csr"
  openssl x509 -req -in "$WORK/$1.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca-key.pem" -CAcreateserial -CAserial "$OUT/ca.srl" \
    -days "$DAYS" -sha256 -extfile "$WORK/$1.ext" -out "$OUT/$1.pem" 2>/dev/null
  chmod 644 "$OUT/$1.pem"
}

if [ ! -f "$OUT/ca.pem" ]; then
  new_key "$OUT/ca-key.pem"
  cat >"$WORK/ca.ext" <<EXT
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
O = fedmeta
CN = fedmeta private CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
  openssl req -x509 -new -key "$OUT/ca-key.pem" -config "$WORK/ca.ext" -days "$CA_DAYS" -sha256 -out "$OUT/ca.pem"
  chmod 644 "$OUT/ca.pem"
  echo "created the CA: $OUT/ca.pem"
fi

if [ ! -f "$OUT/coordinator.pem" ]; then
  new_key "$OUT/coordinator-key.pem"
  first=$(printf '%s' "$HOSTS" | cut -d, -f1)
  sign coordinator "$first" "$(san_of "$HOSTS,localhost,127.0.0.1")" serverAuth
  echo "created the coordinator certificate: $OUT/coordinator.pem ($HOSTS)"
fi

for site in "$@"; do
  valid_name "$site" || { echo "make-certs.sh: '$site' is not a valid site name" >&2; exit 65; }
  if [ -f "$OUT/site-$site.pem" ]; then
    echo "kept the existing certificate of site $site"
    continue
  fi
  new_key "$OUT/site-$site-key.pem"
  sign "site-$site" "$site" "DNS:$site" clientAuth
  echo "created the certificate of site $site: $OUT/site-$site.pem"
done

for f in "$OUT"/coordinator.pem "$OUT"/site-*.pem; do
  [ -f "$f" ] || continue
  case "$f" in *-key.pem) continue ;; esac
  openssl verify -CAfile "$OUT/ca.pem" "$f" >/dev/null
done
echo "every certificate in $OUT verifies against $OUT/ca.pem"
