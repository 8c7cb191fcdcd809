import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createScramClient, md5Password } from "../src/upstream/scram.js";

// RFC 7677 section 3: the SCRAM-SHA-256 example exchange. (The server-final is the RFC's
// "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", not the "...mMhK1AG+G2t6G6H5R/cvLPIc=" sometimes quoted.)
const rfc = {
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function hmac(key: Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text).digest();
}

function attributes(message: string): Map<string, string> {
  return new Map(message.split(",").map((part) => [part.slice(0, part.indexOf("=")), part.slice(part.indexOf("=") + 1)]));
}

/**
 * The server side of SCRAM-SHA-256 (RFC 5802 section 3), as PostgreSQL stores it: StoredKey and
 * ServerKey derived from the password, salt and iteration count.
 */
function scramServer(password: string, serverFirst: string) {
  const attrs = attributes(serverFirst);
  const salted = pbkdf2Sync(password, Buffer.from(attrs.get("s") ?? "", "base64"), Number(attrs.get("i")), 32, "sha256");
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return {
    /** Checks client-final against client-first-bare; returns server-final, or undefined for a bad proof. */
    finish(clientFirstBare: string, clientFinal: string): string | undefined {
      const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(",p="));
      const proof = Buffer.from(attributes(clientFinal).get("p") ?? "", "base64");
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const clientSignature = hmac(storedKey, authMessage);
      if (proof.length !== clientSignature.length) return undefined;
      const clientKey = Buffer.alloc(proof.length);
      for (let i = 0; i < proof.length; i++) clientKey[i] = (proof[i] ?? 0) ^ (clientSignature[i] ?? 0);
      if (!timingSafeEqual(createHash("sha256").update(clientKey).digest(), storedKey)) return undefined;
      return `v=${hmac(serverKey, authMessage).toString("base64")}`;
    },
  };
}

/** client-first-bare of our client: the message without its gs2 header. */
function bare(clientFirst: string): string {
  expect(clientFirst.startsWith("n,,")).toBe(true);
  return clientFirst.slice(3);
}

describe("the test's SCRAM server", () => {
  it("reproduces the RFC 7677 exchange (with the RFC's user name)", () => {
    const server = scramServer(rfc.password, rfc.serverFirst);
    expect(server.finish(`n=user,r=${rfc.clientNonce}`, rfc.clientFinal)).toBe(rfc.serverFinal);
    expect(server.finish(`n=user,r=${rfc.clientNonce}`, rfc.clientFinal.replace("p=dH", "p=dI"))).toBeUndefined();
  });
});

describe("createScramClient", () => {
  it("sends no channel binding and the `*` user name PostgreSQL ignores", () => {
    expect(createScramClient(rfc.password, rfc.clientNonce).clientFirst).toBe(`n,,n=*,r=${rfc.clientNonce}`);
  });

  it("proves the password to the server and accepts the server's signature", () => {
    const client = createScramClient(rfc.password, rfc.clientNonce);
    const clientFinal = client.final(rfc.serverFirst);
    // Same channel binding and nonce as the RFC; the proof differs because the user name does.
    expect(clientFinal).toMatch(/^c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,p=[A-Za-z0-9+/]{43}=$/);
    expect(clientFinal).not.toBe(rfc.clientFinal);
    const serverFinal = scramServer(rfc.password, rfc.serverFirst).finish(bare(client.clientFirst), clientFinal);
    expect(serverFinal).toBeDefined();
    expect(() => client.verify(serverFinal ?? "")).not.toThrow();
  });

  it("gives a proof the server refuses for another password", () => {
    const client = createScramClient("pencil2", rfc.clientNonce);
    const clientFinal = client.final(rfc.serverFirst);
    expect(scramServer(rfc.password, rfc.serverFirst).finish(bare(client.clientFirst), clientFinal)).toBeUndefined();
  });

  it("works with a random nonce and other salts and iteration counts", () => {
    const client = createScramClient("s3cret, with = signs");
    expect(createScramClient("x").clientFirst).not.toBe(client.clientFirst);
    const nonce = attributes(bare(client.clientFirst)).get("r") ?? "";
    expect(nonce.length).toBeGreaterThanOrEqual(18);
    const serverFirst = `r=${nonce}SERVERPART,s=${Buffer.from("another salt").toString("base64")},i=1`;
    const serverFinal = scramServer("s3cret, with = signs", serverFirst).finish(bare(client.clientFirst), client.final(serverFirst));
    expect(serverFinal).toBeDefined();
    expect(() => client.verify(serverFinal ?? "")).not.toThrow();
  });

  it("normalizes the password with NFKC", () => {
    const client = createScramClient("\u2168", rfc.clientNonce); // ROMAN NUMERAL NINE
    const clientFinal = client.final(rfc.serverFirst);
    expect(scramServer("IX", rfc.serverFirst).finish(bare(client.clientFirst), clientFinal)).toBeDefined();
  });

  describe("verify", () => {
    function finished() {
      const client = createScramClient(rfc.password, rfc.clientNonce);
      const serverFinal = scramServer(rfc.password, rfc.serverFirst).finish(bare(client.clientFirst), client.final(rfc.serverFirst)) ?? "";
      return { client, serverFinal };
    }

    it("rejects a wrong server signature", () => {
      const { client, serverFinal } = finished();
      const signature = Buffer.from(serverFinal.slice(2), "base64");
      signature[0] = (signature[0] ?? 0) ^ 1;
      expect(() => client.verify(`v=${signature.toString("base64")}`)).toThrow(/signature does not match/);
      // The RFC's signature is for another auth message.
      expect(() => client.verify(rfc.serverFinal)).toThrow(/signature does not match/);
    });

    it("rejects a truncated or missing signature", () => {
      const { client, serverFinal } = finished();
      expect(() => client.verify(serverFinal.slice(0, 20))).toThrow(/signature does not match/);
      expect(() => client.verify("")).toThrow(/signature does not match/);
    });

    it("reports a server error (e=)", () => {
      const { client } = finished();
      expect(() => client.verify("e=invalid-proof")).toThrow(/server refused: invalid-proof/);
    });

    it("rejects any signature before final was called", () => {
      const { serverFinal } = finished();
      expect(() => createScramClient(rfc.password, rfc.clientNonce).verify(serverFinal)).toThrow(/signature does not match/);
    });
  });

  describe("final", () => {
    const client = () => createScramClient(rfc.password, rfc.clientNonce);

    it("rejects a server nonce that does not extend the client nonce", () => {
      expect(() => client().final("r=XXXXNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")).toThrow(/nonce/);
      expect(() => client().final("r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")).toThrow(/nonce/);
      expect(() => client().final(`r=${rfc.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)).toThrow(/nonce/);
      expect(() => client().final("s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")).toThrow(/nonce/);
    });

    it("rejects a missing salt or a missing or invalid iteration count", () => {
      const nonce = `r=${rfc.clientNonce}abc`;
      expect(() => client().final(`${nonce},i=4096`)).toThrow(/salt or iteration/);
      expect(() => client().final(`${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==`)).toThrow(/salt or iteration/);
      for (const i of ["0", "-1", "1.5", "x", "", "10000001"]) {
        expect(() => client().final(`${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=${i}`), `i=${i}`).toThrow(/salt or iteration/);
      }
    });
  });
});

describe("md5Password", () => {
  it("is md5 + md5(md5(password + user) hex + salt)", () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const inner = createHash("md5").update("secretpostgres").digest("hex");
    const expected = `md5${createHash("md5").update(Buffer.concat([Buffer.from(inner, "latin1"), salt])).digest("hex")}`;
    expect(md5Password("postgres", "secret", salt)).toBe(expected);
    expect(md5Password("postgres", "secret", salt)).toMatch(/^md5[0-9a-f]{32}$/);
    expect(md5Password("postgres", "secret", Buffer.from([4, 3, 2, 1]))).not.toBe(expected);
  });
});
