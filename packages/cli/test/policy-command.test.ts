import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./support/cli.js";

const examples = resolve(import.meta.dirname, "../../../examples/policy");
const dir = mkdtempSync(join(tmpdir(), "airlock-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const feature = JSON.stringify({ iss: "https://token.actions.githubusercontent.com", sub: "repo:acme/api:ref:refs/heads/feature", repository: "acme/api" });

describe("airlock policy", () => {
  it("passes the example policy tests", async () => {
    const result = await cli(["policy", "test", join(examples, "policy-tests.yaml")]);
    expect(result.err).toBe("");
    expect(result.out).toMatch(/13 passed, 0 failed/);
    expect(result.status).toBe(0);
  });

  it("fails, naming the case, when a decision is not the expected one", async () => {
    const file = join(dir, "wrong.yaml");
    writeFileSync(
      file,
      `config: ${join(examples, "gateway.yaml")}
cases:
  - { name: right, claims: ${feature}, connection: orders, sql: "select 1", expect: allow }
  - { name: wrong, claims: ${feature}, connection: orders, sql: "delete from orders where id = 1", expect: allow }
  - { name: wrong rule, claims: ${feature}, connection: orders, sql: "select 1", expect: allow, rule: migrations }
`,
    );
    const result = await cli(["policy", "test", file]);
    expect(result.status).toBe(1);
    expect(result.out).toMatch(/^ok {4}right: allow by tests-read$/m);
    expect(result.out).toMatch(/^FAIL {2}wrong: deny by tests-read \(expected allow; write: deny by policy `tests-read`\)$/m);
    expect(result.out).toMatch(/^FAIL {2}wrong rule: allow by tests-read \(expected allow by migrations/m);
    expect(result.out).toMatch(/1 passed, 2 failed/);
  });

  it("explains the deciding rule, the classes and the reasons", async () => {
    const result = await cli(["policy", "explain", "--config", join(examples, "gateway.yaml"), "--claims", feature, "--connection", "orders", "--sql", "select 1; commit; drop table orders", "--json"]);
    expect(result.status).toBe(0);
    const explanation = JSON.parse(result.out) as { decision: { effect: string; rule: string }; classes: string[]; groups: string[] };
    expect(explanation.decision).toMatchObject({ effect: "deny", rule: "tests-read" });
    expect(explanation.classes).toEqual(["ddl", "read"]);
    expect(explanation.groups).toEqual(["feature-test"]);
  });

  it("says what is wrong with its arguments", async () => {
    expect(await cli(["policy", "explain", "--config", join(examples, "gateway.yaml")])).toMatchObject({ status: 2, err: expect.stringMatching(/--config, --connection and --sql are required/) });
    expect(await cli(["policy", "explain", "--config", join(examples, "gateway.yaml"), "--connection", "nope", "--sql", "select 1"])).toMatchObject({ status: 1, err: expect.stringMatching(/no connection is named `nope`/) });
    expect(await cli(["policy", "test", join(dir, "missing.yaml")])).toMatchObject({ status: 1, err: expect.stringMatching(/cannot read the file: ENOENT/) });
  });
});
