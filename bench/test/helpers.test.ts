/**
 * The benchmark helpers that turn measurements into figures: statistics, ratios, the
 * transaction generator, call classification, the store-operation counter and the SVG chart.
 * No timings are asserted (benchmarks are not tests). `void`: the eslint exception for
 * node:test calls covers test/ only; the runner awaits these itself.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openStore } from "../../src/store/index.js";
import { callKind } from "../lib/call-kinds.js";
import { StoreOpCounter } from "../lib/counting-store.js";
import { median, percentileSorted, ratio } from "../lib/stats.js";
import { barChartSvg } from "../lib/svg.js";
import { benchRoomId, transactionBody } from "../lib/transactions.js";

void describe("bench statistics", () => {
  void it("takes medians of odd and even counts and NaN of nothing", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  void it("takes nearest-rank percentiles of sorted values", () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentileSorted(sorted, 50), 50);
    assert.equal(percentileSorted(sorted, 99), 99);
    assert.equal(percentileSorted(sorted, 100), 100);
    assert.equal(percentileSorted([7], 99), 7);
  });

  void it("keeps small ratios visible and refuses a zero denominator", () => {
    assert.equal(ratio(216, 64763), 0.0033);
    assert.equal(ratio(750, 884), 0.85);
    assert.ok(Number.isNaN(ratio(1, 0)));
    assert.ok(Number.isNaN(ratio(undefined, 2)));
  });
});

void describe("bench transactions", () => {
  void it("spreads events round-robin over the rooms with unique event ids", () => {
    const body = JSON.parse(transactionBody("run", 3, 100, 50)) as {
      events: Array<{ event_id: string; room_id: string; type: string }>;
    };
    assert.equal(body.events.length, 100);
    assert.equal(new Set(body.events.map((e) => e.event_id)).size, 100);
    assert.equal(new Set(body.events.map((e) => e.room_id)).size, 50);
    assert.equal(body.events[0]!.room_id, benchRoomId(0)); // 3 * 100 % 50
    assert.ok(body.events.every((e) => e.type === "m.room.message"));
  });
});

void describe("bench call kinds", () => {
  void it("names what a client-server request does", () => {
    assert.equal(callKind("POST", "/_matrix/client/v3/register"), "register");
    assert.equal(callKind("POST", "/_matrix/client/v3/join/!r:example.org"), "join");
    assert.equal(callKind("PUT", "/_matrix/client/v3/rooms/!r:example.org/send/m.room.message/t1"), "send");
    assert.equal(callKind("POST", "/_matrix/client/v3/createRoom"), "createRoom");
    assert.equal(callKind("GET", "/_matrix/client/v3/rooms/!r:x/state/m.room.member/@a:x"), "getState");
  });
});

void describe("bench store operation counter", () => {
  void it("counts every operation by namespace and forgets on take", async () => {
    const counter = new StoreOpCounter();
    const store = counter.wrap(await openStore("memory://"));
    try {
      const kv = store.namespace<number>("things");
      await kv.set("a", 1);
      assert.equal(await kv.get("a"), 1);
      assert.deepEqual(await kv.getMany(["a", "b"]), [1, undefined]);
      assert.equal(await kv.delete("a"), true);
      assert.deepEqual(counter.take(), {
        "things set": 1,
        "things get": 1,
        "things getMany": 1,
        "things delete": 1,
      });
      assert.deepEqual(counter.take(), {});
    } finally {
      await store.close();
    }
  });
});

void describe("bench chart", () => {
  void it("draws one bar per value with escaped labels, on a log scale too", () => {
    for (const log of [false, true]) {
      const svg = barChartSvg({
        title: "A <chart> & more",
        unit: "events/s",
        log,
        groups: [
          {
            label: "g1",
            bars: [
              { label: "floor", value: 100_000 },
              { label: "bk", value: 200 },
            ],
          },
          {
            label: "g2",
            bars: [
              { label: "floor", value: 50_000 },
              { label: "bk", value: Number.NaN },
            ],
          },
        ],
      });
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.ok(svg.includes("A &lt;chart&gt; &amp; more"));
      assert.equal((svg.match(/<rect x=/g) ?? []).length, 4);
      assert.ok(svg.includes(">n/a<"));
      assert.ok(svg.trimEnd().endsWith("</svg>"));
    }
  });
});
