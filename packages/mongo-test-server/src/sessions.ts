import type { Document } from "bson";
import type { ChangeInput } from "./changes.js";
import { fail } from "./errors.js";
import { TransactionStore, type Storage } from "./storage.js";

/**
 * Logical sessions (lsid) and multi-document transactions (txnNumber, startTransaction,
 * autocommit: false). A transaction reads and writes copies of the collections it touches and
 * writes them back at commitTransaction, or fails there with WriteConflict when another write
 * changed one of them meanwhile.
 * https://github.com/mongodb/specifications/blob/master/source/transactions/transactions.md
 */
export interface Transaction {
  readonly txnNumber: number;
  state: "in_progress" | "committed" | "aborted";
  readonly store: TransactionStore;
  /** Change events, logged when the transaction commits. */
  readonly changes: ChangeInput[];
}

/** A logical session: the highest txnNumber it used and its transaction. */
export interface SessionState {
  readonly id: string;
  /** Highest txnNumber seen. */
  txnNumber: number;
  transaction: Transaction | undefined;
}

const transient = { errorLabels: ["TransientTransactionError"] };

/** Sessions by their lsid. */
export class Sessions {
  readonly #sessions = new Map<string, SessionState>();

  get size(): number {
    return this.#sessions.size;
  }

  get(id: string): SessionState {
    let session = this.#sessions.get(id);
    if (session === undefined) {
      session = { id, txnNumber: -1, transaction: undefined };
      this.#sessions.set(id, session);
    }
    return session;
  }

  /** Ends a session, aborting its transaction. */
  end(id: string): void {
    const session = this.#sessions.get(id);
    if (session?.transaction?.state === "in_progress") session.transaction.state = "aborted";
    this.#sessions.delete(id);
  }

  clear(): void {
    this.#sessions.clear();
  }

  /**
   * The transaction a command with `autocommit: false` runs in: started by `startTransaction`, or
   * the session's current one. NoSuchTransaction (a transient error) when there is none.
   */
  transactionFor(id: string, command: Document, name: string, storage: Storage): Transaction {
    const txnNumber = Number(command.txnNumber);
    if (!Number.isSafeInteger(txnNumber) || txnNumber < 0) fail("BadValue", "txnNumber must be a non-negative integer");
    const session = this.get(id);
    if (command.startTransaction === true) {
      if (txnNumber < session.txnNumber) {
        fail("TransactionTooOld", `Cannot start transaction ${txnNumber} on session because a newer transaction ${session.txnNumber} has already started.`);
      }
      if (txnNumber === session.txnNumber) fail("BadValue", `Cannot start a transaction with txnNumber ${txnNumber}: it has already been used on this session`);
      if (session.transaction?.state === "in_progress") session.transaction.state = "aborted";
      session.txnNumber = txnNumber;
      session.transaction = { txnNumber, state: "in_progress", store: new TransactionStore(storage), changes: [] };
      return session.transaction;
    }
    const transaction = session.transaction;
    if (transaction === undefined || transaction.txnNumber !== txnNumber) {
      fail("NoSuchTransaction", `Transaction with { txnNumber: ${txnNumber} } has been aborted.`, transient);
    }
    if (transaction.state === "committed") {
      // A retried commitTransaction succeeds again; anything else is too late.
      if (name === "commitTransaction") return transaction;
      fail("TransactionCommitted", `Transaction with { txnNumber: ${txnNumber} } has been committed.`);
    }
    if (transaction.state === "aborted") fail("NoSuchTransaction", `Transaction with { txnNumber: ${txnNumber} } has been aborted.`, transient);
    return transaction;
  }
}

/** A session id as a map key: the hex of lsid.id. */
export function sessionKey(lsid: unknown): string | undefined {
  const id = (lsid as Document | undefined)?.id as { buffer?: Uint8Array; position?: number } | undefined;
  if (id?.buffer === undefined) return undefined;
  return Buffer.from(id.buffer.subarray(0, id.position ?? id.buffer.length)).toString("hex");
}

/** Commands that may run inside a multi-document transaction. */
export const transactionCommands: ReadonlySet<string> = new Set([
  "find",
  "getMore",
  "killCursors",
  "insert",
  "update",
  "delete",
  "findAndModify",
  "aggregate",
  "distinct",
  "create",
  "createIndexes",
  "commitTransaction",
  "abortTransaction",
]);
