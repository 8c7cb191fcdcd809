#!/usr/bin/env node
// Mints a short-lived token from the compose stack's local dev issuer (`dev` in gateway.yaml),
// signed with secrets/dev-issuer.key (made by init-secrets.sh). For trying the stack out from
// your machine, where no CI token exists. Node 20+ only, no dependencies.
//
//   node mint-dev-token.mjs --sub alice --groups migration > secrets/dev-token
//   node mint-dev-token.mjs --sub ci-local --claim repository=acme/api --ttl 5m
//
// Options: --sub SUBJECT (default local-dev), --groups a,b (the `groups` claim),
// --claim NAME=VALUE (repeatable), --ttl 15m (s, m or h; at most the issuer's max_lifetime),
// --audience airlock, --issuer URL, --key FILE.
import { createPrivateKey, randomUUID, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    sub: { type: "string", default: "local-dev" },
    groups: { type: "string" },
    claim: { type: "string", multiple: true, default: [] },
    ttl: { type: "string", default: "15m" },
    audience: { type: "string", default: "airlock" },
    issuer: { type: "string", default: "https://dev-issuer.airlock.invalid" },
    key: { type: "string", default: join(here, "secrets", "dev-issuer.key") },
  },
});

const fail = (message) => {
  process.stderr.write(`mint-dev-token: ${message}\n`);
  process.exit(1);
};
const ttl = /^(\d+)(s|m|h)$/.exec(values.ttl);
if (ttl === null) fail(`--ttl \`${values.ttl}\` is not a duration such as 90s, 15m or 1h`);
const seconds = Number(ttl[1]) * { s: 1, m: 60, h: 3600 }[ttl[2]];

let key;
try {
  key = createPrivateKey(readFileSync(values.key));
} catch (error) {
  fail(`cannot read the issuer key \`${values.key}\` (${error.code ?? error.message}): run ./init-secrets.sh first`);
}

const now = Math.floor(Date.now() / 1000);
const claims = { iss: values.issuer, aud: values.audience, sub: values.sub, iat: now, nbf: now, exp: now + seconds, jti: randomUUID() };
if (values.groups !== undefined) claims.groups = values.groups.split(",").map((group) => group.trim()).filter(Boolean);
for (const pair of values.claim) {
  const index = pair.indexOf("=");
  if (index <= 0) fail(`--claim \`${pair}\` is not NAME=VALUE`);
  claims[pair.slice(0, index)] = pair.slice(index + 1);
}

const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const input = `${part({ alg: "ES256", typ: "JWT", kid: "dev-1" })}.${part(claims)}`;
// JWS wants the raw r||s signature (IEEE P1363), not DER.
const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
process.stdout.write(`${input}.${signature}\n`);
