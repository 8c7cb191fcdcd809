#!/usr/bin/env bash
# Creates what deploy/compose needs and must not be committed, under ./secrets (mode 0700):
#   agent-key            the agent's key (its sha256 goes into gateway.yaml, agents[vpc-a])
#   postgres-password    the PostgreSQL superuser's password
#   orders-db-password   the password of airlock_svc, the role the agent logs in as
#   ca.key, ca.crt       a private CA for the gateway's TLS (ca.key is not used by any container)
#   gateway.key, .crt    the gateway's TLS certificate, for the names gateway, localhost, 127.0.0.1
#   dev-issuer.key       the local dev token issuer's ES256 key (used by mint-dev-token.mjs only)
#   dev-jwks.json        its public key, trusted by gateway.yaml's `dev` issuer
# Existing files are kept, so running it again changes nothing; delete a file to renew it.
# Needs bash, openssl and sha256sum.
#
# The files are 0644 inside the 0700 folder: on the host only you can reach them, while the
# containers' unprivileged users (node, uid 1000; postgres, uid 999) can read the bind-mounted
# files. Tighten this if your Docker runs with user namespaces or on swarm.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets

random() { openssl rand -base64 48 | tr -d '\n/+=' | cut -c1-43; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
made() { chmod 0644 "secrets/$1"; echo "init-secrets: created secrets/$1" >&2; }

for name in agent-key postgres-password orders-db-password; do
  if [ ! -s "secrets/$name" ]; then random > "secrets/$name"; made "$name"; fi
done

if [ ! -s secrets/ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=Airlock compose CA" -keyout secrets/ca.key -out secrets/ca.crt \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  made ca.crt
  rm -f secrets/gateway.crt
fi
if [ ! -s secrets/gateway.crt ]; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gateway" \
    -keyout secrets/gateway.key -out secrets/gateway.csr 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:gateway,DNS:localhost,IP:127.0.0.1" > secrets/gateway.ext
  openssl x509 -req -in secrets/gateway.csr -CA secrets/ca.crt -CAkey secrets/ca.key -CAcreateserial \
    -days 397 -sha256 -extfile secrets/gateway.ext -out secrets/gateway.crt 2>/dev/null
  rm -f secrets/gateway.csr secrets/gateway.ext secrets/ca.srl
  chmod 0644 secrets/gateway.key
  made gateway.crt
fi

if [ ! -s secrets/dev-jwks.json ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out secrets/dev-issuer.key
  # The DER public key of a P-256 key ends with the point's X and Y, 32 bytes each.
  openssl pkey -in secrets/dev-issuer.key -pubout -outform DER > secrets/dev-issuer.pub.der
  x="$(tail -c 64 secrets/dev-issuer.pub.der | head -c 32 | b64url)"
  y="$(tail -c 32 secrets/dev-issuer.pub.der | b64url)"
  rm -f secrets/dev-issuer.pub.der
  printf '{"keys":[{"kty":"EC","crv":"P-256","x":"%s","y":"%s","kid":"dev-1","alg":"ES256","use":"sig"}]}\n' "$x" "$y" > secrets/dev-jwks.json
  made dev-jwks.json
fi

# The gateway knows the agent by the sha256 of its key.
hash="$(tr -d '\n' < secrets/agent-key | sha256sum | cut -d' ' -f1)"
if ! grep -q "name: vpc-a, key_sha256: \"$hash\"" gateway.yaml; then
  sed -i.bak -E "s/(name: vpc-a, key_sha256: )\"?[0-9a-f]{64}\"?/\1\"$hash\"/" gateway.yaml && rm -f gateway.yaml.bak
  grep -q "key_sha256: \"$hash\"" gateway.yaml || { echo "init-secrets: could not write the agent key's hash into gateway.yaml" >&2; exit 1; }
  echo "init-secrets: gateway.yaml: agents[vpc-a].key_sha256 = sha256(secrets/agent-key)" >&2
fi
echo "init-secrets: done; next: docker compose up -d --build" >&2
