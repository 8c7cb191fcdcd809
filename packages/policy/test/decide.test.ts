import { describe, expect, it } from "vitest";
import { decideConnection, decideStatement, type PolicyRule } from "../src/index.js";

const now = new Date("2026-11-29T10:00:00Z");
const all = (action: "allow" | "deny" | "review") => ({ read: action, write: action, ddl: action, admin: action, export: action, dangerous: action });
const policies: PolicyRule[] = [
  { name: "tests-read", groups: ["feature-test"], connections: ["orders"], actions: { ...all("deny"), read: "allow", export: "review" }, maxRows: 1000, maxSessionMs: 900_000 },
  { name: "dba", groups: ["dba"], connections: ["orders"], actions: { ...all("review"), read: "allow", export: "allow", dangerous: "deny" }, unmasked: true, reviewers: ["dba"] },
  { name: "migrations", groups: ["migration"], connections: ["orders"], actions: { ...all("allow"), ddl: "review", admin: "deny", dangerous: "deny" }, reviewTimeoutMs: 600_000 },
];

// The golden corpus: identity, connection, classes, expected effect and deciding rule.
const corpus = [
  { groups: ["feature-test"], connection: "orders", classes: ["read"], effect: "allow", rule: "tests-read" },
  { groups: ["feature-test"], connection: "orders", classes: ["write"], effect: "deny", rule: "tests-read" },
  { groups: ["feature-test"], connection: "orders", classes: ["export"], effect: "review", rule: "tests-read" },
  { groups: ["feature-test"], connection: "orders", classes: ["read", "write"], effect: "deny", rule: "tests-read" },
  { groups: ["feature-test"], connection: "billing", classes: ["read"], effect: "deny", rule: undefined },
  { groups: [], connection: "orders", classes: ["read"], effect: "deny", rule: undefined },
  { groups: ["dba"], connection: "orders", classes: ["write"], effect: "review", rule: "dba" },
  { groups: ["dba"], connection: "orders", classes: ["write", "dangerous"], effect: "deny", rule: "dba" },
  { groups: ["migration"], connection: "orders", classes: ["ddl", "write"], effect: "review", rule: "migrations" },
  { groups: ["migration", "feature-test"], connection: "orders", classes: ["write"], effect: "allow", rule: "migrations" },
  { groups: ["migration"], connection: "orders", classes: [], effect: "deny", rule: undefined },
] as const;

describe("decideStatement", () => {
  it.each(corpus)("$groups on $connection, $classes -> $effect", (entry) => {
    const decision = decideStatement({ principal: { subject: "s", groups: entry.groups }, connection: entry.connection, now, policies, classes: entry.classes });
    expect(decision.effect).toBe(entry.effect);
    expect(decision.rule).toBe(entry.rule);
    expect(decision.reasons.length).toBeGreaterThan(0);
  });

  it("takes the strictest row limit and names reviewers of a review", () => {
    const decision = decideStatement({ principal: { subject: "s", groups: ["dba", "feature-test"] }, connection: "orders", now, policies, classes: ["write"] });
    expect(decision).toMatchObject({ effect: "review", rule: "dba", maxRows: 1000, reviewers: ["dba"] });
  });
});

describe("decideConnection", () => {
  it("denies by default and says why", () => {
    const decision = decideConnection({ principal: { subject: "s", groups: ["nobody"] }, connection: "orders", now, policies });
    expect(decision).toMatchObject({ effect: "deny", rules: [], unmasked: false });
    expect(decision.reasons[0]).toBe("no policy grants groups `nobody` access to connection `orders`");
  });

  it("allows with the matching rules, the session deadline and the unmasked flag", () => {
    const decision = decideConnection({ principal: { subject: "s", groups: ["feature-test"] }, connection: "orders", now, policies });
    expect(decision).toMatchObject({ effect: "allow", rules: ["tests-read"], unmasked: false });
    expect(decision.sessionEndsAt?.toISOString()).toBe("2026-11-29T10:15:00.000Z");
    expect(decideConnection({ principal: { subject: "s", groups: ["dba"] }, connection: "orders", now, policies }).unmasked).toBe(true);
  });
});

describe("time bounds, grants and guardrails", () => {
  const base = { name: "p", groups: ["g"], connections: ["orders"], actions: { ...all("allow") } } as const;
  const principal = { subject: "s", groups: ["g"] };

  it("applies a policy only inside its access window, and ends the session when the window closes", () => {
    const windowed: PolicyRule[] = [{ ...base, windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], from: "08:00", to: "18:00", timezone: "Europe/Paris" }] }];
    // 2026-11-30 is a Monday; 10:00 UTC is 11:00 in Paris.
    const inside = decideConnection({ principal, connection: "orders", now: new Date("2026-11-30T10:00:00Z"), policies: windowed });
    expect(inside.effect).toBe("allow");
    expect(inside.sessionEndsAt?.toISOString()).toBe("2026-11-30T17:00:00.000Z");
    expect(decideConnection({ principal, connection: "orders", now: new Date("2026-11-30T17:30:00Z"), policies: windowed }).effect).toBe("deny");
    expect(decideConnection({ principal, connection: "orders", now: new Date("2026-11-29T10:00:00Z"), policies: windowed }).effect).toBe("deny");
  });

  it("handles a window past midnight as part of the day it starts", () => {
    const night: PolicyRule[] = [{ ...base, windows: [{ days: ["fri"], from: "22:00", to: "02:00" }] }];
    expect(decideConnection({ principal, connection: "orders", now: new Date("2026-12-04T23:00:00Z"), policies: night }).effect).toBe("allow");
    expect(decideConnection({ principal, connection: "orders", now: new Date("2026-12-05T01:00:00Z"), policies: night }).effect).toBe("allow");
    expect(decideConnection({ principal, connection: "orders", now: new Date("2026-12-05T23:00:00Z"), policies: night }).effect).toBe("deny");
  });

  it("needs an active grant for a jit policy and ends the session when the grant does", () => {
    const jit: PolicyRule[] = [{ ...base, access: "jit" }];
    expect(decideConnection({ principal, connection: "orders", now, policies: jit }).effect).toBe("deny");
    const grants = [{ connection: "orders", expiresAt: new Date(now.getTime() + 900_000) }];
    const granted = decideConnection({ principal, connection: "orders", now, policies: jit, grants });
    expect(granted).toMatchObject({ effect: "allow", sessionEndsAt: grants[0]?.expiresAt });
    const expired = [{ connection: "orders", expiresAt: new Date(now.getTime() - 1) }];
    expect(decideConnection({ principal, connection: "orders", now, policies: jit, grants: expired }).effect).toBe("deny");
    expect(decideConnection({ principal, connection: "orders", now, policies: jit, grants: [{ connection: "billing", expiresAt: grants[0]!.expiresAt }] }).effect).toBe("deny");
  });

  it("denies unbounded writes unless the policy says otherwise, and reports approvals of a review", () => {
    expect(decideStatement({ principal, connection: "orders", now, policies: [base], classes: ["write"], unboundedWrite: true })).toMatchObject({ effect: "deny", reasons: ["unbounded write: deny by policy `p`"] });
    const lenient: PolicyRule[] = [{ ...base, unboundedWrite: "review", reviewers: ["dba"], approvals: 2 }];
    expect(decideStatement({ principal, connection: "orders", now, policies: lenient, classes: ["write"], unboundedWrite: true })).toMatchObject({ effect: "review", approvals: 2, reviewers: ["dba"] });
    expect(decideStatement({ principal, connection: "orders", now, policies: lenient, classes: ["write"] }).effect).toBe("allow");
  });
});
