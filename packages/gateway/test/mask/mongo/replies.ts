import { Long, type Document } from "bson";
import { Aggregator, Query } from "mingo";
import { fixture, views } from "./corpus.js";

/** The documents of a namespace of the fixture, views evaluated. */
export function documentsOf(data: Record<string, Document[]>, name: string): Document[] {
  const view = views.find((candidate) => candidate.name === name);
  if (view === undefined) return data[name] ?? [];
  return aggregate(data, documentsOf(data, view.viewOn), [...view.pipeline]);
}

function aggregate(data: Record<string, Document[]>, input: Document[], pipeline: Document[]): Document[] {
  return new Aggregator(pipeline, { collectionResolver: (name: string) => documentsOf(data, name) }).run(input) as Document[];
}

function valuesAt(document: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return Array.isArray(document) ? document : [document];
  if (Array.isArray(document)) return document.flatMap((item) => valuesAt(item, path));
  if (typeof document !== "object" || document === null) return [];
  const [head, ...rest] = path as [string, ...string[]];
  return valuesAt((document as Document)[head], rest);
}

/** What the server answers to a command over the fixture, as mingo evaluates it. */
export function computeReply(command: Document): Document {
  const data = fixture();
  const name = Object.keys(command)[0] as string;
  const ns = `${String(command.$db)}.${String(command[name])}`;
  const cursor = (documents: Document[]): Document => ({ cursor: { firstBatch: documents, id: Long.fromNumber(0), ns }, ok: 1 });
  switch (name) {
    case "find": {
      let found = new Query((command.filter ?? {}) as Document).find(documentsOf(data, command.find as string), command.projection as Document | undefined);
      if (command.sort !== undefined) found = found.sort(command.sort as Record<string, 1 | -1>);
      return cursor(found.all() as Document[]);
    }
    case "aggregate":
      return cursor(aggregate(data, typeof command.aggregate === "string" ? documentsOf(data, command.aggregate) : [], command.pipeline as Document[]));
    case "count":
      return { n: new Query((command.query ?? {}) as Document).find(documentsOf(data, command.count as string)).all().length, ok: 1 };
    case "distinct": {
      const documents = new Query((command.query ?? {}) as Document).find(documentsOf(data, command.distinct as string)).all();
      const values = documents.flatMap((document) => valuesAt(document, (command.key as string).split(".")));
      return { values: [...new Map(values.map((value) => [JSON.stringify(value), value])).values()], ok: 1 };
    }
    case "findAndModify": {
      const value = new Query((command.query ?? {}) as Document).find(documentsOf(data, command.findAndModify as string), command.fields as Document | undefined).all()[0] ?? null;
      return { lastErrorObject: { n: 1, updatedExisting: true }, value, ok: 1 };
    }
    default:
      throw new Error(`no computed reply for \`${name}\``);
  }
}
