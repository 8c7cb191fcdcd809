import type { StatementClass } from "@airlock/policy";
import { quote } from "../postgres/facts.js";

/** A class for changing a system variable, with the reason. */
export interface SettingVerdict {
  readonly class: StatementClass;
  readonly reason: string;
}

/** The scope a SET names: `GLOBAL`, `PERSIST`, `PERSIST_ONLY` reach past this session. */
export type SettingScope = "session" | "global" | "persist" | "persist_only";

/**
 * Session variables any user may change that only shape this session's own work (timeouts, limits,
 * formats, checks on its own writes). Reads, as PostgreSQL's analyser treats `SET statement_timeout`.
 * https://dev.mysql.com/doc/refman/8.0/en/server-system-variables.html
 * https://mariadb.com/kb/en/server-system-variables/
 */
const sessionSettings: ReadonlySet<string> = new Set(
  `
autocommit auto_increment_increment auto_increment_offset big_tables block_encryption_mode bulk_insert_buffer_size
character_set_results character_set_connection collation_connection completion_type cte_max_recursion_depth
default_collation_for_utf8mb4 default_storage_engine default_tmp_storage_engine default_week_format div_precision_increment
end_markers_in_json eq_range_index_dive_limit explicit_defaults_for_timestamp foreign_key_checks group_concat_max_len
histogram_generation_max_mem_size identity information_schema_stats_expiry innodb_lock_wait_timeout innodb_strict_mode
insert_id interactive_timeout join_buffer_size last_insert_id lc_messages lc_time_names lock_wait_timeout long_query_time
max_execution_time max_heap_table_size max_join_size max_length_for_sort_data max_points_in_geometry max_seeks_for_key
max_sort_length max_sp_recursion_depth max_statement_time max_recursive_iterations min_examined_row_limit net_buffer_length
net_read_timeout net_retry_count net_write_timeout optimizer_prune_level optimizer_search_depth optimizer_switch
optimizer_trace optimizer_trace_features optimizer_trace_limit optimizer_trace_max_mem_size optimizer_trace_offset
optimizer_use_condition_selectivity parser_max_mem_size preload_buffer_size profiling profiling_history_size
query_alloc_block_size query_prealloc_size range_alloc_block_size range_optimizer_max_mem_size rand_seed1 rand_seed2
read_buffer_size read_rnd_buffer_size regexp_stack_limit regexp_time_limit resultset_metadata
session_track_gtids session_track_schema session_track_state_change session_track_system_variables
session_track_transaction_info show_create_table_verbosity show_old_temporals sort_buffer_size sql_auto_is_null
sql_big_selects sql_buffer_result sql_generate_invisible_primary_key sql_if_exists sql_notes sql_quote_show_create
sql_safe_updates sql_select_limit sql_warnings system_versioning_alter_history system_versioning_asof time_zone timestamp
tmp_table_size tmp_memory_table_size transaction_alloc_block_size transaction_isolation transaction_prealloc_size
transaction_read_only tx_isolation tx_read_only unique_checks updatable_views_with_limit wait_timeout
windowing_use_high_precision join_cache_level expensive_subquery_limit in_predicate_conversion_threshold
optimizer_max_sel_arg_weight optimizer_selectivity_sampling_limit histogram_size histogram_type log_slow_verbosity
log_slow_filter log_slow_rate_limit log_queries_not_using_indexes note_verbosity old_mode old
use_stat_tables analyze_sample_percentage check_constraint_checks deadlock_search_depth_long deadlock_search_depth_short
deadlock_timeout_long deadlock_timeout_short default_regex_flags idle_readonly_transaction_timeout idle_transaction_timeout
idle_write_transaction_timeout join_buffer_space_limit log_disabled_statements progress_report_time
spider_bgs_mode standard_compliant_cte sql_mode_compat
`
    .split(/\s+/)
    .filter((name) => name.length > 0),
);

/**
 * Variables whose change reaches past the database's data: the server writing files of the
 * caller's choosing (the general or slow log pointed at a web root), SQL run for every new
 * connection or replica, identity.
 */
const dangerousSettings: ReadonlyMap<string, string> = new Map([
  ["general_log_file", "points the general log at a server file of the caller's choosing"],
  ["slow_query_log_file", "points the slow query log at a server file of the caller's choosing"],
  ["log_error", "points the error log at a server file"],
  ["init_connect", "runs SQL for every new connection"],
  ["init_slave", "runs SQL on replication start"],
  ["init_replica", "runs SQL on replication start"],
  ["server_audit_file_path", "points the audit log at a server file"],
  ["server_audit_logging", "turns audit logging on or off"],
  ["pseudo_thread_id", "impersonates another connection's temporary tables"],
  ["pseudo_slave_mode", "makes the session act as a replication applier"],
  ["pseudo_replica_mode", "makes the session act as a replication applier"],
  ["gtid_next", "injects transactions under another server's identity"],
  ["gtid_seq_no", "injects transactions under another server's identity"],
  ["gtid_domain_id", "injects transactions under another replication domain"],
  ["server_id", "changes the server's replication identity"],
  ["sql_log_bin", "keeps the session's writes out of the binary log"],
  ["sql_log_off", "keeps the session's statements out of the general log"],
  ["secure_file_priv", "changes where the server may read and write files"],
  ["local_infile", "lets clients load their files into the server"],
]);

/** Character sets in which a byte 0x5c (`\`) or a quote can be the second byte of a character: the gateway cannot lex them as the server would. */
const unsafeClientCharsets: ReadonlySet<string> = new Set(["big5", "cp932", "gbk", "sjis", "gb18030", "gb2312", "ucs2", "utf16", "utf16le", "utf32"]);

/** True for a client character set whose text the gateway lexes exactly (ASCII-compatible without 0x5c trail bytes). */
export function isSafeClientCharset(name: string): boolean {
  const lower = name.toLowerCase();
  return !unsafeClientCharsets.has(lower);
}

/** Variables that decide how later statement text is decoded. */
export const charsetSettings: ReadonlySet<string> = new Set(["character_set_client", "names", "character set", "charset"]);

/**
 * The class of setting a system variable in `scope`: GLOBAL and PERSIST are administration (other
 * sessions and restarts see them), the dangerous list wins, ordinary session variables are reads,
 * and anything else (privileged or unknown) is admin, as PostgreSQL's analyser treats unknown settings.
 */
export function classifySetting(rawName: string, scope: SettingScope): SettingVerdict {
  const name = rawName.toLowerCase();
  const danger = dangerousSettings.get(name);
  if (danger !== undefined) return { class: "dangerous", reason: `SET ${quote(name)} ${danger}` };
  if (scope !== "session") return { class: "admin", reason: `SET ${scope.toUpperCase()} ${quote(name)} changes the server's configuration` };
  if (sessionSettings.has(name)) return { class: "read", reason: `SET of session variable ${quote(name)}` };
  return { class: "admin", reason: `SET of privileged or unknown variable ${quote(name)}` };
}

/** Flags of sql_mode that change how the server lexes text. */
export interface SqlModeFlags {
  readonly ansiQuotes: boolean;
  readonly noBackslashEscapes: boolean;
  readonly pipesAsConcat: boolean;
}

/** Modes that imply others (https://dev.mysql.com/doc/refman/8.0/en/sql-mode.html#sql-mode-combo). */
const combinationModes: ReadonlyMap<string, readonly string[]> = new Map([
  ["ANSI", ["REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE", "ONLY_FULL_GROUP_BY"]],
  ["TRADITIONAL", ["STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "NO_ZERO_IN_DATE", "NO_ZERO_DATE", "ERROR_FOR_DIVISION_BY_ZERO", "NO_ENGINE_SUBSTITUTION"]],
]);

/** Modes after which the server parses a different language (MariaDB's ORACLE mode) or that the gateway does not model. */
const unsupportedModes: ReadonlySet<string> = new Set(["ORACLE", "MSSQL", "DB2", "MAXDB", "POSTGRESQL", "MYSQL323", "MYSQL40"]);

/** Every sql_mode flag MySQL 8 and MariaDB 10.11 know that changes no lexing; others make the SET fail on the server. */
const knownModes: ReadonlySet<string> = new Set(
  `
ALLOW_INVALID_DATES ANSI_QUOTES EMPTY_STRING_IS_NULL ERROR_FOR_DIVISION_BY_ZERO HIGH_NOT_PRECEDENCE IGNORE_BAD_TABLE_OPTIONS
IGNORE_SPACE NO_AUTO_CREATE_USER NO_AUTO_VALUE_ON_ZERO NO_BACKSLASH_ESCAPES NO_DIR_IN_CREATE NO_ENGINE_SUBSTITUTION
NO_FIELD_OPTIONS NO_KEY_OPTIONS NO_TABLE_OPTIONS NO_UNSIGNED_SUBTRACTION NO_ZERO_DATE NO_ZERO_IN_DATE ONLY_FULL_GROUP_BY
PAD_CHAR_TO_FULL_LENGTH PIPES_AS_CONCAT REAL_AS_FLOAT SIMULTANEOUS_ASSIGNMENT STRICT_ALL_TABLES STRICT_TRANS_TABLES
TIME_ROUND_FRACTIONAL TIME_TRUNCATE_FRACTIONAL ANSI TRADITIONAL
`
    .split(/\s+/)
    .filter((name) => name.length > 0),
);

/**
 * Reads a sql_mode value as the server would: a comma-separated list of names, any case. Returns
 * the normalized list (uppercase, comma-joined, combination modes as written) or why it cannot be
 * followed.
 */
export function parseSqlMode(value: string): { readonly ok: true; readonly mode: string } | { readonly ok: false; readonly error: string } {
  const names = value
    .split(",")
    .map((name) => name.trim().toUpperCase())
    .filter((name) => name.length > 0);
  for (const name of names) {
    if (unsupportedModes.has(name)) return { ok: false, error: `sql_mode ${quote(name)} changes how the server parses SQL` };
    if (!knownModes.has(name)) return { ok: false, error: `unknown sql_mode ${quote(name)}` };
  }
  return { ok: true, mode: names.join(",") };
}

/** The lexing flags of a normalized sql_mode. */
export function sqlModeFlags(mode: string): SqlModeFlags {
  const names = new Set<string>();
  for (const name of mode.split(",")) {
    const upper = name.trim().toUpperCase();
    names.add(upper);
    for (const implied of combinationModes.get(upper) ?? []) names.add(implied);
  }
  return {
    ansiQuotes: names.has("ANSI_QUOTES"),
    noBackslashEscapes: names.has("NO_BACKSLASH_ESCAPES"),
    pipesAsConcat: names.has("PIPES_AS_CONCAT"),
  };
}
