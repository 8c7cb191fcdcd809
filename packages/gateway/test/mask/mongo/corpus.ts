import { randomBytes } from "node:crypto";
import { Binary, Decimal128, Long, ObjectId, type Document } from "bson";
import type { MongoSensitiveField, MongoView } from "../../../src/mask/mongo/index.js";

/**
 * Masking corpus for MongoDB: a fixture database whose sensitive values are canaries (random
 * strings no detector recognises, and numbers, dates and ids no other value equals), the declared
 * fields and views, and commands with the server's reply to them. The test masks each reply and
 * checks that no canary survives in any form (itself, base64, hex, reversed, other case), that
 * non-sensitive values do, and that a session without masking sees the canaries.
 *
 * Replies of find, aggregate, count, distinct and findAndModify are computed from the fixture with
 * mingo (MongoDB's query and aggregation language in JavaScript, as the test server uses); errors,
 * explain output, change events and JavaScript stages are written out as a server answers them.
 */

function canary(): string {
  return `CANARYq${randomBytes(8).toString("hex")}`;
}

/** Every canary string of the fixture. */
export const C = {
  email1: canary(),
  email2: canary(),
  card1: canary(),
  card2: canary(),
  cards1a: canary(),
  cards1b: canary(),
  cards2a: canary(),
  street1: canary(),
  street2: canary(),
  ssn1: canary(),
  ssn2: canary(),
  body1: canary(),
  body2: canary(),
  /** A value only an error message carries: the detectors must find it. */
  detectedEmail: `dq${randomBytes(6).toString("hex")}@example.com`,
} as const;

/** Canaries that are not strings: numbers, dates, ids. Their text must not survive either. */
export const N = {
  salary1: 73_519_847,
  salary2: 86_420_913,
  birth1: new Date(Date.UTC(1961, 4, 17, 13, 37, 11, 123)),
  birth2: new Date(Date.UTC(1973, 9, 2, 8, 41, 59, 987)),
  ref1: new ObjectId(`cafe${randomBytes(10).toString("hex")}`),
  ref2: new ObjectId(`beef${randomBytes(10).toString("hex")}`),
  uuid1: new Binary(randomBytes(16), Binary.SUBTYPE_UUID),
  balance1: Decimal128.fromString("91827.3645"),
  visits1: Long.fromString("8070605040302"),
} as const;

/**
 * Pieces of canaries that must not appear in masked output either: every 8-character window of
 * each canary's random part (a substring, a split or a regular expression match of a canary
 * carries one), in either case.
 */
export function canaryPieces(): string[] {
  const pieces = new Set<string>();
  for (const value of Object.values(C)) {
    const random = value.startsWith("CANARYq") ? value.slice(7) : value.slice(2, 14);
    for (let i = 0; i + 8 <= random.length; i++) {
      const piece = random.slice(i, i + 8);
      pieces.add(piece.toLowerCase());
      pieces.add(piece.toUpperCase());
    }
  }
  return [...pieces];
}

/** Text forms of every canary that must not appear in masked output (as canonical Extended JSON). */
export function forbiddenForms(): string[] {
  const forms = (value: string) => [value, Buffer.from(value).toString("base64"), Buffer.from(value).toString("hex"), [...value].reverse().join(""), value.toLowerCase(), value.toUpperCase()];
  return [
    ...Object.values(C).flatMap(forms),
    String(N.salary1),
    String(N.salary2),
    String(N.birth1.getTime()),
    String(N.birth2.getTime()),
    N.birth1.toISOString().slice(0, 19),
    N.birth2.toISOString().slice(0, 19),
    N.ref1.toHexString(),
    N.ref2.toHexString(),
    Buffer.from(N.uuid1.buffer).toString("base64"),
    N.balance1.toString(),
    N.visits1.toString(),
    ...canaryPieces(),
  ];
}

export const database = "shop";

export function fixture(): Record<string, Document[]> {
  return {
    customers: [
      {
        _id: 1,
        name: "Ann",
        email: C.email1,
        card: { number: C.card1, expiry: "12/30" },
        cards: [
          { number: C.cards1a, brand: "visa" },
          { number: C.cards1b, brand: "amex" },
        ],
        address: { street: C.street1, city: "Paris" },
        ssn: C.ssn1,
        salary: N.salary1,
        birth: N.birth1,
        ref: N.ref1,
        uuid: N.uuid1,
        balance: N.balance1,
        visits: N.visits1,
        tags: ["gold", "early"],
      },
      {
        _id: 2,
        name: "Bob",
        email: C.email2,
        card: { number: C.card2, expiry: "01/29" },
        cards: [{ number: C.cards2a, brand: "visa" }],
        address: { street: C.street2, city: "Lyon" },
        ssn: C.ssn2,
        salary: N.salary2,
        birth: N.birth2,
        ref: N.ref2,
        tags: ["new"],
      },
    ],
    notes: [
      { _id: 1, customer_id: 1, topic: "billing", body: C.body1 },
      { _id: 2, customer_id: 2, topic: "support", body: C.body2 },
    ],
    orders: [
      { _id: 10, customer_id: 1, total: 12.5, status: "paid", comment: "ok" },
      { _id: 11, customer_id: 2, total: 99, status: "new", comment: "call back" },
    ],
  };
}

export const fields: readonly MongoSensitiveField[] = [
  { database, collection: "customers", path: "email", style: "redact" },
  { database, collection: "customers", path: "card.number", style: "partial", keep: 4 },
  { database, collection: "customers", path: "cards.number", style: "redact" },
  { database, collection: "customers", path: "address.street", style: "redact" },
  { database, collection: "customers", path: "ssn", style: "pseudonym" },
  { database, collection: "customers", path: "salary", style: "redact" },
  { database, collection: "customers", path: "birth", style: "redact" },
  { database, collection: "customers", path: "ref", style: "redact" },
  { database, collection: "customers", path: "uuid", style: "redact" },
  { database, collection: "customers", path: "balance", style: "redact" },
  { database, collection: "customers", path: "visits", style: "redact" },
  { database, collection: "notes", path: "body", style: "redact" },
];

export const views: readonly MongoView[] = [
  { database, name: "contacts", viewOn: "customers", pipeline: [{ $project: { contact: "$email", name: 1, city: "$address.city" } }] },
  { database, name: "contacts_upper", viewOn: "contacts", pipeline: [{ $set: { contact: { $toUpper: "$contact" } } }] },
];

/** One masking case. */
export interface MongoMaskCase {
  readonly label: string;
  readonly command: Document;
  /** The server's reply; computed from the fixture with mingo when absent. */
  readonly reply?: Document;
  /** Values that must still be there after masking (not sensitive). */
  readonly keeps?: readonly string[];
  /** Expected inferences, as `column clause`, sorted. */
  readonly inference?: readonly string[];
  readonly copies?: true;
  /** Error messages are expected to be withheld. */
  readonly withheld?: true;
  /** The reply carries no canary at all (a benign case: only `keeps` is checked). */
  readonly noCanary?: true;
  /** Split the first batch here and fetch the rest with getMore. */
  readonly batchSize?: number;
  /** Lineage is expected to be uncertain. */
  readonly uncertain?: true;
  readonly note?: string;
}

const e = (command: Document): Document => ({ ...command, $db: database });
const agg = (collection: string | 1, pipeline: Document[]): Document => e({ aggregate: collection, pipeline, cursor: {} });

export const maskCases: readonly MongoMaskCase[] = [
  // ---- find -------------------------------------------------------------------------------------
  { label: "find all", command: e({ find: "customers", filter: {} }), keeps: ["Ann", "Paris", "visa", "12/30", "gold"] },
  { label: "find inclusion", command: e({ find: "customers", filter: {}, projection: { name: 1, email: 1 } }), keeps: ["Bob"] },
  { label: "find exclusion", command: e({ find: "customers", filter: {}, projection: { email: 0 } }), keeps: ["Lyon"] },
  { label: "find computed projection", command: e({ find: "customers", filter: {}, projection: { contact: "$email", n: "$name" } }), keeps: ["Ann"] },
  { label: "find nested inclusion", command: e({ find: "customers", filter: {}, projection: { "card.number": 1, "address.city": 1 } }), keeps: ["Paris"] },
  { label: "find slice", command: e({ find: "customers", filter: {}, projection: { cards: { $slice: 1 } } }), keeps: ["visa"] },
  { label: "find elemMatch projection", command: e({ find: "customers", filter: {}, projection: { cards: { $elemMatch: { brand: "visa" } } } }) },
  { label: "find positional", command: e({ find: "customers", filter: { "cards.brand": "amex" }, projection: { "cards.$": 1 } }) },
  { label: "find filter on email", command: e({ find: "customers", filter: { email: C.email1 } }), inference: [`${database}.customers.email where`] },
  { label: "find sort on salary", command: e({ find: "customers", filter: {}, sort: { salary: -1 } }), inference: [`${database}.customers.salary order_by`] },
  { label: "find filter elemMatch card number", command: e({ find: "customers", filter: { cards: { $elemMatch: { number: { $gt: "" }, brand: "visa" } } } }), inference: [`${database}.customers.cards.number where`] },
  { label: "find on a view", command: e({ find: "contacts", filter: {} }), keeps: ["Ann", "Paris"] },
  { label: "find on a view of a view", command: e({ find: "contacts_upper", filter: {} }), keeps: ["Bob"] },
  { label: "find in batches", command: e({ find: "customers", filter: {}, batchSize: 1 }), batchSize: 1, keeps: ["Bob"] },
  { label: "find clean collection", command: e({ find: "orders", filter: {} }), keeps: ["paid", "call back"], noCanary: true },

  // ---- aggregate: renames and expressions -------------------------------------------------------
  { label: "project rename", command: agg("customers", [{ $project: { contact: "$email" } }]) },
  { label: "addFields toUpper", command: agg("customers", [{ $addFields: { shout: { $toUpper: "$email" } } }]), keeps: ["Ann"] },
  { label: "set substr", command: agg("customers", [{ $set: { part: { $substr: ["$email", 0, 12] } } }]) },
  { label: "project toString of a number", command: agg("customers", [{ $project: { s: { $toString: "$salary" } } }]) },
  { label: "project concat", command: agg("customers", [{ $project: { line: { $concat: ["$name", " <", "$email", ">"] } } }]) },
  { label: "project nested rename", command: agg("customers", [{ $project: { street: "$address.street", city: "$address.city" } }]), keeps: ["Paris"] },
  { label: "project subdocument", command: agg("customers", [{ $project: { addr: "$address" } }]), keeps: ["Lyon"] },
  { label: "project embedded object", command: agg("customers", [{ $project: { contact: { mail: "$email", who: "$name" } } }]), keeps: ["Ann"] },
  { label: "unwind and project", command: agg("customers", [{ $unwind: "$cards" }, { $project: { num: "$cards.number", brand: "$cards.brand" } }]), keeps: ["amex"] },
  { label: "cond on email", command: agg("customers", [{ $project: { x: { $cond: [{ $eq: ["$email", "zzz"] }, "$name", "$ssn"] } } }]) },
  { label: "ifNull", command: agg("customers", [{ $project: { x: { $ifNull: ["$missing", "$email"] } } }]) },
  { label: "objectToArray of address", command: agg("customers", [{ $project: { pairs: { $objectToArray: "$address" } } }]) },
  { label: "arrayToObject with sensitive keys", command: agg("customers", [{ $project: { o: { $arrayToObject: [[["$email", "$name"]]] } } }]) },
  { label: "ROOT copied", command: agg("customers", [{ $project: { doc: "$$ROOT" } }]), keeps: ["Paris"] },
  { label: "map over cards", command: agg("customers", [{ $project: { nums: { $map: { input: "$cards", as: "c", in: { $toUpper: "$$c.number" } } } } }]) },
  { label: "filter cards", command: agg("customers", [{ $project: { visa: { $filter: { input: "$cards", as: "c", cond: { $eq: ["$$c.brand", "visa"] } } } } }]) },
  { label: "reduce card numbers", command: agg("customers", [{ $project: { all: { $reduce: { input: "$cards", initialValue: "", in: { $concat: ["$$value", "$$this.number"] } } } } }]) },
  { label: "let", command: agg("customers", [{ $project: { x: { $let: { vars: { m: "$email" }, in: { $concat: ["<", "$$m", ">"] } } } } }]) },
  { label: "getField", command: agg("customers", [{ $project: { x: { $getField: { field: "email", input: "$$ROOT" } } } }]) },
  { label: "mergeObjects", command: agg("customers", [{ $replaceWith: { $mergeObjects: ["$card", { who: "$name" }] } }]), keeps: ["12/30", "Ann"] },
  { label: "replaceRoot address", command: agg("customers", [{ $replaceRoot: { newRoot: "$address" } }]), keeps: ["Paris"] },
  { label: "match on renamed field", command: agg("customers", [{ $project: { e: "$email" } }, { $match: { e: C.email1 } }]), inference: [`${database}.customers.email where`] },
  { label: "types kept through renames", command: agg("customers", [{ $project: { s: "$salary", b: "$birth", r: "$ref", u: "$uuid", d: "$balance", v: "$visits" } }]) },

  // ---- grouping ---------------------------------------------------------------------------------
  { label: "group by email", command: agg("customers", [{ $group: { _id: "$email", n: { $sum: 1 } } }]), inference: [`${database}.customers.email group_by`] },
  { label: "group push email", command: agg("customers", [{ $group: { _id: null, emails: { $push: "$email" } } }]) },
  { label: "group first card", command: agg("customers", [{ $group: { _id: "$address.city", first: { $first: "$card.number" } } }]), keeps: ["Lyon"] },
  { label: "group sum salary", command: agg("customers", [{ $match: { _id: 1 } }, { $group: { _id: null, total: { $sum: "$salary" } } }]), note: "fail closed: a sum over one document is its value" },
  { label: "group count", command: agg("customers", [{ $group: { _id: "$address.city", n: { $sum: 1 } } }]), keeps: ["Paris", "Lyon"], noCanary: true },
  { label: "group addToSet card numbers", command: agg("customers", [{ $unwind: "$cards" }, { $group: { _id: null, numbers: { $addToSet: "$cards.number" } } }]) },
  { label: "group push ROOT", command: agg("customers", [{ $group: { _id: null, docs: { $push: "$$ROOT" } } }]), keeps: ["visa"] },
  { label: "group max and min", command: agg("customers", [{ $group: { _id: null, hi: { $max: "$email" }, lo: { $min: "$birth" } } }]) },
  { label: "bucket by salary", command: agg("customers", [{ $bucket: { groupBy: "$salary", boundaries: [0, 80_000_000, 100_000_000], output: { who: { $push: "$name" }, pay: { $push: "$salary" } } } }]), keeps: ["Ann"], inference: [`${database}.customers.salary group_by`] },
  { label: "bucketAuto by salary", command: agg("customers", [{ $bucketAuto: { groupBy: "$salary", buckets: 1 } }]) },
  { label: "sortByCount email", command: agg("customers", [{ $sortByCount: "$email" }]) },
  { label: "window max email", command: agg("customers", [{ $setWindowFields: { partitionBy: "$address.city", output: { top: { $max: "$email" } } } }]), keeps: ["Paris"] },

  // ---- joins, facets, unions --------------------------------------------------------------------
  { label: "lookup orders to customers", command: agg("orders", [{ $lookup: { from: "customers", localField: "customer_id", foreignField: "_id", as: "customer" } }]), keeps: ["paid", "Ann"] },
  { label: "lookup customers to notes", command: agg("customers", [{ $lookup: { from: "notes", localField: "_id", foreignField: "customer_id", as: "notes" } }]), keeps: ["billing"] },
  { label: "lookup pipeline with let", command: agg("orders", [{ $lookup: { from: "customers", let: { cid: "$customer_id" }, pipeline: [{ $match: { $expr: { $eq: ["$_id", "$$cid"] } } }, { $project: { mail: "$email", _id: 0 } }], as: "c" } }]), keeps: ["paid"] },
  { label: "lookup unwind replaceRoot", command: agg("orders", [{ $lookup: { from: "customers", localField: "customer_id", foreignField: "_id", as: "c" } }, { $unwind: "$c" }, { $replaceRoot: { newRoot: "$c" } }]) },
  { label: "lookup then project foreign field", command: agg("orders", [{ $lookup: { from: "notes", localField: "customer_id", foreignField: "customer_id", as: "n" } }, { $project: { text: "$n.body", status: 1 } }]), keeps: ["new"] },
  { label: "lookup joining on email", command: agg("notes", [{ $lookup: { from: "customers", localField: "customer_id", foreignField: "email", as: "c" } }]), inference: [`${database}.customers.email join`], keeps: ["support"] },
  { label: "graphLookup customers", command: agg("orders", [{ $graphLookup: { from: "customers", startWith: "$customer_id", connectFromField: "_id", connectToField: "_id", as: "chain" } }]) },
  { label: "facet", command: agg("customers", [{ $facet: { emails: [{ $project: { e: "$email" } }], count: [{ $count: "n" }] } }]) },
  { label: "unionWith notes", command: agg("orders", [{ $unionWith: "notes" }]), keeps: ["paid"] },
  { label: "unionWith pipeline rename", command: agg("orders", [{ $unionWith: { coll: "customers", pipeline: [{ $project: { status: "$email" } }] } }]), keeps: ["call back"], note: "a union cannot tell which side a document came from: `status` is masked in both" },

  // ---- views ------------------------------------------------------------------------------------
  { label: "aggregate on a view", command: agg("contacts", [{ $project: { c: { $toLower: "$contact" }, name: 1 } }]), keeps: ["Ann"] },

  // ---- findAndModify, distinct, count ------------------------------------------------------------
  { label: "findAndModify value", command: e({ findAndModify: "customers", query: { _id: 1 }, update: { $set: { name: "Ann" } }, new: true }), keeps: ["Ann"] },
  { label: "findAndModify fields", command: e({ findAndModify: "customers", query: { _id: 2 }, update: { $inc: { logins: 1 } }, fields: { email: 1, card: 1 } }), keeps: ["01/29"] },
  { label: "distinct email", command: e({ distinct: "customers", key: "email" }) },
  { label: "distinct card numbers", command: e({ distinct: "customers", key: "cards.number" }) },
  { label: "distinct city", command: e({ distinct: "customers", key: "address.city" }), keeps: ["Paris", "Lyon"], noCanary: true },
  { label: "count by email", command: e({ count: "customers", query: { email: C.email2 } }), inference: [`${database}.customers.email where`], noCanary: true },

  // ---- change streams ---------------------------------------------------------------------------
  {
    label: "change stream events",
    command: agg("customers", [{ $changeStream: { fullDocument: "updateLookup" } }]),
    reply: {
      cursor: {
        firstBatch: [
          { _id: { _data: "8263AA" }, operationType: "insert", ns: { db: database, coll: "customers" }, documentKey: { _id: 3 }, fullDocument: { _id: 3, name: "Cy", email: C.email1, cards: [{ number: C.cards1a }] } },
          {
            _id: { _data: "8263AB" },
            operationType: "update",
            ns: { db: database, coll: "customers" },
            documentKey: { _id: 1 },
            updateDescription: { updatedFields: { "address.street": C.street1, email: C.email2, "cards.0.number": C.cards2a, "address.city": "Nice" }, removedFields: ["tags"], truncatedArrays: [] },
            fullDocument: { _id: 1, name: "Ann", email: C.email2, address: { street: C.street1, city: "Nice" } },
          },
        ],
        id: Long.fromNumber(777),
        ns: `${database}.customers`,
        postBatchResumeToken: { _data: "8263AB" },
      },
      ok: 1,
    },
    keeps: ["Nice", "Cy"],
  },
  {
    label: "database change stream",
    command: agg(1, [{ $changeStream: {} }, { $match: { operationType: "insert" } }]),
    reply: {
      cursor: {
        firstBatch: [
          { _id: { _data: "82" }, operationType: "insert", ns: { db: database, coll: "notes" }, documentKey: { _id: 9 }, fullDocument: { _id: 9, body: C.body1, topic: "billing" } },
          { _id: { _data: "83" }, operationType: "insert", ns: { db: database, coll: "customers" }, documentKey: { _id: 4 }, fullDocument: { _id: 4, ssn: C.ssn1, name: "Di" } },
        ],
        id: Long.fromNumber(778),
        ns: `${database}.$cmd.aggregate`,
      },
      ok: 1,
    },
    keeps: ["billing", "Di"],
  },

  // ---- uncertain lineage ------------------------------------------------------------------------
  {
    label: "$function over email",
    command: agg("customers", [{ $addFields: { f: { $function: { body: "function(e) { return e.split('').reverse().join(''); }", args: ["$email"], lang: "js" } } } }]),
    reply: { cursor: { firstBatch: [{ _id: 1, name: "Ann", email: C.email1, f: [...C.email1].reverse().join("") }], id: 0, ns: `${database}.customers` }, ok: 1 },
    keeps: ["Ann"],
    uncertain: true,
  },
  {
    label: "unknown stage",
    command: agg("customers", [{ $teleport: {} }]),
    reply: { cursor: { firstBatch: [{ _id: 1, anything: C.email1, more: { deep: C.ssn1 } }], id: 0, ns: `${database}.customers` }, ok: 1 },
    uncertain: true,
  },
  {
    label: "$where find",
    command: e({ find: "customers", filter: { $where: "this.name.length > 2" } }),
    reply: { cursor: { firstBatch: [{ _id: 1, name: "Ann", email: C.email1, card: { number: C.card1, expiry: "12/30" } }], id: 0, ns: `${database}.customers` }, ok: 1 },
    keeps: ["Ann", "12/30"],
    inference: [`${database}.customers.address.street where`, `${database}.customers.balance where`, `${database}.customers.birth where`, `${database}.customers.card.number where`, `${database}.customers.cards.number where`, `${database}.customers.email where`, `${database}.customers.ref where`, `${database}.customers.salary where`, `${database}.customers.ssn where`, `${database}.customers.uuid where`, `${database}.customers.visits where`],
  },
  {
    label: "getMore of an unknown cursor",
    command: e({ getMore: Long.fromNumber(424242), collection: "customers" }),
    reply: { cursor: { nextBatch: [{ _id: 1, x: C.email1, y: { z: C.card1 } }], id: 0, ns: `${database}.customers` }, ok: 1 },
  },
  {
    label: "oplog",
    command: { find: "oplog.rs", filter: {}, $db: "local" },
    reply: { cursor: { firstBatch: [{ op: "i", ns: `${database}.customers`, o: { _id: 5, email: C.email2 } }], id: 0, ns: "local.oplog.rs" }, ok: 1 },
    uncertain: true,
  },

  // ---- errors that echo values ------------------------------------------------------------------
  {
    label: "duplicate key on insert",
    command: e({ insert: "customers", documents: [{ _id: 3, email: C.email1 }] }),
    reply: {
      n: 0,
      writeErrors: [{ index: 0, code: 11000, errmsg: `E11000 duplicate key error collection: ${database}.customers index: email_1 dup key: { email: "${C.email1}" }`, keyPattern: { email: 1 }, keyValue: { email: C.email1 } }],
      ok: 1,
    },
    withheld: true,
  },
  {
    label: "convert failure",
    command: agg("customers", [{ $project: { n: { $toInt: "$ssn" } } }]),
    reply: { ok: 0, errmsg: `PlanExecutor error during aggregation :: caused by :: Failed to parse number '${C.ssn1}' in $convert with no onError value`, code: 241, codeName: "ConversionFailure" },
    withheld: true,
  },
  {
    label: "cannot create field",
    command: e({ update: "customers", updates: [{ q: { _id: 1 }, u: { $set: { "email.domain": "x" } } }] }),
    reply: { n: 0, nModified: 0, writeErrors: [{ index: 0, code: 28, errmsg: `Cannot create field 'domain' in element {email: "${C.email1}"}` }], ok: 1 },
    withheld: true,
  },
  {
    label: "validation failure details",
    command: e({ update: "customers", updates: [{ q: { _id: 2 }, u: { $set: { name: "" } } }] }),
    reply: {
      n: 0,
      nModified: 0,
      writeErrors: [{ index: 0, code: 121, errmsg: "Document failed validation", errInfo: { failingDocumentId: 2, details: { operatorName: "$jsonSchema", schemaRulesNotSatisfied: [{ operatorName: "properties", propertiesNotSatisfied: [{ propertyName: "email", details: [{ consideredValue: C.email2 }] }] }] } } }],
      ok: 1,
    },
  },
  {
    label: "error on a clean collection with a detected value",
    command: e({ find: "orders", filter: { comment: { $regex: "(" } } }),
    reply: { ok: 0, errmsg: `Regular expression is invalid: missing ) near ${C.detectedEmail}`, code: 51091, codeName: "Location51091" },
    keeps: ["Regular expression is invalid"],
  },
  {
    label: "write concern error",
    command: e({ insert: "orders", documents: [{ _id: 12 }] }),
    reply: { n: 1, writeConcernError: { code: 64, errmsg: `waiting for replication timed out; contact ${C.detectedEmail}` }, ok: 1 },
  },
  {
    label: "error echoing the filter value",
    command: e({ find: "customers", filter: { email: { $regex: `(${C.email2}` } } }),
    reply: { ok: 0, errmsg: `Regular expression is invalid: missing ): (${C.email2}`, code: 51091, codeName: "Location51091" },
    withheld: true,
    inference: [`${database}.customers.email where`],
  },

  // ---- explain ----------------------------------------------------------------------------------
  {
    label: "explain find",
    command: e({ explain: { find: "customers", filter: { email: C.email1, "address.city": "Paris" } }, verbosity: "queryPlanner" }),
    reply: {
      queryPlanner: {
        namespace: `${database}.customers`,
        parsedQuery: { $and: [{ "address.city": { $eq: "Paris" } }, { email: { $eq: C.email1 } }] },
        winningPlan: { stage: "FETCH", inputStage: { stage: "IXSCAN", keyPattern: { email: 1 }, indexName: "email_1", indexBounds: { email: [`["${C.email1}", "${C.email1}"]`] } } },
      },
      command: { find: "customers", filter: { email: C.email1, "address.city": "Paris" }, $db: database },
      ok: 1,
    },
    keeps: ["Paris", "IXSCAN"],
    inference: [`${database}.customers.email where`],
  },
  {
    label: "explain aggregate with renamed match",
    command: e({ aggregate: "customers", pipeline: [{ $project: { e: "$email" } }, { $match: { e: C.email2 } }], explain: true }),
    reply: {
      stages: [{ $cursor: { queryPlanner: { parsedQuery: {} } } }, { $project: { e: "$email", _id: true } }, { $match: { e: { $eq: C.email2 } } }],
      ok: 1,
    },
    inference: [`${database}.customers.email where`],
  },

  // ---- writes -----------------------------------------------------------------------------------
  {
    label: "upsert id",
    command: e({ update: "customers", updates: [{ q: { email: C.email1 }, u: { $set: { name: "Ann" } }, upsert: true }] }),
    reply: { n: 1, nModified: 0, upserted: [{ index: 0, _id: new ObjectId("64b7f0000000000000000009") }], ok: 1 },
    inference: [`${database}.customers.email where`],
    noCanary: true,
  },
  { label: "out of customers", command: agg("customers", [{ $out: "customers_copy" }]), reply: { cursor: { firstBatch: [], id: 0, ns: `${database}.customers` }, ok: 1 }, copies: true, noCanary: true },
  { label: "merge of renamed email", command: agg("customers", [{ $project: { contact: "$email" } }, { $merge: { into: "customers" } }]), reply: { cursor: { firstBatch: [], id: 0, ns: `${database}.customers` }, ok: 1 }, copies: true, noCanary: true },
  { label: "update pipeline copying email", command: e({ update: "customers", updates: [{ q: { _id: 1 }, u: [{ $set: { contact: "$email" } }] }] }), reply: { n: 1, nModified: 1, ok: 1 }, copies: true, noCanary: true },
  { label: "rename email", command: e({ update: "customers", updates: [{ q: {}, u: { $rename: { email: "mail" } }, multi: true }] }), reply: { n: 2, nModified: 2, ok: 1 }, copies: true, noCanary: true },
];
