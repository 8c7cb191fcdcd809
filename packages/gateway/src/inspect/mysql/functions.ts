import type { CallVerdict } from "../postgres/functions.js";
import { quote } from "../postgres/facts.js";

export type { CallVerdict } from "../postgres/functions.js";

/**
 * Built-in functions of MySQL 8.0 and MariaDB 10.11 (lowercase), from their function references.
 * A call to any other name is a stored (user) function: a write unless configuration marks it safe,
 * so a function this list misses fails closed.
 * https://dev.mysql.com/doc/refman/8.0/en/built-in-function-reference.html
 * https://mariadb.com/kb/en/built-in-functions/
 */
const builtinFunctions: ReadonlySet<string> = new Set(
  `
abs acos adddate addtime aes_decrypt aes_encrypt any_value ascii asin atan atan2 avg benchmark bin bin_to_uuid binary
bit_and bit_count bit_length bit_or bit_xor can_access_column can_access_database can_access_table can_access_user
can_access_view cast ceil ceiling char char_length character_length charset chr coalesce coercibility collation compress
concat concat_ws connection_id conv convert convert_tz cos cot count crc32 crc32c cume_dist curdate current_date
current_role current_time current_timestamp current_user curtime database date date_add date_format date_sub datediff
day dayname dayofmonth dayofweek dayofyear decode default degrees dense_rank des_decrypt des_encrypt elt encode encrypt
exp export_set extract extractvalue field find_in_set first_value floor format format_bytes format_pico_time found_rows
from_base64 from_days from_unixtime geomcollection geometrycollection get_dd_column_privileges get_dd_create_options
get_dd_index_sub_part_length get_format get_lock greatest group_concat grouping gtid_subset gtid_subtract hex hour icu_version
if ifnull in inet_aton inet_ntoa inet6_aton inet6_ntoa insert instr internal_auto_increment internal_avg_row_length
internal_check_time internal_checksum internal_data_free internal_data_length internal_dd_char_length
internal_get_comment_or_error internal_get_enabled_role_json internal_get_hostname internal_get_username
internal_get_view_warning_or_error internal_index_column_cardinality internal_index_length internal_is_enabled_role
internal_is_mandatory_role internal_keys_disabled internal_max_data_length internal_table_rows internal_update_time
interval is_free_lock is_ipv4 is_ipv4_compat is_ipv4_mapped is_ipv6 is_used_lock is_uuid isnull json_array json_array_append
json_array_insert json_arrayagg json_contains json_contains_path json_depth json_extract json_insert json_keys json_length
json_merge json_merge_patch json_merge_preserve json_object json_objectagg json_overlaps json_pretty json_quote json_remove
json_replace json_schema_valid json_schema_validation_report json_search json_set json_storage_free json_storage_size
json_table json_type json_unquote json_valid json_value lag last_day last_insert_id last_value lcase lead least left length
linestring ln load_file localtime localtimestamp locate log log10 log2 lower lpad ltrim make_set makedate maketime
master_pos_wait max mbrcontains mbrcoveredby mbrcovers mbrdisjoint mbrequals mbrintersects mbroverlaps mbrtouches mbrwithin
md5 microsecond mid min minute mod month monthname multilinestring multipoint multipolygon name_const now nth_value ntile
nullif oct octet_length ord percent_rank period_add period_diff pi point polygon position pow power ps_current_thread_id
ps_thread_id quarter quote radians rand random_bytes rank regexp_instr regexp_like regexp_replace regexp_substr
release_all_locks release_lock repeat replace reverse right roles_graphml round row_count row_number rpad rtrim schema
sec_to_time second session_user sha sha1 sha2 sign sin sleep soundex source_pos_wait space sqrt st_area st_asbinary
st_asgeojson st_astext st_aswkb st_aswkt st_buffer st_buffer_strategy st_centroid st_collect st_contains st_convexhull
st_crosses st_difference st_dimension st_disjoint st_distance st_distance_sphere st_endpoint st_envelope st_equals
st_exteriorring st_frechetdistance st_geohash st_geomcollfromtext st_geomcollfromtxt st_geomcollfromwkb
st_geometrycollectionfromtext st_geometrycollectionfromwkb st_geometryfromtext st_geometryfromwkb st_geometryn
st_geometrytype st_geomfromgeojson st_geomfromtext st_geomfromwkb st_hausdorffdistance st_interiorringn st_intersection
st_intersects st_isclosed st_isempty st_issimple st_isvalid st_latfromgeohash st_latitude st_length st_linefromtext
st_linefromwkb st_lineinterpolatepoint st_lineinterpolatepoints st_linestringfromtext st_linestringfromwkb
st_longfromgeohash st_longitude st_makeenvelope st_mlinefromtext st_mlinefromwkb st_mpointfromtext st_mpointfromwkb
st_mpolyfromtext st_mpolyfromwkb st_multilinestringfromtext st_multilinestringfromwkb st_multipointfromtext
st_multipointfromwkb st_multipolygonfromtext st_multipolygonfromwkb st_numgeometries st_numinteriorring
st_numinteriorrings st_numpoints st_overlaps st_pointatdistance st_pointfromgeohash st_pointfromtext st_pointfromwkb
st_pointn st_polyfromtext st_polyfromwkb st_polygonfromtext st_polygonfromwkb st_simplify st_srid st_startpoint
st_swapxy st_symdifference st_touches st_transform st_union st_validate st_within st_x st_y statement_digest
statement_digest_text std stddev stddev_pop stddev_samp str_to_date strcmp subdate substr substring substring_index
subtime sum sysdate system_user tan time time_format time_to_sec timediff timestamp timestampadd timestampdiff to_base64
to_days to_seconds trim truncate ucase uncompress uncompressed_length unhex unix_timestamp updatexml upper user utc_date
utc_time utc_timestamp uuid uuid_short uuid_to_bin validate_password_strength values var_pop var_samp variance version
wait_for_executed_gtid_set wait_until_sql_thread_after_gtids week weekday weekofyear weight_string year yearweek
regexp_like not_exists row exists
add_months boundary buffer cast_as_time centroid column_add column_check column_create column_delete column_exists
column_get column_json column_list contains convexhull crosses cume_dist decode_histogram decode_oracle dimension disjoint
endpoint envelope equals exteriorring geomcollfromtext geomcollfromwkb geometryfromtext geometryfromwkb geometryn
geometrytype geomfromtext geomfromwkb glength interiorringn intersects isclosed isempty isring issimple json_compact
json_detailed json_equals json_exists json_loose json_normalize json_query json_array_intersect json_object_filter_keys
json_object_to_array json_key_value kdf last_value lengthb linefromtext linefromwkb linestringfromtext linestringfromwkb
master_gtid_wait median mlinefromtext mlinefromwkb mpointfromtext mpointfromwkb mpolyfromtext mpolyfromwkb
multilinestringfromtext multilinestringfromwkb multipointfromtext multipointfromwkb multipolygonfromtext
multipolygonfromwkb natural_sort_key numgeometries numinteriorrings numpoints nvl nvl2 oct old_password overlaps password
percentile_cont percentile_disc pointfromtext pointfromwkb pointn polyfromtext polyfromwkb polygonfromtext polygonfromwkb
regexp_instr sformat srid startpoint st_geometrycollectionfromtext st_relate sys_guid to_char touches trim_oracle
unix_timestamp within wsrep_last_seen_gtid wsrep_last_written_gtid wsrep_sync_wait_upto_gtid x y
st_pointonsurface st_numpoints lastval nextval setval uncompressed_length des_encrypt des_decrypt encrypt
`
    .split(/\s+/)
    .filter((name) => name.length > 0),
);

/**
 * Functions that reach outside the database's own data: server files, other servers or programs.
 * Matched on the function's own name whatever its schema, so a loadable function (lib_mysqludf_sys,
 * Spider) installed under any name is caught.
 */
const dangerousFunctions: ReadonlyMap<string, string> = new Map([
  ["load_file", "reads a server file"],
  ["sys_exec", "runs a server program"],
  ["sys_eval", "runs a server program"],
  ["sys_get", "reads the server's environment"],
  ["sys_set", "changes the server's environment"],
  ["lib_mysqludf_sys_info", "belongs to a library that runs server programs"],
  ["spider_direct_sql", "executes SQL given as text on another server"],
  ["spider_bg_direct_sql", "executes SQL given as text on another server"],
  ["spider_copy_tables", "copies tables between servers"],
  ["spider_flush_table_mon_cache", "changes Spider's monitoring state"],
]);

/** Built-ins that change state: sequences and user-level locks. */
const writeFunctions: ReadonlyMap<string, string> = new Map([
  ["nextval", "advances a sequence"],
  ["setval", "sets a sequence"],
  ["get_lock", "takes a user-level lock"],
  ["release_lock", "releases a user-level lock"],
  ["release_all_locks", "releases user-level locks"],
]);

/**
 * Built-ins that only reveal or wait: the classes PostgreSQL's analyser gives pg_sleep and the
 * like. Listed here only to say so; every other built-in is a read too.
 */
const waitingFunctions: ReadonlySet<string> = new Set(["sleep", "benchmark", "master_pos_wait", "source_pos_wait", "master_gtid_wait"]);

/** Stored procedures (CALL) known to execute SQL given as text, under any schema. */
const dangerousProcedures: ReadonlyMap<string, string> = new Map([
  ["execute_prepared_stmt", "executes SQL given as text"],
  ["mysql_rds_kill", "ends another session"],
]);

/** Functions and procedures marked safe (read) in configuration: `name` or `schema.name`, lowercase. */
export interface SafeFunctions {
  readonly byName: ReadonlyMap<string, readonly (string | undefined)[]>;
}

/** Indexes configuration's safe list by unqualified name (names compared in lowercase, as MySQL does). */
export function compileSafeFunctions(entries: readonly string[] | undefined): SafeFunctions {
  const byName = new Map<string, (string | undefined)[]>();
  for (const raw of entries ?? []) {
    const entry = raw.toLowerCase();
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
 * A call written `name` runs `defaultSchema.name`: it matches safe entries `name` and
 * `defaultSchema.name` (any schema when the current schema is not known); `schema.name` matches
 * `name` and that same `schema.name`.
 */
function isSafe(safe: SafeFunctions, schema: string | undefined, name: string, defaultSchema: string | undefined): boolean {
  const schemas = safe.byName.get(name);
  if (schemas === undefined) return false;
  const effective = schema ?? defaultSchema;
  return schemas.some((entry) => entry === undefined || effective === undefined || entry === effective.toLowerCase());
}

/**
 * Judges a function call written with `parts` (`[name]` or `[schema, name]`). Order: the dangerous
 * list (any schema), then unqualified built-ins with their write list, then configuration's safe
 * list; any other function is a stored function and a write. A qualified name is never a built-in:
 * MySQL resolves `db.f()` to a stored function.
 */
export function classifyFunction(parts: readonly string[], safe: SafeFunctions, defaultSchema: string | undefined): CallVerdict {
  const name = (parts.at(-1) ?? "").toLowerCase();
  const schema = parts.length >= 2 ? parts.at(-2)?.toLowerCase() : undefined;
  const written = quote(parts.map((part) => part.toLowerCase()).join("."));
  const danger = dangerousFunctions.get(name);
  if (danger !== undefined) return { class: "dangerous", reason: `calls ${written}: it ${danger}`, user: false };
  if (schema === undefined && builtinFunctions.has(name)) {
    const write = writeFunctions.get(name);
    if (write !== undefined) return { class: "write", reason: `calls ${written}: it ${write}`, user: false };
    if (waitingFunctions.has(name)) return { class: "read", reason: `calls built-in ${written}: it waits`, user: false };
    return { class: "read", reason: `calls built-in ${written}`, user: false };
  }
  if (isSafe(safe, schema, name, defaultSchema)) return { class: "read", reason: `calls ${written}, marked safe`, user: false };
  return { class: "write", reason: `calls stored function ${written}`, user: true };
}

/** Judges CALL of a stored procedure: dangerous when known to run SQL text, read when marked safe, otherwise a write. */
export function classifyProcedure(parts: readonly string[], safe: SafeFunctions, defaultSchema: string | undefined): CallVerdict {
  const name = (parts.at(-1) ?? "").toLowerCase();
  const schema = parts.length >= 2 ? parts.at(-2)?.toLowerCase() : undefined;
  const written = quote(parts.map((part) => part.toLowerCase()).join("."));
  const danger = dangerousProcedures.get(name);
  if (danger !== undefined) return { class: "dangerous", reason: `CALL of ${written}: it ${danger}`, user: false };
  if (isSafe(safe, schema, name, defaultSchema)) return { class: "read", reason: `CALL of ${written}, marked safe`, user: false };
  return { class: "write", reason: `CALL of procedure ${written}`, user: true };
}

/** True for a built-in name (unqualified). */
export function isBuiltinFunction(name: string): boolean {
  return builtinFunctions.has(name.toLowerCase());
}

/** The dangerous verdict of a name, for places where calls are found by tokens (table options, DDL bodies). */
export function dangerousFunctionReason(name: string): string | undefined {
  return dangerousFunctions.get(name.toLowerCase());
}
