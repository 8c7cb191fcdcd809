/** Why the agent could not open or keep a database session. */
export type UpstreamErrorCode = "connect_failed" | "tls_refused" | "auth_failed" | "auth_unsupported" | "server_error" | "protocol_error";

/** The agent's error for everything between it and the database. Messages never carry credentials. */
export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;
  /** The SQLSTATE (or protocol code) to show the client. */
  readonly sqlstate: string;

  constructor(code: UpstreamErrorCode, sqlstate: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UpstreamError";
    this.code = code;
    this.sqlstate = sqlstate;
  }
}
