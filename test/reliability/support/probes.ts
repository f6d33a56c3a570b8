/** What the reliability tests read from outside a bridge: its metrics, the shared database. */

/** Reads one gauge or counter (summed over its labels) from the bridge's /metrics. */
export async function metric(baseUrl: string, name: string): Promise<number> {
  const res = await fetch(`${baseUrl}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${text.slice(0, 200)}`);
  let sum: number | undefined;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm")))
    sum = (sum ?? 0) + Number(m[1]);
  if (sum === undefined) throw new Error(`GET /metrics: no ${name}`);
  return sum;
}

/**
 * Deletes a run's rows from the shared test database: its store keys, and its writer lease
 * row if it took one (the Store API has no "drop all").
 */
export async function dropPostgresPrefix(url: string, prefix: string): Promise<void> {
  // pg comes with @keyv/postgres; it ships no types, so only what is used here is typed.
  const pgModule = "pg";
  const { default: pg } = (await import(pgModule)) as {
    default: {
      Client: new (o: { connectionString: string }) => {
        connect(): Promise<void>;
        query(sql: string, values: unknown[]): Promise<unknown>;
        end(): Promise<void>;
      };
    };
  };
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("DELETE FROM bridgekit WHERE key LIKE $1", [`${prefix}:%`]);
    await client.query("DELETE FROM bridgekit_lease WHERE name = $1", [prefix]).catch(() => undefined);
  } finally {
    await client.end();
  }
}
