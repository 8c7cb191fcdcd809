import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { saslprep } from "@mongodb-js/saslprep";
import { fail } from "./errors.js";

/**
 * SCRAM server side, as MongoDB runs it (RFC 5802, RFC 7677), over saslStart and saslContinue.
 * https://github.com/mongodb/specifications/blob/master/source/auth/auth.md#scram-sha-1
 */
export type ScramMechanism = "SCRAM-SHA-1" | "SCRAM-SHA-256";

/** The mechanisms the stand-in implements. */
export const scramMechanisms: readonly ScramMechanism[] = ["SCRAM-SHA-1", "SCRAM-SHA-256"];

/** What the server stores for one user and mechanism: never the password. */
export interface ScramCredential {
  readonly mechanism: ScramMechanism;
  readonly salt: Buffer;
  readonly iterations: number;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

const digest = (mechanism: ScramMechanism): "sha1" | "sha256" => (mechanism === "SCRAM-SHA-1" ? "sha1" : "sha256");

/**
 * Derives a credential. SCRAM-SHA-1 in MongoDB hashes the password first (hex MD5 of
 * `user:mongo:password`) and skips SASLprep; SCRAM-SHA-256 applies SASLprep to the password.
 */
export function deriveCredential(mechanism: ScramMechanism, username: string, password: string, iterations: number): ScramCredential {
  const hash = digest(mechanism);
  const secret = mechanism === "SCRAM-SHA-1" ? createHash("md5").update(`${username}:mongo:${password}`, "utf8").digest("hex") : saslprep(password);
  const salt = randomBytes(mechanism === "SCRAM-SHA-1" ? 16 : 28);
  const salted = pbkdf2Sync(secret, salt, iterations, hash === "sha1" ? 20 : 32, hash);
  const clientKey = hmac(hash, salted, "Client Key");
  return {
    mechanism,
    salt,
    iterations,
    storedKey: createHash(hash).update(clientKey).digest(),
    serverKey: hmac(hash, salted, "Server Key"),
  };
}

/** One authentication exchange on one connection. */
export class ScramConversation {
  readonly mechanism: ScramMechanism;
  readonly #lookup: (username: string) => ScramCredential | undefined;
  #state:
    | { readonly step: "start" }
    | { readonly step: "proof"; readonly username: string; readonly credential: ScramCredential; readonly nonce: string; readonly firstBare: string; readonly serverFirst: string }
    | { readonly step: "done"; readonly username: string } = { step: "start" };

  constructor(mechanism: ScramMechanism, lookup: (username: string) => ScramCredential | undefined) {
    this.mechanism = mechanism;
    this.#lookup = lookup;
  }

  /** The authenticated user once the proof checked out. */
  get username(): string | undefined {
    return this.#state.step === "done" ? this.#state.username : undefined;
  }

  /** Takes client-first-message, returns server-first-message. */
  start(payload: Buffer): Buffer {
    if (this.#state.step !== "start") fail("AuthenticationFailed", "Authentication failed.");
    const message = payload.toString("utf8");
    // gs2-header: "n,," (no channel binding, no authzid) is all MongoDB drivers send.
    const match = /^([nyp][^,]*),([^,]*),(.*)$/s.exec(message);
    if (match === null || match[1] !== "n") fail("BadValue", "Invalid SCRAM client first message");
    const firstBare = match[3] ?? "";
    const attributes = parseAttributes(firstBare);
    const username = attributes.get("n");
    const clientNonce = attributes.get("r");
    if (username === undefined || clientNonce === undefined || clientNonce === "") fail("BadValue", "Invalid SCRAM client first message");
    const name = username.replaceAll("=2C", ",").replaceAll("=3D", "=");
    const credential = this.#lookup(name);
    if (credential === undefined) fail("AuthenticationFailed", "Authentication failed.");
    const nonce = clientNonce + randomBytes(24).toString("base64");
    const serverFirst = `r=${nonce},s=${credential.salt.toString("base64")},i=${credential.iterations}`;
    this.#state = { step: "proof", username: name, credential, nonce, firstBare, serverFirst };
    return Buffer.from(serverFirst, "utf8");
  }

  /** Takes client-final-message, returns server-final-message (`v=` signature); AuthenticationFailed on a wrong proof. */
  finish(payload: Buffer): Buffer {
    const state = this.#state;
    if (state.step !== "proof") fail("AuthenticationFailed", "Authentication failed.");
    const message = payload.toString("utf8");
    const proofAt = message.lastIndexOf(",p=");
    if (proofAt === -1) fail("AuthenticationFailed", "Authentication failed.");
    const withoutProof = message.slice(0, proofAt);
    const attributes = parseAttributes(withoutProof);
    // c= is base64 of the gs2 header "n,,".
    if (attributes.get("c") !== "biws" || attributes.get("r") !== state.nonce) fail("AuthenticationFailed", "Authentication failed.");
    const proof = Buffer.from(message.slice(proofAt + 3), "base64");
    const hash = digest(state.credential.mechanism);
    const authMessage = `${state.firstBare},${state.serverFirst},${withoutProof}`;
    const signature = hmac(hash, state.credential.storedKey, authMessage);
    if (proof.length !== signature.length) fail("AuthenticationFailed", "Authentication failed.");
    const clientKey = Buffer.alloc(proof.length);
    for (let index = 0; index < proof.length; index++) clientKey[index] = (proof[index] ?? 0) ^ (signature[index] ?? 0);
    const storedKey = createHash(hash).update(clientKey).digest();
    if (!timingSafeEqual(storedKey, state.credential.storedKey)) {
      this.#state = { step: "start" };
      fail("AuthenticationFailed", "Authentication failed.");
    }
    this.#state = { step: "done", username: state.username };
    return Buffer.from(`v=${hmac(hash, state.credential.serverKey, authMessage).toString("base64")}`, "utf8");
  }
}

function hmac(hash: "sha1" | "sha256", key: Buffer, text: string): Buffer {
  return createHmac(hash, key).update(text, "utf8").digest();
}

function parseAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at === 1) out.set(part.slice(0, 1), part.slice(2));
  }
  return out;
}
