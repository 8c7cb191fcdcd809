import type { mysql } from "@airlock/wire";
import type { MaskCatalog, SensitiveColumn } from "../mask/index.js";
import type { RelationAccess } from "../inspect/index.js";
import type { Admitted } from "./common.js";
import type { MysqlCommand } from "./mysql-responses.js";

/** What masking does with a column of a result set. */
export type MysqlColumnPolicy = { readonly style: SensitiveColumn["style"]; readonly keep?: number; readonly label: string } | "detect" | "uncertain" | "clear";

/** The part of a statement's analysis column decisions need: the relations it reads. */
export interface ReadRelations {
  readonly statements: readonly { readonly relations: readonly RelationAccess[] }[];
}

/**
 * Decides each result column's masking from its column definition, which names the physical schema,
 * table and column for a plain column (MySQL sends `org_table` and `org_name`):
 * - a declared sensitive column of a table: its style;
 * - a column of a view derived from a sensitive one (the catalog analysed the view): redacted;
 * - a column with no physical origin (an expression), or from a relation the catalog does not know,
 *   while the statement reads a relation holding sensitive columns (or one the catalog does not
 *   know): uncertain, so masked (fail closed);
 * - anything else: the content detectors.
 * Only for identities that are masked: the others get no masker at all.
 */
export function mysqlColumnPolicy(
  masking: NonNullable<Admitted["masking"]>,
  statementOf: (command: MysqlCommand) => ReadRelations | undefined,
  defaultSchema: () => string | undefined,
): { decide(column: mysql.ColumnDefinition41, command: MysqlCommand): MysqlColumnPolicy; readsSensitive(command: MysqlCommand): boolean } {
  const detect = masking.config.detectors === undefined ? "clear" : "detect";
  const reads = (command: MysqlCommand) => readsSensitive(statementOf(command), indexCatalog(masking.catalog), defaultSchema());
  return {
    decide(column, command) {
      const tables = indexCatalog(masking.catalog);
      if (column.orgTable !== "" && column.orgName !== "") {
        const relation = tables.get(`${column.schema.toLowerCase()}.${column.orgTable.toLowerCase()}`);
        if (relation !== undefined) {
          const declared = relation.styles.get(column.orgName) ?? findCaseInsensitive(relation.styles, column.orgName);
          if (declared !== undefined) return { style: declared.style, ...(declared.keep === undefined ? {} : { keep: declared.keep }), label: `${relation.schema}.${relation.name}.${declared.column}` };
          if (relation.sensitive.has(column.orgName)) return { style: "redact", label: `${relation.schema}.${relation.name}.${column.orgName}` };
          return detect;
        }
      }
      return reads(command) ? "uncertain" : detect;
    },
    readsSensitive: reads,
  };
}

type Relation = MaskCatalog["byOid"] extends ReadonlyMap<number, infer R> ? R : never;

/** Relations by lowercase `schema.name` (MySQL has no OIDs; every relation's is 0). */
const indexes = new WeakMap<MaskCatalog, Map<string, Relation>>();

function indexCatalog(catalog: MaskCatalog): Map<string, Relation> {
  let index = indexes.get(catalog);
  if (index === undefined) {
    index = new Map();
    for (const relation of catalog.snapshot.relations as readonly Relation[]) index.set(`${relation.schema.toLowerCase()}.${relation.name.toLowerCase()}`, relation);
    indexes.set(catalog, index);
  }
  return index;
}

function findCaseInsensitive(styles: ReadonlyMap<string, SensitiveColumn>, name: string): SensitiveColumn | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of styles) if (key.toLowerCase() === lower) return value;
  return undefined;
}

/** Whether a statement reads a relation with sensitive columns, or one the catalog does not know (fail closed). */
function readsSensitive(statement: ReadRelations | undefined, tables: Map<string, Relation>, defaultSchema: string | undefined): boolean {
  if (statement === undefined) return true;
  for (const { relations } of statement.statements) {
    for (const relation of relations) {
      const name = relation.name.toLowerCase();
      const schema = relation.schema?.toLowerCase() ?? defaultSchema?.toLowerCase();
      const candidates = schema === undefined ? [...tables.values()].filter((entry) => entry.name.toLowerCase() === name) : [tables.get(`${schema}.${name}`)].filter((entry) => entry !== undefined);
      // information_schema and other system schemas are not in the catalog and hold no declared data.
      if (candidates.length === 0 && !SYSTEM_SCHEMAS.has(schema ?? "")) return true;
      if (candidates.some((entry) => entry.sensitive.size > 0)) return true;
    }
  }
  return false;
}

const SYSTEM_SCHEMAS = new Set(["information_schema", "performance_schema", "mysql", "sys"]);
