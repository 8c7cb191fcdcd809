import type { StatementClass } from "@airlock/policy";
import { knownSettings, userSettings } from "./builtins.generated.js";
import { quote } from "./facts.js";

/** A class for changing a setting, with the reason. */
export interface SettingVerdict {
  readonly class: StatementClass;
  readonly reason: string;
}

/**
 * Settings whose change is a change of identity or loads code into the server process. `role` and
 * `session_authorization` are not listed in pg_settings at all (GUC_NO_SHOW_ALL), so they are named
 * here rather than generated.
 */
const dangerousSettings: ReadonlyMap<string, string> = new Map([
  ["role", "changes the session's role"],
  ["session_authorization", "changes the session's authorization"],
  ["session_replication_role", "turns off triggers and foreign keys"],
  ["local_preload_libraries", "loads shared libraries"],
  ["session_preload_libraries", "loads shared libraries"],
  ["dynamic_library_path", "changes where shared libraries are loaded from"],
  ["jit_provider", "loads a shared library"],
]);

/** Pseudo-settings of `SET TRANSACTION ...` and friends (VAR_SET_MULTI). */
const transactionPseudoSettings: ReadonlySet<string> = new Set(["transaction", "session characteristics", "transaction snapshot"]);

/**
 * The class of changing a setting (SET, RESET, set_config): identity and library settings are
 * dangerous, settings any user may change and custom `prefix.name` ones are read, everything else
 * (superuser, server-wide, or unknown to the generated list) is admin.
 */
export function classifySetting(rawName: string, verb: string): SettingVerdict {
  const name = rawName.toLowerCase();
  const danger = dangerousSettings.get(name);
  if (danger !== undefined) return { class: "dangerous", reason: `${verb} ${quote(name)} ${danger}` };
  if (transactionPseudoSettings.has(name)) return { class: "read", reason: `${verb} of transaction characteristics` };
  if (userSettings.has(name)) return { class: "read", reason: `${verb} of ordinary setting ${quote(name)}` };
  if (name.includes(".")) return { class: "read", reason: `${verb} of custom setting ${quote(name)}` };
  if (knownSettings.has(name)) return { class: "admin", reason: `${verb} of privileged setting ${quote(name)}` };
  return { class: "admin", reason: `${verb} of unknown setting ${quote(name)}` };
}

/**
 * A search_path that names pg_catalog after another schema lets that schema's functions shadow
 * built-in ones, so calls this analyser takes for built-ins could reach user code afterwards.
 * Returns the schema that comes first, or undefined when pg_catalog is first or absent (then the
 * server searches it first implicitly).
 */
export function schemaBeforeCatalog(schemas: readonly string[]): string | undefined {
  const normalized = schemas.map((schema) => schema.trim()).filter((schema) => schema.length > 0);
  const catalog = normalized.findIndex((schema) => unquoteSchema(schema) === "pg_catalog");
  if (catalog <= 0) return undefined;
  return normalized[0];
}

/** A search_path element as the server reads it: "x" keeps its case, x is lowercased. */
function unquoteSchema(schema: string): string {
  if (schema.length >= 2 && schema.startsWith('"') && schema.endsWith('"')) return schema.slice(1, -1).replaceAll('""', '"');
  return schema.toLowerCase();
}

/** Splits a search_path value given as one string (set_config's form) into its elements. */
export function splitSearchPath(value: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (const char of value) {
    if (char === '"') quoted = !quoted;
    if (char === "," && !quoted) {
      out.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  out.push(current);
  return out;
}
