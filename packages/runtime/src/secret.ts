import { inspect } from "node:util";

const REDACTED = "[redacted]";

/** A secret value that never prints itself: JSON, inspection and string conversion are redacted. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The value itself; call only where it is used (an authentication exchange), never to log it. */
  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
