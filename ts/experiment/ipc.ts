/**
 * The messages between an isolated run's parent (isolated.ts) and its child
 * (child.ts), and how errors cross: the IPC channel clones data, not
 * classes, so an error travels as its class name and own fields and is
 * rebuilt on the other side as the same class (a ConfigError stays a
 * ConfigError with its issues, a NativeError keeps its code).
 */
import type { RunConfig } from '../config/schema.js';
import { ConfigError } from '../config/errors.js';
import { DatasetError } from '../data/errors.js';
import { DownloadError } from '../data/download.js';
import { NativeError } from '../native-loader.js';
import type { TrainEvent, TrainSummary } from '../native-types.js';
import type { ResumePlan } from './resume.js';

/** An error as data: enough to rebuild it with its class, message, stack and fields such as `code`. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, unknown>;
}

export type ToChild =
  | { type: 'start'; config: RunConfig; resume?: ResumePlan }
  /** The caller's signal aborted: stop as in-process (a cancelled summary). */
  | { type: 'abort' }
  /** The caller's onEvent failed: the run fails with this error, as in-process. */
  | { type: 'handlerFailed'; error: WireError };

export type FromChild =
  | { type: 'runDir'; path: string }
  | { type: 'event'; event: TrainEvent }
  | { type: 'result'; runDir: string; summary: TrainSummary }
  | { type: 'error'; error: WireError };

const classes: Record<string, { prototype: Error }> = { ConfigError, DatasetError, DownloadError, NativeError };

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    // Functions and class instances other than plain data cannot be cloned.
    if (k === 'message' || k === 'stack' || typeof v === 'function') continue;
    fields[k] = v;
  }
  return { name: e.name, message: e.message, stack: e.stack, fields };
}

/** The error rebuilt: its known class (instanceof works), its fields, the child's stack. */
export function fromWire(w: WireError): Error {
  const err = new Error(w.message);
  const cls = classes[w.name];
  if (cls) Object.setPrototypeOf(err, cls.prototype);
  Object.assign(err, w.fields);
  if (err.name !== w.name) Object.defineProperty(err, 'name', { value: w.name, configurable: true, writable: true });
  if (w.stack) err.stack = w.stack;
  return err;
}
