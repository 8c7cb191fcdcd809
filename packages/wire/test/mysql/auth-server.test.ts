import { constants, createHash, generateKeyPairSync, publicEncrypt } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mysqlAuth, WireError } from "../../src/index.js";

// The server's halves of the plugins, checked against what mysql2 (the client) computes.
const require = createRequire(import.meta.url);
const mysql2Lib = join(dirname(require.resolve("mysql2/package.json")), "lib");
const cachingSha2 = require(join(mysql2Lib, "auth_plugins/caching_sha2_password.js")) as {
  calculateToken(password: string, scramble: Buffer): Buffer;
};
const auth41 = require(join(mysql2Lib, "auth_41.js")) as { xorRotating(a: Buffer, seed: Buffer): Buffer };

const scrambleArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((array) => Buffer.from(array));
const password = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 });
const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
const publicPem = keys.publicKey.export({ type: "spki", format: "pem" });

describe("caching_sha2_password, server side", () => {
  it("stores SHA256(SHA256(password))", () => {
    const once = createHash("sha256").update("secret").digest();
    expect(mysqlAuth.cachingSha2PasswordHash("secret").equals(createHash("sha256").update(once).digest())).toBe(true);
  });

  it("verifies mysql2's fast-path answer, and only for the right password", () => {
    fc.assert(
      fc.property(password, password, scrambleArb, (pw, other, scramble) => {
        const stored = mysqlAuth.cachingSha2PasswordHash(pw);
        expect(mysqlAuth.verifyCachingSha2Scramble(cachingSha2.calculateToken(pw, scramble), scramble, stored)).toBe(true);
        expect(mysqlAuth.verifyCachingSha2Scramble(mysqlAuth.scrambleCachingSha2(other, scramble), scramble, stored)).toBe(other === pw);
      }),
    );
    const scramble = Buffer.alloc(20, 7);
    expect(mysqlAuth.verifyCachingSha2Scramble(Buffer.alloc(0), scramble, mysqlAuth.cachingSha2PasswordHash("pw"))).toBe(false);
    expect(mysqlAuth.verifyCachingSha2Scramble(Buffer.alloc(31), scramble, mysqlAuth.cachingSha2PasswordHash("pw"))).toBe(false);
    expect(() => mysqlAuth.verifyCachingSha2Scramble(Buffer.alloc(32), scramble, Buffer.alloc(20))).toThrow(TypeError);
  });

  it("decrypts what mysql2 and encryptPasswordRsa encrypt, with a scramble followed by its NUL", () => {
    fc.assert(
      fc.property(password, scrambleArb, (pw, scramble) => {
        const ours = mysqlAuth.encryptPasswordRsa(pw, Buffer.concat([scramble, Buffer.from([0])]), publicPem);
        expect(mysqlAuth.decryptPasswordRsa(ours, scramble, keys.privateKey).toString("utf8")).toBe(pw);
      }),
      { numRuns: 20 },
    );
    // mysql2's own encryption (its plugin's encrypt is private: the same steps, done here by its helpers).
    const scramble = Buffer.from("0123456789abcdefghij");
    const theirs = publicEncrypt(
      { key: publicPem, oaepHash: "sha1", padding: constants.RSA_PKCS1_OAEP_PADDING },
      auth41.xorRotating(Buffer.from("a token\0"), scramble),
    );
    expect(mysqlAuth.decryptPasswordRsa(theirs, scramble, keys.privateKey).toString()).toBe("a token");
  });

  it("carries up to the modulus less 43 bytes, and refuses what does not decrypt", () => {
    expect(mysqlAuth.maxRsaPasswordBytes(2048)).toBe(213);
    expect(mysqlAuth.maxRsaPasswordBytes(8192)).toBe(981);
    const scramble = Buffer.alloc(20, 3);
    const longest = "x".repeat(213);
    expect(mysqlAuth.decryptPasswordRsa(mysqlAuth.encryptPasswordRsa(longest, scramble, publicPem), scramble, keys.privateKey).toString()).toBe(longest);
    expect(() => mysqlAuth.encryptPasswordRsa(`${longest}x`, scramble, publicPem)).toThrow();
    expect(() => mysqlAuth.decryptPasswordRsa(Buffer.alloc(256, 1), scramble, keys.privateKey)).toThrow(WireError);
    expect(() => mysqlAuth.decryptPasswordRsa(Buffer.alloc(3), scramble, keys.privateKey)).toThrow(WireError);
  });
});

describe("passwords in clear", () => {
  it("are the bytes and a NUL, with no NUL inside, read with or without the NUL", () => {
    const token = "eyJ".padEnd(1200, "a");
    const encoded = mysqlAuth.encodeClearPassword(token);
    expect(encoded.length).toBe(1201);
    expect(encoded[1200]).toBe(0);
    expect(mysqlAuth.decodeClearPassword(encoded).toString()).toBe(token);
    expect(mysqlAuth.decodeClearPassword(Buffer.from("no nul")).toString()).toBe("no nul");
    expect(mysqlAuth.decodeClearPassword(Buffer.from([0])).length).toBe(0);
    expect(() => mysqlAuth.decodeClearPassword(Buffer.from("a\0b\0"))).toThrow(WireError);
    expect(() => mysqlAuth.encodeClearPassword("a\0b")).toThrow(TypeError);
  });
});
