import { createHash, generateKeyPairSync, privateDecrypt, constants } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mysqlAuth } from "../../src/index.js";

// mysql2's own implementations; its package exports hide lib/, so they are required by path.
const require = createRequire(import.meta.url);
const mysql2Lib = join(dirname(require.resolve("mysql2/package.json")), "lib");
const auth41 = require(join(mysql2Lib, "auth_41.js")) as {
  calculateToken(password: string, scramble1: Buffer, scramble2: Buffer): Buffer;
  verifyToken(publicSeed1: Buffer, publicSeed2: Buffer, token: Buffer, doubleSha: Buffer): boolean;
  doubleSha1(password: string): Buffer;
  xorRotating(a: Buffer, seed: Buffer): Buffer;
};
const cachingSha2 = require(join(mysql2Lib, "auth_plugins/caching_sha2_password.js")) as {
  calculateToken(password: string, scramble: Buffer): Buffer;
};

const scrambleArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((array) => Buffer.from(array));
const password = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 });

function sha(algorithm: string, ...parts: Buffer[]): Buffer {
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((byte, i) => byte ^ (b[i] ?? 0)));
}

describe("mysql_native_password", () => {
  it("matches mysql2's calculateToken", () => {
    fc.assert(
      fc.property(password, scrambleArb, (pw, scramble) => {
        const ours = mysqlAuth.scrambleNativePassword(pw, scramble);
        expect(ours.equals(auth41.calculateToken(pw, scramble.subarray(0, 8), scramble.subarray(8)))).toBe(true);
      }),
    );
  });

  it("is SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))), computed independently", () => {
    const scramble = Buffer.from("abcdefghijklmnopqrst");
    const stage1 = sha("sha1", Buffer.from("secret"));
    const expected = xor(stage1, sha("sha1", scramble, sha("sha1", stage1)));
    expect(mysqlAuth.scrambleNativePassword("secret", scramble).equals(expected)).toBe(true);
    expect(mysqlAuth.nativePasswordHash("secret").toString("hex").toUpperCase()).toBe("14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
  });

  it("ignores the NUL after an AuthSwitchRequest's scramble, answers an empty password with nothing, refuses a short scramble", () => {
    const scramble = Buffer.from("abcdefghijklmnopqrst");
    expect(mysqlAuth.scrambleNativePassword("pw", Buffer.concat([scramble, Buffer.from([0])])).equals(mysqlAuth.scrambleNativePassword("pw", scramble))).toBe(true);
    expect(mysqlAuth.scrambleNativePassword("", scramble).length).toBe(0);
    expect(() => mysqlAuth.scrambleNativePassword("pw", scramble.subarray(0, 19))).toThrow(TypeError);
  });

  it("verifies its own and mysql2's answers, and only the right password", () => {
    fc.assert(
      fc.property(password, password, scrambleArb, (pw, other, scramble) => {
        const stored = mysqlAuth.nativePasswordHash(pw);
        expect(stored.equals(auth41.doubleSha1(pw))).toBe(true);
        const answer = mysqlAuth.scrambleNativePassword(pw, scramble);
        expect(mysqlAuth.verifyNativeScramble(answer, scramble, stored)).toBe(true);
        expect(auth41.verifyToken(scramble.subarray(0, 8), scramble.subarray(8), answer, stored)).toBe(true);
        expect(mysqlAuth.verifyNativeScramble(mysqlAuth.scrambleNativePassword(other, scramble), scramble, stored)).toBe(other === pw);
      }),
    );
    const scramble = Buffer.alloc(20, 1);
    expect(mysqlAuth.verifyNativeScramble(Buffer.alloc(0), scramble, mysqlAuth.nativePasswordHash("pw"))).toBe(false);
    expect(() => mysqlAuth.verifyNativeScramble(Buffer.alloc(20), scramble, Buffer.alloc(19))).toThrow(TypeError);
  });
});

describe("caching_sha2_password", () => {
  it("matches mysql2's calculateToken and the formula computed independently", () => {
    fc.assert(
      fc.property(password, scrambleArb, (pw, scramble) => {
        const ours = mysqlAuth.scrambleCachingSha2(pw, scramble);
        expect(ours.equals(cachingSha2.calculateToken(pw, scramble))).toBe(true);
        const stage1 = sha("sha256", Buffer.from(pw));
        expect(ours.equals(xor(stage1, sha("sha256", sha("sha256", stage1), scramble)))).toBe(true);
      }),
    );
    expect(mysqlAuth.scrambleCachingSha2("", Buffer.alloc(20)).length).toBe(0);
  });

  it("encrypts password + NUL XOR scramble with RSA-OAEP(SHA-1), as mysql2 does", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = publicKey.export({ type: "spki", format: "pem" });
    const scramble = Buffer.from("0123456789abcdefghij");
    for (const pw of ["secret", "a password longer than the twenty-byte scramble ünïcode"]) {
      const encrypted = mysqlAuth.encryptPasswordRsa(pw, Buffer.concat([scramble, Buffer.from([0])]), pem);
      expect(encrypted.length).toBe(256);
      const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, encrypted);
      expect(plain.equals(auth41.xorRotating(Buffer.from(`${pw}\0`), scramble))).toBe(true);
      // XOR with the scramble again gives back the password and its NUL.
      expect(auth41.xorRotating(plain, scramble).toString()).toBe(`${pw}\0`);
    }
  });
});
