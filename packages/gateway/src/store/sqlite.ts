import Database from "better-sqlite3";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import {
  applyReviewAction,
  checkDate,
  checkDecision,
  checkGrant,
  checkId,
  checkOneOf,
  checkRecordingSeal,
  checkReview,
  checkReviewAction,
  checkReviewStatus,
  checkSessionFilter,
  checkSessionStart,
  checkString,
  copyAction,
  createSubscribers,
  listLimit,
  type Subscribers,
} from "./common.js";
import { latestVersion, sqliteMigrations, type Migration } from "./migrations.js";
import {
  ABANDONED_OUTCOME,
  StoreError,
  type DecisionRow,
  type GrantRow,
  type RecordingSeal,
  type ReviewAction,
  type ReviewRow,
  type ReviewStatus,
  type SessionFilter,
  type SessionRow,
  type SessionStartRow,
  type Store,
  type StoreEvent,
  type StoreOptions,
} from "./types.js";

/** How long a statement waits for another process's write lock before failing `unavailable`. */
const BUSY_TIMEOUT_MS = 5_000;

interface SessionRecord {
  id: string;
  subject: string;
  issuer: string;
  subject_groups: string;
  connection: string;
  transport: "native" | "tunnel";
  client_address: string;
  gateway_id: string;
  started_at: string;
  ended_at: string | null;
  outcome: string | null;
  statements: number;
  denied: number;
  reviewed: number;
  recording_path: string | null;
  record_count: number | null;
  record_hash: string | null;
}

interface DecisionRecord {
  id: string;
  session_id: string;
  at: string;
  sql: string;
  classes: string;
  effect: "allow" | "deny" | "review";
  rule: string | null;
  reasons: string;
  review_id: string | null;
}

interface ReviewRecord {
  id: string;
  kind: "statement" | "access";
  session_id: string;
  subject: string;
  connection: string;
  sql: string;
  classes: string;
  rule: string;
  reasons: string;
  reviewer_groups: string;
  approvals_required: number;
  status: ReviewStatus;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  gateway_id: string;
  duration_ms: number | null;
  reason: string | null;
}

interface ActionRecord {
  review_id: string;
  reviewer: string;
  action: "approve" | "reject";
  reason: string;
  at: string;
}

interface GrantRecord {
  id: string;
  subject: string;
  connection: string;
  review_id: string;
  granted_at: string;
  expires_at: string;
  revoked_at: string | null;
}

/**
 * Opens (creating the file and its folder if needed) the embedded store at `path`, or an in-memory
 * one for `:memory:`, and brings its schema up to date. A new file and folder are private to the
 * gateway's user: the store holds statement text.
 */
export async function openSqliteStore(path: string, options: StoreOptions = {}): Promise<Store> {
  let db: Database.Database;
  try {
    if (path !== ":memory:") {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, "a", 0o600));
    }
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw new StoreError("unavailable", `cannot open sqlite store \`${path}\`: ${messageOf(error)}`, { cause: error });
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    migrate(db, sqliteMigrations);
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw new StoreError("unavailable", `cannot open sqlite store \`${path}\`: ${messageOf(error)}`, { cause: error });
  }
  return new SqliteStore(db, createSubscribers(options.logger));
}

/** Applies the migrations the file lacks, each in an immediate transaction, so two processes agree. */
function migrate(db: Database.Database, migrations: readonly Migration[]): void {
  db.exec("create table if not exists schema_migrations (version integer primary key, name text not null, applied_at text not null) strict");
  const latest = latestVersion(migrations);
  const newest = db.prepare<[], number>("select coalesce(max(version), 0) from schema_migrations").pluck().get() ?? 0;
  if (newest > latest) {
    throw new StoreError("migration_failed", `sqlite store schema version ${newest} is newer than this gateway supports (${latest})`);
  }
  const isApplied = db.prepare<[number], number>("select 1 from schema_migrations where version = ?").pluck();
  const record = db.prepare<[number, string, string]>("insert into schema_migrations (version, name, applied_at) values (?, ?, ?)");
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    const apply = db.transaction(() => {
      if (isApplied.get(migration.version) !== undefined) return;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, new Date().toISOString());
    });
    try {
      apply.immediate();
    } catch (error) {
      throw new StoreError("migration_failed", `sqlite store migration ${migration.version} (\`${migration.name}\`) failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
}

class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly #db: Database.Database;
  /** Prepared statements by SQL text: preparing is most of the cost of a small statement. */
  readonly #statements = new Map<string, Database.Statement<unknown[], unknown>>();

  #prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql) as Database.Statement<unknown[], unknown>;
      this.#statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }
  readonly #subscribers: Subscribers;
  #closed = false;

  constructor(db: Database.Database, subscribers: Subscribers) {
    this.#db = db;
    this.#subscribers = subscribers;
  }

  async startSession(row: SessionStartRow): Promise<void> {
    checkSessionStart(row);
    this.#run("startSession", { conflict: `session \`${row.id}\` already exists` }, () => {
      this.#db
        .prepare(
          `insert into sessions (id, subject, issuer, subject_groups, connection, transport, client_address, gateway_id, started_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(row.id, row.subject, row.issuer, JSON.stringify(row.groups), row.connection, row.transport, row.clientAddress, row.gatewayId, iso(row.startedAt));
    });
  }

  async setSessionRecording(id: string, path: string): Promise<void> {
    checkId(id, "id");
    checkId(path, "path");
    this.#run("setSessionRecording", {}, () => {
      const { changes } = this.#prepare("update sessions set recording_path = ? where id = ?").run(path, id);
      if (changes === 0) throw new StoreError("not_found", `session \`${id}\` not found`);
    });
  }

  async endSession(id: string, endedAt: Date, outcome: string, recording?: RecordingSeal): Promise<void> {
    checkId(id, "id");
    checkDate(endedAt, "endedAt");
    checkString(outcome, "outcome");
    checkRecordingSeal(recording);
    this.#run("endSession", {}, () => {
      const { changes } = this.#db
        .prepare(
          `update sessions set ended_at = ?, outcome = ?, record_count = coalesce(?, record_count), record_hash = coalesce(?, record_hash)
           where id = ? and ended_at is null`,
        )
        .run(iso(endedAt), outcome, recording?.records ?? null, recording?.lastHash ?? null, id);
      if (changes === 0 && this.#prepare("select 1 from sessions where id = ?").get(id) === undefined) {
        throw new StoreError("not_found", `session \`${id}\` not found`);
      }
    });
  }

  async endAbandonedSessions(gatewayId: string, at: Date): Promise<number> {
    checkString(gatewayId, "gatewayId");
    checkDate(at, "at");
    return this.#run("endAbandonedSessions", {}, () => {
      const statement = this.#prepare("update sessions set ended_at = ?, outcome = ? where gateway_id = ? and ended_at is null");
      return statement.run(iso(at), ABANDONED_OUTCOME, gatewayId).changes;
    });
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    checkString(id, "id");
    return this.#run("getSession", {}, () => {
      const record = this.#prepare<[string], SessionRecord>("select * from sessions where id = ?").get(id);
      return record === undefined ? undefined : toSession(record);
    });
  }

  async listSessions(filter: SessionFilter = {}): Promise<SessionRow[]> {
    const limit = checkSessionFilter(filter);
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.subject !== undefined) {
      where.push("s.subject = ?");
      params.push(filter.subject);
    }
    if (filter.connection !== undefined) {
      where.push("s.connection = ?");
      params.push(filter.connection);
    }
    if (filter.from !== undefined) {
      where.push("s.started_at >= ?");
      params.push(iso(filter.from));
    }
    if (filter.to !== undefined) {
      where.push("s.started_at < ?");
      params.push(iso(filter.to));
    }
    if (filter.decision !== undefined) {
      where.push("exists (select 1 from decisions d where d.session_id = s.id and d.effect = ?)");
      params.push(filter.decision);
    }
    params.push(limit);
    const sql = `select s.* from sessions s ${where.length === 0 ? "" : `where ${where.join(" and ")}`} order by s.started_at desc, s.id desc limit ?`;
    return this.#run("listSessions", {}, () => this.#prepare<unknown[], SessionRecord>(sql).all(...params).map(toSession));
  }

  async recordDecision(row: DecisionRow): Promise<void> {
    await this.recordDecisions([row]);
  }

  async recordDecisions(rows: readonly DecisionRow[]): Promise<void> {
    for (const row of rows) checkDecision(row);
    const first = rows[0];
    if (first === undefined) return;
    const messages = rows.length === 1 ? { conflict: `decision \`${first.id}\` already exists`, notFound: `session \`${first.sessionId}\` not found` } : { conflict: "a decision of the batch already exists", notFound: "a session of the batch was not found" };
    this.#run("recordDecisions", messages, () => {
      const insert = this.#prepare("insert into decisions (id, session_id, at, sql, classes, effect, rule, reasons, review_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?)");
      const count = this.#prepare("update sessions set statements = statements + 1, denied = denied + ?, reviewed = reviewed + ? where id = ?");
      this.#db.transaction(() => {
        for (const row of rows) {
          insert.run(row.id, row.sessionId, iso(row.at), row.sql, JSON.stringify(row.classes), row.effect, row.rule ?? null, JSON.stringify(row.reasons), row.reviewId ?? null);
          count.run(row.effect === "deny" ? 1 : 0, row.effect === "review" ? 1 : 0, row.sessionId);
        }
      })();
    });
  }

  async listDecisions(sessionId: string): Promise<DecisionRow[]> {
    checkString(sessionId, "sessionId");
    return this.#run("listDecisions", {}, () =>
      this.#prepare<[string], DecisionRecord>("select * from decisions where session_id = ? order by at, rowid").all(sessionId).map(toDecision),
    );
  }

  async createReview(row: Omit<ReviewRow, "status" | "actions" | "decidedAt">): Promise<ReviewRow> {
    checkReview(row);
    const review = this.#run("createReview", { conflict: `review \`${row.id}\` already exists` }, () => {
      this.#db
        .prepare(
          `insert into reviews (id, kind, session_id, subject, connection, sql, classes, rule, reasons, reviewer_groups,
             approvals_required, created_at, expires_at, gateway_id, duration_ms, reason)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          row.id,
          row.kind,
          row.sessionId,
          row.subject,
          row.connection,
          row.sql,
          JSON.stringify(row.classes),
          row.rule,
          JSON.stringify(row.reasons),
          JSON.stringify(row.reviewerGroups),
          row.approvalsRequired,
          iso(row.createdAt),
          iso(row.expiresAt),
          row.gatewayId,
          row.durationMs ?? null,
          row.reason ?? null,
        );
      return this.#readReview(row.id);
    });
    if (review === undefined) throw new StoreError("unavailable", `sqlite store lost review \`${row.id}\``);
    this.#emit({ type: "review", id: row.id });
    return review;
  }

  async getReview(id: string): Promise<ReviewRow | undefined> {
    checkString(id, "id");
    // A read transaction: the review and its actions come from one snapshot even if another process writes between.
    return this.#run("getReview", {}, () => this.#db.transaction(() => this.#readReview(id))());
  }

  async listReviews(filter: { status?: ReviewStatus; limit?: number } = {}): Promise<ReviewRow[]> {
    if (filter.status !== undefined) checkReviewStatus(filter.status, "filter.status");
    const limit = listLimit(filter.limit, "filter.limit");
    const status = filter.status;
    return this.#run("listReviews", {}, () => {
      // One read transaction, so the reviews and their actions come from one snapshot.
      const read = this.#db.transaction((): ReviewRow[] => {
        const records =
          status === undefined
            ? this.#prepare<[number], ReviewRecord>("select * from reviews order by created_at desc, id desc limit ?").all(limit)
            : this.#db
                .prepare<[string, number], ReviewRecord>("select * from reviews where status = ? order by created_at desc, id desc limit ?")
                .all(status, limit);
        return this.#withActions(records);
      });
      return read();
    });
  }

  async addReviewAction(id: string, action: ReviewAction): Promise<ReviewRow> {
    checkReviewAction(id, action);
    const messages = { conflict: `reviewer \`${action.reviewer}\` already acted on review \`${id}\`` };
    const review = this.#run("addReviewAction", messages, () =>
      this.#db
        .transaction((): ReviewRow => {
          const current = this.#readReview(id);
          if (current === undefined) throw new StoreError("not_found", `review \`${id}\` not found`);
          const next = applyReviewAction(current, action);
          this.#db
            .prepare("insert into review_actions (review_id, reviewer, action, reason, at) values (?, ?, ?, ?, ?)")
            .run(id, action.reviewer, action.action, action.reason, iso(action.at));
          this.#db
            .prepare("update reviews set status = ?, decided_at = ? where id = ?")
            .run(next.status, next.decidedAt === undefined ? null : iso(next.decidedAt), id);
          const updated: ReviewRow = { ...current, status: next.status, actions: [...current.actions, copyAction(action)] };
          if (next.decidedAt !== undefined) updated.decidedAt = new Date(next.decidedAt.getTime());
          return updated;
        })
        .immediate(),
    );
    this.#emit({ type: "review", id });
    return review;
  }

  async closeReview(id: string, status: "expired" | "cancelled", at: Date): Promise<ReviewRow | undefined> {
    checkString(id, "id");
    checkOneOf(status, ["expired", "cancelled"], "status");
    checkDate(at, "at");
    const { review, changed } = this.#run("closeReview", {}, () =>
      this.#db
        .transaction(() => {
          const { changes } = this.#db
            .prepare("update reviews set status = ?, decided_at = ? where id = ? and status = 'pending'")
            .run(status, iso(at), id);
          return { review: this.#readReview(id), changed: changes > 0 };
        })
        .immediate(),
    );
    if (changed) this.#emit({ type: "review", id });
    return review;
  }

  async createGrant(row: Omit<GrantRow, "revokedAt">): Promise<GrantRow> {
    checkGrant(row);
    const grant = this.#run("createGrant", { notFound: `review \`${row.reviewId}\` not found` }, () => {
      try {
        this.#db
          .prepare("insert into grants (id, subject, connection, review_id, granted_at, expires_at) values (?, ?, ?, ?, ?, ?)")
          .run(row.id, row.subject, row.connection, row.reviewId, iso(row.grantedAt), iso(row.expiresAt));
      } catch (error) {
        if (constraintOf(error) === "unique") {
          const message = messageOf(error).includes("review_id") ? `review \`${row.reviewId}\` already has a grant` : `grant \`${row.id}\` already exists`;
          throw new StoreError("conflict", message, { cause: error });
        }
        throw error;
      }
      return this.#readGrant(row.id);
    });
    if (grant === undefined) throw new StoreError("unavailable", `sqlite store lost grant \`${row.id}\``);
    this.#emit({ type: "grant", id: row.id });
    return grant;
  }

  async activeGrants(subject: string, connection: string, now: Date): Promise<GrantRow[]> {
    checkString(subject, "subject");
    checkString(connection, "connection");
    checkDate(now, "now");
    const instant = iso(now);
    return this.#run("activeGrants", {}, () =>
      this.#db
        .prepare<[string, string, string, string], GrantRecord>(
          `select * from grants where subject = ? and connection = ? and revoked_at is null and granted_at <= ? and expires_at > ?
           order by expires_at desc, id`,
        )
        .all(subject, connection, instant, instant)
        .map(toGrant),
    );
  }

  async getGrant(id: string): Promise<GrantRow | undefined> {
    checkString(id, "id");
    return this.#run("getGrant", {}, () => this.#readGrant(id));
  }

  async revokeGrant(id: string, at: Date): Promise<void> {
    checkId(id, "id");
    checkDate(at, "at");
    const changed = this.#run("revokeGrant", {}, () => {
      const { changes } = this.#prepare("update grants set revoked_at = ? where id = ? and revoked_at is null").run(iso(at), id);
      if (changes === 0 && this.#readGrant(id) === undefined) throw new StoreError("not_found", `grant \`${id}\` not found`);
      return changes > 0;
    });
    if (changed) this.#emit({ type: "grant", id });
  }

  async pruneSessions(before: Date): Promise<number> {
    checkDate(before, "before");
    return this.#run("pruneSessions", {}, () => this.#prepare("delete from sessions where ended_at is not null and ended_at < ?").run(iso(before)).changes);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.#subscribers.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscribers.clear();
    this.#db.close();
  }

  #emit(event: StoreEvent): void {
    this.#subscribers.emit(event);
  }

  #readReview(id: string): ReviewRow | undefined {
    const record = this.#prepare<[string], ReviewRecord>("select * from reviews where id = ?").get(id);
    return record === undefined ? undefined : this.#withActions([record])[0];
  }

  #withActions(records: ReviewRecord[]): ReviewRow[] {
    if (records.length === 0) return [];
    const actions = this.#db
      .prepare<[string], ActionRecord>("select * from review_actions where review_id in (select value from json_each(?)) order by rowid")
      .all(JSON.stringify(records.map((record) => record.id)));
    const byReview = new Map<string, ReviewAction[]>();
    for (const action of actions) {
      const list = byReview.get(action.review_id) ?? [];
      list.push({ reviewer: action.reviewer, action: action.action, reason: action.reason, at: new Date(action.at) });
      byReview.set(action.review_id, list);
    }
    return records.map((record) => toReview(record, byReview.get(record.id) ?? []));
  }

  #readGrant(id: string): GrantRow | undefined {
    const record = this.#prepare<[string], GrantRecord>("select * from grants where id = ?").get(id);
    return record === undefined ? undefined : toGrant(record);
  }

  /** Runs `work` on the open database, turning driver failures into StoreErrors. */
  #run<T>(operation: string, messages: { conflict?: string; notFound?: string }, work: () => T): T {
    if (this.#closed) throw new StoreError("unavailable", "sqlite store is closed");
    try {
      return work();
    } catch (error) {
      if (error instanceof StoreError || error instanceof TypeError) throw error;
      const constraint = constraintOf(error);
      if (constraint === "unique" && messages.conflict !== undefined) throw new StoreError("conflict", messages.conflict, { cause: error });
      if (constraint === "foreign_key" && messages.notFound !== undefined) throw new StoreError("not_found", messages.notFound, { cause: error });
      throw new StoreError("unavailable", `sqlite store failed: \`${operation}\`: ${messageOf(error)}`, { cause: error });
    }
  }
}

function iso(date: Date): string {
  return date.toISOString();
}

function strings(text: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value)) throw new StoreError("unavailable", "sqlite store holds a malformed array");
  return value.map(String);
}

function constraintOf(error: unknown): "unique" | "foreign_key" | undefined {
  if (!(error instanceof Database.SqliteError)) return undefined;
  if (error.code === "SQLITE_CONSTRAINT_PRIMARYKEY" || error.code === "SQLITE_CONSTRAINT_UNIQUE") return "unique";
  if (error.code === "SQLITE_CONSTRAINT_FOREIGNKEY") return "foreign_key";
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function toSession(record: SessionRecord): SessionRow {
  const row: SessionRow = {
    id: record.id,
    subject: record.subject,
    issuer: record.issuer,
    groups: strings(record.subject_groups),
    connection: record.connection,
    transport: record.transport,
    clientAddress: record.client_address,
    gatewayId: record.gateway_id,
    startedAt: new Date(record.started_at),
    statements: record.statements,
    denied: record.denied,
    reviewed: record.reviewed,
  };
  if (record.ended_at !== null) row.endedAt = new Date(record.ended_at);
  if (record.outcome !== null) row.outcome = record.outcome;
  if (record.recording_path !== null) {
    row.recording = { path: record.recording_path };
    if (record.record_count !== null) row.recording.records = record.record_count;
    if (record.record_hash !== null) row.recording.lastHash = record.record_hash;
  }
  return row;
}

function toDecision(record: DecisionRecord): DecisionRow {
  const row: DecisionRow = {
    id: record.id,
    sessionId: record.session_id,
    at: new Date(record.at),
    sql: record.sql,
    classes: strings(record.classes),
    effect: record.effect,
    reasons: strings(record.reasons),
  };
  if (record.rule !== null) row.rule = record.rule;
  if (record.review_id !== null) row.reviewId = record.review_id;
  return row;
}

function toReview(record: ReviewRecord, actions: ReviewAction[]): ReviewRow {
  const row: ReviewRow = {
    id: record.id,
    sessionId: record.session_id,
    subject: record.subject,
    connection: record.connection,
    sql: record.sql,
    classes: strings(record.classes),
    rule: record.rule,
    reasons: strings(record.reasons),
    reviewerGroups: strings(record.reviewer_groups),
    approvalsRequired: record.approvals_required,
    status: record.status,
    createdAt: new Date(record.created_at),
    expiresAt: new Date(record.expires_at),
    actions,
    gatewayId: record.gateway_id,
    kind: record.kind,
  };
  if (record.decided_at !== null) row.decidedAt = new Date(record.decided_at);
  if (record.duration_ms !== null) row.durationMs = record.duration_ms;
  if (record.reason !== null) row.reason = record.reason;
  return row;
}

function toGrant(record: GrantRecord): GrantRow {
  const row: GrantRow = {
    id: record.id,
    subject: record.subject,
    connection: record.connection,
    reviewId: record.review_id,
    grantedAt: new Date(record.granted_at),
    expiresAt: new Date(record.expires_at),
  };
  if (record.revoked_at !== null) row.revokedAt = new Date(record.revoked_at);
  return row;
}
