/**
 * The part of Python packaging's requirement syntax (PEP 508) and version
 * ordering (PEP 440) that `st-native setup` needs to follow torch's pins to
 * the NVIDIA library wheels: `name[extras] specifier; marker`, markers with
 * and/or/parentheses, and exact pins (`==1.2.3`, `==1.2.3.*`). Anything
 * richer (ranges, `~=`) is parsed but only exact pins are followed: those
 * are what torch and cuda-toolkit use for the libraries.
 */

export interface Requirement {
  /** As written, e.g. `nvidia-cudnn-cu13`. */
  name: string;
  extras: string[];
  /** The version specifier as written, e.g. `==9.19.0.56` or `<14,>=13.0.3`; '' for none. */
  specifier: string;
  /** The environment marker after `;`, or null. */
  marker: string | null;
}

/** PEP 503 normalised name: `Nvidia_CUDA.Runtime` -> `nvidia-cuda-runtime`. */
export const normalizeName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

const REQUIREMENT = /^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?\s*(?:\(([^)]*)\)|([^;]*))?\s*(?:;\s*(.*))?$/;

/** Parses one `Requires-Dist` line; throws naming the line when it is not one. */
export function parseRequirement(line: string): Requirement {
  const m = REQUIREMENT.exec(line);
  if (!m || line.includes('@')) throw new Error(`not a requirement this parser reads: '${line}'`);
  const extras = (m[2] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  return { name: m[1]!, extras, specifier: (m[3] ?? m[4] ?? '').replace(/\s+/g, ''), marker: m[5]?.trim() || null };
}

/** `==X` (prefix false) or `==X.*` (prefix true); null for anything else. */
export function exactPin(specifier: string): { version: string; prefix: boolean } | null {
  const m = /^==([0-9][0-9A-Za-z.+!-]*?)(\.\*)?$/.exec(specifier);
  return m ? { version: m[1]!, prefix: Boolean(m[2]) } : null;
}

/** A final release (`13.0.96`, `1.2.post1`): what a `==X.*` pin may pick; no pre-releases. */
export const isFinalRelease = (v: string) => /^\d+(\.\d+)*(\.post\d+)?$/.test(v);

/** Whether `version` satisfies the exact pin (with `.*`: `13.0.96` and `13.0.96.1` satisfy `13.0.96.*`). */
export function matchesPin(version: string, pin: { version: string; prefix: boolean }): boolean {
  if (!pin.prefix) return version === pin.version || compareVersions(version, pin.version) === 0;
  return version === pin.version || version.startsWith(`${pin.version}.`);
}

/**
 * Orders release versions by their numeric parts (`13.0.96` < `13.0.100`;
 * `1.0` = `1.0.0`), then a `.postN` after the release. Local parts (`+cu130`)
 * are ignored. Enough for picking among final releases.
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [release = '', post] = v.split('+')[0]!.split(/\.?post/);
    return { nums: release.split('.').map((x) => Number.parseInt(x, 10) || 0), post: post === undefined ? -1 : Number(post) || 0 };
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < Math.max(pa.nums.length, pb.nums.length); i++) {
    const d = (pa.nums[i] ?? 0) - (pb.nums[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(pa.post - pb.post);
}

/** The values a marker may test (PEP 508's environment; `extra` set per requested extra). */
export type MarkerEnv = Record<string, string>;

/** Linux on `machine` as a CPython `pythonVersion` (e.g. "3.12") would describe it. */
export function linuxMarkerEnv(machine: string, pythonVersion: string): MarkerEnv {
  return {
    os_name: 'posix',
    sys_platform: 'linux',
    platform_system: 'Linux',
    platform_machine: machine,
    platform_release: '',
    platform_version: '',
    platform_python_implementation: 'CPython',
    implementation_name: 'cpython',
    implementation_version: `${pythonVersion}.0`,
    python_version: pythonVersion,
    python_full_version: `${pythonVersion}.0`,
    extra: '',
  };
}

type Token = { kind: 'str'; value: string } | { kind: 'var'; value: string } | { kind: 'op'; value: string } | { kind: 'word'; value: 'and' | 'or' | 'not' | 'in' } | { kind: 'paren'; value: '(' | ')' };

function tokenize(marker: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:(['"])(.*?)\1|(===|==|!=|<=|>=|~=|<|>)|(\(|\))|([A-Za-z_][A-Za-z0-9_.]*))/y;
  let pos = 0;
  while (pos < marker.length) {
    if (/^\s*$/.test(marker.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(marker);
    if (!m) throw new Error(`cannot read the marker '${marker}' at '${marker.slice(pos)}'`);
    pos = re.lastIndex;
    if (m[1]) tokens.push({ kind: 'str', value: m[2]! });
    else if (m[3]) tokens.push({ kind: 'op', value: m[3] });
    else if (m[4]) tokens.push({ kind: 'paren', value: m[4] as '(' | ')' });
    else if (['and', 'or', 'not', 'in'].includes(m[5]!)) tokens.push({ kind: 'word', value: m[5] as 'and' | 'or' | 'not' | 'in' });
    else tokens.push({ kind: 'var', value: m[5]! });
  }
  return tokens;
}

const VERSION_VARS = new Set(['python_version', 'python_full_version', 'implementation_version']);

function compare(op: string, left: string, right: string, asVersion: boolean): boolean {
  if (op === 'in') return right.includes(left);
  if (op === 'not in') return !right.includes(left);
  if (asVersion && /^\d/.test(left) && /^\d/.test(right)) {
    const c = compareVersions(left, right);
    const table: Record<string, boolean> = { '==': c === 0, '===': left === right, '!=': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0, '~=': c >= 0 };
    return table[op] ?? false;
  }
  if (op === '==' || op === '===') return left === right;
  if (op === '!=') return left !== right;
  throw new Error(`the marker operator ${op} needs versions, not '${left}' and '${right}'`);
}

/**
 * Evaluates a PEP 508 marker in `env`. `extra` compares by normalised name.
 * Throws on a marker it cannot read or an unknown variable.
 */
export function evaluateMarker(marker: string, env: MarkerEnv): boolean {
  const tokens = tokenize(marker);
  let i = 0;
  const peek = () => tokens[i];
  const value = (): { text: string; variable: string | null } => {
    const t = tokens[i++];
    if (t?.kind === 'str') return { text: t.value, variable: null };
    if (t?.kind === 'var') {
      if (!(t.value in env)) throw new Error(`unknown marker variable '${t.value}' in '${marker}'`);
      return { text: env[t.value]!, variable: t.value };
    }
    throw new Error(`expected a value in the marker '${marker}'`);
  };
  const atom = (): boolean => {
    const t = peek();
    if (t?.kind === 'paren' && t.value === '(') {
      i++;
      const r = or();
      if (tokens[i++]?.value !== ')') throw new Error(`unbalanced parentheses in the marker '${marker}'`);
      return r;
    }
    const left = value();
    let op: string;
    const o = tokens[i++];
    if (o?.kind === 'op') op = o.value;
    else if (o?.kind === 'word' && o.value === 'in') op = 'in';
    else if (o?.kind === 'word' && o.value === 'not' && tokens[i]?.value === 'in') {
      i++;
      op = 'not in';
    } else throw new Error(`expected an operator in the marker '${marker}'`);
    const right = value();
    const isExtra = left.variable === 'extra' || right.variable === 'extra';
    const norm = (s: string) => (isExtra ? normalizeName(s) : s);
    const asVersion = VERSION_VARS.has(left.variable ?? '') || VERSION_VARS.has(right.variable ?? '');
    return compare(op, norm(left.text), norm(right.text), asVersion);
  };
  const and = (): boolean => {
    let r = atom();
    while (peek()?.value === 'and') {
      i++;
      r = atom() && r;
    }
    return r;
  };
  const or = (): boolean => {
    let r = and();
    while (peek()?.value === 'or') {
      i++;
      r = and() || r;
    }
    return r;
  };
  const result = or();
  if (i !== tokens.length) throw new Error(`unexpected '${tokens[i]!.value}' in the marker '${marker}'`);
  return result;
}

/**
 * Whether `req` applies where `env` holds and the extras `extras` were
 * asked for: its marker is evaluated once with `extra` unset and once per
 * requested extra, as pip does.
 */
export function requirementApplies(req: Requirement, env: MarkerEnv, extras: readonly string[]): boolean {
  if (!req.marker) return true;
  return ['', ...extras].some((extra) => evaluateMarker(req.marker!, { ...env, extra }));
}
