/**
 * Test doubles for bridge authors, exported as `matrix-bridgekit/testing`:
 * - FakeHomeserver: an in-process homeserver (node:http on 127.0.0.1) that implements enough of
 *   the client-server API for a whole Bridge (register, rooms, aliases, send with txnId dedupe
 *   and `?ts=`, state, profiles, media), records every request, and can be scripted to fail;
 * - RecordingContext: a BridgeContext that records what an adapter asks of the framework, for
 *   testing an adapter's remote side without a homeserver;
 * - LoginDriver (and logIn): an adapter's login flow through the framework's own step machine,
 *   and `connect` with a RecordingSessionContext, for testing logins without a homeserver.
 * Prove the same behaviour end to end against a real homeserver too.
 */
export * from "./fake-homeserver.js";
export * from "./recording-context.js";
export * from "./login-driver.js";
