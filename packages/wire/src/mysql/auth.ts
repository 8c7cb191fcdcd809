import { constants, createHash, privateDecrypt, publicEncrypt, timingSafeEqual, type KeyLike } from "node:crypto";
import { WireError } from "../errors.js";

/**
 * Password scrambles of the MySQL authentication plugins: pure functions of the password, the
 * server's 20-byte scramble and (for RSA) its public key.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods.html
 */

/** Length of the scramble (nonce) of mysql_native_password and caching_sha2_password. */
const SCRAMBLE = 20;
/** Bytes RSA-OAEP with SHA-1 adds to what it encrypts: 2 * 20 + 2. */
const OAEP_SHA1_OVERHEAD = 42;

/** The client-side plugin names of the handshake, AuthSwitchRequest and HandshakeResponse41. */
export const authPluginNames = {
  mysql_native_password: "mysql_native_password",
  caching_sha2_password: "caching_sha2_password",
  mysql_clear_password: "mysql_clear_password",
  sha256_password: "sha256_password",
} as const;

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

/** SHA256(SHA256(password)): what caching_sha2_password keeps in its cache to check the fast path. */
export function cachingSha2PasswordHash(password: string | Buffer): Buffer {
  return sha256(sha256(password));
}

/**
 * Checks a caching_sha2_password fast-path answer as the server does with its cached entry:
 * SHA256(answer XOR SHA256(stored + scramble)) must equal the stored SHA256(SHA256(password)).
 * An empty answer (an empty password) never matches; the caller decides about empty passwords.
 */
export function verifyCachingSha2Scramble(response: Buffer, scramble: Buffer, sha256sha256Password: Buffer): boolean {
  if (sha256sha256Password.length !== 32) throw new TypeError("sha256sha256Password must be 32 bytes");
  const nonce = nonceOf(scramble);
  if (response.length !== 32) return false;
  const candidate = sha256(xor(response, sha256(sha256sha256Password, nonce)));
  return timingSafeEqual(candidate, sha256sha256Password);
}

/**
 * The server's side of {@link encryptPasswordRsa}: decrypts with the private key (RSA-OAEP, SHA-1),
 * XORs with the scramble repeated and returns the password without its NUL. A ciphertext that does
 * not decrypt, or a password that is not NUL-terminated, is a WireError("malformed_message").
 */
export function decryptPasswordRsa(encrypted: Buffer, scramble: Buffer, privateKey: KeyLike): Buffer {
  const nonce = nonceOf(scramble);
  let plain: Buffer;
  try {
    plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, encrypted);
  } catch (cause) {
    throw new WireError("malformed_message", "the RSA-encrypted password does not decrypt with the server's key", { cause });
  }
  for (let i = 0; i < plain.length; i++) plain[i] = (plain[i] ?? 0) ^ (nonce[i % SCRAMBLE] ?? 0);
  return decodeClearPassword(plain);
}

/**
 * The longest password, in bytes, that {@link encryptPasswordRsa} can carry under a key of
 * `modulusBits`: the modulus in bytes, less OAEP's overhead and the NUL. 213 bytes for RSA-2048.
 */
export function maxRsaPasswordBytes(modulusBits: number): number {
  return Math.max(0, Math.floor(modulusBits / 8) - OAEP_SHA1_OVERHEAD - 1);
}

/**
 * The password in clear as mysql_clear_password and caching_sha2_password's full authentication
 * over TLS send it: its bytes and a NUL. A password containing a NUL is a TypeError.
 */
export function encodeClearPassword(password: string | Buffer): Buffer {
  const bytes = typeof password === "string" ? Buffer.from(password, "utf8") : password;
  if (bytes.includes(0)) throw new TypeError("password must not contain a NUL byte");
  return Buffer.concat([bytes, Buffer.from([0])]);
}

/**
 * Reads a password sent in clear: the bytes up to the NUL that ends the packet. Some clients omit the
 * NUL; a NUL anywhere else is a WireError("malformed_message"). Returns a view.
 */
export function decodeClearPassword(payload: Buffer): Buffer {
  const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  const password = payload.subarray(0, end);
  if (password.includes(0)) throw new WireError("malformed_message", "the password sent in clear has a NUL byte before its end");
  return password;
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
