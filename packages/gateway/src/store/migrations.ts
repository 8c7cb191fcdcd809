/**
 * Versioned schema migrations of both backends. A migration is never edited once released: a change
 * is a new version appended to the list. Each runs in its own transaction and records its version in
 * the migrations table, so running them at every start is idempotent.
 */

/** One schema change. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * SQLite: arrays as JSON text, instants as ISO 8601 text (`Date#toISOString`, fixed width, so text
 * order is time order), STRICT tables. The file belongs to the gateway, so names carry no prefix.
 */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "initial",
    sql: `
      create table sessions (
        id text primary key,
        subject text not null,
        issuer text not null,
        subject_groups text not null,
        connection text not null,
        transport text not null check (transport in ('native', 'tunnel')),
        client_address text not null,
        gateway_id text not null,
        started_at text not null,
        ended_at text,
        outcome text,
        statements integer not null default 0,
        denied integer not null default 0,
        reviewed integer not null default 0
      ) strict;
      create index sessions_started_at on sessions (started_at);
      create index sessions_subject on sessions (subject, started_at);
      create index sessions_connection on sessions (connection, started_at);
      create index sessions_open on sessions (gateway_id) where ended_at is null;
      create index sessions_ended_at on sessions (ended_at) where ended_at is not null;

      create table decisions (
        id text primary key,
        session_id text not null references sessions (id) on delete cascade,
        at text not null,
        sql text not null,
        classes text not null,
        effect text not null check (effect in ('allow', 'deny', 'review')),
        rule text,
        reasons text not null,
        review_id text
      ) strict;
      create index decisions_session on decisions (session_id, at);
      create index decisions_effect on decisions (effect, session_id);

      create table reviews (
        id text primary key,
        kind text not null check (kind in ('statement', 'access')),
        session_id text not null,
        subject text not null,
        connection text not null,
        sql text not null,
        classes text not null,
        rule text not null,
        reasons text not null,
        reviewer_groups text not null,
        approvals_required integer not null check (approvals_required >= 1),
        status text not null default 'pending' check (status in ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
        created_at text not null,
        expires_at text not null,
        decided_at text,
        gateway_id text not null,
        duration_ms integer,
        reason text
      ) strict;
      create index reviews_created_at on reviews (created_at);
      create index reviews_status on reviews (status, created_at);

      create table review_actions (
        review_id text not null references reviews (id) on delete cascade,
        reviewer text not null,
        action text not null check (action in ('approve', 'reject')),
        reason text not null,
        at text not null,
        primary key (review_id, reviewer)
      ) strict;

      create table grants (
        id text primary key,
        subject text not null,
        connection text not null,
        review_id text not null unique references reviews (id),
        granted_at text not null,
        expires_at text not null,
        revoked_at text
      ) strict;
      create index grants_active on grants (subject, connection, expires_at) where revoked_at is null;
    `,
  },
  {
    version: 2,
    name: "session recordings",
    // The recording's file, and at a normal end its record count and last hash: the anchor that
    // catches records cut from the end of a recording.
    sql: `
      alter table sessions add column recording_path text;
      alter table sessions add column record_count integer;
      alter table sessions add column record_hash text;
    `,
  },
];

/**
 * PostgreSQL: arrays as text[], instants as timestamptz, every table prefixed `airlock_` so the store
 * can share a database. `updated_at` (the database's clock) lets a gateway whose LISTEN connection
 * dropped replay the changes it missed.
 */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "initial",
    sql: `
      create table airlock_sessions (
        id text primary key,
        subject text not null,
        issuer text not null,
        subject_groups text[] not null,
        connection text not null,
        transport text not null check (transport in ('native', 'tunnel')),
        client_address text not null,
        gateway_id text not null,
        started_at timestamptz not null,
        ended_at timestamptz,
        outcome text,
        statements integer not null default 0,
        denied integer not null default 0,
        reviewed integer not null default 0
      );
      create index airlock_sessions_started_at on airlock_sessions (started_at);
      create index airlock_sessions_subject on airlock_sessions (subject, started_at);
      create index airlock_sessions_connection on airlock_sessions (connection, started_at);
      create index airlock_sessions_open on airlock_sessions (gateway_id) where ended_at is null;
      create index airlock_sessions_ended_at on airlock_sessions (ended_at) where ended_at is not null;

      create table airlock_decisions (
        id text primary key,
        seq bigint generated always as identity,
        session_id text not null references airlock_sessions (id) on delete cascade,
        at timestamptz not null,
        sql text not null,
        classes text[] not null,
        effect text not null check (effect in ('allow', 'deny', 'review')),
        rule text,
        reasons text[] not null,
        review_id text
      );
      create index airlock_decisions_session on airlock_decisions (session_id, at, seq);
      create index airlock_decisions_effect on airlock_decisions (effect, session_id);

      create table airlock_reviews (
        id text primary key,
        kind text not null check (kind in ('statement', 'access')),
        session_id text not null,
        subject text not null,
        connection text not null,
        sql text not null,
        classes text[] not null,
        rule text not null,
        reasons text[] not null,
        reviewer_groups text[] not null,
        approvals_required integer not null check (approvals_required >= 1),
        status text not null default 'pending' check (status in ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
        created_at timestamptz not null,
        expires_at timestamptz not null,
        decided_at timestamptz,
        gateway_id text not null,
        duration_ms bigint,
        reason text,
        updated_at timestamptz not null default clock_timestamp()
      );
      create index airlock_reviews_created_at on airlock_reviews (created_at);
      create index airlock_reviews_status on airlock_reviews (status, created_at);
      create index airlock_reviews_updated_at on airlock_reviews (updated_at);

      create table airlock_review_actions (
        review_id text not null references airlock_reviews (id) on delete cascade,
        reviewer text not null,
        seq bigint generated always as identity,
        action text not null check (action in ('approve', 'reject')),
        reason text not null,
        at timestamptz not null,
        primary key (review_id, reviewer)
      );

      create table airlock_grants (
        id text primary key,
        subject text not null,
        connection text not null,
        review_id text not null unique references airlock_reviews (id),
        granted_at timestamptz not null,
        expires_at timestamptz not null,
        revoked_at timestamptz,
        updated_at timestamptz not null default clock_timestamp()
      );
      create index airlock_grants_active on airlock_grants (subject, connection, expires_at) where revoked_at is null;
      create index airlock_grants_updated_at on airlock_grants (updated_at);
    `,
  },
  {
    version: 2,
    name: "session recordings",
    sql: `
      alter table airlock_sessions
        add column recording_path text,
        add column record_count integer,
        add column record_hash text;
    `,
  },
];

/** The version a store's schema must not exceed: the last migration this gateway knows. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((latest, migration) => Math.max(latest, migration.version), 0);
}
