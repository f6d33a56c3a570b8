import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { editContent, messageContent, reactionContent } from "../../../src/bridge/adapter-to-matrix.js";

describe("building Matrix content from adapter content", () => {
  it("makes m.text from a string and carries external_url and a reply", () => {
    assert.deepEqual(messageContent("hi", { externalUrl: "https://x/1", replyToEventId: "$p" }), {
      msgtype: "m.text",
      body: "hi",
      external_url: "https://x/1",
      "m.relates_to": { "m.in_reply_to": { event_id: "$p" } },
    });
  });

  it("uses org.matrix.custom.html for html and keeps extra keys", () => {
    assert.deepEqual(
      messageContent({ msgtype: "m.notice", body: "b", html: "<b>b</b>", extra: { url: "mxc://a/b" } }),
      {
        url: "mxc://a/b",
        msgtype: "m.notice",
        body: "b",
        format: "org.matrix.custom.html",
        formatted_body: "<b>b</b>",
      },
    );
  });

  it("does not let extra override msgtype or body", () => {
    const c = messageContent({ body: "real", extra: { body: "fake", msgtype: "m.fake" } });
    assert.equal(c.body, "real");
    assert.equal(c.msgtype, "m.text");
  });

  it("builds an m.replace edit with a starred fallback", () => {
    assert.deepEqual(editContent({ body: "new", html: "<i>new</i>" }, "$t"), {
      msgtype: "m.text",
      body: "* new",
      format: "org.matrix.custom.html",
      formatted_body: "* <i>new</i>",
      "m.new_content": {
        msgtype: "m.text",
        body: "new",
        format: "org.matrix.custom.html",
        formatted_body: "<i>new</i>",
      },
      "m.relates_to": { rel_type: "m.replace", event_id: "$t" },
    });
  });

  it("builds an annotation", () => {
    assert.deepEqual(reactionContent("$t", "👍"), {
      "m.relates_to": { rel_type: "m.annotation", event_id: "$t", key: "👍" },
    });
  });
});
