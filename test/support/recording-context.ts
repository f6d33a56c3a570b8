// The recording context is part of the framework (matrix-bridgekit/testing); tests import it from here.
export * from "../../src/testing/recording-context.js";
