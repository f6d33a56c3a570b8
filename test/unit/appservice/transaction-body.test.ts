import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixHttpError } from "../../../src/appservice/errors.js";
import { parseTransactionBody } from "../../../src/appservice/transaction-body.js";
import { event } from "../../support/appservice/harness.js";

const rejects = (body: unknown, message: RegExp) =>
  assert.throws(
    () => parseTransactionBody(body),
    (err: unknown) =>
      err instanceof MatrixHttpError &&
      err.status === 400 &&
      err.errcode === "M_BAD_JSON" &&
      message.test(err.message),
  );

describe("parseTransactionBody", () => {
  it("keeps events as sent, in order, untouched", () => {
    const events = [
      event("!a:x", 1),
      event("!b:x", 2, { state_key: "", type: "m.room.topic", extra: { k: 1 } }),
    ];
    const parsed = parseTransactionBody({ events });
    assert.deepEqual(parsed.events, events);
    assert.deepEqual(parsed.ephemeral, []);
    assert.deepEqual(parsed.toDevice, []);
    assert.equal(parsed.deviceLists, undefined);
    assert.equal(parsed.keyCounts, undefined);
  });

  it("prefers the stable spelling when both are present, and uses the unstable one alone", () => {
    const stable = [{ type: "m.typing", content: { a: 1 } }];
    const unstable = [{ type: "m.typing", content: { a: 2 } }];
    assert.deepEqual(
      parseTransactionBody({ events: [], ephemeral: stable, "de.sorunome.msc2409.ephemeral": unstable })
        .ephemeral,
      stable,
    );
    assert.deepEqual(
      parseTransactionBody({ events: [], "de.sorunome.msc2409.ephemeral": unstable }).ephemeral,
      unstable,
    );
    assert.deepEqual(
      parseTransactionBody({ events: [], ephemeral: null, "de.sorunome.msc2409.ephemeral": unstable })
        .ephemeral,
      unstable,
    );
    const td = [{ type: "m.x", sender: "@a:x", to_user_id: "@b:x", to_device_id: "D", content: {} }];
    assert.deepEqual(parseTransactionBody({ events: [], "de.sorunome.msc2409.to_device": td }).toDevice, td);
  });

  it("reads device lists and key counts in every spelling, the misspelt twin included", () => {
    const counts = { "@a:x": { D: { signed_curve25519: 3 } } };
    for (const key of [
      "device_one_time_keys_count",
      "org.matrix.msc3202.device_one_time_keys_count",
      "org.matrix.msc3202.device_one_time_key_counts",
    ]) {
      assert.deepEqual(
        parseTransactionBody({ events: [], [key]: counts }).keyCounts,
        {
          oneTimeKeysCount: counts,
          unusedFallbackKeyTypes: {},
        },
        key,
      );
    }
    const fallback = { "@a:x": { D: ["signed_curve25519"] } };
    assert.deepEqual(
      parseTransactionBody({ events: [], device_unused_fallback_key_types: fallback }).keyCounts,
      {
        oneTimeKeysCount: {},
        unusedFallbackKeyTypes: fallback,
      },
    );
    assert.deepEqual(
      parseTransactionBody({ events: [], "org.matrix.msc3202.device_lists": { changed: ["@a:x"] } })
        .deviceLists,
      { changed: ["@a:x"], left: [] },
    );
    assert.equal(
      parseTransactionBody({ events: [], device_lists: { changed: [], left: [] } }).deviceLists,
      undefined,
    );
    assert.equal(parseTransactionBody({ events: [], device_one_time_keys_count: {} }).keyCounts, undefined);
  });

  it("rejects bad shapes naming the key, without echoing values", () => {
    rejects("x", /JSON object/);
    rejects({ events: [{ ...event("!a:x", 1), room_id: 5 }] }, /^events\[0\]\.room_id/);
    rejects({ events: [event("!a:x", 1), { ...event("!a:x", 2), event_id: "" }] }, /^events\[1\]\.event_id/);
    rejects(
      { events: [], "org.matrix.msc3202.device_lists": { left: "x" } },
      /^org\.matrix\.msc3202\.device_lists\.left/,
    );
    rejects(
      { events: [], "de.sorunome.msc2409.to_device": [null] },
      /^de\.sorunome\.msc2409\.to_device\[0\]/,
    );
    const secret = "super-secret-value";
    assert.throws(
      () => parseTransactionBody({ events: [{ ...event("!a:x", 1), sender: { secret } }] }),
      (err: Error) => !err.message.includes(secret),
    );
  });
});
