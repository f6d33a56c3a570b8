import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, stat, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { loadRegistration, saveRegistration } from "../../../src/registration/index.js";
import { ValidationError } from "../../../src/common/validation-error.js";

const fixtures = join(import.meta.dirname, "../../fixtures/registration");
const tmp = () => mkdtemp(join(tmpdir(), "bridgekit-reg-"));

describe("registration load and save", () => {
  it("keeps unknown keys, top-level and nested, across a round trip", async () => {
    const dir = await tmp();
    const file = join(dir, "reg.yaml");
    await copyFile(join(fixtures, "valid.yaml"), file);
    const text = await readFile(file, "utf8");
    await writeFile(
      file,
      text.replace("exclusive: true\n  aliases", "exclusive: true\n      x-entry-note: hi\n  aliases"),
    );
    const reg = await loadRegistration(file);
    reg.url = "http://127.0.0.1:9999";
    await saveRegistration(file, reg);
    const saved = load(await readFile(file, "utf8")) as Record<string, unknown>;
    assert.deepEqual(saved["x-custom-key"], { kept: [1, 2, 3] });
    assert.equal(
      (saved.namespaces as { users: Array<Record<string, unknown>> }).users[0]?.["x-entry-note"],
      "hi",
    );
    assert.equal(saved.url, "http://127.0.0.1:9999");
    assert.equal(saved["de.sorunome.msc2409.push_ephemeral"], true);
  });

  it("saves with mode 0600, even over a world-readable file", async () => {
    const dir = await tmp();
    const file = join(dir, "reg.yaml");
    await writeFile(file, "old", { mode: 0o644 });
    await saveRegistration(file, await loadRegistration(join(fixtures, "valid.yaml")));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it("refuses to save an invalid registration and leaves the file alone", async () => {
    const dir = await tmp();
    const file = join(dir, "reg.yaml");
    await writeFile(file, "before");
    const reg = await loadRegistration(join(fixtures, "valid.yaml"));
    reg.namespaces.users = [{ regex: "(", exclusive: true }];
    await assert.rejects(saveRegistration(file, reg), ValidationError);
    assert.equal(await readFile(file, "utf8"), "before");
  });

  it("names a missing file", async () => {
    const file = join(await tmp(), "absent.yaml");
    await assert.rejects(loadRegistration(file), (err: Error) => {
      assert.ok(err instanceof ValidationError);
      assert.match(err.message, /absent\.yaml: \(document\): file not found/);
      return true;
    });
  });
});
