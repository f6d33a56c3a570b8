/** What every benchmark is given by bench/run.ts. */
export interface BenchOptions {
  /** A ~1 minute run of everything: fewer, shorter repetitions and smaller data sets. */
  quick: boolean;
  /** Profile bridgekit (node --cpu-prof) even when it meets its targets. */
  profile: boolean;
}

/** What a benchmark returns: its text table (printed) and the files it wrote. */
export interface BenchOutcome {
  name: string;
  table: string;
  files: string[];
  /** Findings worth printing after the table (targets missed, profile summary). */
  notes: string[];
}
