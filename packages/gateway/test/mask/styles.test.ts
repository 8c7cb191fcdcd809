import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_PARTIAL_KEEP, PSEUDONYM_PREFIX, REDACTED_TEXT, maskText, type MaskStyle } from "../../src/mask/values.js";
import { base32 } from "../../src/mask/styles.js";

const KEY = Buffer.alloc(32, 1);
const key = fc.uint8Array({ minLength: 16, maxLength: 64 }).map((bytes) => Buffer.from(bytes));
const TOKEN = /^psd_[a-z2-7]{16}$/;

/** Spaces and punctuation, which `partial` keeps in place. */
const isSeparator = (char: string): boolean => /^[\p{P}\p{Z}\s]$/u.test(char);

describe("redact", () => {
  it("replaces any value with the placeholder", () => {
    expect(maskText("alice@example.com", { style: "redact" })).toBe(REDACTED_TEXT);
    expect(maskText("", { style: "redact" })).toBe(REDACTED_TEXT);
  });

  it("never contains an input longer than 3 characters (unless the input is part of the placeholder itself)", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4, unit: "grapheme" }), (value) => {
        const masked = maskText(value, { style: "redact" }) as string;
        return !masked.includes(value) || REDACTED_TEXT.includes(value);
      }),
    );
  });
});

describe("null", () => {
  it("is SQL NULL", () => {
    expect(maskText("alice@example.com", { style: "null" })).toBeNull();
  });
});

describe("partial", () => {
  it("keeps the last 4 by default and the layout of the original", () => {
    expect(DEFAULT_PARTIAL_KEEP).toBe(4);
    expect(maskText("4111 1111 1111 1111", { style: "partial" })).toBe("**** **** **** 1111");
    expect(maskText("4111-1111-1111-1111", { style: "partial", keep: 6 })).toBe("****-****-**11-1111");
    expect(maskText("alice@example.com", { style: "partial", keep: 3 })).toBe("*****@*******.com");
    expect(maskText("+44 20 7946 0958", { style: "partial", keep: 2 })).toBe("*** ** **** **58");
    expect(maskText("Ünïcödé 😀 name", { style: "partial", keep: 2 })).toBe("******* * **me");
  });

  it("masks a value whole when it has no more than `keep` significant characters", () => {
    expect(maskText("1234", { style: "partial" })).toBe("****");
    expect(maskText("a-b", { style: "partial" })).toBe("*-*");
    expect(maskText("12345", { style: "partial", keep: 0 })).toBe("*****");
  });

  it("keeps exactly the last N significant characters, masks the others, keeps separators and length", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), fc.integer({ min: 0, max: 12 }), (value, keep) => {
        const masked = maskText(value, { style: "partial", keep }) as string;
        const before = Array.from(value);
        const after = Array.from(masked);
        expect(after.length).toBe(before.length);
        const significant = before.map((char, index) => (isSeparator(char) ? -1 : index)).filter((index) => index >= 0);
        const kept = new Set(significant.length > keep ? significant.slice(significant.length - keep) : []);
        before.forEach((char, index) => {
          if (isSeparator(char) || kept.has(index)) expect(after[index]).toBe(char);
          else expect(after[index]).toBe("*");
        });
      }),
    );
  });
});

describe("pseudonym", () => {
  it("is a stable token: psd_ and 16 base32 characters", () => {
    // Pinned: tokens must stay the same across releases, or joins over recorded results break.
    expect(maskText("alice@example.com", { style: "pseudonym", key: KEY })).toBe("psd_6bytqn7dtrj4mihs");
    expect(PSEUDONYM_PREFIX).toBe("psd_");
  });

  it("is deterministic: the same value and key give the same token", () => {
    fc.assert(
      fc.property(fc.string(), key, (value, secret) => {
        const first = maskText(value, { style: "pseudonym", key: secret }) as string;
        expect(first).toMatch(TOKEN);
        expect(maskText(value, { style: "pseudonym", key: Buffer.from(secret) })).toBe(first);
      }),
    );
  });

  it("depends on the key and on the value", () => {
    fc.assert(
      fc.property(fc.string(), key, key, (value, one, two) => {
        fc.pre(!one.equals(two));
        expect(maskText(value, { style: "pseudonym", key: one })).not.toBe(maskText(value, { style: "pseudonym", key: two }));
      }),
    );
    fc.assert(
      fc.property(fc.string(), fc.string(), (one, two) => {
        fc.pre(one !== two);
        expect(maskText(one, { style: "pseudonym", key: KEY })).not.toBe(maskText(two, { style: "pseudonym", key: KEY }));
      }),
    );
  });
});

describe("options", () => {
  it("refuses invalid options with a TypeError naming the option", () => {
    expect(() => maskText("x", { style: "hash" as MaskStyle })).toThrow(new TypeError("options.style: unknown mask style `hash`"));
    expect(() => maskText("x", { style: "partial", keep: -1 })).toThrow(new TypeError("options.keep: expected a non-negative integer"));
    expect(() => maskText("x", { style: "partial", keep: 1.5 })).toThrow(TypeError);
    expect(() => maskText("x", { style: "pseudonym" })).toThrow(new TypeError("options.key: the pseudonym style needs a key"));
    expect(() => maskText("x", { style: "pseudonym", key: Buffer.alloc(15) })).toThrow(new TypeError("options.key: expected at least 16 bytes"));
  });
});

describe("base32", () => {
  it("matches the RFC 4648 test vectors (lower case, no padding)", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "my"],
      ["fo", "mzxq"],
      ["foo", "mzxw6"],
      ["foob", "mzxw6yq"],
      ["fooba", "mzxw6ytb"],
      ["foobar", "mzxw6ytboi"],
    ];
    for (const [input, output] of vectors) expect(base32(Buffer.from(input))).toBe(output);
  });
});
