/**
 * Configuration errors that name the dotted field path and what was
 * expected, e.g. `method.beta: expected a number, got "six"`. zod's own
 * messages are rewritten from the issue fields (not from its English text) so
 * they read the same for every field and always quote what was received.
 */
import type { z } from 'zod';
import { didYouMean } from '../suggest.js';

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

/** Own properties only: a path segment such as "constructor" must not read through the prototype. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** Longest quoted value in a message: a megabyte string must not become a megabyte error. */
const MAX_SHOWN = 120;

/**
 * What was received, as the user would write it (JSON turns NaN into "null",
 * so numbers are printed directly). Never throws, whatever the value: it runs
 * while reporting another error.
 */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    text = undefined;
  }
  text ??= Object.prototype.toString.call(v);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}... (${text.length} characters)` : text;
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
};

function oneOf(values: readonly unknown[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length === 1 ? quoted[0]! : `one of ${quoted.join(', ')}`;
}

/**
 * The closest known key. Every object the schema sees is a full merge of the
 * base config with the overrides, so the valid keys are the object's own keys
 * minus the unknown ones. A key that names a field one level down
 * (`lr` for `optimizer.lr`) is pointed there.
 */
function suggestion(key: string, container: unknown, unknown: readonly string[]): string {
  if (container === null || typeof container !== 'object') return '';
  const known = Object.keys(container).filter((k) => !unknown.includes(k));
  const nested = known.flatMap((k) => {
    const v = (container as Record<string, unknown>)[k];
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v).map((sub) => `${k}.${sub}`) : [];
  });
  const below = nested.filter((p) => p.endsWith(`.${key}`));
  if (below.length === 1) return ` (did you mean "${below[0]}"?)`;
  return didYouMean(key, known);
}

function bound(issue: { origin: string; inclusive?: boolean }, kind: 'min' | 'max', value: number | bigint): string {
  const op = kind === 'min' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
  switch (issue.origin) {
    case 'string':
      return `expected ${kind === 'min' ? 'at least' : 'at most'} ${value} character${value === 1 ? '' : 's'}`;
    case 'array':
      return `expected ${kind === 'min' ? 'at least' : 'at most'} ${value} item${value === 1 ? '' : 's'}`;
    default:
      return `expected a number ${op} ${value}`;
  }
}

/** Turns zod issues into path-named messages, quoting what was received. */
export function fromZodError(error: z.ZodError, input: unknown): ConfigError {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map(String).join('.');
    const got = `got ${describeValue(valueAt(input, issue.path))}`;
    switch (issue.code) {
      case 'unrecognized_keys': {
        // One issue per key, with the key in the path: the path names the field.
        const container = valueAt(input, issue.path);
        for (const key of issue.keys) {
          issues.push({ path: path ? `${path}.${key}` : key, message: `unknown field${suggestion(key, container, issue.keys)}` });
        }
        continue;
      }
      case 'invalid_type':
        issues.push({ path, message: `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, ${got}` });
        continue;
      case 'invalid_value':
        issues.push({ path, message: `expected ${oneOf(issue.values)}, ${got}` });
        continue;
      case 'invalid_union': {
        // A discriminated union (the method) whose `name` matches no option.
        const options = (issue as { options?: unknown[] }).options;
        issues.push({ path, message: options ? `expected ${oneOf(options)}, ${got}` : `${issue.message}, ${got}` });
        continue;
      }
      case 'too_small':
        issues.push({ path, message: `${bound(issue, 'min', issue.minimum)}, ${got}` });
        continue;
      case 'too_big':
        issues.push({ path, message: `${bound(issue, 'max', issue.maximum)}, ${got}` });
        continue;
      default:
        // Custom messages (e.g. the runName pattern) are already phrased as "expected ...".
        issues.push({ path, message: `${issue.message.replace(/^Invalid [a-z ]+: /, '')}, ${got}` });
    }
  }
  return new ConfigError(dedupe(issues));
}

/** Two checks can fail alike (zod's safe-integer bound and an explicit one): say it once. */
function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const id = `${i.path}\n${i.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
