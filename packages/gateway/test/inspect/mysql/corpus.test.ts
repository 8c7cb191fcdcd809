import { statementClasses } from "@airlock/policy";
import { beforeAll, describe, expect, it } from "vitest";
import { analyzeMysql, loadMysqlAnalyzer, type MysqlAnalyzeOptions } from "../../../src/inspect/index.js";
import { sqlModeFlags } from "../../../src/inspect/mysql/settings.js";
import { mysqlCorpus, mysqlCorpusServer, type MysqlCorpusEntry } from "./corpus.js";

beforeAll(async () => {
  await loadMysqlAnalyzer();
});

function optionsOf(entry: MysqlCorpusEntry): MysqlAnalyzeOptions {
  const flags = sqlModeFlags(entry.sqlMode ?? "");
  return { server: mysqlCorpusServer, ansiQuotes: flags.ansiQuotes, noBackslashEscapes: flags.noBackslashEscapes, pipesAsConcat: flags.pipesAsConcat };
}

describe("MySQL corpus", () => {
  it("is large and covers every class, with benign look-alikes", () => {
    expect(mysqlCorpus.length).toBeGreaterThanOrEqual(120);
    expect(mysqlCorpus.filter((entry) => entry.benign === true).length).toBeGreaterThanOrEqual(40);
    for (const statementClass of statementClasses) {
      expect(mysqlCorpus.some((entry) => entry.classes.includes(statementClass)), statementClass).toBe(true);
    }
    const keys = mysqlCorpus.map((entry) => `${entry.sqlMode ?? ""}\u0000${entry.sql}`);
    expect(new Set(keys).size).toBe(mysqlCorpus.length);
    for (const entry of mysqlCorpus) expect([...entry.classes].sort()).toEqual(entry.classes);
    for (const entry of mysqlCorpus.filter((e) => e.benign === true)) expect(entry.classes).toEqual(["read"]);
    for (const entry of mysqlCorpus.filter((e) => e.readOnly === "runs" && e.classes.length === 1)) expect(entry.classes).toEqual(["read"]);
    for (const entry of mysqlCorpus.filter((e) => e.unanalysable === true)) expect(entry.readOnly).toBe("refused");
  });

  it.each(mysqlCorpus.map((entry) => [`${entry.sqlMode === undefined ? "" : `[${entry.sqlMode}] `}${entry.sql}`, entry] as const))("%s", (_name, entry) => {
    const analysis = analyzeMysql(entry.sql, optionsOf(entry));
    if (entry.unanalysable === true) {
      expect(analysis.ok).toBe(false);
      return;
    }
    if (!analysis.ok) throw new Error(`expected an analysis, got error: ${analysis.error}`);
    const reasons = analysis.statements.flatMap((statement) => statement.reasons).join("; ");
    expect(analysis.classes, reasons).toEqual(entry.classes);
    expect(analysis.statements.some((statement) => statement.unboundedWrite), reasons).toBe(entry.unbounded ?? false);
    if (entry.copiesData !== undefined || entry.readOnly === "runs") {
      expect(analysis.statements.some((statement) => statement.copiesData), reasons).toBe(entry.copiesData ?? false);
    }
    if (entry.relations !== undefined) {
      const union = new Map(analysis.statements.flatMap((statement) => statement.relations).map((relation) => [JSON.stringify(relation), relation]));
      const key = (relation: { schema?: string; name: string; access: string }): string => `${relation.schema ?? ""}\u0000${relation.name}\u0000${relation.access}`;
      const relations = [...union.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
      expect(relations).toEqual(entry.relations);
    }
    for (const statement of analysis.statements) {
      expect(statement.classes.length).toBeGreaterThan(0);
      expect(statement.reasons.length).toBeGreaterThan(0);
    }
  });
});
