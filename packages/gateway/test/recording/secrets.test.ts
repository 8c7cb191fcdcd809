import { describe, expect, it } from "vitest";
import { redactSecrets } from "../../src/recording/secrets.js";

describe("redactSecrets", () => {
  it.each([
    ["create role app login password 's3cr''et'", "create role app login password '[redacted]'"],
    ["ALTER USER app WITH ENCRYPTED PASSWORD 'md5abc' VALID UNTIL 'infinity'", "ALTER USER app WITH ENCRYPTED PASSWORD '[redacted]' VALID UNTIL 'infinity'"],
    ["CREATE USER 'u'@'%' IDENTIFIED BY 'p\\'w'", "CREATE USER 'u'@'%' IDENTIFIED BY '[redacted]'"],
    ["alter user u identified with mysql_native_password by \"pw\"", "alter user u identified with mysql_native_password by '[redacted]'"],
    ["CREATE USER u IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'", "CREATE USER u IDENTIFIED BY PASSWORD '[redacted]'"],
    ["SET PASSWORD FOR 'u'@'%' = PASSWORD('pw')", "SET PASSWORD FOR 'u'@'%' = PASSWORD('[redacted]')"],
    ["set password = 'pw'", "set password = '[redacted]'"],
    ['{"createUser":"app","pwd":"s3\\"cret","roles":[]}', '{"createUser":"app","pwd":"[redacted]","roles":[]}'],
    ['{"updateUser":"app","pwd": "x"}', '{"updateUser":"app","pwd": "[redacted]"}'],
  ])("%s", (text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
  });

  it("leaves statements without a password as they are", () => {
    for (const text of ["select password from users where id = 1", "select 'PASSWORD' as p", '{"find":"users","filter":{"name":"x"}}']) expect(redactSecrets(text)).toBe(text);
  });
});
