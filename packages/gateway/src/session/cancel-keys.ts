import { randomBytes, randomInt } from "node:crypto";

/** The (process id, secret key) pair a client uses to cancel its running statement. */
export interface CancelKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

/**
 * The gateway's own cancel keys: clients never see the backend's, so a key is only good for the
 * session it was given to, and the agent (which knows the backend's key) does the real cancel.
 */
export interface CancelKeys {
  issue(target: () => void): { key: CancelKey; release(): void };
  /** Runs the session's cancel if the key matches one issued; false otherwise. */
  cancel(processId: number, secretKey: Buffer): boolean;
}

/** Creates the registry of cancel keys. */
export function createCancelKeys(): CancelKeys {
  const keys = new Map<string, () => void>();
  const id = (processId: number, secretKey: Buffer) => `${processId}:${secretKey.toString("hex")}`;
  return {
    issue(target) {
      let key: CancelKey;
      do key = { processId: randomInt(1, 0x7fffffff), secretKey: randomBytes(4) };
      while (keys.has(id(key.processId, key.secretKey)));
      const entry = id(key.processId, key.secretKey);
      keys.set(entry, target);
      return { key, release: () => keys.delete(entry) };
    },
    cancel(processId, secretKey) {
      const target = keys.get(id(processId, secretKey));
      if (target === undefined) return false;
      target();
      return true;
    },
  };
}
