import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import type { AppserviceHandlers } from "../../src/appservice/index.js";
import { auth, errcode, HS_TOKEN, makeApp } from "../support/appservice/harness.js";

const noEvents: Pick<AppserviceHandlers, "onEvent"> = { onEvent: () => Promise.resolve() };

describe("user and alias queries", () => {
  it("GET /users: outside the namespace 404 without asking; inside, the handler decides", async () => {
    const asked: string[] = [];
    const registered = new Set<string>();
    const { as, close } = await makeApp({
      ...noEvents,
      queryUser: (userId) => {
        asked.push(userId);
        if (userId === "@test_bob:example.org") return Promise.resolve(false);
        registered.add(userId); // "register the ghost before resolving true"
        return Promise.resolve(true);
      },
    });
    const cb = as.app.callback();
    for (const outside of [
      "@alice:example.org",
      "@test_a:other.org",
      "test_a:example.org",
      "@testbot:example.org",
    ]) {
      const res = await request(cb)
        .get(`/_matrix/app/v1/users/${encodeURIComponent(outside)}`)
        .set(auth);
      assert.equal(res.status, 404, outside);
      assert.equal(errcode(res), "M_NOT_FOUND");
    }
    assert.deepEqual(asked, []);
    const yes = await request(cb).get("/_matrix/app/v1/users/@test_alice:example.org").set(auth);
    assert.equal(yes.status, 200);
    assert.deepEqual(yes.body, {});
    assert.ok(registered.has("@test_alice:example.org"));
    const no = await request(cb).get("/_matrix/app/v1/users/%40test_bob%3Aexample.org").set(auth);
    assert.equal(no.status, 404);
    assert.equal(errcode(no), "M_NOT_FOUND");
    // Legacy root path; a user id with an unescaped slash is one parameter.
    assert.equal((await request(cb).get("/users/@test_a/b:example.org").set(auth)).status, 200);
    assert.equal(
      (await request(cb).get("/_matrix/app/v1/users/@test_x/y/z:example.org").set(auth)).status,
      200,
    );
    assert.deepEqual(asked, [
      "@test_alice:example.org",
      "@test_bob:example.org",
      "@test_a/b:example.org",
      "@test_x/y/z:example.org",
    ]);
    const badEncoding = await request(cb).get("/_matrix/app/v1/users/@test_%E0%A4%A:example.org").set(auth);
    assert.equal(badEncoding.status, 400);
    assert.equal(errcode(badEncoding), "M_INVALID_PARAM");
    await close();
  });

  it("GET /users with no queryUser handler is 404", async () => {
    const { as, close } = await makeApp({ ...noEvents });
    assert.equal(
      (await request(as.app.callback()).get("/_matrix/app/v1/users/@test_a:example.org").set(auth)).status,
      404,
    );
    await close();
  });

  it("GET /rooms: outside the aliases namespace 404; inside, the handler decides", async () => {
    const asked: string[] = [];
    const { as, close } = await makeApp({
      ...noEvents,
      queryRoomAlias: (alias) => {
        asked.push(alias);
        return Promise.resolve(alias === "#test_room:example.org");
      },
    });
    const cb = as.app.callback();
    assert.equal((await request(cb).get("/_matrix/app/v1/rooms/%23other:example.org").set(auth)).status, 404);
    assert.equal(
      (await request(cb).get("/_matrix/app/v1/rooms/%23test_room:other.org").set(auth)).status,
      404,
    );
    assert.deepEqual(asked, []);
    const yes = await request(cb).get("/_matrix/app/v1/rooms/%23test_room:example.org").set(auth);
    assert.equal(yes.status, 200);
    assert.deepEqual(yes.body, {});
    assert.equal((await request(cb).get("/rooms/%23test_room:example.org").set(auth)).status, 200);
    const no = await request(cb).get("/_matrix/app/v1/rooms/%23test_nope:example.org").set(auth);
    assert.equal(no.status, 404);
    assert.equal(errcode(no), "M_NOT_FOUND");
    await close();
  });

  it("a handler that throws or hangs gives 500 M_UNKNOWN with a generic message; the error is logged", async () => {
    const { as, close, log } = await makeApp(
      {
        ...noEvents,
        queryUser: () => Promise.reject(new Error(`secret detail ${HS_TOKEN}`)),
        queryRoomAlias: () => new Promise<boolean>(() => undefined),
      },
      { handlerTimeoutMs: 50 },
    );
    const cb = as.app.callback();
    const res = await request(cb).get("/_matrix/app/v1/users/@test_a:example.org").set(auth);
    assert.equal(res.status, 500);
    assert.equal(errcode(res), "M_UNKNOWN");
    assert.doesNotMatch(res.text, /secret detail/);
    assert.match(log.text, /secret detail/);
    const hung = await request(cb).get("/_matrix/app/v1/rooms/%23test_a:example.org").set(auth);
    assert.equal(hung.status, 500);
    assert.equal(errcode(hung), "M_UNKNOWN");
    await close();
  });
});

describe("URI queries", () => {
  it("maps a third-party URI to a user id or alias in the namespaces", async () => {
    const seen: string[] = [];
    const { as, close } = await makeApp({
      ...noEvents,
      userFromUri: (uri) => {
        seen.push(uri.href);
        if (uri.protocol === "irc:") return Promise.resolve(`@test_${uri.pathname.slice(1)}:example.org`);
        if (uri.protocol === "evil:") return Promise.resolve("@admin:example.org");
        return Promise.resolve(null);
      },
      aliasFromUri: (uri) =>
        Promise.resolve(uri.protocol === "xmpp:" ? `#test_${uri.pathname.split("@")[0]}:example.org` : null),
    });
    const cb = as.app.callback();
    const user = await request(cb)
      .get(`/_matrix/app/v1/user?uri=${encodeURIComponent("irc://irc.example.org/alice")}`)
      .set(auth);
    assert.equal(user.status, 200);
    assert.deepEqual(user.body, { user_id: "@test_alice:example.org" });
    assert.deepEqual(seen, ["irc://irc.example.org/alice"]);
    const alias = await request(cb)
      .get(`/_matrix/app/v1/alias?uri=${encodeURIComponent("xmpp:room@muc.example.org")}`)
      .set(auth);
    assert.equal(alias.status, 200);
    assert.deepEqual(alias.body, { alias: "#test_room:example.org" });
    const unmapped = await request(cb)
      .get(`/_matrix/app/v1/user?uri=${encodeURIComponent("https://x/y")}`)
      .set(auth);
    assert.equal(unmapped.status, 404);
    assert.equal(errcode(unmapped), "M_NOT_FOUND");
    const outside = await request(cb)
      .get(`/_matrix/app/v1/user?uri=${encodeURIComponent("evil://x")}`)
      .set(auth);
    assert.equal(outside.status, 500, "a handler answering outside the namespace is a handler failure");
    assert.doesNotMatch(outside.text, /@admin/);
    await close();
  });

  it("a missing or unparsable uri is 400 M_INVALID_PARAM", async () => {
    const { as, close } = await makeApp({ ...noEvents, userFromUri: () => Promise.resolve(null) });
    const cb = as.app.callback();
    for (const path of [
      "/_matrix/app/v1/user",
      "/_matrix/app/v1/user?uri=",
      "/_matrix/app/v1/user?uri=not%20a%20uri",
      "/_matrix/app/v1/alias?uri=%2F%2F",
    ]) {
      const res = await request(cb).get(path).set(auth);
      assert.equal(res.status, 400, path);
      assert.equal(errcode(res), "M_INVALID_PARAM", path);
    }
    await close();
  });
});

describe("third-party lookups", () => {
  const protocol = {
    user_fields: ["network", "nickname"],
    location_fields: ["network", "channel"],
    icon: "mxc://example.org/icon",
    field_types: { network: { regexp: "[a-z.]+", placeholder: "irc.example.org" } },
    instances: [],
  };
  const fieldsSeen: Array<Record<string, string>> = [];
  const handlers: AppserviceHandlers = {
    ...noEvents,
    thirdParty: {
      getProtocol: (p) => Promise.resolve(p === "testproto" ? protocol : null),
      lookupUser: (p, fields) => {
        fieldsSeen.push(fields);
        return Promise.resolve(
          fields.nickname === "alice" ? [{ userid: "@test_alice:example.org", protocol: p, fields }] : [],
        );
      },
      lookupLocation: (p, fields) =>
        Promise.resolve(fields.channel ? [{ alias: "#test_chan:example.org", protocol: p, fields }] : []),
      reverseLookupUser: (userId) =>
        Promise.resolve(
          userId === "@test_alice:example.org"
            ? [{ userid: userId, protocol: "testproto", fields: { nickname: "alice" } }]
            : [],
        ),
      reverseLookupLocation: (alias) =>
        Promise.resolve(
          alias === "#test_chan:example.org"
            ? [{ alias, protocol: "testproto", fields: { channel: "#chan" } }]
            : [],
        ),
    },
  };

  it("protocol descriptions: known protocol 200, unknown 404, v1 and unstable alike", async () => {
    const { as, close } = await makeApp(handlers);
    const cb = as.app.callback();
    for (const prefix of ["/_matrix/app/v1", "/_matrix/app/unstable"]) {
      const res = await request(cb).get(`${prefix}/thirdparty/protocol/testproto`).set(auth);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, protocol);
      const unknown = await request(cb).get(`${prefix}/thirdparty/protocol/other`).set(auth);
      assert.equal(unknown.status, 404);
      assert.equal(errcode(unknown), "M_NOT_FOUND");
    }
    await close();
  });

  it("user and location lookups pass the fields (never the access token); no result is 404", async () => {
    fieldsSeen.length = 0;
    const { as, close } = await makeApp(handlers);
    const cb = as.app.callback();
    const res = await request(cb)
      .get(
        `/_matrix/app/v1/thirdparty/user/testproto?network=irc.example.org&nickname=alice&access_token=${HS_TOKEN}`,
      )
      .set(auth);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, [
      {
        userid: "@test_alice:example.org",
        protocol: "testproto",
        fields: { network: "irc.example.org", nickname: "alice" },
      },
    ]);
    assert.deepEqual(fieldsSeen, [{ network: "irc.example.org", nickname: "alice" }]);
    assert.equal(
      (await request(cb).get("/_matrix/app/v1/thirdparty/user/testproto?nickname=bob").set(auth)).status,
      404,
    );
    assert.equal(
      (await request(cb).get("/_matrix/app/v1/thirdparty/user/nope?nickname=alice").set(auth)).status,
      404,
    );
    const loc = await request(cb)
      .get("/_matrix/app/unstable/thirdparty/location/testproto?channel=%23chan")
      .set(auth);
    assert.equal(loc.status, 200);
    assert.deepEqual(loc.body, [
      { alias: "#test_chan:example.org", protocol: "testproto", fields: { channel: "#chan" } },
    ]);
    assert.equal(
      (await request(cb).get("/_matrix/app/v1/thirdparty/location/testproto").set(auth)).status,
      404,
    );
    await close();
  });

  it("reverse lookups: by userid and by alias; missing parameter 400; none 404", async () => {
    const { as, close } = await makeApp(handlers);
    const cb = as.app.callback();
    const user = await request(cb)
      .get("/_matrix/app/v1/thirdparty/user?userid=%40test_alice%3Aexample.org")
      .set(auth);
    assert.equal(user.status, 200);
    assert.deepEqual(user.body, [
      { userid: "@test_alice:example.org", protocol: "testproto", fields: { nickname: "alice" } },
    ]);
    const loc = await request(cb)
      .get("/_matrix/app/v1/thirdparty/location?alias=%23test_chan%3Aexample.org")
      .set(auth);
    assert.equal(loc.status, 200);
    assert.equal(
      (await request(cb).get("/_matrix/app/v1/thirdparty/user?userid=%40x%3Ay").set(auth)).status,
      404,
    );
    const missing = await request(cb).get("/_matrix/app/v1/thirdparty/location").set(auth);
    assert.equal(missing.status, 400);
    assert.equal(errcode(missing), "M_INVALID_PARAM");
    await close();
  });

  it("without third-party handlers every lookup is 404", async () => {
    const { as, close } = await makeApp({ ...noEvents });
    const cb = as.app.callback();
    for (const path of [
      "/_matrix/app/v1/thirdparty/protocol/testproto",
      "/_matrix/app/v1/thirdparty/user/testproto?a=b",
      "/_matrix/app/v1/thirdparty/location/testproto?a=b",
      "/_matrix/app/v1/thirdparty/user?userid=%40a%3Ab",
      "/_matrix/app/v1/thirdparty/location?alias=%23a%3Ab",
    ]) {
      assert.equal((await request(cb).get(path).set(auth)).status, 404, path);
    }
    await close();
  });
});
