import { explain, loadAnalyzer, loadGatewayConfig, type Explanation } from "@airlock/gateway";
import { loadYamlConfig } from "@airlock/runtime";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { UsageError, type Command } from "./command.js";

const testFileSchema = z
  .object({
    /** gateway.yaml, relative to the test file. */
    config: z.string().min(1),
    /** The time the cases are decided at (ISO 8601); default now. */
    now: z.iso.datetime({ offset: true }).optional(),
    cases: z
      .array(
        z
          .object({
            name: z.string().min(1),
            claims: z.record(z.string(), z.unknown()).optional(),
            groups: z.array(z.string()).optional(),
            connection: z.string().min(1),
            sql: z.string(),
            expect: z.enum(["allow", "deny", "review"]),
            rule: z.string().optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

function render(explanation: Explanation): string[] {
  const { decision } = explanation;
  const lines = [
    `decision: ${decision.effect}${decision.rule === undefined ? "" : ` by policy ${decision.rule}`}`,
    `identity: ${explanation.subject} [${explanation.groups.join(", ")}]`,
    `connection: ${explanation.connection.effect}${explanation.connection.rules.length > 0 ? ` (${explanation.connection.rules.join(", ")})` : ""}`,
    `classes: ${explanation.classes.join(", ") || "(none)"}${explanation.unboundedWrite ? " + unbounded write" : ""}`,
    ...decision.reasons.map((reason) => `reason: ${reason}`),
  ];
  if (explanation.analysis.ok) {
    for (const statement of explanation.analysis.statements) {
      lines.push(`statement: ${statement.kind} -> ${statement.classes.join(", ")}${statement.reasons.length > 0 ? ` (${statement.reasons.join("; ")})` : ""}`);
    }
  }
  if (decision.maxRows !== undefined) lines.push(`max_rows: ${decision.maxRows}`);
  return lines;
}

export const policyCommand: Command = {
  name: "policy",
  summary: "explain a decision, or run a policy test file",
  usage: `airlock policy explain --config gateway.yaml --claims JSON --connection NAME --sql TEXT [--groups a,b] [--now ISO] [--json]
airlock policy test FILE

explain prints the decision on a statement for an identity (its token claims; groups are computed
from them as the gateway would), the rule that made it and why. test runs a YAML file of cases:

  config: ./gateway.yaml
  cases:
    - name: tests may read
      claims: { iss: https://token.actions.githubusercontent.com, sub: repo:acme/api, repository: acme/api }
      connection: orders
      sql: select * from customers
      expect: allow          # allow | deny | review
      rule: tests-read       # optional: the deciding policy

and exits non-zero if any case fails.`,
  async run(argv, _env, io) {
    const [action, ...rest] = argv;
    if (action === "explain") {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          config: { type: "string" },
          claims: { type: "string", default: "{}" },
          groups: { type: "string" },
          connection: { type: "string" },
          sql: { type: "string" },
          now: { type: "string" },
          json: { type: "boolean", default: false },
        },
      });
      if (positionals.length > 0) throw new UsageError(`unexpected argument \`${positionals[0]}\``);
      if (values.config === undefined || values.connection === undefined || values.sql === undefined) throw new UsageError("--config, --connection and --sql are required");
      let claims: Record<string, unknown>;
      try {
        claims = JSON.parse(values.claims) as Record<string, unknown>;
      } catch {
        throw new UsageError("--claims is not JSON");
      }
      await loadAnalyzer();
      const config = loadGatewayConfig(values.config);
      const explanation = explain(config, {
        claims,
        ...(values.groups === undefined ? {} : { groups: values.groups.split(",").filter(Boolean) }),
        connection: values.connection,
        sql: values.sql,
        now: values.now === undefined ? new Date() : new Date(values.now),
      });
      if (values.json) io.out(JSON.stringify(explanation));
      else for (const line of render(explanation)) io.out(line);
      return 0;
    }
    if (action === "test") {
      const file = rest[0];
      if (file === undefined || rest.length > 1) throw new UsageError("expected one test file");
      const tests = loadYamlConfig(file, testFileSchema);
      const configFile = isAbsolute(tests.config) ? tests.config : resolve(dirname(resolve(file)), tests.config);
      await loadAnalyzer();
      const config = loadGatewayConfig(configFile);
      const now = tests.now === undefined ? new Date() : new Date(tests.now);
      let failed = 0;
      for (const entry of tests.cases) {
        let line: string;
        try {
          const explanation = explain(config, { ...(entry.claims === undefined ? {} : { claims: entry.claims }), ...(entry.groups === undefined ? {} : { groups: entry.groups }), connection: entry.connection, sql: entry.sql, now });
          const { effect, rule } = explanation.decision;
          const ok = effect === entry.expect && (entry.rule === undefined || entry.rule === rule);
          if (!ok) failed++;
          line = `${ok ? "ok  " : "FAIL"}  ${entry.name}: ${effect}${rule === undefined ? "" : ` by ${rule}`}${ok ? "" : ` (expected ${entry.expect}${entry.rule === undefined ? "" : ` by ${entry.rule}`}; ${explanation.decision.reasons.join("; ")})`}`;
        } catch (error) {
          failed++;
          line = `FAIL  ${entry.name}: ${(error as Error).message}`;
        }
        io.out(line);
      }
      io.out(`${tests.cases.length - failed} passed, ${failed} failed`);
      return failed === 0 ? 0 : 1;
    }
    throw new UsageError(action === undefined ? "expected explain or test" : `unknown action \`${action}\``);
  },
};
