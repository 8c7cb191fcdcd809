import type { BsonDocument } from "../../inspect/mongo/documents.js";
import { isDocument } from "../../inspect/mongo/documents.js";
import type { Detectors } from "../detectors.js";
import type { MongoMaskCatalog } from "./catalog.js";
import { cursorKey, planCommand, type MongoMaskPlan } from "./plan.js";
import { maskReplyDocument } from "./reply.js";
import { uncertainTaint, whole, type TaintNode } from "./taint.js";
import type { MongoMaskEvents, ValueContext } from "./values.js";

/** Options of {@link createMongoMasker}. */
export interface MongoMaskerOptions {
  readonly catalog: MongoMaskCatalog;
  /** The content detectors run over every string the masks leave. */
  readonly detectors?: Detectors;
  /** The pseudonym key (at least 16 bytes); without it, `pseudonym` fields are redacted. */
  readonly key?: Uint8Array;
  readonly events?: MongoMaskEvents;
  /** Open cursors remembered at once; the oldest is forgotten first (its later batches are masked whole). Default 4096. */
  readonly maxCursors?: number;
}

/**
 * One session's MongoDB masker: plans each command the client sends, then masks the server's
 * reply to it. It remembers the lineage of open cursors, so getMore batches are masked as the
 * first batch was; a getMore on a cursor it does not know is masked whole (fail closed).
 */
export interface MongoMasker {
  /**
   * Plans the masking of a command (after the policy allowed it, before it is sent): its
   * inferences and copies are for the session to decide on (`masking.inference`, deny on copies).
   */
  plan(command: BsonDocument): MongoMaskPlan;
  /** Masks the reply to a planned command. Returns a new document; the input is not changed. */
  maskReply(plan: MongoMaskPlan, reply: BsonDocument): BsonDocument;
  /** Uses a fresher catalog from the next command on (after views changed). */
  setCatalog(catalog: MongoMaskCatalog): void;
}

/** What a getMore needs of the command that opened its cursor. */
interface CursorState {
  readonly node: TaintNode | undefined;
  readonly withholdErrors: boolean;
  readonly knownValues: readonly string[];
  readonly sensitiveNamespace: boolean;
}

const noEvents: MongoMaskEvents = { masked: () => undefined, detected: () => undefined, uncertain: () => undefined };

/**
 * Creates a session's masker.
 *
 * @throws TypeError when the pseudonym key is shorter than 16 bytes
 */
export function createMongoMasker(options: MongoMaskerOptions): MongoMasker {
  if (options.key !== undefined && options.key.length < 16) throw new TypeError("options.key: expected at least 16 bytes");
  let catalog = options.catalog;
  const ctx: ValueContext = { key: options.key, detectors: options.detectors, events: options.events ?? noEvents };
  const maxCursors = options.maxCursors ?? 4096;
  const cursors = new Map<string, CursorState>();

  function remember(id: string, state: CursorState): void {
    cursors.delete(id);
    cursors.set(id, state);
    if (cursors.size > maxCursors) {
      const oldest = cursors.keys().next().value;
      if (oldest !== undefined) cursors.delete(oldest);
    }
  }

  return {
    plan(command) {
      if (!isDocument(command)) throw new TypeError("command: expected a document");
      const plan = planCommand(command, catalog);
      if (plan.uncertain) ctx.events.uncertain();
      for (const id of plan.closes) cursors.delete(id);
      return plan;
    },
    maskReply(plan, reply) {
      if (!isDocument(reply)) throw new TypeError("reply: expected a document");
      let state: CursorState = { node: undefined, withholdErrors: plan.withholdErrors, knownValues: plan.knownValues, sensitiveNamespace: plan.sensitiveNamespace };
      if (plan.reply.kind === "getMore") {
        const known = cursors.get(plan.reply.cursor);
        if (known !== undefined) state = known;
        else if (catalog.anySensitive) {
          // A cursor this masker did not open (or forgot): its batches and errors are masked whole.
          ctx.events.uncertain();
          state = { node: whole(uncertainTaint(false)), withholdErrors: true, knownValues: [], sensitiveNamespace: true };
        }
      } else if (plan.reply.kind === "cursor") state = { ...state, node: plan.reply.node };
      const cursor = reply.cursor;
      if (isDocument(cursor)) {
        const id = cursorKey(cursor.id);
        if (id !== undefined && id !== "0") remember(id, state);
        else if (plan.reply.kind === "getMore") cursors.delete(plan.reply.cursor);
      }
      // A getMore's errors may echo what the cursor's command reads, as the first batch's could.
      const effective: MongoMaskPlan = { ...plan, withholdErrors: state.withholdErrors, knownValues: state.knownValues, sensitiveNamespace: state.sensitiveNamespace };
      return maskReplyDocument(effective, reply, state.node, ctx);
    },
    setCatalog(next) {
      catalog = next;
    },
  };
}
