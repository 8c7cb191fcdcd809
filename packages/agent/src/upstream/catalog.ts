import { backend, pg } from "@airlock/wire";
import { UpstreamError } from "./errors.js";
import { connectPostgres, type PostgresTarget } from "./postgres.js";

/** A relation of the database, as masking needs it. */
export interface CatalogRow {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly columns: string[];
  readonly definition: string;
}

const CATALOG_SQL = `
select c.oid::int8, n.nspname, c.relname, c.relkind,
  coalesce((select json_agg(case when a.attisdropped then '' else a.attname end order by a.attnum)
            from pg_attribute a where a.attrelid = c.oid and a.attnum > 0), '[]'::json)::text,
  case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid) else '' end
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
order by c.oid`;

/**
 * Reads the database's relations on a connection of its own (the agent's credentials): OID, schema,
 * name, kind, columns by attribute number, and the definition of views.
 */
export async function readCatalog(target: PostgresTarget): Promise<CatalogRow[]> {
  const session = await connectPostgres(target, new Map([["application_name", "airlock-agent-catalog"]]));
  const { socket, framer } = session;
  try {
    return await new Promise<CatalogRow[]>((resolve, reject) => {
      const rows: CatalogRow[] = [];
      let failure: UpstreamError | undefined;
      const timer = setTimeout(() => reject(new UpstreamError("server_error", "57014", "the catalog query timed out")), target.connectTimeoutMs * 3);
      socket.on("data", (chunk: Buffer) => {
        try {
          for (const message of framer.push(chunk)) {
            if (message.code === backend.DataRow) {
              const [oid, schema, name, kind, columns, definition] = pg.decodeDataRow(message.bytes).map((value) => value?.toString("utf8") ?? "");
              rows.push({ oid: Number(oid), schema: schema ?? "", name: name ?? "", kind: kind ?? "", columns: JSON.parse(columns ?? "[]") as string[], definition: definition ?? "" });
            } else if (message.code === backend.ErrorResponse) {
              failure = new UpstreamError("server_error", pg.decodeErrorFields(message.bytes).C ?? "XX000", `the catalog query failed: ${pg.decodeErrorFields(message.bytes).M ?? ""}`);
            } else if (message.code === backend.ReadyForQuery) {
              clearTimeout(timer);
              if (failure !== undefined) reject(failure);
              else resolve(rows);
            }
          }
        } catch (error) {
          clearTimeout(timer);
          reject(error);
        }
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.write(pg.encodeQuery(CATALOG_SQL));
      socket.resume();
    });
  } finally {
    socket.end(pg.encodeTerminate());
  }
}
