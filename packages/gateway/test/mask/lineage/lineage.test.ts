import { beforeAll, describe, expect, it } from "vitest";
import { loadAnalyzer } from "../../../src/inspect/index.js";
import { analyzeExposure, valueCatalogs, type CatalogSnapshot, type StatementExposure } from "../../../src/mask/lineage/index.js";
import { fixtureCatalog, fixtureCatalogWithoutSensitive, sensitive } from "./fixture.js";

beforeAll(async () => {
  await loadAnalyzer();
});

const E = sensitive.email;
const C = sensitive.card;
const VE = sensitive.contactEmail;
const ME = sensitive.matviewEmail;

type Rule =
  | "benign"
  | "direct"
  | "resolution"
  | "unknown-relation"
  | "expression"
  | "subquery"
  | "cte"
  | "derived"
  | "set-operation"
  | "lateral"
  | "join-using"
  | "view"
  | "whole-row"
  | "star"
  | "aggregate"
  | "window"
  | "user-function"
  | "value-catalog"
  | "copy"
  | "cursor-prepare"
  | "explain"
  | "returning"
  | "copies"
  | "inference"
  | "body"
  | "rename";

interface Case {
  readonly rule: Rule;
  readonly sql: string;
  readonly exposure: StatementExposure["exposure"];
  /** Sensitivity of each output, in order. */
  readonly outputs: readonly boolean[];
  /** Which outputs are `*`; default none. */
  readonly stars?: readonly boolean[];
  /** Sources of each output, when checked. */
  readonly sources?: readonly (readonly string[])[];
  /** `clause:column`, in any order; default none. */
  readonly inference?: readonly string[];
  /** Default false. */
  readonly copies?: boolean;
}

const cases: readonly Case[] = [
  // Benign: nothing sensitive reaches an output, a predicate or a write.
  { rule: "benign", sql: "SELECT id, name FROM customers", exposure: "none", outputs: [false, false] },
  { rule: "benign", sql: "SELECT count(*) FROM customers", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id", exposure: "none", outputs: [false, false] },
  {
    rule: "benign",
    sql: "SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY 2 DESC",
    exposure: "none",
    outputs: [false, false],
  },
  {
    rule: "benign",
    sql: "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'paid')",
    exposure: "none",
    outputs: [false],
  },
  {
    rule: "benign",
    sql: "WITH big AS (SELECT * FROM orders WHERE total > 100) SELECT customer_id, count(*) FROM big GROUP BY customer_id",
    exposure: "none",
    outputs: [false, false],
  },
  { rule: "benign", sql: "SELECT id, sum(total) OVER (PARTITION BY customer_id ORDER BY id) FROM orders", exposure: "none", outputs: [false, false] },
  {
    rule: "benign",
    sql: "SELECT customer_id, rank() OVER w FROM orders WINDOW w AS (PARTITION BY status ORDER BY total DESC)",
    exposure: "none",
    outputs: [false, false],
  },
  { rule: "benign", sql: "SELECT * FROM orders", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "TABLE orders", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "SELECT * FROM v_customers", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "SELECT name FROM v_customers UNION SELECT status FROM orders", exposure: "none", outputs: [false] },
  { rule: "benign", sql: 'SELECT "delete", "drop" FROM customers', exposure: "none", outputs: [false, false] },
  { rule: "benign", sql: "SELECT upper(name), length(name), name || '!' FROM customers", exposure: "none", outputs: [false, false, false] },
  { rule: "benign", sql: "SELECT id FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total > 10)", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT DISTINCT status FROM orders", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > 1", exposure: "none", outputs: [false, false] },
  {
    rule: "benign",
    sql: "WITH RECURSIVE r AS (SELECT id, customer_id FROM orders WHERE id = 1 UNION ALL SELECT o.id, o.customer_id FROM orders o JOIN r ON o.id = r.customer_id) SELECT * FROM r",
    exposure: "none",
    outputs: [false],
    stars: [true],
  },
  { rule: "benign", sql: "SELECT * FROM (SELECT id, name FROM customers) t", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "SELECT t.n FROM (SELECT name AS n FROM customers) AS t", exposure: "none", outputs: [false] },
  {
    rule: "benign",
    sql: "SELECT c.name, x.total FROM customers c, LATERAL (SELECT total FROM orders o WHERE o.customer_id = c.id LIMIT 1) x",
    exposure: "none",
    outputs: [false, false],
  },
  { rule: "benign", sql: "SELECT 1", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "VALUES (1, 'a'), (2, 'b')", exposure: "none", outputs: [false, false] },
  { rule: "benign", sql: "SELECT now(), current_user, version()", exposure: "none", outputs: [false, false, false] },
  { rule: "benign", sql: "SELECT relname FROM pg_class WHERE relkind = 'r'", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT * FROM generate_series(1, 10) g", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "SELECT id, name FROM customers ORDER BY name LIMIT 10 OFFSET 5", exposure: "none", outputs: [false, false] },
  { rule: "benign", sql: "SELECT count(DISTINCT customer_id), min(total), max(total), avg(total) FROM orders", exposure: "none", outputs: [false, false, false, false] },
  { rule: "benign", sql: "SELECT json_agg(o) FROM orders o", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT row_to_json(v) FROM v_customers v", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT ctid, xmin, tableoid FROM customers", exposure: "none", outputs: [false, false, false] },
  { rule: "benign", sql: "INSERT INTO orders (customer_id, total, status) VALUES (1, 10, 'new') RETURNING id", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "UPDATE orders SET status = 'paid' WHERE id = 1 RETURNING *", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "DELETE FROM audit WHERE id < 10", exposure: "none", outputs: [] },
  { rule: "benign", sql: "INSERT INTO audit (note) SELECT status FROM orders", exposure: "none", outputs: [] },
  { rule: "benign", sql: "CREATE TABLE o2 AS SELECT * FROM orders", exposure: "none", outputs: [] },
  { rule: "benign", sql: "COPY orders TO STDOUT", exposure: "none", outputs: [false], stars: [true] },
  { rule: "benign", sql: "COPY (SELECT id, name FROM customers) TO STDOUT", exposure: "none", outputs: [false, false] },
  { rule: "benign", sql: "EXPLAIN SELECT * FROM orders WHERE total > 10", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SET statement_timeout = '5s'", exposure: "none", outputs: [] },
  { rule: "benign", sql: "CREATE TABLE t1 (id int, note text)", exposure: "none", outputs: [] },
  { rule: "benign", sql: "SELECT name FROM customers WHERE id = $1", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT c.id FROM customers c JOIN v_customers v USING (id, name)", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "SELECT name FROM customers NATURAL JOIN v_customers", exposure: "none", outputs: [false] },
  { rule: "benign", sql: "DO $$ BEGIN UPDATE orders SET status = 'x' WHERE id = 1; END $$", exposure: "none", outputs: [] },
  { rule: "benign", sql: "CREATE FUNCTION add1(x int) RETURNS int RETURN x + 1", exposure: "none", outputs: [] },
  {
    rule: "benign",
    sql: "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$",
    exposure: "none",
    outputs: [],
  },
  { rule: "benign", sql: "MERGE INTO audit a USING orders o ON a.id = o.id WHEN MATCHED THEN UPDATE SET note = o.status", exposure: "none", outputs: [] },
  { rule: "benign", sql: "INSERT INTO customers (id, name, email) VALUES (1, 'a', 'a@example.com')", exposure: "none", outputs: [] },
  { rule: "benign", sql: "UPDATE customers SET email = lower(email) WHERE id = 1", exposure: "none", outputs: [] },
  { rule: "benign", sql: "INSERT INTO customers SELECT * FROM customers", exposure: "none", outputs: [] },
  { rule: "benign", sql: "ALTER TABLE customers RENAME COLUMN name TO full_name", exposure: "none", outputs: [] },
  { rule: "benign", sql: "CREATE VIEW v_orders AS SELECT id, total FROM orders", exposure: "none", outputs: [] },

  // Direct references and name resolution.
  { rule: "direct", sql: "SELECT email FROM customers", exposure: "columns", outputs: [true], sources: [[E]] },
  { rule: "direct", sql: "SELECT id, card_number, name FROM customers", exposure: "columns", outputs: [false, true, false], sources: [[], [C], []] },
  { rule: "direct", sql: "SELECT c.email AS e, c.name FROM customers c", exposure: "columns", outputs: [true, false] },
  { rule: "resolution", sql: "SELECT customers.email FROM customers", exposure: "columns", outputs: [true] },
  { rule: "resolution", sql: "SELECT public.customers.email FROM public.customers", exposure: "columns", outputs: [true] },
  { rule: "resolution", sql: "SELECT email FROM public.customers", exposure: "columns", outputs: [true] },
  // Correlated: email is not a column of orders, so it is the outer customers.email.
  { rule: "resolution", sql: "SELECT (SELECT email FROM orders LIMIT 1) FROM customers", exposure: "columns", outputs: [true], sources: [[E]] },
  // Ambiguity toward sensitive: the inner email is a renamed name, the outer one is customers.email.
  { rule: "resolution", sql: "SELECT (SELECT email FROM (SELECT name AS email FROM v_customers) s LIMIT 1) FROM customers", exposure: "columns", outputs: [true] },
  // A WITH query shadows the table of the same name.
  { rule: "resolution", sql: "WITH customers AS (SELECT 1 AS id, 'x' AS email) SELECT email FROM customers", exposure: "none", outputs: [false] },
  { rule: "resolution", sql: "SELECT email FROM customers, tmp_table", exposure: "columns", outputs: [true] },
  // Attribute notation: c.fullname may be a user function taking the row.
  { rule: "resolution", sql: "SELECT c.fullname FROM customers c", exposure: "uncertain", outputs: [true] },
  { rule: "resolution", sql: "SELECT nosuchcolumn FROM customers", exposure: "uncertain", outputs: [true] },

  // Relations the catalog does not know.
  { rule: "unknown-relation", sql: "SELECT * FROM tmp_table", exposure: "uncertain", outputs: [true], stars: [true] },
  { rule: "unknown-relation", sql: "SELECT x FROM customers, tmp_table", exposure: "uncertain", outputs: [true] },
  { rule: "unknown-relation", sql: "SELECT email FROM other.customers", exposure: "uncertain", outputs: [true] },
  { rule: "unknown-relation", sql: "SELECT t.a, c.name FROM pg_temp.t t, customers c", exposure: "uncertain", outputs: [true, false] },

  // Expressions, functions, operators, casts, CASE, COALESCE.
  { rule: "expression", sql: "SELECT lower(email) FROM customers", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT concat(name, email), name || card_number FROM customers", exposure: "columns", outputs: [true, true] },
  { rule: "expression", sql: "SELECT substring(email from 1 for 1), substr(card_number, 1, 4) FROM customers", exposure: "columns", outputs: [true, true] },
  { rule: "expression", sql: "SELECT email::bytea, CAST(card_number AS bigint), email::text COLLATE \"C\" FROM customers", exposure: "columns", outputs: [true, true, true] },
  { rule: "expression", sql: "SELECT format('%s', email), encode(convert_to(email, 'UTF8'), 'base64'), encode(email::bytea, 'hex') FROM customers", exposure: "columns", outputs: [true, true, true] },
  { rule: "expression", sql: "SELECT md5(email), reverse(email), length(card_number), ascii(email) FROM customers", exposure: "columns", outputs: [true, true, true, true] },
  { rule: "expression", sql: "SELECT CASE WHEN email LIKE 'a%' THEN 1 ELSE 0 END FROM customers", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT COALESCE(card_number, name), NULLIF(email, ''), GREATEST(email, name) FROM customers", exposure: "columns", outputs: [true, true, true] },
  { rule: "expression", sql: "SELECT ARRAY[email], (email, name) FROM customers", exposure: "columns", outputs: [true, true] },
  { rule: "expression", sql: "SELECT xmlelement(name e, email), JSON_OBJECT('e': card_number) FROM customers", exposure: "columns", outputs: [true, true] },
  { rule: "expression", sql: "SELECT email = 'a@example.com' AS hit FROM customers", exposure: "columns", outputs: [true] },

  // Exfiltration shapes: one character at a time, encodings, sub-queries in odd places.
  { rule: "expression", sql: "SELECT substr((SELECT email FROM customers WHERE id = 1), 3, 1)", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT (t.c).email FROM (SELECT c FROM customers c) t", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT (x).* FROM (SELECT c AS x FROM customers c) s", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT string_agg(x, '') FROM regexp_split_to_table((SELECT email FROM customers LIMIT 1), '') x", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT jsonb_path_query(to_jsonb(c), '$.email') FROM customers c", exposure: "columns", outputs: [true] },
  { rule: "expression", sql: "SELECT * FROM dblink('dbname=x', 'SELECT email FROM customers') AS t(e text)", exposure: "uncertain", outputs: [true], stars: [true] },
  { rule: "expression", sql: "SELECT pg_read_file('/var/lib/postgresql/dump.csv')", exposure: "uncertain", outputs: [true] },

  // Sub-queries in the target list.
  { rule: "subquery", sql: "SELECT (SELECT email FROM customers c2 WHERE c2.id = o.customer_id) FROM orders o", exposure: "columns", outputs: [true] },
  { rule: "subquery", sql: "SELECT ARRAY(SELECT card_number FROM customers)", exposure: "columns", outputs: [true], sources: [[C]] },
  {
    rule: "subquery",
    sql: "SELECT EXISTS (SELECT 1 FROM customers WHERE email LIKE 'a%')",
    exposure: "columns",
    outputs: [true],
    inference: [`where:${E}`],
  },
  {
    rule: "subquery",
    sql: "SELECT (SELECT count(*) FROM customers WHERE email LIKE 'a%')",
    exposure: "columns",
    outputs: [true],
    inference: [`where:${E}`],
  },
  { rule: "subquery", sql: "SELECT name IN (SELECT email FROM customers) FROM v_customers", exposure: "columns", outputs: [true] },

  // WITH queries.
  { rule: "cte", sql: "WITH x AS (SELECT email AS e FROM customers) SELECT upper(e) FROM x", exposure: "columns", outputs: [true] },
  { rule: "cte", sql: "WITH x AS (SELECT * FROM customers) SELECT name FROM x", exposure: "none", outputs: [false] },
  { rule: "cte", sql: "WITH x AS (SELECT * FROM customers) SELECT card_number FROM x", exposure: "columns", outputs: [true], sources: [[C]] },
  { rule: "cte", sql: "WITH x(a, b) AS (SELECT name, email FROM customers) SELECT b FROM x", exposure: "columns", outputs: [true] },
  { rule: "cte", sql: "WITH a AS (SELECT email FROM customers), b AS (SELECT email AS m FROM a) SELECT m FROM b", exposure: "columns", outputs: [true] },
  {
    rule: "cte",
    sql: "WITH RECURSIVE r(n, e) AS (SELECT 1, ''::text UNION ALL SELECT n + 1, (SELECT email FROM customers LIMIT 1) FROM r WHERE n < 3) SELECT e FROM r",
    exposure: "columns",
    outputs: [true],
  },
  {
    rule: "cte",
    sql: "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers UNION ALL SELECT n + 1, lower(e) FROM r WHERE n < 3) SELECT n, e FROM r",
    exposure: "columns",
    outputs: [false, true],
  },
  {
    rule: "cte",
    sql: "WITH RECURSIVE r(n, a, b) AS (SELECT 1, name, email FROM customers UNION ALL SELECT n + 1, b, a FROM r WHERE n < 3) SELECT a FROM r",
    exposure: "columns",
    outputs: [true],
  },
  {
    rule: "cte",
    sql: "WITH RECURSIVE r(n, e) AS (SELECT id, email FROM customers UNION ALL SELECT n + 1, e FROM r WHERE n < 3) SEARCH DEPTH FIRST BY e SET ord SELECT ord FROM r",
    exposure: "columns",
    outputs: [true],
  },
  { rule: "cte", sql: "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING email) SELECT * FROM d", exposure: "columns", outputs: [true], stars: [true] },

  // Sub-queries in FROM.
  { rule: "derived", sql: "SELECT e FROM (SELECT email AS e, name FROM customers) t", exposure: "columns", outputs: [true] },
  { rule: "derived", sql: "SELECT t.e FROM (SELECT email FROM customers) t(e)", exposure: "columns", outputs: [true] },
  { rule: "derived", sql: "SELECT t.name FROM (SELECT * FROM customers) t", exposure: "none", outputs: [false] },
  { rule: "derived", sql: "SELECT t.* FROM (SELECT id, email FROM customers) t", exposure: "columns", outputs: [true], stars: [true] },
  { rule: "derived", sql: "SELECT x FROM (SELECT lower(email) AS x FROM (SELECT email FROM customers) a) b", exposure: "columns", outputs: [true] },
  { rule: "derived", sql: "SELECT lower FROM (SELECT lower(email) FROM customers) t", exposure: "columns", outputs: [true] },
  { rule: "derived", sql: "SELECT column2 FROM (VALUES (1, (SELECT email FROM customers LIMIT 1))) v", exposure: "columns", outputs: [true] },

  // UNION, INTERSECT, EXCEPT.
  { rule: "set-operation", sql: "SELECT name FROM customers UNION SELECT email FROM customers", exposure: "columns", outputs: [true] },
  { rule: "set-operation", sql: "SELECT id, name FROM customers UNION ALL SELECT id, card_number FROM customers", exposure: "columns", outputs: [false, true] },
  { rule: "set-operation", sql: "SELECT email FROM customers INTERSECT SELECT name FROM v_customers", exposure: "columns", outputs: [true] },
  { rule: "set-operation", sql: "SELECT name FROM v_customers EXCEPT SELECT email FROM v_contacts", exposure: "columns", outputs: [true], sources: [[VE]] },
  { rule: "set-operation", sql: "SELECT * FROM (SELECT name FROM v_customers UNION SELECT card_number FROM customers) u", exposure: "columns", outputs: [true], stars: [true] },
  { rule: "set-operation", sql: "VALUES ((SELECT email FROM customers LIMIT 1), 1)", exposure: "columns", outputs: [true, false] },

  // LATERAL.
  { rule: "lateral", sql: "SELECT x.n FROM customers c, LATERAL (SELECT c.email AS n) x", exposure: "columns", outputs: [true] },
  { rule: "lateral", sql: "SELECT j.value FROM customers c, LATERAL jsonb_each_text(to_jsonb(c)) j", exposure: "columns", outputs: [true] },
  { rule: "lateral", sql: "SELECT u FROM customers c CROSS JOIN LATERAL unnest(ARRAY[c.card_number]) u", exposure: "columns", outputs: [true] },
  { rule: "lateral", sql: "SELECT * FROM unnest(ARRAY(SELECT email FROM customers))", exposure: "columns", outputs: [true], stars: [true] },

  // JOIN USING and NATURAL.
  { rule: "join-using", sql: "SELECT * FROM orders JOIN customers USING (id)", exposure: "columns", outputs: [true], stars: [true] },
  {
    rule: "join-using",
    sql: "SELECT email FROM customers JOIN v_contacts USING (id, email)",
    exposure: "columns",
    outputs: [true],
    sources: [[E, VE]],
    inference: [`join:${E}`, `join:${VE}`],
  },
  {
    rule: "join-using",
    sql: "SELECT id FROM customers NATURAL JOIN v_contacts",
    exposure: "none",
    outputs: [false],
    inference: [`join:${E}`, `join:${VE}`],
  },
  { rule: "join-using", sql: "SELECT j.email FROM (customers c JOIN orders o ON o.customer_id = c.id) j", exposure: "columns", outputs: [true] },
  { rule: "join-using", sql: "SELECT x.email FROM customers JOIN v_contacts USING (id) AS x", exposure: "uncertain", outputs: [true] },

  // Views and materialized views.
  { rule: "view", sql: "SELECT email FROM v_contacts", exposure: "columns", outputs: [true], sources: [[VE]] },
  { rule: "view", sql: "SELECT id FROM v_contacts", exposure: "none", outputs: [false] },
  { rule: "view", sql: "SELECT * FROM mv_emails", exposure: "columns", outputs: [true], stars: [true], sources: [[ME]] },
  { rule: "view", sql: "SELECT upper(email) FROM mv_emails WHERE email IS NOT NULL", exposure: "columns", outputs: [true], inference: [`where:${ME}`] },

  // Whole-row references.
  { rule: "whole-row", sql: "SELECT c FROM customers c", exposure: "columns", outputs: [true], sources: [[C, E]] },
  { rule: "whole-row", sql: "SELECT customers FROM customers", exposure: "columns", outputs: [true] },
  { rule: "whole-row", sql: "SELECT row_to_json(c) FROM customers c", exposure: "columns", outputs: [true] },
  { rule: "whole-row", sql: "SELECT to_jsonb(c) - 'email' - 'card_number' FROM customers c", exposure: "columns", outputs: [true] },
  { rule: "whole-row", sql: "SELECT ROW(c.*) FROM customers c", exposure: "columns", outputs: [true] },
  { rule: "whole-row", sql: "SELECT (c).email, (c).name FROM customers c", exposure: "columns", outputs: [true, false] },
  { rule: "whole-row", sql: "SELECT hstore(c) FROM customers c", exposure: "uncertain", outputs: [true], copies: true },
  { rule: "whole-row", sql: "SELECT (SELECT c FROM customers c LIMIT 1)", exposure: "columns", outputs: [true] },
  { rule: "whole-row", sql: "SELECT row_to_json(v) FROM v_contacts v", exposure: "columns", outputs: [true], sources: [[VE]] },

  // `*` and `t.*`.
  { rule: "star", sql: "SELECT * FROM customers", exposure: "columns", outputs: [true], stars: [true], sources: [[C, E]] },
  { rule: "star", sql: "TABLE customers", exposure: "columns", outputs: [true], stars: [true] },
  { rule: "star", sql: "SELECT o.*, c.* FROM orders o JOIN customers c ON c.id = o.customer_id", exposure: "columns", outputs: [false, true], stars: [true, true] },
  { rule: "star", sql: "SELECT c.*, o.total FROM customers c JOIN orders o ON o.customer_id = c.id", exposure: "columns", outputs: [true, false], stars: [true, false] },
  { rule: "star", sql: "SELECT * FROM customers WHERE id = 1 FOR UPDATE", exposure: "columns", outputs: [true], stars: [true] },

  // Aggregates.
  { rule: "aggregate", sql: "SELECT string_agg(email, ',') FROM customers", exposure: "columns", outputs: [true] },
  { rule: "aggregate", sql: "SELECT array_agg(c), json_agg(c.*) FROM customers c", exposure: "columns", outputs: [true, true] },
  { rule: "aggregate", sql: "SELECT jsonb_build_object('e', email), json_object_agg(id, card_number) FROM customers", exposure: "columns", outputs: [true, true] },
  { rule: "aggregate", sql: "SELECT min(email), count(DISTINCT card_number) FROM customers", exposure: "columns", outputs: [true, true] },
  {
    rule: "aggregate",
    sql: "SELECT string_agg(name, ',' ORDER BY email), count(*) FILTER (WHERE card_number LIKE '4%') FROM customers",
    exposure: "columns",
    outputs: [true, true],
    inference: [`order_by:${E}`, `where:${C}`],
  },

  // Window functions.
  { rule: "window", sql: "SELECT first_value(email) OVER (ORDER BY id) FROM customers", exposure: "columns", outputs: [true] },
  {
    rule: "window",
    sql: "SELECT name, row_number() OVER (ORDER BY email) FROM customers",
    exposure: "columns",
    outputs: [false, true],
    inference: [`window:${E}`],
  },
  {
    rule: "window",
    sql: "SELECT name, rank() OVER w FROM customers WINDOW w AS (PARTITION BY card_number)",
    exposure: "columns",
    outputs: [false, true],
    inference: [`window:${C}`],
  },

  // User functions and operators.
  { rule: "user-function", sql: "SELECT my_func(id) FROM customers", exposure: "uncertain", outputs: [true] },
  { rule: "user-function", sql: "SELECT name, public.lower(name) FROM customers", exposure: "uncertain", outputs: [false, true] },
  { rule: "user-function", sql: "SELECT x FROM (SELECT my_func() AS x) t", exposure: "uncertain", outputs: [true] },
  { rule: "user-function", sql: "SELECT * FROM my_set_returning_function()", exposure: "uncertain", outputs: [true], stars: [true] },
  { rule: "user-function", sql: "SELECT id ===> 1 FROM orders", exposure: "uncertain", outputs: [true] },
  { rule: "user-function", sql: "SELECT my_hash(email) FROM customers", exposure: "uncertain", outputs: [true], copies: true },
  { rule: "user-function", sql: "SELECT query_to_xml('SELECT email FROM customers', true, false, '')", exposure: "uncertain", outputs: [true] },
  { rule: "user-function", sql: "SELECT table_to_xml('customers', true, false, '')", exposure: "uncertain", outputs: [true] },
  { rule: "user-function", sql: "SELECT name FROM customers WHERE my_check(id)", exposure: "none", outputs: [false] },

  // Value catalogs.
  { rule: "value-catalog", sql: "SELECT * FROM pg_stats", exposure: "columns", outputs: [true], stars: [true] },
  {
    rule: "value-catalog",
    sql: "SELECT attname, most_common_vals FROM pg_catalog.pg_stats WHERE tablename = 'customers'",
    exposure: "columns",
    outputs: [true, true],
    // Every column of a value catalog counts as sensitive, its predicates too.
    inference: ["where:pg_catalog.pg_stats.tablename"],
  },
  { rule: "value-catalog", sql: "SELECT 1, (SELECT count(*) FROM pg_statistic)", exposure: "columns", outputs: [true, true] },
  { rule: "value-catalog", sql: "SELECT stxdmcv FROM pg_statistic_ext_data", exposure: "columns", outputs: [true] },
  { rule: "value-catalog", sql: "SELECT most_common_vals FROM pg_stats_ext UNION ALL SELECT most_common_vals FROM pg_stats_ext_exprs", exposure: "columns", outputs: [true] },

  // COPY.
  { rule: "copy", sql: "COPY (SELECT email FROM customers) TO STDOUT", exposure: "columns", outputs: [true] },
  { rule: "copy", sql: "COPY customers TO STDOUT", exposure: "columns", outputs: [true], stars: [true] },
  { rule: "copy", sql: "COPY customers (id, email) TO STDOUT WITH (FORMAT csv)", exposure: "columns", outputs: [false, true] },
  { rule: "copy", sql: "COPY (SELECT email FROM customers) TO '/tmp/x'", exposure: "none", outputs: [], copies: true },
  { rule: "copy", sql: "COPY customers TO PROGRAM 'cat'", exposure: "none", outputs: [], copies: true },
  { rule: "copy", sql: "COPY (DELETE FROM customers WHERE id = 1 RETURNING card_number) TO STDOUT", exposure: "columns", outputs: [true] },
  { rule: "copy", sql: "COPY audit FROM STDIN", exposure: "none", outputs: [] },

  // Cursors and prepared statements: the caller keeps the exposure for FETCH and EXECUTE.
  { rule: "cursor-prepare", sql: "DECLARE c CURSOR FOR SELECT email FROM customers", exposure: "columns", outputs: [true] },
  { rule: "cursor-prepare", sql: "DECLARE c CURSOR WITH HOLD FOR SELECT name FROM customers", exposure: "none", outputs: [false] },
  { rule: "cursor-prepare", sql: "PREPARE p AS SELECT card_number FROM customers WHERE id = $1", exposure: "columns", outputs: [true] },
  { rule: "cursor-prepare", sql: "PREPARE p (int) AS SELECT name FROM customers WHERE id = $1", exposure: "none", outputs: [false] },
  { rule: "cursor-prepare", sql: "PREPARE p AS INSERT INTO audit (note) SELECT email FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "cursor-prepare", sql: "EXECUTE p(1)", exposure: "uncertain", outputs: [] },
  { rule: "cursor-prepare", sql: "FETCH 10 FROM c", exposure: "uncertain", outputs: [] },
  { rule: "cursor-prepare", sql: "MOVE 10 IN c", exposure: "none", outputs: [] },

  // EXPLAIN.
  { rule: "explain", sql: "EXPLAIN SELECT email FROM customers", exposure: "none", outputs: [false] },
  { rule: "explain", sql: "EXPLAIN ANALYZE SELECT email FROM customers WHERE email = 'x'", exposure: "none", outputs: [false], inference: [`where:${E}`] },
  { rule: "explain", sql: "EXPLAIN (ANALYZE, VERBOSE) CREATE TABLE t AS SELECT email FROM customers", exposure: "none", outputs: [false], copies: true },
  { rule: "explain", sql: "EXPLAIN CREATE TABLE t AS SELECT email FROM customers", exposure: "none", outputs: [false] },

  // RETURNING.
  { rule: "returning", sql: "DELETE FROM customers WHERE id = 1 RETURNING email", exposure: "columns", outputs: [true] },
  { rule: "returning", sql: "INSERT INTO customers (id, name) VALUES (1, 'x') RETURNING *", exposure: "columns", outputs: [true], stars: [true] },
  { rule: "returning", sql: "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING id, card_number", exposure: "columns", outputs: [false, true] },
  { rule: "returning", sql: "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING old.email, new.name", exposure: "columns", outputs: [true, false] },
  { rule: "returning", sql: "UPDATE orders o SET status = 'x' FROM customers c WHERE c.id = o.customer_id RETURNING c.email, o.id", exposure: "columns", outputs: [true, false] },
  { rule: "returning", sql: "MERGE INTO audit a USING customers c ON a.id = c.id WHEN MATCHED THEN DELETE RETURNING c.card_number", exposure: "columns", outputs: [true] },

  // Copies past masking.
  { rule: "copies", sql: "INSERT INTO audit (note) SELECT email FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "INSERT INTO audit VALUES (1, (SELECT email FROM customers LIMIT 1))", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "INSERT INTO audit SELECT id, card_number FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "INSERT INTO customers (email, card_number) SELECT card_number, email FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "UPDATE customers SET name = email", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "UPDATE orders SET status = c.email FROM customers c WHERE c.id = orders.customer_id", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "UPDATE orders SET (status, total) = (SELECT email, 1 FROM customers LIMIT 1)", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "UPDATE orders SET (total, status) = (SELECT 1, name FROM customers LIMIT 1)", exposure: "none", outputs: [] },
  { rule: "copies", sql: "UPDATE audit SET note = my_func(id)", exposure: "none", outputs: [], copies: true },
  {
    rule: "copies",
    sql: "INSERT INTO customers (id, email) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = customers.email",
    exposure: "none",
    outputs: [],
    copies: true,
  },
  { rule: "copies", sql: "INSERT INTO customers (id, email) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = excluded.email", exposure: "none", outputs: [] },
  { rule: "copies", sql: "MERGE INTO audit a USING customers c ON a.id = c.id WHEN MATCHED THEN UPDATE SET note = c.email", exposure: "none", outputs: [], copies: true },
  {
    rule: "copies",
    sql: "MERGE INTO audit a USING customers c ON a.id = c.id WHEN NOT MATCHED THEN INSERT (id, note) VALUES (c.id, c.card_number)",
    exposure: "none",
    outputs: [],
    copies: true,
  },
  { rule: "copies", sql: "CREATE TABLE t AS SELECT email FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "CREATE TEMP TABLE t AS SELECT md5(email) FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "SELECT email INTO t2 FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "CREATE MATERIALIZED VIEW m AS SELECT lower(email) FROM customers", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "CREATE MATERIALIZED VIEW m AS SELECT email FROM customers WITH NO DATA", exposure: "none", outputs: [] },
  { rule: "copies", sql: "CREATE TABLE t AS EXECUTE p", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "WITH u AS (UPDATE audit SET note = (SELECT email FROM customers LIMIT 1) RETURNING id) SELECT id FROM u", exposure: "none", outputs: [false], copies: true },
  { rule: "copies", sql: "SELECT set_config('app.x', email, false) FROM customers", exposure: "columns", outputs: [true], copies: true },
  { rule: "copies", sql: "SELECT pg_notify('c', email) FROM customers", exposure: "columns", outputs: [true], copies: true },
  { rule: "copies", sql: "SELECT lo_from_bytea(0, card_number::bytea) FROM customers", exposure: "columns", outputs: [true], copies: true },
  { rule: "copies", sql: "CREATE VIEW v3 AS SELECT leak()", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "CREATE VIEW v4 AS SELECT email FROM customers", exposure: "none", outputs: [] },
  { rule: "copies", sql: "ALTER TABLE customers ALTER COLUMN name TYPE text USING email", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "ALTER TABLE customers ADD COLUMN e2 text GENERATED ALWAYS AS (lower(email)) STORED", exposure: "none", outputs: [], copies: true },
  { rule: "copies", sql: "CREATE RULE r AS ON INSERT TO customers DO ALSO INSERT INTO audit (note) VALUES (new.email)", exposure: "none", outputs: [], copies: true },

  // Inference: predicates, orderings and groupings on sensitive columns, sub-queries included.
  { rule: "inference", sql: "SELECT name FROM customers WHERE email LIKE 'a%'", exposure: "none", outputs: [false], inference: [`where:${E}`] },
  { rule: "inference", sql: "SELECT id FROM customers WHERE substring(card_number, 1, 1) = '4'", exposure: "none", outputs: [false], inference: [`where:${C}`] },
  { rule: "inference", sql: "SELECT name FROM customers ORDER BY email", exposure: "none", outputs: [false], inference: [`order_by:${E}`] },
  { rule: "inference", sql: "SELECT email AS e FROM customers ORDER BY e", exposure: "columns", outputs: [true], inference: [`order_by:${E}`] },
  { rule: "inference", sql: "SELECT name, email FROM customers ORDER BY 2", exposure: "columns", outputs: [false, true], inference: [`order_by:${E}`] },
  { rule: "inference", sql: "SELECT count(*) FROM customers GROUP BY email", exposure: "none", outputs: [false], inference: [`group_by:${E}`] },
  { rule: "inference", sql: "SELECT count(*) FROM customers GROUP BY ROLLUP (name, card_number)", exposure: "none", outputs: [false], inference: [`group_by:${C}`] },
  { rule: "inference", sql: "SELECT name, count(*) FROM customers GROUP BY 1 HAVING max(email) > 'm'", exposure: "none", outputs: [false, false], inference: [`having:${E}`] },
  { rule: "inference", sql: "SELECT DISTINCT ON (email) name FROM customers", exposure: "none", outputs: [false], inference: [`distinct_on:${E}`] },
  {
    rule: "inference",
    sql: "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id AND c.email = 'a@example.com'",
    exposure: "none",
    outputs: [false],
    inference: [`join:${E}`],
  },
  {
    rule: "inference",
    sql: "SELECT name FROM v_customers WHERE EXISTS (SELECT 1 FROM customers WHERE email LIKE 'a%')",
    exposure: "none",
    outputs: [false],
    inference: [`where:${E}`],
  },
  { rule: "inference", sql: "SELECT id FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE email = 'x')", exposure: "none", outputs: [false], inference: [`where:${E}`] },
  { rule: "inference", sql: "SELECT name FROM v_customers WHERE name IN (SELECT email FROM customers)", exposure: "none", outputs: [false], inference: [`where:${E}`] },
  {
    rule: "inference",
    sql: "SELECT name FROM (SELECT * FROM customers WHERE card_number LIKE '4%') t",
    exposure: "none",
    outputs: [false],
    inference: [`where:${C}`],
  },
  {
    rule: "inference",
    sql: "SELECT name FROM customers LIMIT (SELECT length(email) FROM customers LIMIT 1)",
    exposure: "none",
    outputs: [false],
    inference: [`limit:${E}`],
  },
  {
    rule: "inference",
    sql: "SELECT name FROM customers OFFSET (SELECT ascii(card_number) FROM customers LIMIT 1)",
    exposure: "none",
    outputs: [false],
    inference: [`limit:${C}`],
  },
  { rule: "inference", sql: "UPDATE customers SET name = 'x' WHERE email = 'y' RETURNING id", exposure: "none", outputs: [false], inference: [`where:${E}`] },
  { rule: "inference", sql: "DELETE FROM orders USING customers c WHERE c.id = orders.customer_id AND c.card_number LIKE '4%'", exposure: "none", outputs: [], inference: [`where:${C}`] },
  {
    rule: "inference",
    sql: "SELECT name FROM customers WHERE email LIKE 'a%' AND lower(email) <> '' ORDER BY email",
    exposure: "none",
    outputs: [false],
    inference: [`where:${E}`, `order_by:${E}`],
  },

  {
    rule: "inference",
    sql: "SELECT name, sum(id) OVER (ORDER BY id ROWS BETWEEN (SELECT length(email) FROM customers LIMIT 1) PRECEDING AND CURRENT ROW) FROM customers",
    exposure: "columns",
    outputs: [false, true],
    inference: [`window:${E}`],
  },
  {
    rule: "inference",
    sql: "SELECT name FROM customers TABLESAMPLE BERNOULLI ((SELECT length(card_number) FROM customers LIMIT 1))",
    exposure: "none",
    outputs: [false],
    inference: [`where:${C}`],
  },
  { rule: "inference", sql: "SELECT id FROM customers c WHERE c = ROW(1, 'a', 'b', 'c', 'd', 'e')::customers", exposure: "none", outputs: [false], inference: [`where:${C}`, `where:${E}`] },
  {
    rule: "inference",
    sql: "SELECT count(*) FROM customers GROUP BY GROUPING SETS ((email), ())",
    exposure: "none",
    outputs: [false],
    inference: [`group_by:${E}`],
  },

  // DO blocks and function bodies.
  { rule: "body", sql: "DO $$ BEGIN RAISE NOTICE '%', (SELECT email FROM customers LIMIT 1); END $$", exposure: "uncertain", outputs: [] },
  {
    rule: "body",
    sql: "DO $$ DECLARE v text; BEGIN SELECT email INTO v FROM customers LIMIT 1; INSERT INTO audit (note) VALUES (v); END $$",
    exposure: "uncertain",
    outputs: [],
    copies: true,
  },
  { rule: "body", sql: "DO $$ BEGIN PERFORM 1 FROM customers WHERE email LIKE 'a%'; END $$", exposure: "uncertain", outputs: [], inference: [`where:${E}`] },
  { rule: "body", sql: "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", exposure: "uncertain", outputs: [], copies: true },
  { rule: "body", sql: "DO LANGUAGE plperl $$ return 1; $$", exposure: "uncertain", outputs: [], copies: true },
  { rule: "body", sql: "CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS 'SELECT email FROM customers LIMIT 1'", exposure: "none", outputs: [] },
  {
    rule: "body",
    sql: "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (note) SELECT email FROM customers; END $$",
    exposure: "none",
    outputs: [],
    copies: true,
  },
  {
    rule: "body",
    sql: "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN FOR r IN SELECT card_number FROM customers LOOP PERFORM pg_notify('c', r.card_number); END LOOP; END $$",
    exposure: "none",
    outputs: [],
    copies: true,
  },
  {
    rule: "body",
    sql: "CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (note) VALUES (NEW.email); RETURN NEW; END $$",
    exposure: "none",
    outputs: [],
    copies: true,
  },
  {
    rule: "body",
    sql: "CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (note) VALUES (row_to_json(NEW)::text); RETURN NEW; END $$",
    exposure: "none",
    outputs: [],
    copies: true,
  },
  { rule: "body", sql: "CREATE FUNCTION f2() RETURNS void BEGIN ATOMIC INSERT INTO audit (note) SELECT email FROM customers; END", exposure: "none", outputs: [], copies: true },
  { rule: "body", sql: "CREATE FUNCTION f4() RETURNS text LANGUAGE plpython3u AS 'return 1'", exposure: "none", outputs: [], copies: true },
  { rule: "body", sql: "CALL my_proc()", exposure: "uncertain", outputs: [] },
  { rule: "body", sql: "CALL my_proc((SELECT email FROM customers LIMIT 1))", exposure: "uncertain", outputs: [], copies: true },

  // Renames: masking names columns by schema.table.column.
  { rule: "rename", sql: "ALTER TABLE customers RENAME COLUMN email TO contact", exposure: "none", outputs: [], copies: true },
  { rule: "rename", sql: "ALTER TABLE customers RENAME TO c2", exposure: "none", outputs: [], copies: true },
  { rule: "rename", sql: "ALTER TABLE orders RENAME TO o2", exposure: "none", outputs: [] },
  { rule: "rename", sql: "ALTER TABLE customers SET SCHEMA archive", exposure: "none", outputs: [], copies: true },
  { rule: "rename", sql: "ALTER SCHEMA public RENAME TO p2", exposure: "none", outputs: [], copies: true },
  { rule: "rename", sql: "ALTER MATERIALIZED VIEW mv_emails RENAME COLUMN email TO e", exposure: "none", outputs: [], copies: true },
];

function only(sql: string, catalog: CatalogSnapshot = fixtureCatalog): StatementExposure {
  const result = analyzeExposure(sql, catalog);
  if (!result.ok) throw new Error(`expected an analysis of ${sql}, got error: ${result.error}`);
  expect(result.statements).toHaveLength(1);
  return result.statements[0] as StatementExposure;
}

describe("corpus", () => {
  it("is large, covers every rule, and has benign look-alikes", () => {
    expect(cases.length).toBeGreaterThanOrEqual(120);
    expect(new Set(cases.map((entry) => entry.sql)).size).toBe(cases.length);
    const benign = cases.filter((entry) => entry.rule === "benign");
    expect(benign.length).toBeGreaterThanOrEqual(30);
    for (const entry of benign) {
      expect(entry.exposure, entry.sql).toBe("none");
      expect(entry.inference ?? [], entry.sql).toEqual([]);
      expect(entry.copies ?? false, entry.sql).toBe(false);
    }
    const rules = new Set(cases.map((entry) => entry.rule));
    expect(rules.size).toBe(26);
  });

  it.each(cases.map((entry) => [`${entry.rule}: ${entry.sql}`, entry] as const))("%s", (_name, entry) => {
    const result = only(entry.sql);
    const why = result.reasons.join("; ");
    expect(result.exposure, why).toBe(entry.exposure);
    expect(
      result.outputs.map((item) => item.sensitive),
      why,
    ).toEqual(entry.outputs);
    expect(
      result.outputs.map((item) => item.star),
      why,
    ).toEqual(entry.stars ?? entry.outputs.map(() => false));
    if (entry.sources !== undefined) {
      expect(
        result.outputs.map((item) => item.sources),
        why,
      ).toEqual(entry.sources);
    }
    expect(
      result.inference.map((item) => `${item.clause}:${item.column}`).sort(),
      why,
    ).toEqual([...(entry.inference ?? [])].sort());
    expect(result.copiesSensitive, why).toBe(entry.copies ?? false);
    expect(result.reasons.length).toBeGreaterThan(0);
    for (const output of result.outputs) {
      // A sensitive output names its sources unless its origin is uncertain.
      if (output.sources.length > 0) expect(output.sensitive).toBe(true);
      if (output.sensitive && output.sources.length === 0) expect(result.exposure).toBe("uncertain");
    }
  });
});

describe("analyzeExposure", () => {
  it("says none for everything when no column of the catalog is sensitive", () => {
    for (const sql of [
      "SELECT * FROM customers",
      "SELECT email FROM customers WHERE card_number LIKE '4%'",
      "SELECT * FROM tmp_table",
      "SELECT my_func(email) FROM customers",
      "SELECT * FROM pg_stats",
      "INSERT INTO audit (note) SELECT email FROM customers",
      "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$",
    ]) {
      const result = only(sql, fixtureCatalogWithoutSensitive);
      expect(result.exposure, sql).toBe("none");
      expect(result.outputs.every((item) => !item.sensitive && item.sources.length === 0), sql).toBe(true);
      expect(result.inference, sql).toEqual([]);
      expect(result.copiesSensitive, sql).toBe(false);
    }
    expect(only("SELECT *, email FROM customers", fixtureCatalogWithoutSensitive).outputs).toEqual([
      { star: true, sensitive: false, sources: [] },
      { star: false, sensitive: false, sources: [] },
    ]);
  });

  it("resolves unqualified relations through the search path", () => {
    const catalog: CatalogSnapshot = {
      relations: [
        ...fixtureCatalog.relations,
        { oid: 17001, schema: "app", name: "customers", kind: "table", columns: ["id", "email"], sensitive: new Set() },
        { oid: 17002, schema: "app", name: "tokens", kind: "table", columns: ["id", "secret"], sensitive: new Set(["secret"]) },
      ],
      searchPath: ["app", "public"],
    };
    expect(only("SELECT email FROM customers", catalog).exposure).toBe("none");
    expect(only("SELECT email FROM public.customers", catalog).outputs[0]?.sources).toEqual([E]);
    expect(only("SELECT secret FROM tokens", catalog).outputs[0]?.sources).toEqual(["app.tokens.secret"]);
    expect(only("SELECT secret FROM tokens", fixtureCatalog).exposure).toBe("uncertain");
    expect(only("SELECT orders.total FROM orders", catalog).exposure).toBe("none");
  });

  it("searches pg_catalog first for catalog names unless the search path places it", () => {
    const shadow = { oid: 17003, schema: "public", name: "pg_stats", kind: "table" as const, columns: ["a"], sensitive: new Set<string>() };
    const implicit: CatalogSnapshot = { relations: [...fixtureCatalog.relations, shadow], searchPath: ["public"] };
    const explicit: CatalogSnapshot = { relations: [...fixtureCatalog.relations, shadow], searchPath: ["public", "pg_catalog"] };
    expect(only("SELECT a FROM pg_stats", implicit).exposure).toBe("columns");
    expect(only("SELECT a FROM pg_stats", explicit).exposure).toBe("none");
    expect(only("SELECT a FROM public.pg_stats", implicit).exposure).toBe("none");
  });

  it("lists the catalogs that hold sample values", () => {
    expect([...valueCatalogs].sort()).toEqual(["pg_statistic", "pg_statistic_ext_data", "pg_stats", "pg_stats_ext", "pg_stats_ext_exprs"]);
    const result = only("SELECT attname FROM pg_stats");
    expect(result.outputs).toEqual([{ star: false, sensitive: true, sources: ["pg_catalog.pg_stats.attname"] }]);
    expect(result.reasons).toContain("reads `pg_catalog.pg_stats`, which holds sample values of columns");
    expect(only("SELECT 1 FROM pg_stats").outputs[0]?.sources).toEqual(["pg_catalog.pg_stats.*"]);
  });

  it("analyses each statement of a string on its own", () => {
    const result = analyzeExposure("SELECT 1; SELECT email FROM customers; INSERT INTO audit (note) SELECT card_number FROM customers", fixtureCatalog);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.statements.map((item) => item.exposure)).toEqual(["none", "columns", "none"]);
    expect(result.statements.map((item) => item.copiesSensitive)).toEqual([false, false, true]);
  });

  it("returns no statements for an empty string and an error for what does not parse", () => {
    expect(analyzeExposure("", fixtureCatalog)).toEqual({ ok: true, statements: [] });
    expect(analyzeExposure("-- nothing", fixtureCatalog)).toEqual({ ok: true, statements: [] });
    const result = analyzeExposure("SELEC email FROM customers", fixtureCatalog);
    expect(result).toEqual({ ok: false, error: "syntax error at or near `SELEC`" });
    expect(analyzeExposure("SELECT 1\u0000", fixtureCatalog).ok).toBe(false);
  });

  it("fails on trees nested too deeply instead of overflowing", () => {
    const deep = `SELECT ${"(".repeat(900)}email${")".repeat(900)} FROM customers`;
    const result = analyzeExposure(deep, fixtureCatalog);
    if (result.ok) expect(result.statements[0]?.exposure).toBe("columns");
    else expect(result.error).toMatch(/nested too deeply/);
    const many = Array.from({ length: 400 }, (_, index) => `SELECT ${index === 200 ? "email" : "name"} FROM customers`).join(" UNION ");
    const union = analyzeExposure(many, fixtureCatalog);
    if (union.ok) expect(union.statements[0]?.outputs[0]?.sensitive).toBe(true);
    else expect(union.error).toMatch(/nested too deeply/);
  });

  it("settles recursive WITH queries nested in each other", () => {
    const sql =
      "WITH RECURSIVE a(x, y) AS (SELECT 1, name FROM customers UNION ALL SELECT x, (WITH RECURSIVE b(z) AS (SELECT email FROM customers UNION ALL SELECT z FROM b) SELECT z FROM b LIMIT 1) FROM a) SELECT x, y FROM a";
    expect(only(sql).outputs.map((item) => item.sensitive)).toEqual([false, true]);
  });

  it("freezes its result", () => {
    const result = analyzeExposure("SELECT email FROM customers", fixtureCatalog);
    expect(Object.isFrozen(result)).toBe(true);
    if (result.ok) expect(Object.isFrozen(result.statements[0]?.outputs[0])).toBe(true);
  });

  it("gives reasons in lowercase sentences with names in backticks", () => {
    expect(only("SELECT name FROM customers").reasons).toEqual(["no output derives from a sensitive column"]);
    expect(only("SELECT email FROM customers").reasons).toEqual(["output 1 derives from `public.customers.email`"]);
    expect(only("SELECT * FROM tmp_table").reasons).toEqual(["output 1 is uncertain: relation `tmp_table` is not in the catalog"]);
    expect(only("INSERT INTO audit (note) SELECT email FROM customers").reasons).toEqual(["writes `public.customers.email` into `audit.note`"]);
    expect(only("DO $$ BEGIN PERFORM email FROM customers; END $$").reasons).toContain("reads sensitive columns in a function body");
    for (const entry of cases) {
      for (const reason of only(entry.sql).reasons) {
        expect(reason, entry.sql).toMatch(/^[a-z`A-Z]/);
        expect(reason.endsWith("."), reason).toBe(false);
      }
    }
  });

  it("rejects misuse with a TypeError naming the argument", () => {
    expect(() => analyzeExposure(1 as unknown as string, fixtureCatalog)).toThrow(/`sql`/);
    expect(() => analyzeExposure("SELECT 1", {} as CatalogSnapshot)).toThrow(/`catalog.relations`/);
    expect(() =>
      analyzeExposure("SELECT 1", { relations: [{ oid: 1, schema: "public", name: "x", kind: "table", columns: [], sensitive: [] as unknown as Set<string> }], searchPath: [] }),
    ).toThrow(/`sensitive`/);
  });
});
