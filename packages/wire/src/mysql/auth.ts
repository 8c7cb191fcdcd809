import { constants, createHash, publicEncrypt, timingSafeEqual } from "node:crypto";

/**
 * Password scrambles of the MySQL authentication plugins: pure functions of the password, the
 * server's 20-byte scramble and (for RSA) its public key.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods.html
 */

/** Length of the scramble (nonce) of mysql_native_password and caching_sha2_password. */
const SCRAMBLE = 20;

/**
 * mysql_native_password's answer: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))). An
 * empty password answers with no bytes. Only the first 20 bytes of `scramble` count (the data of an
 * AuthSwitchRequest ends with a NUL).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods_native_password_authentication.html
 */
export function scrambleNativePassword(password: string | Buffer, scramble: Buffer): Buffer {
  const nonce = nonceOf(scramble);
  if (password.length === 0) return Buffer.alloc(0);
  const stage1 = sha1(password);
  return xor(stage1, sha1(nonce, sha1(stage1)));
}

/** SHA1(SHA1(password)): what the server stores for mysql_native_password (`*` and this in hex). */
export function nativePasswordHash(password: string | Buffer): Buffer {
  return sha1(sha1(password));
}

/**
 * Checks a mysql_native_password answer as the server does: SHA1(answer XOR SHA1(scramble + stored))
 * must equal the stored SHA1(SHA1(password)). An account with an empty password has no stored hash;
 * the caller accepts an empty answer for it without calling this.
 */
export function verifyNativeScramble(response: Buffer, scramble: Buffer, sha1sha1Password: Buffer): boolean {
  if (sha1sha1Password.length !== SCRAMBLE) throw new TypeError("sha1sha1Password must be 20 bytes");
  const nonce = nonceOf(scramble);
  if (response.length !== SCRAMBLE) return false;
  const candidate = sha1(xor(response, sha1(nonce, sha1sha1Password)));
  return timingSafeEqual(candidate, sha1sha1Password);
}

/**
 * caching_sha2_password's fast-path answer: SHA256(password) XOR SHA256(SHA256(SHA256(password)) +
 * scramble). An empty password answers with no bytes.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 */
export function scrambleCachingSha2(password: string | Buffer, scramble: Buffer): Buffer {
  const nonce = nonceOf(scramble);
  if (password.length === 0) return Buffer.alloc(0);
  const stage1 = sha256(password);
  return xor(stage1, sha256(sha256(stage1), nonce));
}

/**
 * caching_sha2_password's (and sha256_password's) full authentication without TLS: the password and
 * a NUL, XORed with the scramble repeated, encrypted with RSA-OAEP (SHA-1) under the server's public
 * key, as MySQL 8 clients do.
 */
export function encryptPasswordRsa(password: string | Buffer, scramble: Buffer, publicKeyPem: string | Buffer): Buffer {
  const nonce = nonceOf(scramble);
  const plain = Buffer.concat([typeof password === "string" ? Buffer.from(password, "utf8") : password, Buffer.from([0])]);
  for (let i = 0; i < plain.length; i++) plain[i] = (plain[i] ?? 0) ^ (nonce[i % SCRAMBLE] ?? 0);
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, plain);
}

function nonceOf(scramble: Buffer): Buffer {
  if (scramble.length < SCRAMBLE) throw new TypeError("scramble must be at least 20 bytes");
  return scramble.subarray(0, SCRAMBLE);
}

function sha1(...parts: (string | Buffer)[]): Buffer {
  const hash = createHash("sha1");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function sha256(...parts: (string | Buffer)[]): Buffer {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}
