import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store, type StoreLogger } from "../../src/store/index.js";
import { postgresMigrations } from "../../src/store/migrations.js";
import { describeStoreContract, nextEvent, reviewStart, sessionStart, storeError } from "./store-contract.js";

const SERVER = "postgres://postgres@127.0.0.1:5432";
const prefix = `airlock_store_test_${randomBytes(5).toString("hex")}`;
const databases: string[] = [];

/** A fresh database on the machine's PostgreSQL, dropped when the file's tests end. */
async function createDatabase(suffix: string): Promise<string> {
  const name = `${prefix}_${suffix}`;
  await withClient("postgres", (client) => client.query(`create database ${name}`));
  databases.push(name);
  return name;
}

async function withClient<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER}/${database}` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

let main = "";
beforeAll(async () => {
  main = await createDatabase("main");
});
afterAll(async () => {
  await withClient("postgres", async (client) => {
    for (const name of databases) await client.query(`drop database if exists ${name} with (force)`);
  });
});

describeStoreContract("postgres", () => openStore(`${SERVER}/${main}`));

describe("postgres store", () => {
  const stores: Store[] = [];
  const open = async (url: string, logger?: StoreLogger): Promise<Store> => {
    const store = await openStore(url, logger === undefined ? {} : { logger });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  it("keeps every table under the airlock_ prefix and records each migration once", async () => {
    await open(`${SERVER}/${main}`);
    await withClient(main, async (client) => {
      const tables = await client.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public'");
      const names = tables.rows.map((row) => row.table_name);
      expect(names).toEqual(expect.arrayContaining(["airlock_schema_migrations", "airlock_sessions", "airlock_reviews", "airlock_grants"]));
      expect(names.filter((name) => !name.startsWith("airlock_"))).toEqual([]);
      const versions = await client.query<{ version: number; applied_at: Date }>("select version, applied_at from airlock_schema_migrations order by version");
      expect(versions.rows.map((row) => row.version)).toEqual([1, 2]);
      expect(versions.rows[0]?.applied_at).toBeInstanceOf(Date);
    });
  });

  it("migrates once when several gateways start together on a fresh database", async () => {
    const fresh = await createDatabase("together");
    const opened = await Promise.all([1, 2, 3, 4].map(() => open(`${SERVER}/${fresh}`)));
    expect(opened.map((store) => store.kind)).toEqual(["postgres", "postgres", "postgres", "postgres"]);
    const versions = await withClient(fresh, (client) => client.query<{ version: number }>("select version from airlock_schema_migrations order by version"));
    expect(versions.rows.map((row) => row.version)).toEqual([1, 2]);
  });

  it("upgrades a version 1 database in place, keeping its sessions", async () => {
    const fresh = await createDatabase("v1");
    const session = sessionStart();
    await withClient(fresh, async (client) => {
      await client.query("create table airlock_schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())");
      await client.query(postgresMigrations.find((migration) => migration.version === 1)?.sql ?? "");
      await client.query("insert into airlock_schema_migrations (version, name) values (1, 'initial')");
      await client.query(
        `insert into airlock_sessions (id, subject, issuer, subject_groups, connection, transport, client_address, gateway_id, started_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [session.id, session.subject, session.issuer, session.groups, session.connection, session.transport, session.clientAddress, session.gatewayId, session.startedAt],
      );
    });
    const store = await open(`${SERVER}/${fresh}`);
    expect(await store.getSession(session.id)).toStrictEqual({ ...session, statements: 0, denied: 0, reviewed: 0 });
    await store.setSessionRecording(session.id, "/recordings/old.jsonl");
    await store.endSession(session.id, new Date("2030-01-02T04:00:00.000Z"), "client_closed", { records: 3, lastHash: "ef".repeat(32) });
    expect((await store.getSession(session.id))?.recording).toStrictEqual({ path: "/recordings/old.jsonl", records: 3, lastHash: "ef".repeat(32) });
    const versions = await withClient(fresh, (client) => client.query<{ version: number }>("select version from airlock_schema_migrations order by version"));
    expect(versions.rows.map((row) => row.version)).toEqual([1, 2]);
  });

  it("refuses a schema newer than it knows", async () => {
    const fresh = await createDatabase("newer");
    await (await openStore(`${SERVER}/${fresh}`)).close();
    await withClient(fresh, (client) => client.query("insert into airlock_schema_migrations (version, name) values (999, 'future')"));
    expect((await storeError(openStore(`${SERVER}/${fresh}`), "migration_failed")).message).toContain("999");
  });

  it("carries a change made through one gateway to the other's subscribers and reads", async () => {
    const a = await open(`${SERVER}/${main}`);
    const b = await open(`postgresql://postgres@127.0.0.1:5432/${main}`);
    const review = reviewStart({ approvalsRequired: 2 });

    const created = nextEvent(a, (event) => event.id === review.id);
    await b.createReview(review);
    expect(await created).toEqual({ type: "review", id: review.id });

    const acted = nextEvent(a, (event) => event.id === review.id);
    const action = { reviewer: "alice", action: "approve" as const, reason: "ok", at: new Date("2030-01-02T03:05:00.000Z") };
    await b.addReviewAction(review.id, action);
    expect(await acted).toEqual({ type: "review", id: review.id });
    expect(await a.getReview(review.id)).toMatchObject({ status: "pending", actions: [action] });

    // And back: the second approval through A decides it, and B hears it.
    const decided = nextEvent(b, (event) => event.id === review.id);
    await a.addReviewAction(review.id, { ...action, reviewer: "bob" });
    await decided;
    expect(await b.getReview(review.id)).toMatchObject({ status: "approved", decidedAt: action.at });

    const grant = { id: `g-${review.id}`, subject: review.subject, connection: review.connection, reviewId: review.id, grantedAt: action.at, expiresAt: review.expiresAt };
    const granted = nextEvent(a, (event) => event.type === "grant" && event.id === grant.id);
    await b.createGrant(grant);
    await granted;
    expect(await a.getGrant(grant.id)).toStrictEqual(grant);
  });

  it("does not deliver its own changes twice (once at commit, not again from LISTEN)", async () => {
    const a = await open(`${SERVER}/${main}`);
    const b = await open(`${SERVER}/${main}`);
    const seen: string[] = [];
    a.subscribe((event) => seen.push(event.id));
    const own = reviewStart();
    const fence = reviewStart();
    await a.createReview(own);
    // Notifications arrive in commit order: once B's change reached A, A's own echo would have too.
    const fenced = nextEvent(a, (event) => event.id === fence.id);
    await b.createReview(fence);
    await fenced;
    expect(seen.filter((id) => id === own.id)).toHaveLength(1);
    expect(seen.filter((id) => id === fence.id)).toHaveLength(1);
  });

  it("reconnects its listener after the connection drops, replays what it missed, and never logs the password", async () => {
    const lines: string[] = [];
    const waiters: { match: string; resolve: () => void }[] = [];
    const record = (obj: object, msg: string): void => {
      lines.push(`${msg} ${JSON.stringify(obj)}`);
      for (const waiter of waiters) if (msg.includes(waiter.match)) waiter.resolve();
    };
    const logged = (match: string): Promise<void> => new Promise((resolve) => waiters.push({ match, resolve }));
    const logger: StoreLogger = { warn: record, info: record };
    // This server trusts loopback connections, so the password is accepted and ignored; it must still never be shown.
    const a = await open(`postgres://postgres:hunter2-secret@127.0.0.1:5432/${main}`, logger);
    const b = await open(`${SERVER}/${main}`);

    const dropped = logged("store listener disconnected");
    const reconnected = logged("store listener reconnected");
    const missed = reviewStart();
    const replayed = nextEvent(a, (event) => event.id === missed.id);
    await withClient(main, (client) =>
      client.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'airlock-store-listener'", [main]),
    );
    await dropped;
    // Made while A's listener is down (its first retry waits at least 50 ms): it reaches A by the replay after reconnecting.
    await b.createReview(missed);
    await replayed;
    await reconnected;

    const live = reviewStart();
    const heard = nextEvent(a, (event) => event.id === live.id);
    await b.createReview(live);
    await heard;

    expect(lines.join("\n")).not.toContain("hunter2-secret");
    expect(lines.join("\n")).toContain("postgres:***@127.0.0.1");
  });
});
