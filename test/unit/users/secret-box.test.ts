import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { isSealed, SecretBox, type SealedValue } from "../../../src/users/secret-box.js";

const KEY = "correct horse battery staple, but longer";
const OTHER_KEY = "k7Yq3v9ZLw0pQm2xRt8sUe4bNc6dHf1g"; // base64-looking randomness
const box = SecretBox.fromKey(KEY);

/** The sealed value with one byte of a base64 field flipped. */
function flipped(sealed: SealedValue, field: "iv" | "ct" | "tag"): SealedValue {
  const bytes = Buffer.from(sealed[field], "base64");
  bytes[0] = bytes[0]! ^ 0x01;
  return { ...sealed, [field]: bytes.toString("base64") };
}

/** Asserts that `fn` throws an error whose message matches and never contains a key. */
function throwsWithout(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.match(err.message, message);
    for (const key of [KEY, OTHER_KEY]) assert.ok(!err.message.includes(key), "the key is never in an error");
    return true;
  });
}

describe("SecretBox", () => {
  it("round-trips JSON values through JSON storage", () => {
    for (const value of [{ password: "hunter2", n: [1, 2.5, null, true] }, "ünïcödé ✓", 42, null, []]) {
      const stored: unknown = JSON.parse(JSON.stringify(box.seal(value)));
      assert.ok(isSealed(stored));
      assert.deepEqual(box.open(stored), value);
    }
  });

  it("seals as { $sealed: 1, kid, iv, ct, tag } in base64, hiding the plain text", () => {
    const sealed = box.seal({ password: "hunter2" });
    assert.deepEqual(Object.keys(sealed).sort(), ["$sealed", "ct", "iv", "kid", "tag"]);
    assert.equal(sealed.$sealed, 1);
    assert.match(sealed.kid, /^[0-9a-f]{8}$/);
    assert.equal(sealed.kid, box.kid);
    assert.equal(Buffer.from(sealed.iv, "base64").length, 12);
    assert.equal(Buffer.from(sealed.tag, "base64").length, 16);
    assert.ok(!JSON.stringify(sealed).includes("hunter2"));
  });

  it("derives the same key from the same key string, another from another", () => {
    const again = SecretBox.fromKey(KEY);
    assert.equal(again.kid, box.kid);
    assert.deepEqual(again.open(box.seal("shared")), "shared");
    assert.notEqual(SecretBox.fromKey(OTHER_KEY).kid, box.kid);
  });

  it("gives two different seals of one value (fresh IV each time)", () => {
    const a = box.seal("same");
    const b = box.seal("same");
    assert.notEqual(a.iv, b.iv);
    assert.notEqual(a.ct, b.ct);
    assert.equal(box.open(a), box.open(b));
  });

  it("detects a changed ciphertext, tag or IV", () => {
    const sealed = box.seal({ token: "abc" });
    for (const field of ["ct", "tag", "iv"] as const)
      throwsWithout(
        () => box.open(flipped(sealed, field)),
        /does not authenticate \(key id [0-9a-f]{8}\): it was altered/,
      );
    throwsWithout(() => box.open({ ...sealed, tag: "" }), /does not authenticate/);
  });

  it("binds a sealed value to its context", () => {
    const sealed = box.seal("token", "login:a");
    assert.equal(box.open(sealed, "login:a"), "token");
    throwsWithout(() => box.open(sealed, "login:b"), /does not authenticate.*copied from another record/);
    throwsWithout(() => box.open(sealed), /does not authenticate/);
  });

  it("names a wrong key by its config key, env var and key ids, never the key", () => {
    const other = SecretBox.fromKey(OTHER_KEY);
    const sealed = box.seal("secret");
    throwsWithout(
      () => other.open(sealed),
      new RegExp(
        `^the data was sealed with another logins\\.encryptionKey \\(env BRIDGEKIT_LOGINS_ENCRYPTION_KEY\\): key id ${box.kid}, the configured key's is ${other.kid}`,
      ),
    );
  });

  it("refuses a short key without echoing it, and never shows the key when inspected", () => {
    throwsWithout(
      () => SecretBox.fromKey("short key"),
      /^logins\.encryptionKey .* must be at least 16 characters$/,
    );
    assert.throws(
      () => SecretBox.fromKey("short key"),
      (err: Error) => !err.message.includes("short key"),
    );
    // The derived key is a #private field: inspecting or serialising the box shows the id only.
    assert.equal(inspect(box, { showHidden: true, depth: 5 }), `SecretBox { kid: '${box.kid}' }`);
    assert.equal(JSON.stringify(box), `{"kid":"${box.kid}"}`);
  });

  it("isSealed tells sealed values from other JSON", () => {
    assert.equal(isSealed(box.seal(1)), true);
    for (const value of [null, "x", [], { $sealed: 1 }, { $sealed: 2, kid: "", iv: "", ct: "", tag: "" }])
      assert.equal(isSealed(value), false, JSON.stringify(value));
    assert.throws(() => box.open({ $sealed: 1 } as SealedValue), /not a sealed value/);
  });

  it("derives a key in well under a second", () => {
    const started = performance.now();
    SecretBox.fromKey(OTHER_KEY);
    const ms = performance.now() - started;
    assert.ok(ms < 1_000, `scrypt took ${ms.toFixed(0)} ms`);
  });
});
