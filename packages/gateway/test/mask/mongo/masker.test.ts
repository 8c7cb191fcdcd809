import { randomBytes } from "node:crypto";
import { Binary, Decimal128, deserialize, Double, EJSON, Int32, Long, ObjectId, serialize, type Document } from "bson";
import { describe, expect, it } from "vitest";
import { createDetectors } from "../../../src/mask/detectors.js";
import { buildMongoMaskCatalog, createMongoMasker, parseMongoField, viewsFromListCollections, WITHHELD_MESSAGE, type MongoMaskEvents, type MongoMasker } from "../../../src/mask/mongo/index.js";
import { PSEUDONYM_PREFIX, REDACTED_TEXT } from "../../../src/mask/styles.js";
import { C, database, fields, fixture, forbiddenForms, maskCases, N, views, type MongoMaskCase } from "./corpus.js";
import { computeReply } from "./replies.js";

const key = randomBytes(32);
const detectors = createDetectors(["email", "card_number", "secret"]);
const catalog = buildMongoMaskCatalog(fields, views);
const forbidden = forbiddenForms();

function text(value: unknown): string {
  return EJSON.stringify(value, { relaxed: false });
}

function masker(events?: MongoMaskEvents): MongoMasker {
  return createMongoMasker({ catalog, detectors, key, ...(events === undefined ? {} : { events }) });
}

/** Runs a case: the reply (split into getMore batches when asked), masked. */
function run(entry: MongoMaskCase, session: MongoMasker): { plan: ReturnType<MongoMasker["plan"]>; raw: Document[]; masked: Document[] } {
  const reply = entry.reply ?? computeReply(entry.command);
  const plan = session.plan(entry.command);
  if (entry.batchSize === undefined) return { plan, raw: [reply], masked: [session.maskReply(plan, reply)] };
  const batch = (reply.cursor as Document).firstBatch as Document[];
  const first = { ...reply, cursor: { ...(reply.cursor as Document), firstBatch: batch.slice(0, entry.batchSize), id: Long.fromNumber(5150) } };
  const raw: Document[] = [first];
  const masked: Document[] = [session.maskReply(plan, first)];
  for (let at = entry.batchSize; at < batch.length; at += entry.batchSize) {
    const last = at + entry.batchSize >= batch.length;
    const getMore = { getMore: Long.fromNumber(5150), collection: entry.command.find ?? entry.command.aggregate, batchSize: entry.batchSize, $db: database };
    const next = { cursor: { nextBatch: batch.slice(at, at + entry.batchSize), id: Long.fromNumber(last ? 0 : 5150), ns: (reply.cursor as Document).ns }, ok: 1 };
    raw.push(next);
    masked.push(session.maskReply(session.plan(getMore), next));
  }
  return { plan, raw, masked };
}

describe("masking corpus", () => {
  it("is large and covers nested paths, arrays, renames, lookups, $where and errors", () => {
    expect(maskCases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(maskCases.map((entry) => entry.label)).size).toBe(maskCases.length);
    const commands = maskCases.map((entry) => JSON.stringify(EJSON.serialize(entry.command)));
    for (const needle of ["$lookup", "$where", "$project", "$unwind", "$group", "$facet", "address.", "cards", "$changeStream", "explain"]) {
      expect(commands.some((command) => command.includes(needle)), needle).toBe(true);
    }
    expect(maskCases.filter((entry) => entry.withheld === true).length).toBeGreaterThanOrEqual(4);
  });

  it.each(maskCases.map((entry) => [entry.label, entry] as const))("%s", (_label, entry) => {
    const { plan, raw, masked } = run(entry, masker());
    const rawText = raw.map(text).join("\n");
    const maskedText = masked.map(text).join("\n");
    if (entry.noCanary !== true) expect(forbidden.some((form) => rawText.includes(form)), "the reply carries a canary").toBe(true);
    const leaked = forbidden.filter((form) => maskedText.includes(form));
    expect(leaked, maskedText).toEqual([]);
    for (const value of entry.keeps ?? []) expect(maskedText, value).toContain(value);
    for (const document of masked) expect(() => serialize(document)).not.toThrow();
    if (entry.inference !== undefined) expect(plan.inference.map((item) => `${item.column} ${item.clause}`).sort()).toEqual(entry.inference);
    expect(plan.copiesSensitive, plan.reasons.join("; ")).toBe(entry.copies ?? false);
    expect(maskedText.includes(WITHHELD_MESSAGE)).toBe(entry.withheld ?? false);
    expect(plan.uncertain, plan.reasons.join("; ")).toBe(entry.uncertain ?? false);
  });

  it("shows real values to a session without masked fields or detectors (an unmasked group)", () => {
    for (const entry of maskCases) {
      const unmasked = createMongoMasker({ catalog: buildMongoMaskCatalog([]) });
      const { raw, masked } = run(entry, unmasked);
      expect(masked.map(text), entry.label).toEqual(raw.map(text));
    }
  });
});

describe("expression operators over sensitive fields", () => {
  const expressions: readonly [string, Document][] = [
    ["toLower", { $toLower: "$email" }],
    ["substrCP", { $substrCP: ["$email", 7, 12] }],
    ["split", { $split: ["$email", "q"] }],
    ["regexFind", { $regexFind: { input: "$email", regex: "q[a-f0-9]+" } }],
    ["regexFindAll", { $regexFindAll: { input: "$email", regex: "[a-f0-9]+" } }],
    ["replaceAll", { $replaceAll: { input: "$email", find: "C", replacement: "c" } }],
    ["trim", { $trim: { input: "$email" } }],
    ["concatArrays", { $concatArrays: [["$email"], ["x"]] }],
    ["arrayElemAt", { $arrayElemAt: ["$cards.number", 0] }],
    ["slice", { $slice: ["$cards", 1] }],
    ["first", { $first: "$cards" }],
    ["last", { $last: "$cards.number" }],
    ["reverseArray", { $reverseArray: "$cards" }],
    ["zip", { $zip: { inputs: ["$cards.number", "$tags"] } }],
    ["setUnion", { $setUnion: ["$cards.number", []] }],
    ["switch", { $switch: { branches: [{ case: true, then: "$email" }], default: null } }],
    ["max of list", { $max: ["$email", "A"] }],
    ["sortArray", { $sortArray: { input: "$cards", sortBy: { brand: 1 } } }],
    ["firstN", { $firstN: { input: "$cards.number", n: 1 } }],
    ["setField", { $setField: { field: "x", input: "$address", value: 1 } }],
    ["unsetField", { $unsetField: { field: "city", input: "$address" } }],
    ["dateToString", { $dateToString: { date: "$birth", format: "%Y-%m-%dT%H:%M:%S.%LZ" } }],
    ["toLong", { $toLong: "$salary" }],
    ["add", { $add: ["$salary", 0] }],
    ["multiply", { $multiply: ["$salary", 1] }],
    ["toDate", { $toDate: "$birth" }],
    ["in", { $cond: [{ $in: ["$email", ["x"]] }, "yes", "$email"] }],
    ["strcasecmp", { $concat: [{ $toString: { $strcasecmp: ["$email", "a"] } }, "$email"] }],
    ["mergeObjects of card and address", { $mergeObjects: ["$card", "$address"] }],
    ["objectToArray of ROOT", { $objectToArray: "$$ROOT" }],
    ["map with index", { $map: { input: { $range: [0, { $size: "$cards" }] }, as: "i", in: { $arrayElemAt: ["$cards.number", "$$i"] } } }],
    ["nested let", { $let: { vars: { a: "$card" }, in: { $let: { vars: { b: "$$a.number" }, in: "$$b" } } } }],
    ["reduce into an object", { $reduce: { input: "$cards", initialValue: {}, in: { $mergeObjects: ["$$value", { last: "$$this.number" }] } } }],
    ["filter with limit", { $filter: { input: "$cards.number", as: "n", cond: true, limit: 1 } }],
  ];

  it.each(expressions)("%s", (_name, expression) => {
    const session = masker();
    const command = { aggregate: "customers", pipeline: [{ $project: { name: 1, x: expression } }], cursor: {}, $db: database };
    const reply = computeReply(command);
    const masked = session.maskReply(session.plan(command), reply);
    expect(forbidden.some((form) => text(reply).includes(form)), "the reply carries a canary").toBe(true);
    expect(forbidden.filter((form) => text(masked).includes(form))).toEqual([]);
    expect(text(masked)).toContain("Ann");
    expect(() => serialize(masked)).not.toThrow();
  });

  it("leaves a literal that only looks like a field path alone", () => {
    const session = masker();
    const command = { aggregate: "customers", pipeline: [{ $project: { x: { $literal: "$email" } } }], cursor: {}, $db: database };
    const masked = session.maskReply(session.plan(command), computeReply(command));
    expect(((masked.cursor as Document).firstBatch as Document[])[0]?.x).toBe("$email");
  });
});

describe("masked values", () => {
  function findAll(promoteValues: boolean): Document {
    const session = masker();
    const command = { find: "customers", filter: { _id: 1 }, $db: database };
    const reply = deserialize(serialize(computeReply(command)), { promoteValues, promoteLongs: promoteValues });
    return (session.maskReply(session.plan(command), reply).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
  }

  it("keep their BSON types, promoted or not", () => {
    const promoted = findAll(true);
    expect(promoted.email).toBe(REDACTED_TEXT);
    expect(promoted.salary).toBe(0);
    expect(promoted.birth).toEqual(new Date(Date.UTC(2000, 0, 1)));
    expect(promoted.ref).toEqual(new ObjectId("000000000000000000000000"));
    expect(promoted.uuid).toBeInstanceOf(Binary);
    expect((promoted.uuid as Binary).sub_type).toBe(Binary.SUBTYPE_UUID);
    expect(Buffer.from((promoted.uuid as Binary).buffer)).toEqual(Buffer.alloc(16));
    expect(promoted.balance).toEqual(Decimal128.fromString("0"));
    expect(promoted.visits).toBe(0);
    const wrapped = findAll(false);
    expect(wrapped.salary).toBeInstanceOf(Int32);
    expect((wrapped.salary as Int32).value).toBe(0);
    expect(wrapped.visits).toBeInstanceOf(Long);
    expect((wrapped.visits as Long).toString()).toBe("0");
    expect(wrapped.name).toBe("Ann");
    expect(wrapped._id).toEqual(new Int32(1));
  });

  it("follow each field's style: partial keeps the end, pseudonyms are keyed and stable", () => {
    const document = findAll(true);
    const card = (document.card as Document).number as string;
    expect(card).toBe(`${"*".repeat(C.card1.length - 4)}${C.card1.slice(-4)}`);
    expect((document.card as Document).expiry).toBe("12/30");
    const ssn = document.ssn as string;
    expect(ssn.startsWith(PSEUDONYM_PREFIX)).toBe(true);
    expect(findAll(true).ssn).toBe(ssn);
    const other = createMongoMasker({ catalog, key: randomBytes(32) });
    const command = { find: "customers", filter: { _id: 1 }, $db: database };
    const again = (other.maskReply(other.plan(command), computeReply(command)).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
    expect(again.ssn).not.toBe(ssn);
    expect((document.cards as Document[]).map((item) => item.number)).toEqual([REDACTED_TEXT, REDACTED_TEXT]);
    expect((document.cards as Document[]).map((item) => item.brand)).toEqual(["visa", "amex"]);
  });

  it("masks a renamed partial field whole when it is computed, and keeps the style of a plain rename", () => {
    const session = masker();
    const command = { aggregate: "customers", pipeline: [{ $match: { _id: 1 } }, { $project: { n: "$card.number", u: { $toUpper: "$card.number" } } }], cursor: {}, $db: database };
    const document = (session.maskReply(session.plan(command), computeReply(command)).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
    expect(document.n).toBe(`${"*".repeat(C.card1.length - 4)}${C.card1.slice(-4)}`);
    expect(document.u).toBe(REDACTED_TEXT);
  });

  it("uses null for every type under the null style, and redacts pseudonym fields without a key", () => {
    const nullCatalog = buildMongoMaskCatalog([
      { database, collection: "customers", path: "salary", style: "null" },
      { database, collection: "customers", path: "ssn", style: "pseudonym" },
    ]);
    const session = createMongoMasker({ catalog: nullCatalog });
    const command = { find: "customers", filter: { _id: 2 }, $db: database };
    const document = (session.maskReply(session.plan(command), computeReply(command)).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
    expect(document.salary).toBeNull();
    expect(document.ssn).toBe(REDACTED_TEXT);
  });

  it("masks keyed pseudonyms of numbers and ids within their types", () => {
    const pseudonymCatalog = buildMongoMaskCatalog(["salary", "ref", "visits", "uuid", "balance"].map((path) => ({ database, collection: "customers", path, style: "pseudonym" as const })));
    const session = createMongoMasker({ catalog: pseudonymCatalog, key });
    const command = { find: "customers", filter: { _id: 1 }, $db: database };
    const reply = deserialize(serialize(computeReply(command)), { promoteValues: false, promoteLongs: false });
    const document = (session.maskReply(session.plan(command), reply).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
    expect(document.salary).toBeInstanceOf(Int32);
    expect((document.salary as Int32).value).not.toBe(N.salary1);
    expect(document.ref).toBeInstanceOf(ObjectId);
    expect((document.ref as ObjectId).toHexString()).not.toBe(N.ref1.toHexString());
    expect(document.visits).toBeInstanceOf(Long);
    expect(((document.uuid as Binary).buffer[6] ?? 0) >> 4).toBe(8);
    expect(document.balance).toBeInstanceOf(Decimal128);
    const second = (session.maskReply(session.plan(command), reply).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
    expect(text(second)).toBe(text(document));
  });

  it("masks doubles as doubles", () => {
    const session = masker();
    const command = { find: "customers", filter: {}, $db: database };
    const reply = { cursor: { firstBatch: [{ _id: 1, salary: new Double(1.5) }], id: 0, ns: `${database}.customers` }, ok: 1 };
    const document = (session.maskReply(session.plan(command), reply).cursor as { firstBatch: Document[] }).firstBatch[0] as Document;
    expect(document.salary).toBeInstanceOf(Double);
    expect((document.salary as Double).value).toBe(0);
  });
});

describe("createMongoMasker", () => {
  it("runs the detectors over values of fields that are not declared", () => {
    const session = masker();
    const command = { find: "orders", filter: {}, $db: database };
    const reply = { cursor: { firstBatch: [{ _id: 10, comment: `mail ${C.detectedEmail} please`, [C.detectedEmail]: 1 }], id: 0, ns: `${database}.orders` }, ok: 1 };
    const masked = session.maskReply(session.plan(command), reply);
    expect(text(masked)).not.toContain(C.detectedEmail);
    expect(text(masked)).toContain("mail [masked:email] please");
  });

  it("counts masked values, detector hits and uncertain plans", () => {
    const counts = { masked: 0, detected: 0, uncertain: 0 };
    const labels = new Set<string>();
    const session = masker({
      masked: (label) => {
        counts.masked++;
        labels.add(label);
      },
      detected: () => counts.detected++,
      uncertain: () => counts.uncertain++,
    });
    const command = { find: "customers", filter: { _id: 1 }, projection: { email: 1 }, $db: database };
    session.maskReply(session.plan(command), computeReply(command));
    expect(counts.masked).toBe(1);
    expect([...labels]).toEqual([`${database}.customers.email`]);
    session.plan({ aggregate: "customers", pipeline: [{ $teleport: {} }], cursor: {}, $db: database });
    expect(counts.uncertain).toBe(1);
  });

  it("forgets cursors when they end, are killed or are too many, and then masks their batches whole", () => {
    const session = createMongoMasker({ catalog, key, maxCursors: 2 });
    const open = (id: number) => {
      const command = { find: "orders", filter: {}, batchSize: 1, $db: database };
      session.maskReply(session.plan(command), { cursor: { firstBatch: [{ _id: id }], id: Long.fromNumber(id), ns: `${database}.orders` }, ok: 1 });
    };
    const more = (id: number) => {
      const getMore = { getMore: Long.fromNumber(id), collection: "orders", $db: database };
      const reply = { cursor: { nextBatch: [{ _id: 99, status: "paid" }], id: Long.fromNumber(id), ns: `${database}.orders` }, ok: 1 };
      return ((session.maskReply(session.plan(getMore), reply).cursor as Document).nextBatch as Document[])[0];
    };
    open(1);
    open(2);
    expect(more(1)).toEqual({ _id: 99, status: "paid" });
    open(3);
    // Cursor 2 was the least recently used: forgotten.
    expect(more(2)).toEqual({ _id: 0, status: REDACTED_TEXT });
    session.plan({ killCursors: "orders", cursors: [Long.fromNumber(3)], $db: database });
    expect(more(3)).toEqual({ _id: 0, status: REDACTED_TEXT });
  });

  it("withholds errInfo of writes to namespaces with sensitive fields, and keeps codes", () => {
    const session = masker();
    const command = { insert: "customers", documents: [{ _id: 9, name: "x" }], $db: database };
    const reply = { n: 0, writeErrors: [{ index: 0, code: 121, codeName: "DocumentValidationFailure", errmsg: "Document failed validation", errInfo: { details: { email: C.email1 } } }], ok: 1 };
    const masked = session.maskReply(session.plan(command), reply);
    expect(masked.writeErrors).toEqual([{ index: 0, code: 121, codeName: "DocumentValidationFailure", errmsg: "Document failed validation", errInfo: {} }]);
  });

  it("scrubs the command's own sensitive values from messages it does not withhold", () => {
    const session = masker();
    const command = { find: "orders", filter: { comment: C.email1 }, $db: database };
    const plan = session.plan(command);
    expect(plan.withholdErrors).toBe(false);
    const masked = session.maskReply(plan, { ok: 0, errmsg: `bad value ${C.detectedEmail}`, code: 2 });
    expect(masked.errmsg).toBe("bad value [masked:email]");
  });

  it("reports views created over sensitive fields as copies, and asks for the views again after DDL", () => {
    const session = masker();
    const create = session.plan({ create: "v1", viewOn: "customers", pipeline: [{ $project: { e: "$email" } }], $db: database });
    expect(create.copiesSensitive).toBe(true);
    expect(create.refreshViews).toBe(true);
    expect(session.plan({ create: "v2", viewOn: "orders", pipeline: [], $db: database }).copiesSensitive).toBe(false);
    expect(session.plan({ renameCollection: `${database}.customers`, to: `${database}.people`, $db: "admin" }).copiesSensitive).toBe(true);
    expect(session.plan({ find: "orders", filter: {}, $db: database }).refreshViews).toBe(false);
  });

  it("follows views given later through setCatalog", () => {
    const session = createMongoMasker({ catalog: buildMongoMaskCatalog(fields), key });
    const command = { find: "contacts", filter: {}, $db: database };
    const reply = { cursor: { firstBatch: [{ _id: 1, contact: C.email1 }], id: 0, ns: `${database}.contacts` }, ok: 1 };
    expect(text(session.maskReply(session.plan(command), reply))).toContain(C.email1);
    session.setCatalog(catalog);
    expect(text(session.maskReply(session.plan(command), reply))).not.toContain(C.email1);
  });

  it("masks everything when a pipeline is nested too deeply to follow", () => {
    let pipeline: Document[] = [{ $project: { e: "$email" } }];
    for (let i = 0; i < 200; i++) pipeline = [{ $facet: { a: pipeline } }];
    const session = masker();
    const plan = session.plan({ aggregate: "customers", pipeline, cursor: {}, $db: database });
    expect(plan.uncertain).toBe(true);
    const masked = session.maskReply(plan, { cursor: { firstBatch: [{ a: [{ e: C.email1 }], n: "Ann" }], id: 0, ns: "x" }, ok: 1 });
    expect(text(masked)).not.toContain(C.email1);
    expect(text(masked)).not.toContain("Ann");
  });

  it("withholds a getMore's errors when the cursor's command read sensitive fields", () => {
    const session = masker();
    const command = { aggregate: "customers", pipeline: [{ $project: { n: { $toInt: "$ssn" } } }], cursor: { batchSize: 0 }, $db: database };
    session.maskReply(session.plan(command), { cursor: { firstBatch: [], id: Long.fromNumber(61), ns: `${database}.customers` }, ok: 1 });
    const error = { ok: 0, errmsg: `Failed to parse number '${C.ssn2}' in $convert`, code: 241, codeName: "ConversionFailure" };
    const masked = session.maskReply(session.plan({ getMore: Long.fromNumber(61), collection: "customers", $db: database }), error);
    expect(masked).toEqual({ ok: 0, errmsg: WITHHELD_MESSAGE, code: 241, codeName: "ConversionFailure" });
    const unknown = session.maskReply(session.plan({ getMore: Long.fromNumber(62), collection: "customers", $db: database }), error);
    expect(unknown.errmsg).toBe(WITHHELD_MESSAGE);
  });

  it("masks bulkWrite results: upserted ids and errors that echo values", () => {
    const idCatalog = buildMongoMaskCatalog([...fields, { database, collection: "customers", path: "_id", style: "redact" }]);
    const session = createMongoMasker({ catalog: idCatalog, detectors });
    const command = { bulkWrite: 1, ops: [{ update: 0, filter: { email: C.email1 }, updateMods: { $set: { name: "x" } }, upsert: true }, { insert: 0, document: { email: C.email2 } }], nsInfo: [{ ns: `${database}.customers` }], $db: "admin" };
    const reply = {
      cursor: {
        firstBatch: [
          { ok: 1, idx: 0, n: 1, nModified: 0, upserted: { _id: C.street1 } },
          { ok: 0, idx: 1, code: 11000, errmsg: `E11000 duplicate key error dup key: { email: "${C.email2}" }`, keyPattern: { email: 1 }, keyValue: { email: C.email2 } },
        ],
        id: 0,
        ns: "admin.$cmd.bulkWrite",
      },
      nErrors: 1,
      ok: 1,
    };
    const masked = session.maskReply(session.plan(command), reply);
    expect(forbidden.filter((form) => text(masked).includes(form))).toEqual([]);
    const batch = (masked.cursor as Document).firstBatch as Document[];
    expect(batch[0]).toEqual({ ok: 1, idx: 0, n: 1, nModified: 0, upserted: { _id: REDACTED_TEXT } });
    expect(batch[1]).toMatchObject({ ok: 0, idx: 1, code: 11000, errmsg: WITHHELD_MESSAGE, keyPattern: { email: 1 }, keyValue: { email: REDACTED_TEXT } });
  });

  it("masks the results of mapReduce, currentOp and getLog element by element", () => {
    const session = masker();
    const mapReduce = session.maskReply(session.plan({ mapReduce: "customers", map: "function() { emit(this.email, 1); }", reduce: "function(k, v) { return 1; }", out: { inline: 1 }, $db: database }), {
      results: [{ _id: C.email1, value: { [C.ssn1]: 1 } }],
      ok: 1,
    });
    expect(Array.isArray(mapReduce.results)).toBe(true);
    expect(forbidden.filter((form) => text(mapReduce).includes(form))).toEqual([]);
    const currentOp = session.maskReply(session.plan({ currentOp: 1, $db: "admin" }), { inprog: [{ opid: 1, command: { find: "customers", filter: { email: C.email1 } } }], ok: 1 });
    expect(forbidden.filter((form) => text(currentOp).includes(form))).toEqual([]);
    const log = session.maskReply(session.plan({ getLog: "global", $db: "admin" }), { totalLinesWritten: 1, log: [`{"msg":"Slow query","attr":{"filter":{"email":"${C.email2}"}}}`], ok: 1 });
    expect(log.log).toEqual([REDACTED_TEXT]);
    const legacy = session.maskReply(session.plan({ find: "customers", filter: { ssn: C.ssn1 }, $db: database }), { $err: `bad ${C.ssn1}`, code: 2 });
    expect(legacy.$err).toBe(WITHHELD_MESSAGE);
  });

  it("treats time-series buckets of a sensitive collection as uncertain, and unions a view with fields declared on it", () => {
    const session = masker();
    const plan = session.plan({ find: "system.buckets.customers", filter: {}, $db: database });
    expect(plan.uncertain).toBe(true);
    const masked = session.maskReply(plan, { cursor: { firstBatch: [{ _id: 1, control: { min: { email: C.email1 } }, data: { email: { "0": C.email1 } } }], id: 0, ns: "x" }, ok: 1 });
    expect(text(masked)).not.toContain(C.email1);
    expect(session.plan({ find: "system.buckets.orders", filter: {}, $db: database }).uncertain).toBe(false);
    const withDeclaredView = createMongoMasker({ catalog: buildMongoMaskCatalog([...fields, { database, collection: "contacts", path: "name", style: "redact" }], views) });
    const command = { find: "contacts", filter: {}, $db: database };
    const document = ((withDeclaredView.maskReply(withDeclaredView.plan(command), computeReply(command)).cursor as Document).firstBatch as Document[])[0] as Document;
    expect(document.name).toBe(REDACTED_TEXT);
    expect(document.contact).toBe(REDACTED_TEXT);
    expect(document.city).toBe("Paris");
  });

  it("withholds errors about a path whose parent holds sensitive fields", () => {
    const session = masker();
    const plan = session.plan({ update: "customers", updates: [{ q: { _id: 1 }, u: { $set: { "address.zip": "75001" } } }], $db: database });
    expect(plan.withholdErrors).toBe(true);
    expect(session.plan({ update: "customers", updates: [{ q: { _id: 1 }, u: { $set: { "tags.0": "x" } } }], $db: database }).withholdErrors).toBe(false);
  });

  it("reports $merge whenMatched pipelines that copy sensitive fields", () => {
    const session = masker();
    const covered = session.plan({ aggregate: "customers", pipeline: [{ $merge: { into: "customers", whenMatched: [{ $set: { name: "$$new.name" } }] } }], cursor: {}, $db: database });
    expect(covered.copiesSensitive).toBe(false);
    const copying = session.plan({ aggregate: "orders", pipeline: [{ $merge: { into: "customers", on: "_id", whenMatched: [{ $set: { status: "$email" } }] } }], cursor: {}, $db: database });
    expect(copying.copiesSensitive).toBe(true);
  });

  it("reports inferences of joins, windows, index bounds and $pull conditions", () => {
    const session = masker();
    const inference = (command: Document) => session.plan({ ...command, $db: database }).inference.map((item) => `${item.column} ${item.clause}`).sort();
    expect(inference({ find: "customers", filter: {}, hint: { email: 1 }, min: { email: "a" }, max: { email: "b" } })).toEqual([`${database}.customers.email where`]);
    expect(inference({ aggregate: "customers", pipeline: [{ $setWindowFields: { partitionBy: "$email", sortBy: { salary: 1 }, output: { r: { $rank: {} } } } }], cursor: {} })).toEqual([`${database}.customers.email window`, `${database}.customers.salary window`]);
    expect(inference({ update: "customers", updates: [{ q: { _id: 1 }, u: { $pull: { cards: { number: "x" } } } }] })).toEqual([`${database}.customers.cards.number where`]);
    expect(inference({ aggregate: "customers", pipeline: [{ $lookup: { from: "notes", as: "n", pipeline: [{ $match: { body: "x" } }] } }], cursor: {} })).toEqual([`${database}.notes.body where`]);
    expect(inference({ aggregate: "contacts", pipeline: [], cursor: {} })).toEqual([]);
    expect(inference({ find: "customers", filter: { name: "Ann", "address.city": "Paris" }, sort: { name: 1 } })).toEqual([]);
  });

  it("rejects a short pseudonym key and non-documents", () => {
    expect(() => createMongoMasker({ catalog, key: new Uint8Array(8) })).toThrow(TypeError);
    expect(() => masker().plan([] as unknown as Document)).toThrow(TypeError);
  });
});

describe("buildMongoMaskCatalog", () => {
  it("parses database.collection.path", () => {
    expect(parseMongoField("shop.customers.address.street")).toEqual({ database: "shop", collection: "customers", path: "address.street" });
    expect(() => parseMongoField("shop.customers")).toThrow(TypeError);
  });

  it("reads views from listCollections", () => {
    const documents = [
      { name: "customers", type: "collection", options: {} },
      { name: "contacts", type: "view", options: { viewOn: "customers", pipeline: [{ $project: { contact: "$email" } }] } },
    ];
    expect(viewsFromListCollections(database, documents)).toEqual([{ database, name: "contacts", viewOn: "customers", pipeline: [{ $project: { contact: "$email" } }] }]);
  });

  it("rejects unknown styles", () => {
    expect(() => buildMongoMaskCatalog([{ database, collection: "c", path: "x", style: "shred" as "redact" }])).toThrow(TypeError);
  });

  it("knows which namespaces are sensitive", () => {
    expect(catalog.anySensitive).toBe(true);
    expect([...catalog.collections.keys()].sort()).toEqual([`${database}.customers`, `${database}.notes`]);
    expect(buildMongoMaskCatalog([]).anySensitive).toBe(false);
    expect(fixture().customers).toHaveLength(2);
  });
});
