/** create-bridge: scaffolds a new bridge project. The scaffolding itself arrives with the templates. */
export function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log("usage: create-bridge <dir>   (not yet: the project templates are still being written)");
    return Promise.resolve(0);
  }
  console.error("create-bridge: not yet available; the project templates are still being written");
  return Promise.resolve(1);
}
