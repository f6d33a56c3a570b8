/** The IPC messages between a reliability test and its bridge child (bridge-child.ts). */
import type { LoadAdapterOptions } from "./load-adapter.js";
import type { RecordingAdapterOptions } from "./recording-adapter.js";

export interface ChildOptions {
  configPath: string;
  /** Store key prefix (keeps runs apart on a shared PostgreSQL database). */
  storePrefix?: string;
  adapter: ({ kind: "recording" } & RecordingAdapterOptions) | ({ kind: "load" } & LoadAdapterOptions);
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** True if a full GC ran right before the sample. */
  gc: boolean;
}

export type ChildMessage =
  | { type: "ready"; pid: number }
  | ({ type: "memory" } & MemorySample)
  | { type: "flushed" }
  | { type: "drained" }
  | { type: "stats"; stats: Record<string, number> }
  | { type: "fatal"; message: string };

export type ParentMessage =
  { type: "memory" } | { type: "flush" } | { type: "drain" } | { type: "stats" } | { type: "stop" };
