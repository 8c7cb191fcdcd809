import type { StatementClass } from "@airlock/policy";
import { builtinFunctions, builtinOperators, volatileBuiltinFunctions } from "./builtins.generated.js";
import { quote } from "./facts.js";

/** How a function or operator call was judged. */
export interface CallVerdict {
  readonly class: StatementClass;
  readonly reason: string;
  /** A user function or operator (not built in, not marked safe). */
  readonly user: boolean;
}

/**
 * Functions that reach outside the database's own data: server files, other servers, other
 * sessions, replication and the server process itself, or that execute SQL given as text. Matched
 * on the function's own name whatever its schema, so an extension installed anywhere is caught.
 */
const dangerousFunctions: ReadonlyMap<string, string> = new Map([
  ["pg_read_file", "reads a server file"],
  ["pg_read_file_old", "reads a server file"],
  ["pg_read_binary_file", "reads a server file"],
  ["pg_stat_file", "inspects a server file"],
  ["lo_import", "reads a server file into a large object"],
  ["lo_export", "writes a large object to a server file"],
  ["pg_file_write", "writes a server file"],
  ["pg_file_rename", "renames a server file"],
  ["pg_file_unlink", "deletes a server file"],
  ["pg_file_sync", "syncs a server file"],
  ["pg_logdir_ls", "lists a server directory"],
  ["query_to_xml", "executes SQL given as text"],
  ["query_to_xmlschema", "executes SQL given as text"],
  ["query_to_xml_and_xmlschema", "executes SQL given as text"],
  ["cursor_to_xml", "reads from a cursor by name"],
  ["cursor_to_xmlschema", "reads from a cursor by name"],
  ["ts_stat", "executes SQL given as text"],
  ["pg_terminate_backend", "ends another session"],
  ["pg_cancel_backend", "cancels another session's query"],
  ["pg_reload_conf", "reloads the server configuration"],
  ["pg_rotate_logfile", "rotates the server log"],
  ["pg_rotate_logfile_old", "rotates the server log"],
  ["pg_promote", "promotes a standby"],
  ["pg_switch_wal", "forces a WAL switch"],
  ["pg_create_restore_point", "creates a restore point"],
  ["pg_backup_start", "starts a base backup"],
  ["pg_backup_stop", "stops a base backup"],
  ["pg_start_backup", "starts a base backup"],
  ["pg_stop_backup", "stops a base backup"],
  ["pg_wal_replay_pause", "pauses recovery"],
  ["pg_wal_replay_resume", "resumes recovery"],
  ["pg_logical_emit_message", "writes a message into the WAL"],
  ["pg_create_physical_replication_slot", "creates a replication slot"],
  ["pg_create_logical_replication_slot", "creates a replication slot"],
  ["pg_copy_physical_replication_slot", "creates a replication slot"],
  ["pg_copy_logical_replication_slot", "creates a replication slot"],
  ["pg_drop_replication_slot", "drops a replication slot"],
  ["pg_stop_making_pinned_objects", "changes the catalog's pinned objects"],
  ["pg_background_launch", "executes SQL given as text in a background worker"],
]);

/** Families of dangerous functions, by the start of their name. */
const dangerousPrefixes: readonly (readonly [string, string])[] = [
  ["pg_ls_", "lists a server directory"],
  ["dblink", "connects to another server"],
  ["pg_replication_", "changes replication state"],
  ["pg_logical_slot_", "reads changes from a replication slot"],
  ["binary_upgrade_", "changes catalog state reserved for pg_upgrade"],
];

/** Schemas whose functions schedule or run SQL given as text (pg_cron). */
const dangerousSchemas: ReadonlyMap<string, string> = new Map([["cron", "schedules SQL given as text"]]);

/** Built-ins that change data or state: sequences, large objects, notifications, advisory locks. */
const writeFunctions: ReadonlyMap<string, string> = new Map([
  ["nextval", "advances a sequence"],
  ["setval", "sets a sequence"],
  ["lo_create", "creates a large object"],
  ["lo_creat", "creates a large object"],
  ["lo_from_bytea", "creates a large object"],
  ["lo_put", "writes a large object"],
  ["lowrite", "writes a large object"],
  ["lo_truncate", "truncates a large object"],
  ["lo_truncate64", "truncates a large object"],
  ["lo_unlink", "deletes a large object"],
  ["pg_notify", "sends a notification"],
]);

/** Built-ins that only a database administrator should run: statistics, maintenance, catalog. */
const adminFunctions: ReadonlyMap<string, string> = new Map([
  ["pg_log_backend_memory_contexts", "writes another backend's memory to the server log"],
  ["pg_import_system_collations", "adds collations to the catalog"],
  ["pg_extension_config_dump", "changes an extension's configuration"],
  ["pg_nextoid", "allocates a catalog OID"],
  ["brin_summarize_new_values", "maintains an index"],
  ["brin_summarize_range", "maintains an index"],
  ["brin_desummarize_range", "maintains an index"],
  ["gin_clean_pending_list", "maintains an index"],
]);

/**
 * Volatile built-ins reviewed as read-only: volatile because their result changes (time, random,
 * sizes, sequences' current values, WAL positions), not because they change anything. Any other
 * volatile built-in is taken as a write, so a new server version fails closed until reviewed.
 */
const volatileReadFunctions: ReadonlySet<string> = new Set([
  "amvalidate", "bernoulli", "clock_timestamp", "current_query", "currtid2", "currval", "dsnowball_init",
  "dsnowball_lexize", "gen_random_uuid", "lastval", "lo_close", "lo_get", "lo_lseek", "lo_lseek64", "lo_open",
  "lo_tell", "lo_tell64", "loread", "pg_blocking_pids", "pg_collation_actual_version", "pg_control_checkpoint",
  "pg_control_init", "pg_control_recovery", "pg_control_system", "pg_current_logfile", "pg_current_wal_flush_lsn",
  "pg_current_wal_insert_lsn", "pg_current_wal_lsn", "pg_database_collation_actual_version", "pg_database_size",
  "pg_export_snapshot", "pg_get_backend_memory_contexts", "pg_get_multixact_members", "pg_get_shmem_allocations",
  "pg_get_wal_replay_pause_state", "pg_get_wal_resource_managers", "pg_hba_file_rules", "pg_ident_file_mappings",
  "pg_indexes_size", "pg_is_in_recovery", "pg_is_wal_replay_paused", "pg_isolation_test_session_is_blocked",
  "pg_jit_available", "pg_last_committed_xact", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
  "pg_last_xact_replay_timestamp", "pg_lock_status", "pg_notification_queue_usage", "pg_partition_ancestors",
  "pg_partition_tree", "pg_prepared_xact", "pg_relation_size", "pg_safe_snapshot_blocking_pids",
  "pg_sequence_last_value", "pg_show_all_file_settings", "pg_show_replication_origin_status", "pg_sleep",
  "pg_sleep_for", "pg_sleep_until", "pg_stat_clear_snapshot", "pg_stat_force_next_flush", "pg_stat_get_recovery_prefetch",
  "pg_stat_have_stats", "pg_table_size", "pg_tablespace_size", "pg_total_relation_size", "pg_xact_commit_timestamp",
  "pg_xact_status", "random", "random_normal", "setseed", "system", "timeofday", "txid_status",
]);

/** Functions that render whole tables, schemas or databases: bulk reads the relation list cannot see. */
const bulkReadFunctions: ReadonlySet<string> = new Set([
  "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema",
  "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
]);

/** Functions and operators marked safe (read) in configuration: `name` or `schema.name`. */
export interface SafeFunctions {
  readonly byName: ReadonlyMap<string, readonly (string | undefined)[]>;
}

/** Indexes configuration's safe list by unqualified name. */
export function compileSafeFunctions(entries: readonly string[] | undefined): SafeFunctions {
  const byName = new Map<string, (string | undefined)[]>();
  for (const entry of entries ?? []) {
    // Operator names never contain a dot, so the last dot always ends a schema name.
    const dot = entry.lastIndexOf(".");
    const name = dot > 0 ? entry.slice(dot + 1) : entry;
    const schema = dot > 0 ? entry.slice(0, dot) : undefined;
    const list = byName.get(name) ?? [];
    list.push(schema);
    byName.set(name, list);
  }
  return { byName };
}

/**
 * A call written `name` matches safe entries `name` and `schema.name` (the search path decides
 * which it reaches, and creating a shadowing function needs DDL); a call written `schema.name`
 * matches `name` and that same `schema.name`.
 */
function isSafe(safe: SafeFunctions, schema: string | undefined, name: string): boolean {
  const schemas = safe.byName.get(name);
  if (schemas === undefined) return false;
  return schemas.some((entry) => entry === undefined || schema === undefined || entry === schema);
}

/** A call written with `parts` ([name], [schema, name] or [catalog, schema, name]). */
function splitName(parts: readonly string[]): { schema: string | undefined; name: string } {
  return { schema: parts.length >= 2 ? parts[parts.length - 2] : undefined, name: parts[parts.length - 1] ?? "" };
}

/** Details of a call's arguments that some rules need. */
export interface CallArguments {
  readonly count: number;
  /** The first argument when it is a string constant. */
  readonly firstString: string | undefined;
}

/**
 * Judges a function call. Order: the dangerous lists (any schema), then built-ins (unqualified or
 * pg_catalog-qualified names in the generated list) with their write, admin and bulk-read lists and
 * volatility, then configuration's safe list; any other function is a user function and a write.
 */
export function classifyFunction(parts: readonly string[], args: CallArguments, safe: SafeFunctions): CallVerdict {
  const { schema, name } = splitName(parts);
  const written = quote(parts.join("."));
  const danger = dangerousFunctions.get(name) ?? dangerousPrefixes.find(([prefix]) => name.startsWith(prefix))?.[1];
  if (danger !== undefined) return { class: "dangerous", reason: `calls ${written}: it ${danger}`, user: false };
  const schemaDanger = schema === undefined ? undefined : dangerousSchemas.get(schema);
  if (schemaDanger !== undefined) return { class: "dangerous", reason: `calls ${written}: it ${schemaDanger}`, user: false };
  if (name === "ts_rewrite" && args.count === 2) {
    return { class: "dangerous", reason: `calls ${written} with a query: it executes SQL given as text`, user: false };
  }
  const builtin = (schema === undefined || schema === "pg_catalog") && builtinFunctions.has(name);
  if (builtin) {
    const write = writeFunctions.get(name);
    if (write !== undefined) return { class: "write", reason: `calls ${written}: it ${write}`, user: false };
    const admin = adminFunctions.get(name);
    if (admin !== undefined) return { class: "admin", reason: `calls ${written}: it ${admin}`, user: false };
    if (name.startsWith("pg_stat_reset")) return { class: "admin", reason: `calls ${written}: it resets statistics`, user: false };
    if (name.startsWith("pg_advisory") || name.startsWith("pg_try_advisory")) {
      return { class: "write", reason: `calls ${written}: it takes or releases an advisory lock`, user: false };
    }
    if (bulkReadFunctions.has(name)) return { class: "export", reason: `calls ${written}: it renders whole tables`, user: false };
    if (volatileBuiltinFunctions.has(name) && !volatileReadFunctions.has(name) && !name.startsWith("pg_stat_get_xact_") && name !== "ts_rewrite") {
      return { class: "write", reason: `calls volatile built-in ${written}`, user: false };
    }
    return { class: "read", reason: `calls built-in ${written}`, user: false };
  }
  if (isSafe(safe, schema, name)) return { class: "read", reason: `calls ${written}, marked safe`, user: false };
  return { class: "write", reason: `calls user function ${written}`, user: true };
}

/** Judges an operator: built-in names are read; any other operator runs a user function. */
export function classifyOperator(parts: readonly string[], safe: SafeFunctions): CallVerdict {
  const { schema, name } = splitName(parts);
  const written = quote(parts.join("."));
  if ((schema === undefined || schema === "pg_catalog") && builtinOperators.has(name)) {
    return { class: "read", reason: `uses built-in operator ${written}`, user: false };
  }
  if (isSafe(safe, schema, name)) return { class: "read", reason: `uses operator ${written}, marked safe`, user: false };
  return { class: "write", reason: `uses user operator ${written}`, user: true };
}
