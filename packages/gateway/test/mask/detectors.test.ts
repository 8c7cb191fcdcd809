import { describe, expect, it } from "vitest";
import { createDetectors, detectorNames, type DetectorName } from "../../src/mask/values.js";

/**
 * A case: the text, and the sensitive part of it the detector must find exactly (the whole text
 * when omitted).
 */
type Positive = string | readonly [text: string, value: string];

const all = createDetectors(detectorNames);

function expectFound(detector: DetectorName, cases: readonly Positive[]): void {
  const only = createDetectors([detector]);
  for (const entry of cases) {
    const [text, value] = typeof entry === "string" ? [entry, entry] : entry;
    const start = text.indexOf(value);
    expect(start, `fixture ${JSON.stringify(text)}`).toBeGreaterThanOrEqual(0);
    expect(only.scan(text), JSON.stringify(text)).toEqual([{ detector, start, end: start + value.length }]);
  }
}

function expectNotFound(detector: DetectorName, cases: readonly string[]): void {
  const only = createDetectors([detector]);
  for (const text of cases) expect(only.scan(text), JSON.stringify(text)).toEqual([]);
}

// Fixtures that secret scanners (GitHub push protection and the like) recognise are assembled at
// run time, so this file does not itself look like it leaks credentials.
const join = (...parts: string[]): string => parts.join("");
const AWS_KEY_ID = join("AKIA", "IOSFODNN7EXAMPLE");
const AWS_SESSION_KEY_ID = join("ASIA", "Y34FZKBOKMUTVV7A");
const AWS_SECRET = join("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY");
const GITHUB_PAT = join("ghp", "_", "R2d2C3poBb8Luke9Leia0Han1Solo2Chewie3");
const GITHUB_FINE = join("github_pat", "_", "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab");
const SLACK = join("xox", "b-", "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
const STRIPE = join("sk", "_live_", "4eC39HqLyjWDarjtT1zdp7dc");
const STRIPE_RESTRICTED = join("rk", "_live_", "51H8sT2eZvKYlo2C0aBcDeFgHiJk");
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const PEM_BODY = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n";
const RSA_KEY = join("-----BEGIN RSA PRIVATE", " KEY-----\n", PEM_BODY, "-----END RSA PRIVATE", " KEY-----");
const OPENSSH_KEY = join("-----BEGIN OPENSSH PRIVATE", " KEY-----\n", PEM_BODY, "-----END OPENSSH PRIVATE", " KEY-----");
const RANDOM_TOKEN = "Zx8qL2vN9pR4tY7wK1mB5cH3jF6gD0sAe";

describe("createDetectors", () => {
  it("enables the named detectors in canonical order, once each", () => {
    expect(createDetectors(["secret", "email", "secret"]).names).toEqual(["email", "secret"]);
    expect(createDetectors([]).scan("alice@example.com 4111 1111 1111 1111")).toEqual([]);
  });

  it("refuses what is not a detector name", () => {
    expect(() => createDetectors(["email", "passport" as DetectorName])).toThrow(new TypeError("names: unknown detector `passport`"));
    expect(() => createDetectors("email" as unknown as DetectorName[])).toThrow(TypeError);
  });
});

describe("card_number", () => {
  it("finds card numbers of every major issuer, bare or printed", () => {
    expectFound("card_number", [
      "4111 1111 1111 1111",
      "4111-1111-1111-1111",
      ["paid with card=4012888888881881;", "4012888888881881"],
      "5555555555554444",
      "5105 1051 0510 5100",
      "2223003122003222",
      "378282246310005",
      ["amex: 3782 822463 10005.", "3782 822463 10005"],
      "6011111111111117",
      "3530111333300000",
      "30569309025904",
      "6200000000000005",
      "4222222222222",
      ['{"pan":"4000056655665556"}', "4000056655665556"],
      ["invalid input syntax for type integer: \"4111111111111111\"", "4111111111111111"],
    ]);
  });

  it("leaves ordinary numbers and ids alone", () => {
    expectNotFound("card_number", [
      "4111111111111112", // Luhn fails
      "0000000000000000", // Luhn passes, no issuer
      "1700000000000", // epoch milliseconds
      "12345678901234567890", // too long
      "41111111111111110", // 17 digits: not a Visa length
      "x4111111111111111", // glued to a word
      "order ORD-20240115-000123",
      "550e8400-e29b-41d4-a716-446655440000",
      "2024-01-15 12:30:45.123456",
      "4012 888 888 881 881", // Luhn passes, but no card is printed like that
      "1Z999AA10123456784",
      "+1 415 555 0100",
      "9999 9999 9999 9995",
      "1234 5678 9012 3456",
    ]);
  });

  it("finds two cards in one run of digit groups", () => {
    const text = "4111111111111111 5555555555554444";
    expect(createDetectors(["card_number"]).scan(text)).toEqual([
      { detector: "card_number", start: 0, end: 16 },
      { detector: "card_number", start: 17, end: 33 },
    ]);
  });
});

describe("email", () => {
  it("finds e-mail addresses", () => {
    expectFound("email", [
      "alice@example.com",
      "first.last+tag@sub.example.co.uk",
      "x_y%z@mail-server.example.io",
      "JOHN.DOE@EXAMPLE.COM",
      ["To: Bob <bob@corp.example>", "bob@corp.example"],
      ['{"email":"carol@example.net"}', "carol@example.net"],
      ['invalid input syntax for type integer: "dave@example.org"', "dave@example.org"],
      ["mailto:erin@example.com?subject=hi", "erin@example.com"],
      ["frank@xn--mnchen-3ya.de.", "frank@xn--mnchen-3ya.de"],
      ["(.grace@example.com)", "grace@example.com"],
    ]);
  });

  it("leaves look-alikes alone", () => {
    expectNotFound("email", [
      "@example.com",
      "alice@",
      "alice@localhost",
      "lodash@4.17.21",
      "npm i @types/node@20.19.0",
      "a@b.c",
      "name [at] example [dot] com",
      "postgres@15",
      "foo@bar..com",
      "user@-example.com",
      "price: 5 @ $3.00",
      "@@@@",
    ]);
  });
});

describe("ssn", () => {
  it("finds US social security numbers", () => {
    expectFound("ssn", [
      "123-45-6789",
      ["SSN: 078-05-1120", "078-05-1120"],
      ["ssn=219-09-9999;", "219-09-9999"],
      "665-01-0001",
      "899-99-9999",
      "001-01-0001",
      ["(772-10-1234)", "772-10-1234"],
      ['"ssn": "567-89-1234"', "567-89-1234"],
    ]);
  });

  it("leaves never-issued numbers and other shapes alone", () => {
    expectNotFound("ssn", [
      "000-12-3456",
      "666-12-3456",
      "900-12-3456",
      "123-00-4567",
      "123-45-0000",
      "123456789",
      "1123-45-6789",
      "123-45-67890",
      "2024-01-15",
      "12-345-6789",
    ]);
  });
});

describe("national_id", () => {
  it("finds UK, French, Spanish, Italian and Indian national ids with valid checks", () => {
    expectFound("national_id", [
      "AB123456C",
      ["NINO JG 10 37 59 A", "JG 10 37 59 A"],
      "1 84 12 76 451 089 46",
      "184127645108946",
      "2 69 05 2A 123 456 88",
      "12345678Z",
      "12345678-Z",
      "X1234567L",
      "RSSMRA85T10A562S",
      "2345 6789 0124",
      "9876-5432-1012",
      ["aadhaar: 491827364507", "491827364507"],
    ]);
  });

  it("leaves invalid ids and lookalikes alone", () => {
    expectNotFound("national_id", [
      "QQ123456C", // QQ is never issued (the usual example)
      "GB123456A",
      "AB123456E",
      "1 84 12 76 451 089 47", // wrong key
      "12345678A", // wrong letter
      "X1234567A",
      "RSSMRA85T10A562T", // wrong check character
      "2345 6789 0123", // Verhoeff fails
      "491827364507", // bare 12 digits without the word aadhaar
      "1234 5678 9012",
      "INV-12345678",
      "2024-01-15T10:00:00Z",
    ]);
  });
});

describe("iban", () => {
  it("finds IBANs, electronic or printed", () => {
    expectFound("iban", [
      "DE89 3704 0044 0532 0130 00",
      "GB82WEST12345698765432",
      "FR14 2004 1010 0505 0001 3M02 606",
      "NL91ABNA0417164300",
      "ES9121000418450200051332",
      "IT60X0542811101000000123456",
      "BE68539007547034",
      "CH9300762011623852957",
      "NO9386011117947",
      "MT84MALT011000012345MTLCAST001S",
      ["IBAN: GB29 NWBK 6016 1331 9268 19.", "GB29 NWBK 6016 1331 9268 19"],
    ]);
  });

  it("leaves bad checksums, wrong lengths and product codes alone", () => {
    expectNotFound("iban", [
      "DE89 3704 0044 0532 0130 01",
      "GB82WEST12345698765433",
      "DE8937040044053201300",
      "XX89370400440532013000",
      "US64SVBKUS6S3300958879",
      "AB12CD34EF56GH78",
      "SKU: FR1420041010",
      "DE89370400440532013000X",
      "DE89 37040044 0532 0130 00",
      "550e8400-e29b-41d4-a716-446655440000",
    ]);
  });
});

describe("phone", () => {
  it("finds international and clearly formatted North American numbers", () => {
    expectFound("phone", [
      "+1 415 555 0100",
      "+14155550100",
      "+44 20 7946 0958",
      "+44 (0)20 7946 0958",
      "+49-30-901820",
      "+91 98765 43210",
      "+81-3-1234-5678",
      "(415) 555-0100",
      "415-555-0100",
      "415.555.0100",
      ["call 1-800-555-0199 now", "1-800-555-0199"],
      ['{"phone":"+33 1 23 45 67 89"}', "+33 1 23 45 67 89"],
    ]);
  });

  it("leaves plain integers, offsets, versions and addresses alone", () => {
    expectNotFound("phone", [
      "1234567890",
      "+123",
      "+1234567",
      "+1234567890123456789",
      "12:30:45+01:00",
      "2024-01-15T10:00:00+05:30",
      "x+12345678",
      "1+2345678901",
      "192.168.100.200",
      "v1.2.3",
      "+12345678.90",
      "123-45-6789",
      "415-555-01000",
      "+0 123 456 789",
      "123-456-7890",
      "555-0100",
    ]);
  });
});

describe("secret", () => {
  it("finds keys and tokens", () => {
    expectFound("secret", [
      AWS_KEY_ID,
      [`key id ${AWS_SESSION_KEY_ID},`, AWS_SESSION_KEY_ID],
      [`aws_secret_access_key = ${AWS_SECRET}`, AWS_SECRET],
      [`{"AWS_SECRET_ACCESS_KEY":"${AWS_SECRET}"}`, AWS_SECRET],
      [`key:\n${RSA_KEY}\n`, RSA_KEY],
      OPENSSH_KEY,
      [`Authorization: Bearer ${JWT}`, JWT],
      GITHUB_PAT,
      GITHUB_FINE,
      SLACK,
      STRIPE,
      STRIPE_RESTRICTED,
      [`token=${RANDOM_TOKEN}&x=1`, RANDOM_TOKEN],
    ]);
  });

  it("masks a private key block to the end of the value when its END line is missing", () => {
    const text = `config: ${RSA_KEY.slice(0, 80)}`;
    expect(createDetectors(["secret"]).scan(text)).toEqual([{ detector: "secret", start: 8, end: text.length }]);
  });

  it("leaves hashes, ids, versions, identifiers and near misses alone", () => {
    const header = Buffer.from('{"typ":"JWT"}').toString("base64url");
    expectNotFound("secret", [
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", // sha256 hex
      "1f55334a477ea7638c4f4c25c134c40ddd41ffff", // git commit
      "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
      "550e8400-e29b-41d4-a716-446655440000",
      "v1.2.3-rc.1+build.20240115123045",
      "A".repeat(60) + "==",
      "AKIA1234",
      AWS_KEY_ID.slice(0, 19),
      "ghp_short",
      "eyJhbGciOi",
      `${header}.eyJzdWIiOiIxIn0.c2ln`, // JSON header without alg
      "-----BEGIN PUBLIC KEY-----",
      "customer_billing_address_line_two_2",
      "AbstractSingletonProxyFactoryBean2024Version",
      "/usr/local/lib/node_modules/typescript/lib/tsc.js",
      "2024-01-15T12:30:45.123456+00:00",
      "ORD-2024-000123-XYZ",
      "aws_secret_access_key = <redacted>",
    ]);
  });
});

describe("scan and redact over all detectors", () => {
  it("finds nothing in benign text", () => {
    const benign = [
      "order 1042 shipped 2024-01-15 12:30:45 to warehouse 7; total 1234.56 EUR",
      "id=550e8400-e29b-41d4-a716-446655440000 version 15.20 build 1f55334",
      "SELECT count(*) FROM orders WHERE created_at > now() - interval '7 days'",
      "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu",
      "1700000000000 1700000000001 42 -17 3.14159 1e10",
    ];
    for (const text of benign) expect(all.scan(text), text).toEqual([]);
  });

  it("returns sorted hits and merges overlapping ones, credited to the longest", () => {
    const text = `card 4111111111111111, mail 4111111111111111@example.com, ssn 123-45-6789`;
    const hits = all.scan(text);
    expect(hits.map((hit) => [hit.detector, text.slice(hit.start, hit.end)])).toEqual([
      ["card_number", "4111111111111111"],
      ["email", "4111111111111111@example.com"],
      ["ssn", "123-45-6789"],
    ]);
  });

  it("redacts every hit and reports them in the original coordinates", () => {
    const text = "Contact alice@example.com or +44 20 7946 0958; card 4111 1111 1111 1111.";
    const result = all.redact(text, (hit, value) => `[${hit.detector}:${value.length}]`);
    expect(result.text).toBe("Contact [email:17] or [phone:16]; card [card_number:19].");
    expect(result.hits.map((hit) => text.slice(hit.start, hit.end))).toEqual(["alice@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"]);
    expect(all.redact("nothing here", () => "x")).toEqual({ text: "nothing here", hits: [] });
  });
});

describe("linear time", () => {
  /** The slowest of a few runs is compared with a generous bound; the real time is printed. */
  function time(label: string, text: string): number {
    all.scan(text); // warm up
    const started = performance.now();
    all.scan(text);
    const elapsed = performance.now() - started;
    console.log(`mask detectors: ${label}, ${(text.length / 1e6).toFixed(2)} M chars: ${elapsed.toFixed(1)} ms`);
    return elapsed;
  }

  const MB = 1 << 20;
  const fill = (unit: string): string => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);

  it("scans 1 MB of mixed text fast", () => {
    const paragraph = [
      "Order 1042 for alice@example.com, card 4111 1111 1111 1111, shipped 2024-01-15 12:30:45.",
      `Call +44 20 7946 0958 or (415) 555-0100; IBAN DE89 3704 0044 0532 0130 00; ssn 123-45-6789.`,
      `token ${RANDOM_TOKEN} jwt ${JWT} id 550e8400-e29b-41d4-a716-446655440000 hash e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`,
      `NINO AB123456C, DNI 12345678Z, aadhaar 2345 6789 0124, key ${AWS_KEY_ID} v1.2.3-rc.1 1700000000000 42 3.14`,
      "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.\n",
    ].join(" ");
    const text = fill(paragraph);
    const hits = all.scan(text);
    expect(hits.length).toBeGreaterThan(1000);
    expect(time("mixed", text)).toBeLessThan(1000);
  });

  it("stays linear on inputs built to make scanners backtrack", () => {
    const adversarial: Record<string, string> = {
      digits: fill("4"),
      "digit groups": fill("4111 "),
      "dashed digits": fill("1-"),
      "at signs": fill("a@"),
      "local part": fill("a.") + "@",
      "domain labels": `x@${fill("a.")}`,
      pluses: fill("+1 "),
      "open parenthesis": fill("+1 (2"),
      "base64 run": fill("Zx8qL2vN9pR4tY7w"),
      "jwt header without dots": `eyJ${fill("a")}`,
      "jwt segments": fill("eyJa."),
      "pem begin without end": fill(join("-----BEGIN RSA PRIVATE", " KEY----- ")),
      "pem words": fill("-----BEGIN A A A A A A "),
      "aws secret names": fill("aws_secret "),
      "iban prefixes": fill("DE89 "),
      "ssn shapes": fill("123-45-"),
      "upper letters": fill("A"),
    };
    for (const [label, text] of Object.entries(adversarial)) expect(time(label, text), label).toBeLessThan(2000);
  });
});
