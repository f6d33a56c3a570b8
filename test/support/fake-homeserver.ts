// The fake homeserver is part of the framework (matrix-bridgekit/testing); tests import it from here.
export * from "../../src/testing/fake-homeserver.js";
