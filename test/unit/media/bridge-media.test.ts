import assert from "node:assert/strict";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { MatrixMessage } from "../../../src/adapter/index.js";
import { MediaTooLargeError } from "../../../src/media/index.js";
import { openStore } from "../../../src/store/index.js";
import {
  startHarness,
  testRegistration,
  withHarness,
  DOMAIN,
  type Harness,
} from "../../support/bridge-harness.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { startFileServer } from "../../support/file-server.js";
import * as f from "../../support/media-fixtures.js";

const messages = (h: Harness, roomId: string) => h.hs.events(roomId, "m.room.message").map((e) => e.content);
const uploads = (hs: FakeHomeserver) => hs.requestsTo("POST", "/_matrix/media/v3/upload");
const spoolDir = (h: Harness) =>
  (h.bridge as unknown as { o: { config: { media: { spoolDir: string } } } }).o.config.media.spoolDir;

async function metric(h: Harness, name: string, labels: string): Promise<number | undefined> {
  const text = await h.bridge.appservice.metrics.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("attachments through ctx.send", () => {
  it("sends bytes as m.image and a stream as m.file, with info and the uploaded bytes, then deletes the spool file", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("pics");
      const ctx = h.adapter.ctx!;
      const image = f.png(40, 30);
      const pdf = new TextEncoder().encode("%PDF-1.4\n" + "x".repeat(5000));
      await ctx.send(
        "pics",
        "bob",
        { body: "", attachment: { source: image, fileName: "cat.png" } },
        { remoteId: "p1" },
      );
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(pdf.subarray(0, 10));
          c.enqueue(pdf.subarray(10));
          c.close();
        },
      });
      await ctx.send("pics", "bob", {
        body: "the report",
        attachment: { source: stream, fileName: "r.pdf" },
      });
      await h.bridge.flush();
      const [img, file] = messages(h, portal.roomId);
      assert.equal(img!.msgtype, "m.image");
      assert.equal(img!.body, "cat.png");
      assert.equal(img!.filename, "cat.png");
      assert.deepEqual(img!.info, { mimetype: "image/png", size: image.length, w: 40, h: 30 });
      assert.deepEqual(new Uint8Array(h.hs.media.get(img!.url as string)!.data), image);
      assert.equal(h.hs.media.get(img!.url as string)!.contentType, "image/png");
      assert.equal(file!.msgtype, "m.file");
      assert.equal(file!.body, "the report");
      assert.equal(file!.filename, "r.pdf");
      assert.deepEqual(file!.info, { mimetype: "application/pdf", size: pdf.length });
      assert.deepEqual(new Uint8Array(h.hs.media.get(file!.url as string)!.data), pdf);
      const upload = uploads(h.hs)[0]!;
      assert.equal(upload.query.get("filename"), "cat.png");
      assert.equal(upload.headers["content-length"], String(image.length), "streamed with its length");
      assert.equal(upload.userId, `@test_bob:${DOMAIN}`);
      // an edit with a new file
      await ctx.edit("pics", "bob", "p1", {
        body: "",
        attachment: { source: f.gif(2, 2), fileName: "c.gif" },
      });
      await h.bridge.flush();
      const edit = messages(h, portal.roomId)[2]!;
      const newContent = edit["m.new_content"] as Record<string, unknown>;
      assert.equal(newContent.msgtype, "m.image");
      assert.deepEqual(newContent.info, { mimetype: "image/gif", size: f.gif(2, 2).length, w: 2, h: 2 });
      assert.equal(uploads(h.hs).length, 3);
      const left = (await readdir(spoolDir(h))).filter((n) => n.endsWith(".spool"));
      assert.deepEqual(left, []);
    });
  });

  it("sends an image with the adapter's thumbnail: both uploaded, info.thumbnail_url and thumbnail_info", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("thumbs");
      const image = f.png(400, 300);
      const thumb = f.jpeg(40, 30);
      await h.adapter.ctx!.send("thumbs", "bob", {
        body: "",
        attachment: { source: image, fileName: "big.png", thumbnail: { source: thumb } },
      });
      await h.bridge.flush();
      const [msg] = messages(h, portal.roomId);
      const info = msg!.info as Record<string, unknown>;
      assert.deepEqual(
        { ...info, thumbnail_url: "" },
        {
          mimetype: "image/png",
          size: image.length,
          w: 400,
          h: 300,
          thumbnail_url: "",
          thumbnail_info: { mimetype: "image/jpeg", size: thumb.length, w: 40, h: 30 },
        },
      );
      assert.notEqual(info.thumbnail_url, msg!.url);
      assert.deepEqual(new Uint8Array(h.hs.media.get(info.thumbnail_url as string)!.data), thumb);
      assert.equal(h.hs.media.get(info.thumbnail_url as string)!.contentType, "image/jpeg");
      assert.deepEqual(new Uint8Array(h.hs.media.get(msg!.url as string)!.data), image);
      assert.equal(uploads(h.hs).length, 2);
      assert.equal(uploads(h.hs)[1]!.query.get("filename"), "thumbnail-big.png");
      assert.deepEqual(
        (await readdir(spoolDir(h))).filter((n) => n.endsWith(".spool")),
        [],
      );
    });
  });

  it("refuses a file over the homeserver's m.upload.size at the call, queueing nothing", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("big");
      h.hs.script(
        { method: "GET", path: "/_matrix/client/v1/media/config" },
        { status: 200, body: { "m.upload.size": 100 } },
      );
      const ctx = h.adapter.ctx!;
      await assert.rejects(
        ctx.send("big", "bob", {
          body: "",
          attachment: { source: new Uint8Array(101), fileName: "big.bin" },
        }),
        (err: unknown) => err instanceof MediaTooLargeError && /allows 100/.test(err.message),
      );
      await ctx.send("big", "bob", {
        body: "",
        attachment: { source: new Uint8Array(100), fileName: "ok.bin" },
      });
      await h.bridge.flush();
      assert.deepEqual(
        messages(h, portal.roomId).map((m) => m.body),
        ["ok.bin"],
      );
      assert.equal(uploads(h.hs).length, 1);
      assert.equal(h.hs.requestsTo("GET", "/media/config").length, 1, "the limit is asked once and kept");
    });
  });

  it("refuses a file over media.maxBytes at the call", async () => {
    await withHarness(
      async (h) => {
        await h.portal("cap");
        await assert.rejects(
          h.adapter.ctx!.send("cap", "bob", {
            body: "",
            attachment: { source: new Uint8Array(2000), fileName: "x" },
          }),
          /x is too large: more than 1000 bytes; the bridge \(media\.maxBytes\) allows 1000/,
        );
      },
      { configure: (c) => (c.media.maxBytes = 1000) },
    );
  });

  it("dead-letters a file the homeserver refuses as too large (413) and goes on with the room", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("r413");
      h.hs.script(
        { method: "POST", path: "/_matrix/media/v3/upload" },
        { status: 413, body: { errcode: "M_TOO_LARGE", error: "Upload request body is too large" } },
      );
      const ctx = h.adapter.ctx!;
      await ctx.send("r413", "bob", { body: "", attachment: { source: f.png(1, 1), fileName: "a.png" } });
      await ctx.send("r413", "bob", "after");
      await h.bridge.flush();
      assert.deepEqual(
        messages(h, portal.roomId).map((m) => m.body),
        ["after"],
      );
      assert.equal(uploads(h.hs).length, 1, "not retried");
      assert.equal(await metric(h, "bridgekit_outbox_dead_letters_total", 'queue="actions"'), 1);
      const left = (await readdir(spoolDir(h))).filter((n) => n.endsWith(".spool"));
      assert.deepEqual(left, [], "the dead letter's file is not kept");
    });
  });

  it("uploads once across a crash between the upload and the send", async () => {
    const registration = testRegistration();
    const hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    const store = await openStore(`sqlite://${join(await mkdtemp(join(tmpdir(), "bk-media-")), "b.db")}`);
    try {
      const first = await startHarness({ hs, store, registration });
      const portal = await first.portal("crash");
      // Every send fails: the upload is done, the event never gets through.
      hs.script(
        { method: "PUT", path: /\/send\/m\.room\.message\// },
        { status: 0, destroy: true },
        1_000_000,
      );
      const image = f.jpeg(8, 6);
      await first.adapter.ctx!.send("crash", "bob", {
        body: "",
        attachment: { source: image, fileName: "p.jpg" },
      });
      await waitFor(
        "the upload and a failed send",
        () => uploads(hs).length === 1 && hs.requestsTo("PUT", /\/send\//).length > 0,
      );
      await first.stop();
      hs.clearScripts();
      const second = await startHarness({ hs, store, registration });
      try {
        await waitFor("the message", () => messages(second, portal.roomId).length === 1);
        await second.bridge.flush();
        const [msg] = messages(second, portal.roomId);
        assert.equal(uploads(hs).length, 1, "uploaded once");
        assert.equal(msg!.url, [...hs.media.keys()][0]);
        assert.deepEqual(msg!.info, { mimetype: "image/jpeg", size: image.length, w: 8, h: 6 });
        assert.equal(
          await store.namespace<string>("media-uploads").has(
            hs
              .requestsTo("PUT", /\/send\//)[0]!
              .path.split("/")
              .pop()!,
          ),
          false,
        );
      } finally {
        await second.stop();
      }
    } finally {
      await store.close();
      await hs.close();
    }
  });
});

describe("a thumbnail across a restart", () => {
  it("is kept with its file between the call and the upload, and uploaded once after a restart", async () => {
    const registration = testRegistration();
    const hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    const dir = await mkdtemp(join(tmpdir(), "bk-media-"));
    const store = await openStore(`sqlite://${join(dir, "b.db")}`);
    const spool = join(dir, "spool");
    const configure = (c: { media: { spoolDir: string } }) => (c.media.spoolDir = spool);
    try {
      const first = await startHarness({ hs, store, registration, configure });
      const portal = await first.portal("restart");
      // The homeserver takes no upload: both files stay in the spool, queued.
      hs.script({ method: "POST", path: /\/media\/v3\/upload/ }, { status: 0, destroy: true }, 1_000_000);
      const image = f.gif(64, 48);
      const thumb = f.png(16, 12);
      await first.adapter.ctx!.send("restart", "bob", {
        body: "",
        attachment: {
          source: image,
          fileName: "anim.gif",
          thumbnail: { source: thumb, width: 16, height: 12 },
        },
      });
      await waitFor("a failed upload", () => uploads(hs).length > 0);
      await first.stop();
      assert.equal((await readdir(spool)).length, 2, "the file and its thumbnail, still queued");
      hs.clearScripts();
      const failed = uploads(hs).length;
      const second = await startHarness({ hs, store, registration, configure });
      try {
        await waitFor("the message", () => messages(second, portal.roomId).length === 1);
        await second.bridge.flush();
        const [msg] = messages(second, portal.roomId);
        const info = msg!.info as Record<string, unknown>;
        assert.deepEqual(new Uint8Array(hs.media.get(msg!.url as string)!.data), image);
        assert.deepEqual(new Uint8Array(hs.media.get(info.thumbnail_url as string)!.data), thumb);
        assert.deepEqual(info.thumbnail_info, { mimetype: "image/png", size: thumb.length, w: 16, h: 12 });
        assert.equal(uploads(hs).length - failed, 2, "each uploaded once after the restart");
        assert.equal(hs.media.size, 2);
        assert.deepEqual(await readdir(spool), [], "both spool files gone once sent");
      } finally {
        await second.stop();
      }
    } finally {
      await store.close();
      await hs.close();
    }
  });
});

describe("avatars by URL", () => {
  it("uploads a portal's, setRoomInfo's and a ghost's http avatar once, by URL and by content", async () => {
    const files = await startFileServer();
    const pic = f.png(16, 16);
    files.serve("/a.png", pic, { contentType: "image/png" });
    files.serve("/same.png", pic);
    try {
      await withHarness(async (h) => {
        h.adapter.queryRoom = (remoteId: string) =>
          Promise.resolve({ name: remoteId, avatarUrl: files.url("/a.png").href });
        const portal = await h.portal("av");
        const avatar = () =>
          h.hs.events(portal.roomId, "m.room.avatar").map((e) => (e.content as { url: string }).url);
        assert.equal(avatar().length, 1);
        const mxc = avatar()[0]!;
        assert.match(mxc, /^mxc:\/\//);
        assert.deepEqual(new Uint8Array(h.hs.media.get(mxc)!.data), pic);
        const ctx = h.adapter.ctx!;
        await ctx.setRoomInfo("av", { avatarUrl: files.url("/a.png").href });
        await ctx.setProfile("bob", { avatarUrl: files.url("/a.png").href });
        await ctx.setProfile("carol", { avatarUrl: files.url("/same.png").href });
        await h.bridge.flush();
        assert.deepEqual(avatar(), [mxc, mxc]);
        assert.equal(h.hs.profiles.get(`@test_bob:${DOMAIN}`)?.avatar_url, mxc);
        assert.equal(h.hs.profiles.get(`@test_carol:${DOMAIN}`)?.avatar_url, mxc);
        assert.equal(uploads(h.hs).length, 1, "one upload for all four");
        assert.equal(files.hits.get("/a.png"), 1, "fetched once");
        // a URL that cannot be fetched leaves the avatar as it was
        await ctx.setRoomInfo("av", { avatarUrl: files.url("/missing.png").href, name: "renamed" });
        await h.bridge.flush();
        assert.deepEqual(avatar(), [mxc, mxc]);
        assert.equal(h.hs.events(portal.roomId, "m.room.name").at(-1)?.content.name, "renamed");
      });
    } finally {
      await files.close();
    }
  });
});

describe("a Matrix user's file the adapter cannot take", () => {
  it("is not retried, and its sender is told it is too large", async () => {
    await withHarness(
      async (h) => {
        const portal = await h.portal("lobby");
        h.hs.media.set("mxc://example.org/big", { data: Buffer.alloc(5000, 1), contentType: "image/png" });
        let tries = 0;
        h.adapter.onMessage = async (message) => {
          tries++;
          const opened = await h.bridge.context.openMedia((message as MatrixMessage).file!);
          for await (const _ of opened.stream as unknown as AsyncIterable<Uint8Array>) void _;
          return "never";
        };
        await h.push([
          {
            room_id: portal.roomId,
            content: { msgtype: "m.image", body: "big.png", url: "mxc://example.org/big" },
          },
        ]);
        await h.bridge.appservice.drain();
        assert.equal(tries, 1, "a PermanentError: not retried");
        const notice = h.hs.events(portal.roomId, "m.room.message").at(-1)!.content.body;
        assert.equal(notice, "not bridged: the file is too large (over 1 kB; the bridge takes at most 1 kB)");
      },
      { configure: (c) => (c.media.maxBytes = 1000) },
    );
  });
});

describe("the media spool at start", () => {
  it("deletes spool files no queued send refers to, and nothing else", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bk-sweep-"));
    await writeFile(join(dir, "left-by-a-crash.spool"), "orphan");
    await writeFile(join(dir, "notes.txt"), "not ours");
    await withHarness(
      async () => {
        assert.deepEqual((await readdir(dir)).sort(), ["notes.txt"]);
      },
      { configure: (c) => (c.media.spoolDir = dir) },
    );
  });
});
