import type { Document } from "bson";

/**
 * Server error codes the stand-in answers with, named as MongoDB names them (codeName).
 * https://www.mongodb.com/docs/manual/reference/error-codes/
 */
export const mongoErrorCodes = {
  InternalError: 1,
  BadValue: 2,
  NoSuchKey: 4,
  FailedToParse: 9,
  UserNotFound: 11,
  Unauthorized: 13,
  TypeMismatch: 14,
  AuthenticationFailed: 18,
  IllegalOperation: 20,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  CursorNotFound: 43,
  NamespaceExists: 48,
  NoReplicationEnabled: 76,
  CommandNotFound: 59,
  ImmutableField: 66,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  WriteConflict: 112,
  CommandNotSupported: 115,
  TransactionTooOld: 225,
  OperationNotSupportedInTransaction: 263,
  NoSuchTransaction: 251,
  TransactionCommitted: 256,
  UnsupportedOpQueryCommand: 352,
  /** A user that already exists, e.g. createUser. */
  Location51003: 51003,
  /** $changeStream on a server that is not a replica set member. */
  Location40573: 40573,
  DuplicateKey: 11000,
} as const;

/** A codeName of {@link mongoErrorCodes}. */
export type MongoErrorCodeName = keyof typeof mongoErrorCodes;

/** A command's failure as the server reports it: `{ ok: 0, errmsg, code, codeName }` plus extra fields. */
export class CommandError extends Error {
  readonly code: number;
  readonly codeName: MongoErrorCodeName;
  readonly extra: Document;

  constructor(codeName: MongoErrorCodeName, message: string, extra: Document = {}) {
    super(message);
    this.name = "CommandError";
    this.code = mongoErrorCodes[codeName];
    this.codeName = codeName;
    this.extra = extra;
  }

  /** The reply document. */
  toReply(): Document {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }
}

/** Shorthand for throwing a {@link CommandError}. */
export function fail(codeName: MongoErrorCodeName, message: string, extra?: Document): never {
  throw new CommandError(codeName, message, extra);
}
