import { parsePlPgSQLSync } from "libpg-query";

/**
 * PostgreSQL's RawParseMode, which libpg_query writes as each PL/pgSQL expression's parseMode:
 * how the server itself parses that piece of text.
 * https://github.com/postgres/postgres/blob/REL_15_STABLE/src/include/parser/parser.h
 */
export const rawParseMode = {
  RAW_PARSE_DEFAULT: 0,
  RAW_PARSE_TYPE_NAME: 1,
  RAW_PARSE_PLPGSQL_EXPR: 2,
  RAW_PARSE_PLPGSQL_ASSIGN1: 3,
  RAW_PARSE_PLPGSQL_ASSIGN2: 4,
  RAW_PARSE_PLPGSQL_ASSIGN3: 5,
} as const;

/** One piece of SQL inside a PL/pgSQL body. */
export interface PlpgsqlExpression {
  readonly query: string;
  readonly parseMode: number;
}

/** What a PL/pgSQL body contains: every SQL text it runs, and whether it builds SQL at run time. */
export type PlpgsqlBody =
  | { readonly ok: true; readonly expressions: readonly PlpgsqlExpression[]; readonly dynamic: readonly string[] }
  | { readonly ok: false; readonly error: string };

/** Statement types that execute a query string built at run time. */
const dynamicStatements: ReadonlyMap<string, string> = new Map([
  ["PLpgSQL_stmt_dynexecute", "EXECUTE"],
  ["PLpgSQL_stmt_dynfors", "FOR ... IN EXECUTE"],
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Every PLpgSQL_expr in the tree, wherever it sits (statements, conditions, loop bounds, variable
 * defaults, cursor declarations, RAISE and ASSERT arguments, exception handlers), and every use of
 * dynamic SQL (EXECUTE, FOR ... IN EXECUTE, OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE).
 */
function collect(node: unknown, expressions: PlpgsqlExpression[], dynamic: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collect(item, expressions, dynamic);
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    const dynamicKind = dynamicStatements.get(key);
    if (dynamicKind !== undefined) dynamic.add(dynamicKind);
    if (isObject(value) && value["dynquery"] !== undefined) {
      dynamic.add(key === "PLpgSQL_stmt_open" ? "OPEN ... FOR EXECUTE" : key === "PLpgSQL_stmt_return_query" ? "RETURN QUERY EXECUTE" : "EXECUTE");
    }
    if (key === "PLpgSQL_expr" && isObject(value)) {
      const query = value["query"];
      const parseMode = value["parseMode"];
      if (typeof query === "string") {
        expressions.push({ query, parseMode: typeof parseMode === "number" ? parseMode : rawParseMode.RAW_PARSE_DEFAULT });
      }
    }
    collect(value, expressions, dynamic);
  }
}

/**
 * Parses a CREATE FUNCTION or CREATE PROCEDURE statement in LANGUAGE plpgsql with the server's own
 * PL/pgSQL compiler (as libpg_query embeds it) and lists the SQL its body runs.
 */
export function plpgsqlBody(createFunctionSql: string): PlpgsqlBody {
  let parsed: unknown;
  try {
    parsed = parsePlPgSQLSync(createFunctionSql);
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  const expressions: PlpgsqlExpression[] = [];
  const dynamic = new Set<string>();
  collect(parsed, expressions, dynamic);
  return { ok: true, expressions, dynamic: [...dynamic].sort() };
}

/**
 * A dollar-quote tag that does not occur in `body`, so the body can be wrapped verbatim.
 */
function dollarTag(body: string): string {
  for (let n = 0; ; n += 1) {
    const tag = n === 0 ? "$airlock$" : `$airlock${n}$`;
    if (!body.includes(tag)) return tag;
  }
}

/**
 * A DO block's body as a function the PL/pgSQL compiler accepts: libpg_query parses PL/pgSQL only
 * from CREATE FUNCTION statements. A DO block has no parameters and returns nothing.
 */
export function doBlockAsFunction(body: string): string {
  const tag = dollarTag(body);
  return `CREATE FUNCTION airlock_do_block() RETURNS void AS ${tag}${body}${tag} LANGUAGE plpgsql`;
}
