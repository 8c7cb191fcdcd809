/** Why a codec refused its input. */
export type WireErrorCode =
  | "message_too_large"
  | "malformed_message"
  | "unexpected_message"
  | "unsupported_protocol";

/** The one error type of @airlock/wire: a peer sent bytes that do not form a valid message. */
export class WireError extends Error {
  readonly code: WireErrorCode;

  constructor(code: WireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WireError";
    this.code = code;
  }
}
