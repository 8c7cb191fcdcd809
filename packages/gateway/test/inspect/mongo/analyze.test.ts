import { statementClasses } from "@airlock/policy";
import { deserialize, Long, ObjectId, serialize, type Document } from "bson";
import { describe, expect, it } from "vitest";
import type { Analysis } from "../../../src/inspect/postgres/analyze.js";
import { alwaysTrue, analyzeMongo, isKnownCommand, type MongoAnalysis, type MongoStatementAnalysis } from "../../../src/inspect/mongo/index.js";
import { mongoCorpus } from "./corpus.js";

function ok(analysis: MongoAnalysis): Extract<MongoAnalysis, { ok: true }> {
  if (!analysis.ok) throw new Error(`expected an analysis, got error: ${analysis.error}`);
  return analysis;
}

function only(command: Document, options?: Parameters<typeof analyzeMongo>[1]): MongoStatementAnalysis {
  const statements = ok(analyzeMongo(command, options)).statements;
  expect(statements).toHaveLength(1);
  return statements[0]!;
}

describe("corpus", () => {
  it("is large and covers every class but export, with benign look-alikes", () => {
    expect(mongoCorpus.length).toBeGreaterThanOrEqual(80);
    expect(mongoCorpus.filter((entry) => entry.benign === true).length).toBeGreaterThanOrEqual(10);
    for (const statementClass of statementClasses.filter((value) => value !== "export")) {
      expect(mongoCorpus.some((entry) => entry.classes.includes(statementClass)), statementClass).toBe(true);
    }
    expect(new Set(mongoCorpus.map((entry) => entry.label)).size).toBe(mongoCorpus.length);
    for (const entry of mongoCorpus) expect([...entry.classes].sort()).toEqual(entry.classes);
    for (const entry of mongoCorpus.filter((e) => e.benign === true)) expect(entry.classes).toEqual(["read"]);
    expect(mongoCorpus.filter((entry) => entry.unbounded === true).length).toBeGreaterThanOrEqual(15);
  });

  it.each(mongoCorpus.map((entry) => [entry.label, entry] as const))("%s", (_label, entry) => {
    const analysis = ok(analyzeMongo(entry.command));
    const statement = analysis.statements[0]!;
    expect(analysis.classes, statement.reasons.join("; ")).toEqual(entry.classes);
    expect(statement.classes).toEqual(entry.classes);
    expect(statement.unboundedWrite, statement.reasons.join("; ")).toBe(entry.unbounded ?? false);
    expect(statement.reasons.length).toBeGreaterThan(0);
    for (const reason of statement.reasons) expect(reason).toMatch(/^[a-z`$]/);
  });

  it("classifies the same after a BSON round trip, promoted or not", () => {
    for (const entry of mongoCorpus) {
      const bytes = serialize(entry.command);
      for (const promoteValues of [true, false]) {
        const decoded = deserialize(bytes, { promoteValues, promoteLongs: promoteValues });
        const analysis = ok(analyzeMongo(decoded));
        expect(analysis.classes, `${entry.label} (promoteValues: ${promoteValues})`).toEqual(entry.classes);
        expect(analysis.statements[0]!.unboundedWrite, entry.label).toBe(entry.unbounded ?? false);
      }
    }
  });
});

describe("analyzeMongo", () => {
  it("returns the PostgreSQL analysis shape, with the database and namespace", () => {
    const analysis: Analysis = analyzeMongo({ find: "customers", filter: { email: "a@example.com" }, $db: "shop" });
    expect(analysis.ok).toBe(true);
    const statement = only({ find: "customers", filter: { email: "a@example.com" }, $db: "shop" });
    expect(statement).toMatchObject({
      kind: "find",
      classes: ["read"],
      database: "shop",
      namespace: "shop.customers",
      relations: [{ schema: "shop", name: "customers", access: "read" }],
      reasons: ["`find` reads `shop.customers`"],
      unboundedWrite: false,
      copiesData: false,
      functions: [],
    });
    expect(Object.isFrozen(statement)).toBe(true);
  });

  it("denies what it does not know, naming it", () => {
    expect(analyzeMongo({ frobnicate: 1, $db: "shop" })).toEqual({ ok: false, error: "unknown command `frobnicate`" });
    expect(analyzeMongo({ Find: "customers", $db: "shop" })).toEqual({ ok: false, error: "unknown command `Find`" });
    expect(analyzeMongo({ aggregate: "orders", pipeline: [{ $teleport: {} }], cursor: {}, $db: "shop" })).toEqual({ ok: false, error: "unknown aggregation stage `$teleport`" });
    expect(analyzeMongo({ explain: { drop: "orders" }, $db: "shop" })).toEqual({ ok: false, error: "`explain` of `drop` is not analysed" });
    expect(analyzeMongo({ $db: "shop" } as Document)).toMatchObject({ ok: false });
    expect(analyzeMongo({})).toEqual({ ok: false, error: "empty command" });
    expect(isKnownCommand("find")).toBe(true);
    expect(isKnownCommand("frobnicate")).toBe(false);
  });

  it("refuses malformed commands rather than guess", () => {
    expect(analyzeMongo({ find: 5, $db: "shop" })).toEqual({ ok: false, error: "`find` must name a collection" });
    expect(analyzeMongo({ aggregate: "orders", pipeline: { $match: {} }, $db: "shop" })).toEqual({ ok: false, error: "`pipeline` must be an array" });
    expect(analyzeMongo({ aggregate: "orders", pipeline: [{ $match: {}, $out: "x" }], $db: "shop" })).toEqual({ ok: false, error: "a pipeline stage must have exactly one field" });
    expect(analyzeMongo({ update: "orders", $db: "shop" })).toEqual({ ok: false, error: "`update` must carry `updates`" });
    expect(analyzeMongo({ renameCollection: "nodot", to: "shop.b", $db: "admin" })).toEqual({ ok: false, error: "`renameCollection` must be a namespace `db.collection`" });
    expect(analyzeMongo({ find: "customers" })).toEqual({ ok: false, error: "command `find` names no database (`$db`)" });
    expect(only({ find: "customers" }, { database: "shop" }).namespace).toBe("shop.customers");
  });

  it("refuses a pipeline nested past its limit", () => {
    let pipeline: Document[] = [{ $match: {} }];
    for (let i = 0; i < 200; i++) pipeline = [{ $facet: { a: pipeline } }];
    expect(analyzeMongo({ aggregate: "orders", pipeline, cursor: {}, $db: "shop" })).toEqual({ ok: false, error: "command is nested too deeply to analyse" });
  });

  it("gives reasons in lowercase sentences with names in backticks", () => {
    expect(only({ delete: "audit", deletes: [{ q: {}, limit: 0 }], $db: "shop" }).reasons).toEqual([
      "`delete` removes from `shop.audit`",
      "`delete` with an empty filter and no limit on `shop.audit`",
    ]);
    expect(only({ update: "orders", updates: [{ q: { $expr: true }, u: { $set: { a: 1 } }, multi: true }], $db: "shop" }).reasons).toContain(
      "`update` with `multi` and an always-true filter on `shop.orders`",
    );
    expect(only({ find: "c", filter: { $where: "1" }, $db: "shop" }).reasons).toEqual(["`$where` runs server-side JavaScript", "`find` reads `shop.c`"]);
    expect(only({ createUser: "x", pwd: "y", roles: [], $db: "admin" }).reasons).toEqual(["`createUser` manages users"]);
    expect(only({ aggregate: "o", pipeline: [{ $lookup: { from: { db: "hr", coll: "pay" }, pipeline: [], as: "p" } }], $db: "shop" }).reasons).toContain(
      "`$lookup` reads `hr.pay` in another database",
    );
    expect(only({ ping: 1, $db: "admin" }).reasons).toEqual(["`ping` touches no documents"]);
  });

  it("reports namespaces with read or write access, through nested pipelines", () => {
    const statement = only({
      aggregate: "orders",
      pipeline: [
        { $lookup: { from: "customers", as: "c", pipeline: [{ $unionWith: { coll: "archive", pipeline: [{ $lookup: { from: "notes", as: "n", localField: "a", foreignField: "b" } }] } }] } },
        { $facet: { a: [{ $graphLookup: { from: "people", startWith: "$x", connectFromField: "a", connectToField: "b", as: "g" } }] } },
        { $merge: { into: "summary" } },
      ],
      cursor: {},
      $db: "shop",
    });
    expect(statement.relations).toEqual([
      { schema: "shop", name: "archive", access: "read" },
      { schema: "shop", name: "customers", access: "read" },
      { schema: "shop", name: "notes", access: "read" },
      { schema: "shop", name: "orders", access: "read" },
      { schema: "shop", name: "people", access: "read" },
      { schema: "shop", name: "summary", access: "write" },
    ]);
    expect(statement.classes).toEqual(["write"]);
    expect(statement.copiesData).toBe(true);
    expect(only({ bulkWrite: 1, ops: [{ insert: 1, document: {} }], nsInfo: [{ ns: "shop.a" }, { ns: "other.b" }], $db: "admin" }).relations).toEqual([
      { schema: "other", name: "b", access: "write" },
      { schema: "shop", name: "a", access: "write" },
    ]);
    expect(only({ dropDatabase: 1, $db: "shop" }).relations).toEqual([{ schema: "shop", name: "*", access: "write" }]);
    expect(only({ aggregate: 1, pipeline: [{ $changeStream: {} }], cursor: {}, $db: "shop" }).relations).toEqual([{ schema: "shop", name: "*", access: "read" }]);
  });

  it("treats namespaces outside the connection's databases as dangerous when configured", () => {
    const options = { databases: ["shop"] };
    expect(only({ find: "orders", filter: {}, $db: "shop" }, options).classes).toEqual(["read"]);
    const other = only({ find: "salaries", filter: {}, $db: "hr" }, options);
    expect(other.classes).toEqual(["dangerous"]);
    expect(other.reasons).toContain("`hr.salaries` is in database `hr`, outside the connection's databases");
    expect(only({ aggregate: "o", pipeline: [{ $lookup: { from: { db: "hr", coll: "pay" }, pipeline: [], as: "p" } }], cursor: {}, $db: "shop" }, { databases: ["shop", "hr"] }).classes).toEqual(["read"]);
    expect(only({ renameCollection: "shop.a", to: "shop.b", $db: "admin" }, options).classes).toEqual(["ddl"]);
    expect(only({ ping: 1, $db: "admin" }, options).classes).toEqual(["read"]);
  });

  it("reports server-side JavaScript operators as functions", () => {
    expect(only({ find: "c", filter: { $where: "1", $expr: { $function: { body: "", args: [], lang: "js" } } }, $db: "shop" }).functions).toEqual(["$function", "$where"]);
    expect(only({ mapReduce: "o", map: "", reduce: "", out: { inline: 1 }, $db: "shop" }).functions).toEqual(["mapReduce"]);
  });

  it("does not scan inserted documents for operators: they are data", () => {
    expect(only({ insert: "audit", documents: [{ note: { $where: "x" } }], $db: "shop" }).classes).toEqual(["write"]);
    expect(only({ update: "audit", updates: [{ q: { _id: 1 }, u: { $set: { note: "$where" } } }], $db: "shop" }).classes).toEqual(["write"]);
  });

  it("reports transaction control", () => {
    const lsid = { id: new ObjectId() };
    expect(only({ find: "o", filter: {}, lsid, txnNumber: Long.fromNumber(1), startTransaction: true, autocommit: false, $db: "shop" }).transaction).toBe("begin");
    expect(only({ insert: "o", documents: [{}], lsid, txnNumber: Long.fromNumber(1), autocommit: false, $db: "shop" }).transaction).toBeUndefined();
    expect(only({ commitTransaction: 1, lsid, txnNumber: Long.fromNumber(1), autocommit: false, $db: "admin" }).transaction).toBe("commit");
    expect(only({ abortTransaction: 1, lsid, txnNumber: Long.fromNumber(1), autocommit: false, $db: "admin" }).transaction).toBe("rollback");
  });

  it("makes whole-collection reads exports when configured", () => {
    const options = { unboundedReads: "export" as const };
    expect(only({ find: "customers", filter: {}, $db: "shop" }, options).classes).toEqual(["export"]);
    expect(only({ find: "customers", filter: {}, $db: "shop" }).classes).toEqual(["read"]);
    expect(only({ find: "customers", filter: { _id: 1 }, $db: "shop" }, options).classes).toEqual(["read"]);
    expect(only({ find: "customers", filter: {}, limit: 10, $db: "shop" }, options).classes).toEqual(["read"]);
    expect(only({ aggregate: "customers", pipeline: [{ $project: { name: 1 } }], cursor: {}, $db: "shop" }, options).classes).toEqual(["export"]);
    expect(only({ aggregate: "customers", pipeline: [{ $match: { name: "Ann" } }], cursor: {}, $db: "shop" }, options).classes).toEqual(["read"]);
    expect(only({ aggregate: "customers", pipeline: [{ $group: { _id: null, n: { $sum: 1 } } }], cursor: {}, $db: "shop" }, options).classes).toEqual(["read"]);
  });

  it("gives a text and a fingerprint without the command's values", () => {
    const a = ok(analyzeMongo({ find: "customers", filter: { email: "secret@example.com", age: { $gt: 30 } }, lsid: { id: new ObjectId() }, $db: "shop" }));
    const b = ok(analyzeMongo({ find: "customers", filter: { email: "other@example.com", age: { $gt: 50 } }, $db: "shop" }));
    const c = ok(analyzeMongo({ find: "customers", filter: { name: "x" }, $db: "shop" }));
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).not.toBe(c.fingerprint);
    const text = a.statements[0]!.text;
    expect(text).toBe('{"find":"customers","filter":{"email":"?","age":{"$gt":"?"}},"$db":"shop"}');
    const insert = only({ insert: "audit", documents: Array.from({ length: 500 }, (_, i) => ({ note: `n${i}`, secret: "hunter2" })), $db: "shop" });
    expect(insert.text).toBe('{"insert":"audit","documents":[{"note":"?","secret":"?"}],"$db":"shop"}');
    const pipeline = only({ aggregate: "o", pipeline: [{ $lookup: { from: "customers", localField: "a", foreignField: "b", as: "c" } }, { $match: { name: "Ann" } }, { $out: "x" }], cursor: {}, $db: "shop" });
    expect(pipeline.text).toBe('{"aggregate":"o","pipeline":[{"$lookup":{"from":"customers","localField":"a","foreignField":"b","as":"c"}},{"$match":{"name":"?"}},{"$out":"x"}],"cursor":{},"$db":"shop"}');
    const long = only({ find: "c", filter: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`field${i}`, i])), $db: "shop" });
    expect(long.text.length).toBeLessThanOrEqual(300);
    expect(long.text.endsWith("…")).toBe(true);
  });
});

describe("alwaysTrue", () => {
  it.each([
    [{}],
    [{ $comment: "x" }],
    [{ $expr: 1 }],
    [{ $expr: { $literal: true } }],
    [{ $expr: { $gt: ["$$NOW", new Date(0)] } }],
    [{ $and: [{}, { _id: { $exists: 1 } }] }],
    [{ $nor: [{ $alwaysFalse: 1 }] }],
    [{ $nor: [{ x: { $in: [] } }] }],
    [{ x: { $not: { $in: [] } } }],
    [{ note: { $regex: "" } }],
    [{ _id: { $lte: { _bsontype: "MaxKey" } } }],
  ])("%j matches every document", (filter) => {
    expect(alwaysTrue(filter)).toBe(true);
  });

  it.each([
    [{ _id: 1 }],
    [{ x: { $exists: true } }],
    [{ $expr: "$flag" }],
    [{ $expr: { $eq: ["$a", "$b"] } }],
    [{ $or: [{ a: 1 }, { b: 2 }] }],
    [{ $and: [] }],
    [{ $text: { $search: "x" } }],
    [{ note: /^a/ }],
    [{ $where: "this.a > 1" }],
    [{ _id: { $ne: null } }],
  ])("%j is bounded", (filter) => {
    expect(alwaysTrue(filter)).toBe(false);
  });
});
