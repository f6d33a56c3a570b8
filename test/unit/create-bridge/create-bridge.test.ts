import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp as mkdtempRaw, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { load } from "js-yaml";
import { main } from "../../../src/cli/create-bridge.js";
import {
  answersWithoutPrompts,
  checkAnswer,
  defaultName,
  defaultNetwork,
  parseCreateBridgeArgs,
} from "../../../src/cli/create-bridge-options.js";
import { listFiles, outputPath, renderText, TEMPLATES_DIR } from "../../../src/cli/create-bridge-render.js";
import { FRAMEWORK_ROOT } from "../../../src/cli/create-bridge-framework.js";
import { loadConfig } from "../../../src/config/load.js";
import { UsageError } from "../../../src/cli/command.js";

const FLAGS = [
  "--name",
  "matrix-acme-bridge",
  "--network",
  "acme",
  "--prefix",
  "acme_",
  "--homeserver-url",
  "https://matrix.acme.test",
  "--domain",
  "acme.test",
  "--framework",
  "^0.1.0",
];

/** Temporary folders made by these tests, removed at the end. */
const temps: string[] = [];
async function mkdtemp(prefix: string): Promise<string> {
  const dir = await mkdtempRaw(prefix);
  temps.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Runs main with captured output; `stdin` defaults to a closed, non-TTY stream. */
async function runMain(argv: string[], opts: { cwd?: string; stdin?: Readable & { isTTY?: boolean } } = {}) {
  let stdout = "";
  let stderr = "";
  const cwd = opts.cwd ?? (await mkdtemp(join(tmpdir(), "cb-unit-")));
  const code = await main(argv, {
    stdin: opts.stdin ?? Readable.from([]),
    stdout: new PassThrough().on("data", (c: Buffer) => (stdout += c.toString())),
    stderr: new PassThrough().on("data", (c: Buffer) => (stderr += c.toString())),
    cwd,
  });
  return { code, stdout, stderr, cwd };
}

/** A fake terminal: a stream that says it is a TTY; tests write the answers into it. */
function fakeTty(): PassThrough & { isTTY: boolean } {
  return Object.assign(new PassThrough(), { isTTY: true });
}

describe("create-bridge arguments", () => {
  it("parses every flag and the folder", () => {
    const args = parseCreateBridgeArgs(["out", ...FLAGS, "--yes", "--force", "--install"]);
    assert.equal(args.dir, "out");
    assert.deepEqual(args.given, {
      name: "matrix-acme-bridge",
      network: "acme",
      prefix: "acme_",
      homeserverUrl: "https://matrix.acme.test",
      domain: "acme.test",
    });
    assert.equal(args.framework, "^0.1.0");
    assert.deepEqual([args.yes, args.force, args.install], [true, true, true]);
    assert.equal(parseCreateBridgeArgs(["out", "-y"]).yes, true);
  });

  it("rejects a missing or second folder and bad values, naming each flag and value", () => {
    assert.throws(() => parseCreateBridgeArgs([]), /missing <dir>/);
    assert.throws(() => parseCreateBridgeArgs(["a", "b"]), /expected one <dir>, got 2: a b/);
    assert.throws(
      () =>
        parseCreateBridgeArgs([
          "out",
          "--name",
          "Bad Name",
          "--network",
          "9x",
          "--homeserver-url",
          "ftp://x",
          "--domain",
          "no way",
          "--framework",
          'x"y',
        ]),
      (err: Error) => {
        assert.ok(err instanceof UsageError);
        for (const bit of [
          '--name "Bad Name"',
          '--network "9x"',
          '--homeserver-url "ftp://x"',
          '--domain "no way"',
          "--framework",
        ]) {
          assert.ok(err.message.includes(bit), `${bit} in ${err.message}`);
        }
        return true;
      },
    );
  });

  it("checks answers: prefixes that would swallow the bot, unsafe URLs, server names", () => {
    assert.match(checkAnswer("prefix", "acme", { network: "acme" })!, /bot @acmebot a ghost too/);
    assert.equal(checkAnswer("prefix", "acme_", { network: "acme" }), null);
    assert.match(checkAnswer("prefix", "Acme_")!, /localpart prefix/);
    assert.match(checkAnswer("homeserverUrl", 'http://x/"y')!, /without quotes/);
    assert.equal(checkAnswer("homeserverUrl", "http://127.0.0.1:8008"), null);
    assert.equal(checkAnswer("domain", "localhost:8448"), null);
    assert.match(checkAnswer("domain", "a b")!, /server name/);
  });

  it("derives defaults from the folder name", () => {
    assert.equal(defaultName("/x/My Bridge"), "my-bridge");
    assert.equal(defaultName("/x/..."), "my-bridge");
    assert.equal(defaultNetwork("matrix-acme-bridge"), "acme");
    assert.equal(defaultNetwork("@me/bridge-foo"), "foo");
    assert.equal(defaultNetwork("123"), "example");
    const answers = answersWithoutPrompts({ ...parseCreateBridgeArgs(["/tmp/matrix-zap-bridge", "--yes"]) });
    assert.deepEqual(answers, {
      name: "matrix-zap-bridge",
      network: "zap",
      prefix: "zap_",
      homeserverUrl: "http://127.0.0.1:8008",
      domain: "localhost",
    });
  });
});

describe("create-bridge without a terminal", () => {
  it("fails at once listing the missing flags when neither the flags nor --yes are given", async () => {
    const r = await runMain(["proj", "--name", "x-bridge"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a terminal.*pass --network, --prefix, --homeserver-url, --domain, or --yes/);
    await assert.rejects(readFile(join(r.cwd, "proj", "package.json")), /ENOENT/);
  });

  it("uses the defaults with --yes, and every flag without it", async () => {
    const withYes = await runMain(["matrix-zap-bridge", "--yes", "--framework", "^0.1.0"]);
    assert.equal(withYes.code, 0, withYes.stderr);
    const pkg = JSON.parse(
      await readFile(join(withYes.cwd, "matrix-zap-bridge", "package.json"), "utf8"),
    ) as {
      name: string;
      dependencies: Record<string, string>;
    };
    assert.equal(pkg.name, "matrix-zap-bridge");
    assert.equal(pkg.dependencies["matrix-bridgekit"], "^0.1.0");
    assert.match(withYes.stdout, /copying \d+ files/);

    const withFlags = await runMain(["p", ...FLAGS]);
    assert.equal(withFlags.code, 0, withFlags.stderr);
    assert.match(withFlags.stdout, /\+ src\/adapter\.ts/);
  });

  it("refuses a non-empty folder without --force, and writes into it with --force, keeping other files", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "cb-unit-"));
    await mkdir(join(cwd, "p"));
    await writeFile(join(cwd, "p", "notes.txt"), "mine");
    await writeFile(join(cwd, "p", "README.md"), "old readme");
    const refused = await runMain(["p", ...FLAGS], { cwd });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /p is not empty \(2 entries: .*notes\.txt.*\).*--force/);
    assert.equal(await readFile(join(cwd, "p", "README.md"), "utf8"), "old readme");

    const forced = await runMain(["p", ...FLAGS, "--force"], { cwd });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await readFile(join(cwd, "p", "notes.txt"), "utf8"), "mine");
    assert.match(await readFile(join(cwd, "p", "README.md"), "utf8"), /^# matrix-acme-bridge/);
  });

  it("refuses a target that is a file", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "cb-unit-"));
    await writeFile(join(cwd, "f"), "x");
    const r = await runMain(["f", ...FLAGS], { cwd });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exists and is not a folder/);
  });

  it("prints usage with --help and exits 2 on an unknown flag", async () => {
    const help = await runMain(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: create-bridge <dir>/);
    const bad = await runMain(["p", "--bogus"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--bogus/);
  });
});

describe("create-bridge rendering", () => {
  it("renders every template file with the answers, leaving no {{ and valid JSON and YAML", async () => {
    const r = await runMain(["p", ...FLAGS]);
    assert.equal(r.code, 0, r.stderr);
    const project = join(r.cwd, "p");
    const templateFiles = await listFiles(join(TEMPLATES_DIR, "bridge"));
    const written = await listFiles(project);
    assert.deepEqual(written, templateFiles.map(outputPath).sort());
    assert.ok(written.includes(".gitignore") && written.includes("package.json"));
    for (const file of written) {
      const text = await readFile(join(project, file), "utf8");
      assert.ok(!text.includes("{{"), `${file} still has {{`);
      assert.ok(!text.includes("}}"), `${file} still has }}`);
    }
    JSON.parse(await readFile(join(project, "tsconfig.json"), "utf8"));
    const adapter = await readFile(join(project, "src", "adapter.ts"), "utf8");
    assert.match(adapter, /export const NETWORK = "acme";/);
    assert.match(adapter, /@acme_alice:acme\.test/);
    const readme = await readFile(join(project, "README.md"), "utf8");
    assert.match(readme, /#acme_lobby:acme\.test/);
    assert.match(readme, /open a direct chat with `@acmebot:acme\.test` and send `login`/);
    assert.match(adapter, /readonly logins: LoginsCapability = \{/);
    const logins = await readFile(join(project, "src", "logins.ts"), "utf8");
    assert.match(logins, /id: "acme\.password"/);
    assert.match(readme, /https:\/\/matrix\.acme\.test/);
    assert.match(await readFile(join(project, "test", "harness.ts"), "utf8"), /"@alice:acme\.test"/);
    const pkg = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as Record<string, unknown>;
    assert.match((pkg.scripts as Record<string, string>)["generate-registration"] ?? "", /--id acme$/);
    const rootPkg = JSON.parse(await readFile(join(FRAMEWORK_ROOT, "package.json"), "utf8")) as {
      devDependencies: Record<string, string>;
    };
    assert.equal(
      (pkg.devDependencies as Record<string, string>).typescript,
      rootPkg.devDependencies.typescript,
    );
    assert.deepEqual(pkg.allowScripts, { "better-sqlite3": true, esbuild: true });

    // The rendered config is valid for the framework and carries the answers.
    const raw = load(await readFile(join(project, "config.example.yaml"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(raw.homeserver, { url: "https://matrix.acme.test", domain: "acme.test" });
    const config = await loadConfig(join(project, "config.example.yaml"), {});
    assert.equal(config.bridge.ghosts, "acme_{id}");
    assert.equal(config.bridge.portals, "acme_{id}");
    assert.equal(config.store, `sqlite://${join(project, "data", "acme.db")}`);
  });

  it("names the template file and variable for an unknown or leftover placeholder", () => {
    assert.equal(renderText("a {{ x }} b {{y}}", { x: "1", y: "2" }, "f.txt"), "a 1 b 2");
    assert.throws(
      () => renderText("a {{nope}}", { x: "1" }, "src/f.ts"),
      /template src\/f\.ts: unknown variable \{\{nope\}\}/,
    );
    assert.throws(() => renderText("line\n{{ bad-name }}", {}, "g.yaml"), /template g\.yaml:2: "\{\{" left/);
    assert.equal(outputPath("_gitignore"), ".gitignore");
    assert.equal(outputPath("package.json.tmpl"), "package.json");
    assert.equal(outputPath("src/_env.tmpl"), "src/.env");
  });
});

describe("create-bridge prompts (fake terminal)", () => {
  it("asks what the flags did not give, shows defaults, re-asks a bad answer, and uses the answers", async () => {
    const stdin = fakeTty();
    // Typed ahead, as a fast typist or a paste would: every line must still count.
    stdin.write("matrix-quux-bridge\n\nQ!\nqx_\nhttp://hs.quux.test:8008\n");
    stdin.write("quux.test\n");
    const r = await runMain(["proj", "--framework", "^0.1.0"], { stdin });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\? Package name \(proj\): /);
    assert.match(r.stdout, /\? Network id \(adapter name, registration id\) \(quux\): /);
    assert.match(r.stdout, /"Q!" must be 1-64 characters/);
    const project = join(r.cwd, "proj");
    const config = await loadConfig(join(project, "config.example.yaml"), {});
    assert.equal(config.homeserver.url, "http://hs.quux.test:8008");
    assert.equal(config.homeserver.domain, "quux.test");
    assert.equal(config.bridge.ghosts, "qx_{id}");
    assert.match(await readFile(join(project, "src", "adapter.ts"), "utf8"), /NETWORK = "quux"/);
  });

  it("skips questions answered by flags and aborts cleanly when input ends, writing nothing", async () => {
    const stdin = fakeTty();
    stdin.end("matrix-quux-bridge\n");
    const r = await runMain(["proj", "--network", "quux", "--framework", "^0.1.0"], { stdin });
    assert.equal(r.code, 130);
    assert.doesNotMatch(r.stdout, /Network id/);
    assert.match(r.stdout, /Ghost and portal prefix \(quux_\)/);
    assert.match(r.stderr, /input ended before every question was answered; nothing was written/);
    await assert.rejects(readFile(join(r.cwd, "proj", "package.json")), /ENOENT/);
  });

  it("asks nothing on a terminal with --yes", async () => {
    const stdin = fakeTty();
    const r = await runMain(["matrix-zap-bridge", "--yes", "--framework", "^0.1.0"], { stdin });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /\?/);
  });
});
