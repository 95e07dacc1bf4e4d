/**
 * Configuration errors that name the dotted field path and what was
 * expected, e.g. `method.beta: expected a number, got "six"`.
 */
import type { z } from 'zod';

export interface ConfigIssue {
  /** Dotted path of the offending field ("" for the whole config). */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly code = 'ERR_INVALID_CONFIG';
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Turns zod issues into path-named messages, quoting what was received. */
export function fromZodError(error: z.ZodError, input: unknown): ConfigError {
  const issues = error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const got = `got ${describe(valueAt(input, issue.path))}`;
    let message = issue.message.replace(/^(Invalid input|Invalid option|Too small|Too big|Invalid string): /, '');
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    } else if (issue.code === 'invalid_type') {
      message = `expected ${issue.expected}, ${got}`;
    } else if (issue.code === 'invalid_value' || issue.code === 'too_small' || issue.code === 'too_big' || issue.code === 'invalid_format') {
      message = `${message}, ${got}`;
    }
    return { path, message };
  });
  return new ConfigError(issues);
}
