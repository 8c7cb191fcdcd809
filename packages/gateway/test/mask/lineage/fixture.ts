import type { CatalogRelation, CatalogSnapshot } from "../../../src/mask/lineage/index.js";

function relation(oid: number, name: string, kind: CatalogRelation["kind"], columns: readonly string[], sensitive: readonly string[]): CatalogRelation {
  return { oid, schema: "public", name, kind, columns, sensitive: new Set(sensitive) };
}

/**
 * The lineage fixture: customers with two sensitive columns (and two columns named after
 * keywords), orders and audit with none, a non-sensitive view, a sensitive view and a sensitive
 * materialized view.
 */
export const fixtureCatalog: CatalogSnapshot = {
  relations: [
    relation(16401, "customers", "table", ["id", "name", "email", "card_number", "delete", "drop"], ["email", "card_number"]),
    relation(16410, "orders", "table", ["id", "customer_id", "total", "status"], []),
    relation(16420, "audit", "table", ["id", "note"], []),
    relation(16430, "v_customers", "view", ["id", "name"], []),
    relation(16434, "v_contacts", "view", ["id", "email"], ["email"]),
    relation(16438, "mv_emails", "matview", ["email"], ["email"]),
  ],
  searchPath: ["public"],
};

/** The same relations with nothing declared sensitive. */
export const fixtureCatalogWithoutSensitive: CatalogSnapshot = {
  relations: fixtureCatalog.relations.map((entry) => ({ ...entry, sensitive: new Set<string>() })),
  searchPath: ["public"],
};

/** Sensitive columns of the fixture, as lineage names them. */
export const sensitive = {
  email: "public.customers.email",
  card: "public.customers.card_number",
  contactEmail: "public.v_contacts.email",
  matviewEmail: "public.mv_emails.email",
} as const;
