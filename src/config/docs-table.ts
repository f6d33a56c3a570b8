import { schemaKeys, type KeySpec } from "./schema.js";
import { envVarName } from "./env.js";

function typeLabel(spec: KeySpec): string {
  if (spec.values) return spec.values.join(" \\| ");
  const base = spec.type === "string" && spec.format ? spec.format.label : spec.type;
  if (spec.min !== undefined && spec.max !== undefined) return `${base} ${spec.min}–${spec.max}`;
  if (spec.min !== undefined) return `${base} ≥ ${spec.min}`;
  return base;
}

function defaultLabel(spec: KeySpec): string {
  if (spec.required) return "**required**";
  if (spec.default === undefined) return "(absent)";
  return `\`${JSON.stringify(spec.default)}\``;
}

/** One markdown table row per schema key, in schema order. Pure. */
export function configTableRows(): string[] {
  return schemaKeys().map(({ path, spec }) => {
    const env = spec.env === false ? "—" : `\`${envVarName(path)}\``;
    const doc = spec.doc.replace(/\|/g, "\\|");
    return `| \`${path}\` | ${typeLabel(spec)} | ${defaultLabel(spec)} | ${env} | ${doc} |`;
  });
}

/** The markdown table of every config key, generated from CONFIG_SCHEMA (docs/config.md holds a copy). */
export function renderConfigTable(): string {
  return [
    "| key | type | default | environment | meaning |",
    "| --- | --- | --- | --- | --- |",
    ...configTableRows(),
  ].join("\n");
}
