import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: no channel binding
 * (gs2 header `n,,`), the user name `*` in the messages (PostgreSQL ignores it and takes the startup user).
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
export interface ScramClient {
  /** client-first-message, for SASLInitialResponse. */
  readonly clientFirst: string;
  /** Computes client-final-message from server-first-message, for SASLResponse. */
  final(serverFirst: string): string;
  /** Checks server-final-message: the server must prove it knows the password too. */
  verify(serverFinal: string): void;
}

/** Creates the client state of one SCRAM-SHA-256 exchange. `nonce` is injectable for test vectors. */
export function createScramClient(password: string, nonce: string = randomBytes(18).toString("base64")): ScramClient {
  const clientFirstBare = `n=*,r=${nonce}`;
  let serverSignature: Buffer | undefined;
  return {
    clientFirst: `n,,${clientFirstBare}`,
    final(serverFirst) {
      const attributes = parseAttributes(serverFirst);
      const serverNonce = attributes.get("r");
      const salt = attributes.get("s");
      const iterations = Number(attributes.get("i"));
      if (serverNonce === undefined || !serverNonce.startsWith(nonce) || serverNonce.length === nonce.length) {
        throw new Error("scram: the server nonce does not extend the client nonce");
      }
      if (salt === undefined || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) {
        throw new Error("scram: server-first-message lacks a valid salt or iteration count");
      }
      const withoutProof = `c=biws,r=${serverNonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const salted = pbkdf2Sync(password.normalize("NFKC"), Buffer.from(salt, "base64"), iterations, 32, "sha256");
      const clientKey = hmac(salted, "Client Key");
      const storedKey = createHash("sha256").update(clientKey).digest();
      const clientSignature = hmac(storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] ?? 0) ^ (clientSignature[i] ?? 0);
      serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
      return `${withoutProof},p=${proof.toString("base64")}`;
    },
    verify(serverFinal) {
      const attributes = parseAttributes(serverFinal);
      const error = attributes.get("e");
      if (error !== undefined) throw new Error(`scram: the server refused: ${error}`);
      const signature = Buffer.from(attributes.get("v") ?? "", "base64");
      if (serverSignature === undefined || signature.length !== serverSignature.length || !timingSafeEqual(signature, serverSignature)) {
        throw new Error("scram: the server's signature does not match");
      }
    },
  };
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text).digest();
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(",")) {
    const index = part.indexOf("=");
    if (index > 0) attributes.set(part.slice(0, index), part.slice(index + 1));
  }
  return attributes;
}

/** PostgreSQL's md5 password hash: "md5" + md5(md5(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash("md5").update(password + user).digest("hex");
  return `md5${createHash("md5").update(inner).update(salt).digest("hex")}`;
}
