// Signed links to Matrix files (src/media): their shape, their check (tampering with each
// field, expiry, malformed paths), the served content types and ctx.mediaLink's refusals.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MEDIA_LINK_PREFIX, cleanFileName } from "../../../src/media/link-signature.js";
import { MediaLinks } from "../../../src/media/media-links.js";
import { contentDisposition, safeContentType } from "../../../src/media/safe-content-type.js";
import { RecordingContext } from "../../../src/testing/recording-context.js";
import { RemoteContext, type RemoteContextParts } from "../../../src/bridge/remote-context.js";

const KEY = "media-link-key-0123456789";
const NOW = Date.UTC(2026, 0, 1);
const links = (o: Partial<{ key: string; ttlMs: number; now: number }> = {}) =>
  new MediaLinks({
    publicUrl: "https://bridge.example.org/base/",
    linkKey: o.key ?? KEY,
    ttlMs: o.ttlMs ?? 3_600_000,
    now: () => o.now ?? NOW,
  });
const pathOf = (link: string) => new URL(link).pathname.replace(/^\/base/, "");
const segments = (link: string) => pathOf(link).slice(MEDIA_LINK_PREFIX.length).split("/");
const withSegment = (link: string, i: number, value: string) => {
  const s = segments(link);
  s[i] = value;
  return MEDIA_LINK_PREFIX + s.join("/");
};

describe("ctx.mediaLink's links", () => {
  it("name the server, media id, expiry, signature and file name under publicUrl", () => {
    const link = links().link("mxc://example.org/AbC_12-x", { fileName: "cat photo.jpg" });
    assert.match(
      link,
      /^https:\/\/bridge\.example\.org\/base\/_bridgekit\/media\/v1\/example\.org\/AbC_12-x\/\d+\/[A-Za-z0-9_-]{22}\/cat%20photo\.jpg$/,
    );
    const [, , expiry] = segments(link);
    assert.equal(Number(expiry), (NOW + 3_600_000) / 1000);
  });

  it("check out as what they name, until they expire", () => {
    const l = links();
    const link = l.link("mxc://example.org:8448/media1", { fileName: "ünï cödé.txt" });
    assert.deepEqual(l.signer.check(pathOf(link), NOW + 1000), {
      ok: true,
      target: {
        server: "example.org:8448",
        mediaId: "media1",
        expiry: (NOW + 3_600_000) / 1000,
        fileName: "ünï cödé.txt",
      },
    });
    assert.deepEqual(l.signer.check(pathOf(link), NOW + 3_600_000), { ok: false, reason: "expired" });
  });

  it("take the file's name, else the media id; ttlMs overrides the config", () => {
    const l = links();
    assert.equal(segments(l.link({ url: "mxc://example.org/m1", name: "a.png" })).at(-1), "a.png");
    assert.equal(
      segments(l.link({ url: "mxc://example.org/m1", name: "a.png" }, { fileName: "b.png" })).at(-1),
      "b.png",
    );
    assert.equal(segments(l.link("mxc://example.org/m1")).at(-1), "m1");
    assert.equal(
      Number(segments(l.link("mxc://example.org/m1", { ttlMs: 10_000 }))[2]),
      (NOW + 10_000) / 1000,
    );
  });

  it("are refused (not found) when any field is changed", () => {
    const l = links();
    const link = l.link("mxc://example.org/media1", { fileName: "a.txt" });
    const [, , expiry, sig] = segments(link);
    const flipped = sig!.startsWith("A") ? `B${sig!.slice(1)}` : `A${sig!.slice(1)}`;
    const tampered = [
      withSegment(link, 0, "evil.org"),
      withSegment(link, 1, "media2"),
      withSegment(link, 2, String(Number(expiry) + 3600)),
      withSegment(link, 3, flipped),
      withSegment(link, 3, sig!.slice(0, -1)),
      withSegment(link, 3, ""),
      withSegment(link, 4, "a.html"),
      withSegment(link, 4, ""),
    ];
    for (const path of tampered)
      assert.deepEqual(l.signer.check(path, NOW), { ok: false, reason: "not-found" }, path);
    // A forged expiry on an expired link is still not found, not "expired".
    assert.deepEqual(l.signer.check(withSegment(link, 2, String(Number(expiry) - 1)), NOW + 7_200_000), {
      ok: false,
      reason: "not-found",
    });
  });

  it("are refused when signed with another key", () => {
    const link = links({ key: "another-key-0123456789" }).link("mxc://example.org/media1");
    assert.deepEqual(links().signer.check(pathOf(link), NOW), { ok: false, reason: "not-found" });
  });

  it("refuse malformed paths", () => {
    const l = links();
    const good = pathOf(l.link("mxc://example.org/media1"));
    for (const path of [
      "/_bridgekit/media/v1/",
      "/_bridgekit/media/v1/example.org/media1",
      `${good}/extra`,
      good.replace("/media1/", "/me%2Fdia1/"),
      good.replace("/media1/", "/%E0%A4%A/"),
      "/other" + good,
    ]) {
      assert.deepEqual(l.signer.check(path, NOW), { ok: false, reason: "not-found" }, path);
    }
  });

  it("are refused for a bad mxc URI, an encrypted file, a bad ttl, a short key", () => {
    const l = links();
    assert.throws(() => l.link("https://example.org/x"), /"https:\/\/example.org\/x" is not an mxc:\/\/ URI/);
    assert.throws(() => l.link("mxc://example.org/a/b"), /not an mxc:\/\/ URI/);
    assert.throws(
      () => l.link({ url: "mxc://example.org/m", encrypted: true }),
      /encrypted file .*ciphertext/,
    );
    assert.throws(() => l.link("mxc://example.org/m", { ttlMs: 0 }), /ttlMs must be a positive/);
    assert.throws(() => links({ key: "short" }), /media\.linkKey must be at least 16 characters/);
  });

  it("carry cleaned file names: no slashes or control characters", () => {
    assert.equal(cleanFileName("../etc/passwd", "x"), ".._etc_passwd");
    assert.equal(cleanFileName("a\r\nb\u0000", "x"), "a__b_");
    assert.equal(cleanFileName("  ", "fallback"), "fallback");
    assert.equal(cleanFileName("x".repeat(300), "f").length, 200);
    const link = links().link("mxc://example.org/m", { fileName: "a/b\\c.txt" });
    assert.equal(decodeURIComponent(segments(link).at(-1)!), "a_b_c.txt");
  });

  it("need config media.publicUrl: without it ctx.mediaLink says so", () => {
    const ctx = new RemoteContext({ log: undefined, kv: undefined } as unknown as RemoteContextParts);
    assert.throws(
      () => ctx.mediaLink("mxc://example.org/m"),
      /needs config media\.publicUrl .* and media\.linkKey/,
    );
    const on = new RemoteContext({ mediaLinks: links() } as unknown as RemoteContextParts);
    assert.match(
      on.mediaLink("mxc://example.org/m"),
      /^https:\/\/bridge\.example\.org\/base\/_bridgekit\/media\/v1\//,
    );
  });

  it("come from the RecordingContext too, recorded", () => {
    const ctx = new RecordingContext({ mediaPublicUrl: "http://127.0.0.1:9/" });
    const link = ctx.mediaLink("mxc://example.org/m", { fileName: "f.txt" });
    assert.match(
      link,
      /^http:\/\/127\.0\.0\.1:9\/_bridgekit\/media\/v1\/example\.org\/m\/\d+\/[\w-]{22}\/f\.txt$/,
    );
    assert.equal(ctx.calls.at(-1)!.method, "mediaLink");
  });
});

describe("served content types", () => {
  it("keep inert types and serve the rest as application/octet-stream", () => {
    assert.deepEqual(safeContentType("image/png"), { contentType: "image/png", inline: true });
    assert.deepEqual(safeContentType("Text/Plain; charset=UTF-8"), {
      contentType: "text/plain; charset=UTF-8",
      inline: true,
    });
    assert.deepEqual(safeContentType('text/plain; charset="<x>"'), {
      contentType: "text/plain",
      inline: true,
    });
    for (const bad of [
      "text/html",
      "text/html; charset=utf-8",
      "application/xhtml+xml",
      "image/svg+xml",
      "text/javascript",
      "application/javascript",
      "text/xml",
      "application/pdf",
      "",
      null,
      "image/png, text/html",
    ]) {
      assert.deepEqual(
        safeContentType(bad),
        { contentType: "application/octet-stream", inline: false },
        String(bad),
      );
    }
  });

  it("name the file in Content-Disposition, quoted safely", () => {
    assert.equal(contentDisposition("a.png", true), `inline; filename="a.png"; filename*=UTF-8''a.png`);
    assert.equal(
      contentDisposition('ü "x".html', false),
      `attachment; filename="_ _x_.html"; filename*=UTF-8''%C3%BC%20%22x%22.html`,
    );
  });
});
