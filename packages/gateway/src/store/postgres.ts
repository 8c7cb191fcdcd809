import { performance } from "node:perf_hooks";
import pg from "pg";
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
  parseEvent,
  type Subscribers,
} from "./common.js";
import { latestVersion, postgresMigrations, type Migration } from "./migrations.js";
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
  type StoreLogger,
  type StoreOptions,
} from "./types.js";
import { redactStoreUrl } from "./url.js";

/** The NOTIFY channel every gateway on the database listens to. */
export const EVENTS_CHANNEL = "airlock_events";
/** application_name of the LISTEN connection, so operators (and tests) can tell it apart. */
export const LISTENER_APPLICATION_NAME = "airlock-store-listener";
const POOL_APPLICATION_NAME = "airlock-store";
/** Key of the advisory lock that serializes migrations of gateways starting together ("airl"). */
const MIGRATION_LOCK_KEY = 0x6169726c;
const POOL_SIZE = 10;
const CONNECT_TIMEOUT_MS = 10_000;
const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 10_000;
/** The listener proves its connection alive this often; a silent network partition shows up as a failed query. */
const HEARTBEAT_MS = 15_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;
/** Extra time replayed after a reconnect, for changes committed just before the drop was noticed. */
const REPLAY_MARGIN_MS = 5_000;

type Queryable = Pick<pg.PoolClient, "query">;

interface SessionRecord {
  id: string;
  subject: string;
  issuer: string;
  subject_groups: string[];
  connection: string;
  transport: "native" | "tunnel";
  client_address: string;
  gateway_id: string;
  started_at: Date;
  ended_at: Date | null;
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
  at: Date;
  sql: string;
  classes: string[];
  effect: "allow" | "deny" | "review";
  rule: string | null;
  reasons: string[];
  review_id: string | null;
}

/** A review joined with one of its actions (all action columns null when it has none). */
interface ReviewActionRecord {
  id: string;
  kind: "statement" | "access";
  session_id: string;
  subject: string;
  connection: string;
  sql: string;
  classes: string[];
  rule: string;
  reasons: string[];
  reviewer_groups: string[];
  approvals_required: number;
  status: ReviewStatus;
  created_at: Date;
  expires_at: Date;
  decided_at: Date | null;
  gateway_id: string;
  /** bigint: node-postgres returns it as a string. */
  duration_ms: string | null;
  reason: string | null;
  action_reviewer: string | null;
  action_action: "approve" | "reject" | null;
  action_reason: string | null;
  action_at: Date | null;
}

interface GrantRecord {
  id: string;
  subject: string;
  connection: string;
  review_id: string;
  granted_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

/** Messages for the constraint violations an operation can meet. */
interface ConstraintMessages {
  /** unique_violation (23505), by constraint name, or `*` for any. */
  conflict?: Record<string, string>;
  /** foreign_key_violation (23503). */
  notFound?: string;
}

/**
 * Opens the PostgreSQL store at `url`: a pool for queries, one connection that LISTENs for other
 * gateways' changes, and the schema brought up to date under an advisory lock, so gateways starting
 * together migrate once.
 */
export async function openPostgresStore(url: string, options: StoreOptions = {}): Promise<Store> {
  const redacted = redactStoreUrl(url);
  const logger = options.logger;
  const ownBackends = new Set<number>();
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    application_name: POOL_APPLICATION_NAME,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // An idle client's connection dropping is reported here; without a listener it would crash the process.
  pool.on("error", (error) => logger?.warn({ store: redacted, error: scrub(messageOf(error), url, redacted) }, "store connection lost"));
  pool.on("connect", (client) => {
    const pid = backendPid(client);
    if (pid !== undefined) ownBackends.add(pid);
  });
  pool.on("remove", (client) => {
    const pid = backendPid(client);
    if (pid !== undefined) ownBackends.delete(pid);
  });
  const subscribers = createSubscribers(logger);
  let listener: EventListener | undefined;
  try {
    await migrate(pool, postgresMigrations, url, redacted);
    listener = new EventListener({
      url,
      redacted,
      logger,
      // The listener hears this store's own NOTIFYs too; they were delivered locally at commit already.
      onEvent: (event, pid) => {
        if (!ownBackends.has(pid)) subscribers.emit(event);
      },
      replay: async (windowMs) => {
        const { rows } = await pool.query<{ type: "review" | "grant"; id: string }>(
          `select 'review' as type, id from airlock_reviews where updated_at >= clock_timestamp() - $1 * interval '1 millisecond'
           union all
           select 'grant' as type, id from airlock_grants where updated_at >= clock_timestamp() - $1 * interval '1 millisecond'`,
          [Math.ceil(windowMs)],
        );
        for (const row of rows) subscribers.emit({ type: row.type, id: row.id });
      },
    });
    await listener.start();
  } catch (error) {
    await listener?.close();
    await pool.end().catch(() => undefined);
    if (error instanceof StoreError) throw error;
    throw new StoreError("unavailable", `cannot open postgres store \`${redacted}\`: ${scrub(messageOf(error), url, redacted)}`, { cause: error });
  }
  return new PostgresStore({ pool, listener, subscribers, url, redacted });
}

/** Applies the migrations the database lacks, each in its own transaction, holding an advisory lock. */
async function migrate(pool: pg.Pool, migrations: readonly Migration[], url: string, redacted: string): Promise<void> {
  const unavailable = (error: unknown): StoreError =>
    new StoreError("unavailable", `cannot connect to postgres store \`${redacted}\`: ${scrub(messageOf(error), url, redacted)}`, { cause: error });
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw unavailable(error);
  }
  try {
    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
  } catch (error) {
    client.release(error instanceof Error ? error : true);
    throw unavailable(error);
  }
  let broken: Error | undefined;
  try {
    await client.query(
      "create table if not exists airlock_schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())",
    );
    const latest = latestVersion(migrations);
    const { rows } = await client.query<{ version: number }>("select version from airlock_schema_migrations");
    const applied = new Set(rows.map((row) => row.version));
    const newest = Math.max(0, ...applied);
    if (newest > latest) {
      throw new StoreError("migration_failed", `postgres store schema version ${newest} is newer than this gateway supports (${latest})`);
    }
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      try {
        await client.query("begin");
        await client.query(migration.sql);
        await client.query("insert into airlock_schema_migrations (version, name) values ($1, $2)", [migration.version, migration.name]);
        await client.query("commit");
      } catch (error) {
        await client.query("rollback").catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw new StoreError(
          "migration_failed",
          `postgres store migration ${migration.version} (\`${migration.name}\`) failed: ${scrub(messageOf(error), url, redacted)}`,
          { cause: error },
        );
      }
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError("migration_failed", `postgres store migrations failed: ${scrub(messageOf(error), url, redacted)}`, { cause: error });
  } finally {
    if (broken === undefined) {
      await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch((error: unknown) => {
        broken = error instanceof Error ? error : new Error(String(error));
      });
    }
    // A broken connection is destroyed, which also releases the session's advisory lock.
    client.release(broken);
  }
}

/** Options of the LISTEN connection. */
interface EventListenerOptions {
  url: string;
  redacted: string;
  logger: StoreLogger | undefined;
  /** A well-formed event, with the process id of the backend that sent it. */
  onEvent(event: StoreEvent, pid: number): void;
  /** Re-announces the changes of the last `windowMs` milliseconds, after a reconnect. */
  replay(windowMs: number): Promise<void>;
}

/**
 * The one connection that LISTENs on {@link EVENTS_CHANNEL}. When it drops it reconnects with
 * exponential backoff and jitter, then replays what changed while it was away.
 */
class EventListener {
  readonly #options: EventListenerOptions;
  #client: pg.Client | undefined;
  #closed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** performance.now() of the last moment the connection was known to be listening. */
  #healthyAt = performance.now();

  constructor(options: EventListenerOptions) {
    this.#options = options;
  }

  /** Connects and listens; rejects if that fails the first time. */
  async start(): Promise<void> {
    await this.#connect();
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.url,
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: HEARTBEAT_TIMEOUT_MS,
    });
    client.on("error", (error) => this.#lost(client, error));
    client.on("end", () => this.#lost(client, undefined));
    client.on("notification", (message) => {
      if (client !== this.#client) return;
      this.#healthyAt = performance.now();
      if (message.channel !== EVENTS_CHANNEL) return;
      const event = parseEvent(message.payload);
      if (event === undefined) {
        this.#options.logger?.warn({ store: this.#options.redacted, channel: message.channel }, "store listener ignored a malformed event");
        return;
      }
      this.#options.onEvent(event, message.processId);
    });
    try {
      await client.connect();
      await client.query(`listen ${EVENTS_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
  }

  #beat(): void {
    const client = this.#client;
    if (client === undefined) return;
    client.query("select 1").then(
      () => {
        if (client === this.#client) this.#healthyAt = performance.now();
      },
      (error: unknown) => this.#lost(client, error),
    );
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#closed || client !== this.#client) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    const reason = error === undefined ? "connection ended" : scrub(messageOf(error), this.#options.url, this.#options.redacted);
    this.#options.logger?.warn({ store: this.#options.redacted, error: reason }, "store listener disconnected: reconnecting");
    this.#schedule();
  }

  #schedule(): void {
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_INITIAL_MS * 2 ** this.#attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.#attempt += 1;
    this.#timer = setTimeout(() => void this.#reconnect(), delay);
    this.#timer.unref();
  }

  async #reconnect(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    const { logger, redacted, url } = this.#options;
    try {
      await this.#connect();
    } catch (error) {
      if (this.#closed) return;
      logger?.warn({ store: redacted, error: scrub(messageOf(error), url, redacted), attempt: this.#attempt }, "store listener reconnect failed");
      this.#schedule();
      return;
    }
    if (this.#closed) return;
    const missedMs = performance.now() - this.#healthyAt + REPLAY_MARGIN_MS;
    this.#healthyAt = performance.now();
    this.#attempt = 0;
    logger?.info?.({ store: redacted, replayMs: Math.ceil(missedMs) }, "store listener reconnected");
    try {
      await this.#options.replay(missedMs);
    } catch (error) {
      logger?.warn({ store: redacted, error: scrub(messageOf(error), url, redacted) }, "store listener could not replay missed events");
    }
  }
}

interface PostgresStoreParts {
  pool: pg.Pool;
  listener: EventListener;
  subscribers: Subscribers;
  url: string;
  redacted: string;
}

const REVIEW_COLUMNS = `r.id, r.kind, r.session_id, r.subject, r.connection, r.sql, r.classes, r.rule, r.reasons, r.reviewer_groups,
  r.approvals_required, r.status, r.created_at, r.expires_at, r.decided_at, r.gateway_id, r.duration_ms, r.reason,
  a.reviewer as action_reviewer, a.action as action_action, a.reason as action_reason, a.at as action_at`;

class PostgresStore implements Store {
  readonly kind = "postgres";
  readonly #pool: pg.Pool;
  readonly #listener: EventListener;
  readonly #subscribers: Subscribers;
  readonly #url: string;
  readonly #redacted: string;
  #closed = false;

  constructor(parts: PostgresStoreParts) {
    this.#pool = parts.pool;
    this.#listener = parts.listener;
    this.#subscribers = parts.subscribers;
    this.#url = parts.url;
    this.#redacted = parts.redacted;
  }

  async startSession(row: SessionStartRow): Promise<void> {
    checkSessionStart(row);
    await this.#query(
      "startSession",
      { conflict: { "*": `session \`${row.id}\` already exists` } },
      `insert into airlock_sessions (id, subject, issuer, subject_groups, connection, transport, client_address, gateway_id, started_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [row.id, row.subject, row.issuer, row.groups, row.connection, row.transport, row.clientAddress, row.gatewayId, row.startedAt],
    );
  }

  async setSessionRecording(id: string, path: string): Promise<void> {
    checkId(id, "id");
    checkId(path, "path");
    const result = await this.#query("setSessionRecording", {}, "update airlock_sessions set recording_path = $2 where id = $1", [id, path]);
    if ((result.rowCount ?? 0) === 0) throw new StoreError("not_found", `session \`${id}\` not found`);
  }

  async endSession(id: string, endedAt: Date, outcome: string, recording?: RecordingSeal): Promise<void> {
    checkId(id, "id");
    checkDate(endedAt, "endedAt");
    checkString(outcome, "outcome");
    checkRecordingSeal(recording);
    // A data-modifying WITH runs whether or not the main query reads it; the main query sees the row as it was.
    const { rows } = await this.#query(
      "endSession",
      {},
      `with ended as (
         update airlock_sessions set ended_at = $2, outcome = $3,
           record_count = coalesce($4::integer, record_count), record_hash = coalesce($5::text, record_hash)
         where id = $1 and ended_at is null returning id)
       select 1 as found from airlock_sessions where id = $1`,
      [id, endedAt, outcome, recording?.records ?? null, recording?.lastHash ?? null],
    );
    if (rows.length === 0) throw new StoreError("not_found", `session \`${id}\` not found`);
  }

  async endAbandonedSessions(gatewayId: string, at: Date): Promise<number> {
    checkString(gatewayId, "gatewayId");
    checkDate(at, "at");
    const result = await this.#query(
      "endAbandonedSessions",
      {},
      "update airlock_sessions set ended_at = $2, outcome = $3 where gateway_id = $1 and ended_at is null",
      [gatewayId, at, ABANDONED_OUTCOME],
    );
    return result.rowCount ?? 0;
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    checkString(id, "id");
    const { rows } = await this.#query<SessionRecord>("getSession", {}, "select * from airlock_sessions where id = $1", [id]);
    const record = rows[0];
    return record === undefined ? undefined : toSession(record);
  }

  async listSessions(filter: SessionFilter = {}): Promise<SessionRow[]> {
    const limit = checkSessionFilter(filter);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (condition: (placeholder: string) => string, value: unknown): void => {
      params.push(value);
      where.push(condition(`$${params.length}`));
    };
    if (filter.subject !== undefined) add((p) => `s.subject = ${p}`, filter.subject);
    if (filter.connection !== undefined) add((p) => `s.connection = ${p}`, filter.connection);
    if (filter.from !== undefined) add((p) => `s.started_at >= ${p}`, filter.from);
    if (filter.to !== undefined) add((p) => `s.started_at < ${p}`, filter.to);
    if (filter.decision !== undefined) {
      add((p) => `exists (select 1 from airlock_decisions d where d.session_id = s.id and d.effect = ${p})`, filter.decision);
    }
    params.push(limit);
    const sql = `select s.* from airlock_sessions s ${where.length === 0 ? "" : `where ${where.join(" and ")}`}
      order by s.started_at desc, s.id desc limit $${params.length}`;
    const { rows } = await this.#query<SessionRecord>("listSessions", {}, sql, params);
    return rows.map(toSession);
  }

  async recordDecision(row: DecisionRow): Promise<void> {
    await this.recordDecisions([row]);
  }

  async recordDecisions(rows: readonly DecisionRow[]): Promise<void> {
    for (const row of rows) checkDecision(row);
    const first = rows[0];
    if (first === undefined) return;
    const messages =
      rows.length === 1
        ? { conflict: { "*": `decision \`${first.id}\` already exists` }, notFound: `session \`${first.sessionId}\` not found` }
        : { conflict: { "*": "a decision of the batch already exists" }, notFound: "a session of the batch was not found" };
    // One statement: the inserts and the counters commit together.
    await this.#query(
      "recordDecisions",
      messages,
      `with input as (
         select * from unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::jsonb[], $9::text[])
           with ordinality as t(id, session_id, at, sql, classes, effect, rule, reasons, review_id, n)),
       decision as (
         insert into airlock_decisions (id, session_id, at, sql, classes, effect, rule, reasons, review_id)
         select id, session_id, at, sql, array(select jsonb_array_elements_text(classes)), effect, rule, array(select jsonb_array_elements_text(reasons)), review_id from input order by n
         returning session_id, effect),
       counts as (
         select session_id, count(*) as statements, count(*) filter (where effect = 'deny') as denied, count(*) filter (where effect = 'review') as reviewed
         from decision group by session_id)
       update airlock_sessions s set statements = s.statements + c.statements, denied = s.denied + c.denied, reviewed = s.reviewed + c.reviewed
       from counts c where s.id = c.session_id`,
      [
        rows.map((row) => row.id),
        rows.map((row) => row.sessionId),
        rows.map((row) => row.at),
        rows.map((row) => row.sql),
        rows.map((row) => JSON.stringify(row.classes)),
        rows.map((row) => row.effect),
        rows.map((row) => row.rule ?? null),
        rows.map((row) => JSON.stringify(row.reasons)),
        rows.map((row) => row.reviewId ?? null),
      ],
    );
  }

  async listDecisions(sessionId: string): Promise<DecisionRow[]> {
    checkString(sessionId, "sessionId");
    const { rows } = await this.#query<DecisionRecord>(
      "listDecisions",
      {},
      "select * from airlock_decisions where session_id = $1 order by at, seq",
      [sessionId],
    );
    return rows.map(toDecision);
  }

  async createReview(row: Omit<ReviewRow, "status" | "actions" | "decidedAt">): Promise<ReviewRow> {
    checkReview(row);
    const review = await this.#transaction("createReview", { conflict: { "*": `review \`${row.id}\` already exists` } }, async (client) => {
      await client.query(
        `insert into airlock_reviews (id, kind, session_id, subject, connection, sql, classes, rule, reasons, reviewer_groups,
           approvals_required, created_at, expires_at, gateway_id, duration_ms, reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
        [
          row.id,
          row.kind,
          row.sessionId,
          row.subject,
          row.connection,
          row.sql,
          row.classes,
          row.rule,
          row.reasons,
          row.reviewerGroups,
          row.approvalsRequired,
          row.createdAt,
          row.expiresAt,
          row.gatewayId,
          row.durationMs ?? null,
          row.reason ?? null,
        ],
      );
      await notify(client, { type: "review", id: row.id });
      return readReview(client, row.id);
    });
    if (review === undefined) throw new StoreError("unavailable", `postgres store lost review \`${row.id}\``);
    this.#subscribers.emit({ type: "review", id: row.id });
    return review;
  }

  async getReview(id: string): Promise<ReviewRow | undefined> {
    checkString(id, "id");
    return this.#withPool("getReview", {}, (client) => readReview(client, id));
  }

  async listReviews(filter: { status?: ReviewStatus; limit?: number } = {}): Promise<ReviewRow[]> {
    if (filter.status !== undefined) checkReviewStatus(filter.status, "filter.status");
    const limit = listLimit(filter.limit, "filter.limit");
    const status = filter.status;
    return this.#withPool("listReviews", {}, (client) =>
      status === undefined
        ? readReviews(client, "true", [limit])
        : readReviews(client, "status = $2", [limit, status]),
    );
  }

  async addReviewAction(id: string, action: ReviewAction): Promise<ReviewRow> {
    checkReviewAction(id, action);
    const messages = { conflict: { "*": `reviewer \`${action.reviewer}\` already acted on review \`${id}\`` } };
    const review = await this.#transaction("addReviewAction", messages, async (client) => {
      // The row lock serializes reviewers racing on one review; the next statement's snapshot sees the winner's actions.
      const locked = await client.query("select 1 from airlock_reviews where id = $1 for update", [id]);
      if (locked.rowCount === 0) throw new StoreError("not_found", `review \`${id}\` not found`);
      const current = await readReview(client, id);
      if (current === undefined) throw new StoreError("not_found", `review \`${id}\` not found`);
      const next = applyReviewAction(current, action);
      await client.query("insert into airlock_review_actions (review_id, reviewer, action, reason, at) values ($1, $2, $3, $4, $5)", [
        id,
        action.reviewer,
        action.action,
        action.reason,
        action.at,
      ]);
      await client.query("update airlock_reviews set status = $2, decided_at = $3, updated_at = clock_timestamp() where id = $1", [
        id,
        next.status,
        next.decidedAt ?? null,
      ]);
      await notify(client, { type: "review", id });
      const updated: ReviewRow = { ...current, status: next.status, actions: [...current.actions, copyAction(action)] };
      if (next.decidedAt !== undefined) updated.decidedAt = new Date(next.decidedAt.getTime());
      return updated;
    });
    this.#subscribers.emit({ type: "review", id });
    return review;
  }

  async closeReview(id: string, status: "expired" | "cancelled", at: Date): Promise<ReviewRow | undefined> {
    checkString(id, "id");
    checkOneOf(status, ["expired", "cancelled"], "status");
    checkDate(at, "at");
    const { review, changed } = await this.#transaction("closeReview", {}, async (client) => {
      const result = await client.query(
        "update airlock_reviews set status = $2, decided_at = $3, updated_at = clock_timestamp() where id = $1 and status = 'pending'",
        [id, status, at],
      );
      const changedNow = (result.rowCount ?? 0) > 0;
      if (changedNow) await notify(client, { type: "review", id });
      return { review: await readReview(client, id), changed: changedNow };
    });
    if (changed) this.#subscribers.emit({ type: "review", id });
    return review;
  }

  async createGrant(row: Omit<GrantRow, "revokedAt">): Promise<GrantRow> {
    checkGrant(row);
    const messages: ConstraintMessages = {
      conflict: { airlock_grants_review_id_key: `review \`${row.reviewId}\` already has a grant`, "*": `grant \`${row.id}\` already exists` },
      notFound: `review \`${row.reviewId}\` not found`,
    };
    const grant = await this.#transaction("createGrant", messages, async (client) => {
      const { rows } = await client.query<GrantRecord>(
        `insert into airlock_grants (id, subject, connection, review_id, granted_at, expires_at) values ($1, $2, $3, $4, $5, $6)
         returning *`,
        [row.id, row.subject, row.connection, row.reviewId, row.grantedAt, row.expiresAt],
      );
      await notify(client, { type: "grant", id: row.id });
      return rows[0];
    });
    if (grant === undefined) throw new StoreError("unavailable", `postgres store lost grant \`${row.id}\``);
    this.#subscribers.emit({ type: "grant", id: row.id });
    return toGrant(grant);
  }

  async activeGrants(subject: string, connection: string, now: Date): Promise<GrantRow[]> {
    checkString(subject, "subject");
    checkString(connection, "connection");
    checkDate(now, "now");
    const { rows } = await this.#query<GrantRecord>(
      "activeGrants",
      {},
      `select * from airlock_grants where subject = $1 and connection = $2 and revoked_at is null and granted_at <= $3 and expires_at > $3
       order by expires_at desc, id`,
      [subject, connection, now],
    );
    return rows.map(toGrant);
  }

  async getGrant(id: string): Promise<GrantRow | undefined> {
    checkString(id, "id");
    const { rows } = await this.#query<GrantRecord>("getGrant", {}, "select * from airlock_grants where id = $1", [id]);
    const record = rows[0];
    return record === undefined ? undefined : toGrant(record);
  }

  async revokeGrant(id: string, at: Date): Promise<void> {
    checkId(id, "id");
    checkDate(at, "at");
    const changed = await this.#transaction("revokeGrant", {}, async (client) => {
      const result = await client.query(
        "update airlock_grants set revoked_at = $2, updated_at = clock_timestamp() where id = $1 and revoked_at is null",
        [id, at],
      );
      if ((result.rowCount ?? 0) > 0) {
        await notify(client, { type: "grant", id });
        return true;
      }
      const exists = await client.query("select 1 from airlock_grants where id = $1", [id]);
      if (exists.rowCount === 0) throw new StoreError("not_found", `grant \`${id}\` not found`);
      return false;
    });
    if (changed) this.#subscribers.emit({ type: "grant", id });
  }

  async pruneSessions(before: Date): Promise<number> {
    checkDate(before, "before");
    const result = await this.#query("pruneSessions", {}, "delete from airlock_sessions where ended_at is not null and ended_at < $1", [before]);
    return result.rowCount ?? 0;
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.#subscribers.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscribers.clear();
    await this.#listener.close();
    await this.#pool.end();
  }

  /** One statement on the pool. */
  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    operation: string,
    messages: ConstraintMessages,
    sql: string,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.#ensureOpen();
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (error) {
      throw this.#failure(operation, messages, error);
    }
  }

  /** Several statements on one pooled connection, outside a transaction (each sees its own snapshot). */
  async #withPool<T>(operation: string, messages: ConstraintMessages, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.#ensureOpen();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.#failure(operation, messages, error);
    }
    let broken: Error | undefined;
    try {
      return await work(client);
    } catch (error) {
      if (!(error instanceof StoreError)) broken = error instanceof Error ? error : new Error(String(error));
      throw this.#failure(operation, messages, error);
    } finally {
      client.release(broken);
    }
  }

  /** `work` in a transaction on one pooled connection: committed if it resolves, rolled back if it throws. */
  async #transaction<T>(operation: string, messages: ConstraintMessages, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withPool(operation, messages, async (client) => {
      await client.query("begin");
      let result: T;
      try {
        result = await work(client);
      } catch (error) {
        // A failed rollback leaves the connection unusable: #withPool then destroys it.
        await client.query("rollback");
        // Thrown as a StoreError so #withPool keeps the connection: it is healthy and idle again.
        throw this.#failure(operation, messages, error);
      }
      await client.query("commit");
      return result;
    });
  }

  #ensureOpen(): void {
    if (this.#closed) throw new StoreError("unavailable", "postgres store is closed");
  }

  /** A StoreError for a failure: constraint violations by the messages given, anything else `unavailable`. */
  #failure(operation: string, messages: ConstraintMessages, error: unknown): StoreError {
    if (error instanceof StoreError) return error;
    const { code, constraint } = error as { code?: unknown; constraint?: unknown };
    if (code === "23505" && messages.conflict !== undefined) {
      const message = (typeof constraint === "string" ? messages.conflict[constraint] : undefined) ?? messages.conflict["*"];
      if (message !== undefined) return new StoreError("conflict", message, { cause: error });
    }
    if (code === "23503" && messages.notFound !== undefined) return new StoreError("not_found", messages.notFound, { cause: error });
    return new StoreError("unavailable", `postgres store failed: \`${operation}\`: ${scrub(messageOf(error), this.#url, this.#redacted)}`, {
      cause: error,
    });
  }
}

async function notify(client: Queryable, event: StoreEvent): Promise<void> {
  await client.query("select pg_notify($1, $2)", [EVENTS_CHANNEL, JSON.stringify(event)]);
}

async function readReview(client: Queryable, id: string): Promise<ReviewRow | undefined> {
  const reviews = await readReviews(client, "id = $2", [1, id]);
  return reviews[0];
}

/**
 * Reviews matching `condition` (placeholders from $2; $1 is the limit), newest first, with their
 * actions, in one statement so the review and its actions come from one snapshot.
 */
async function readReviews(client: Queryable, condition: string, params: unknown[]): Promise<ReviewRow[]> {
  const { rows } = await client.query<ReviewActionRecord>(
    `select ${REVIEW_COLUMNS}
     from (select * from airlock_reviews where ${condition} order by created_at desc, id desc limit $1) r
     left join airlock_review_actions a on a.review_id = r.id
     order by r.created_at desc, r.id desc, a.seq`,
    params,
  );
  const reviews = new Map<string, ReviewRow>();
  for (const record of rows) {
    let review = reviews.get(record.id);
    if (review === undefined) {
      review = toReview(record);
      reviews.set(record.id, review);
    }
    if (record.action_reviewer !== null && record.action_action !== null && record.action_reason !== null && record.action_at !== null) {
      review.actions.push({ reviewer: record.action_reviewer, action: record.action_action, reason: record.action_reason, at: record.action_at });
    }
  }
  return [...reviews.values()];
}

/** The server process id of a pooled connection (node-postgres keeps it, its types do not declare it). */
function backendPid(client: pg.PoolClient): number | undefined {
  const pid = (client as unknown as { processID?: unknown }).processID;
  return typeof pid === "number" ? pid : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Belt and braces: the driver's messages do not quote the URL, but if one ever does, it is redacted. */
function scrub(message: string, url: string, redacted: string): string {
  return message.split(url).join(redacted);
}

function toSession(record: SessionRecord): SessionRow {
  const row: SessionRow = {
    id: record.id,
    subject: record.subject,
    issuer: record.issuer,
    groups: record.subject_groups,
    connection: record.connection,
    transport: record.transport,
    clientAddress: record.client_address,
    gatewayId: record.gateway_id,
    startedAt: record.started_at,
    statements: record.statements,
    denied: record.denied,
    reviewed: record.reviewed,
  };
  if (record.ended_at !== null) row.endedAt = record.ended_at;
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
    at: record.at,
    sql: record.sql,
    classes: record.classes,
    effect: record.effect,
    reasons: record.reasons,
  };
  if (record.rule !== null) row.rule = record.rule;
  if (record.review_id !== null) row.reviewId = record.review_id;
  return row;
}

function toReview(record: ReviewActionRecord): ReviewRow {
  const row: ReviewRow = {
    id: record.id,
    sessionId: record.session_id,
    subject: record.subject,
    connection: record.connection,
    sql: record.sql,
    classes: record.classes,
    rule: record.rule,
    reasons: record.reasons,
    reviewerGroups: record.reviewer_groups,
    approvalsRequired: record.approvals_required,
    status: record.status,
    createdAt: record.created_at,
    expiresAt: record.expires_at,
    actions: [],
    gatewayId: record.gateway_id,
    kind: record.kind,
  };
  if (record.decided_at !== null) row.decidedAt = record.decided_at;
  if (record.duration_ms !== null) row.durationMs = Number(record.duration_ms);
  if (record.reason !== null) row.reason = record.reason;
  return row;
}

function toGrant(record: GrantRecord): GrantRow {
  const row: GrantRow = {
    id: record.id,
    subject: record.subject,
    connection: record.connection,
    reviewId: record.review_id,
    grantedAt: record.granted_at,
    expiresAt: record.expires_at,
  };
  if (record.revoked_at !== null) row.revokedAt = record.revoked_at;
  return row;
}
