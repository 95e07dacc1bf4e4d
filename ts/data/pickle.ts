/**
 * A strict, non-executing reader for the one kind of Python pickle the RST
 * release is: a dict of numpy arrays, strings and small numbers (protocols
 * 3 to 5, as `pickle.dump` writes from Python 3). It walks the opcodes
 * itself and never calls anything: the only GLOBALs it accepts are numpy's
 * `_reconstruct`, `ndarray`, `dtype` and `scalar` (and protocol 5's `_frombuffer`),
 * and only in the exact REDUCE/BUILD shapes numpy writes; any other opcode or global is refused with the file,
 * byte offset and opcode named. Large byte strings (an array's raw data)
 * are not read: the result holds their offset and length in the file, so a
 * 1.5 GB array costs no JS heap.
 *
 * Why not an npm package: the readers on npm (e.g. `pickleparser`,
 * `jpickle`) either build arbitrary objects from any GLOBAL through
 * registries or read the whole file into memory, and none returns numpy
 * arrays as file ranges; refusing everything but these few opcodes is the
 * point here, and that is a small table.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DatasetError } from './errors.js';

/** A numpy dtype as pickled: its type string (`u1`, `i8`, ...) and byte order (`<`, `>`, `|`). */
export interface PickleDtype {
  kind: 'dtype';
  str: string;
  byteorder: string;
}

/** Raw bytes: where in the file, and (for small ones) the bytes themselves. */
export interface PickleBytes {
  kind: 'bytes';
  offset: number;
  length: number;
  /** Present when the string is at most INLINE_LIMIT bytes. */
  data: Buffer | null;
}

export interface PickleArray {
  kind: 'ndarray';
  shape: number[];
  dtype: PickleDtype;
  fortran: boolean;
  data: PickleBytes;
}

export type PickleValue =
  | { kind: 'none' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: bigint }
  | { kind: 'str'; value: string }
  | PickleBytes
  | { kind: 'tuple'; items: PickleValue[] }
  | { kind: 'list'; items: PickleValue[] }
  | { kind: 'dict'; entries: Map<string, PickleValue> }
  | { kind: 'global'; name: string }
  | PickleDtype
  | PickleArray
  /** `_reconstruct(ndarray, ...)` before its BUILD: an array waiting for its state. */
  | { kind: 'pending-array' }
  /** A numpy scalar: its dtype and raw bytes (not interpreted). */
  | { kind: 'scalar'; dtype: PickleDtype; data: PickleBytes }
  /** `dtype(str, False, True)` before its BUILD. */
  | { kind: 'pending-dtype'; str: string };

type Mark = { kind: 'mark' };

/** Byte strings up to this size are read; longer ones are only located. */
export const INLINE_LIMIT = 1 << 16;

const ALLOWED_GLOBALS = new Set([
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.ndarray',
  'numpy.dtype',
  // Protocol 5: numpy pickles arrays as _frombuffer(buffer, dtype, shape, order).
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  // A numpy scalar (e.g. an accuracy stored beside the arrays): scalar(dtype, raw bytes).
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
]);

const NAMES: Record<number, string> = {
  0x80: 'PROTO', 0x95: 'FRAME', 0x2e: 'STOP', 0x7d: 'EMPTY_DICT', 0x5d: 'EMPTY_LIST', 0x29: 'EMPTY_TUPLE',
  0x28: 'MARK', 0x75: 'SETITEMS', 0x73: 'SETITEM', 0x61: 'APPEND', 0x65: 'APPENDS', 0x74: 'TUPLE',
  0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x58: 'BINUNICODE', 0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8', 0x43: 'SHORT_BINBYTES', 0x42: 'BINBYTES', 0x8e: 'BINBYTES8', 0x96: 'BYTEARRAY8', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4d: 'BININT2', 0x8a: 'LONG1', 0x4e: 'NONE', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE',
  0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x94: 'MEMOIZE', 0x68: 'BINGET', 0x6a: 'LONG_BINGET',
  0x63: 'GLOBAL', 0x93: 'STACK_GLOBAL', 0x52: 'REDUCE', 0x62: 'BUILD',
};

/** The opcode's pickletools name, or its byte for ones this reader does not know. */
export function opcodeName(op: number): string {
  return NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))})`;
}

/** Sequential reads from a file descriptor through a 1 MiB window. */
class Cursor {
  private buf = Buffer.allocUnsafe(1 << 20);
  private start = 0;
  private end = 0;
  pos = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly fail: (at: number, what: string) => never,
  ) {}

  take(n: number, what: string): Buffer {
    if (this.pos + n > this.size) this.fail(this.pos, `truncated: ${what} needs ${n} bytes, the file ends after ${this.size - this.pos}`);
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    if (this.pos < this.start || this.pos + n > this.end) {
      this.start = this.pos;
      this.end = this.pos + readSync(this.fd, this.buf, 0, Math.min(this.buf.length, this.size - this.pos), this.pos);
    }
    const out = this.buf.subarray(this.pos - this.start, this.pos - this.start + n);
    this.pos += n;
    return out;
  }

  skip(n: number, what: string): void {
    if (this.pos + n > this.size) this.fail(this.pos, `truncated: ${what} of ${n} bytes, the file ends after ${this.size - this.pos}`);
    this.pos += n;
  }
}

/**
 * Reads `file` as a pickle and returns its top-level value. Throws a
 * DatasetError (ERR_INVALID_DATA) naming the file, offset and opcode for
 * anything outside the accepted subset, a truncated file, or trailing bytes.
 */
export function readPickle(file: string): PickleValue {
  const fd = openSync(file, 'r');
  try {
    return scan(file, fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function scan(file: string, fd: number, size: number): PickleValue {
  let opAt = 0;
  let op = -1;
  const fail = (at: number, what: string): never => {
    throw new DatasetError(file, `not an RST-style pickle: at byte ${at}${op >= 0 ? ` (opcode ${opcodeName(op)} at byte ${opAt})` : ''}: ${what}`);
  };
  const c = new Cursor(fd, size, fail);
  const stack: (PickleValue | Mark)[] = [];
  const memo = new Map<number, PickleValue>();
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v.kind === 'mark') return fail(opAt, 'stack underflow');
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v.kind === 'mark') return fail(opAt, 'stack underflow');
    return v;
  };
  const popMark = (): PickleValue[] => {
    let at = stack.length - 1;
    while (at >= 0 && stack[at]!.kind !== 'mark') at--;
    if (at < 0) return fail(opAt, 'no MARK on the stack');
    const items = stack.splice(at) as PickleValue[];
    items.shift();
    return items;
  };
  const u32 = (what: string) => c.take(4, what).readUInt32LE(0);
  const u64 = (what: string) => {
    const v = c.take(8, what).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(opAt, `length ${v} is not plausible`);
    return Number(v);
  };
  // Keys and notes are short; a huge "string" would only be a way to make us allocate.
  const text = (n: number) => (n > 1 << 20 ? fail(opAt, `a string of ${n} bytes (at most 1 MiB is accepted)`) : c.take(n, 'the string').toString('utf8'));
  const bytes = (n: number): PickleBytes => {
    const offset = c.pos;
    if (n <= INLINE_LIMIT) return { kind: 'bytes', offset, length: n, data: Buffer.from(c.take(n, 'the bytes')) };
    c.skip(n, 'the bytes');
    return { kind: 'bytes', offset, length: n, data: null };
  };
  const setItems = (dict: PickleValue, pairs: PickleValue[]) => {
    if (dict.kind !== 'dict') return fail(opAt, `expected a dict to set items on, found ${dict.kind}`);
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const k = pairs[i]!;
      if (k.kind !== 'str') return fail(opAt, `dict keys must be strings, found ${k.kind}`);
      dict.entries.set(k.value, pairs[i + 1]!);
    }
  };
  const global = (name: string): PickleValue => {
    // Refused here, before anything could use it: nothing is ever imported or called.
    if (!ALLOWED_GLOBALS.has(name)) return fail(opAt, `global ${name} is not allowed (only numpy's _reconstruct, ndarray, dtype, scalar and _frombuffer)`);
    return { kind: 'global', name };
  };

  for (;;) {
    opAt = c.pos;
    op = -1;
    op = c.take(1, 'an opcode')[0]!;
    switch (op) {
      case 0x80: {
        const proto = c.take(1, 'the protocol')[0]!;
        if (proto < 3 || proto > 5) fail(opAt, `protocol ${proto}; expected 3 to 5 (Python 3's pickle.dump)`);
        break;
      }
      case 0x95:
        u64('the frame length'); // frames only batch small opcodes; reading straight through is the same
        break;
      case 0x2e: {
        const v = pop();
        if (stack.length) fail(opAt, `${stack.length} values left on the stack`);
        if (c.pos !== size) fail(c.pos, `${size - c.pos} bytes after STOP`);
        return v;
      }
      case 0x7d:
        stack.push({ kind: 'dict', entries: new Map() });
        break;
      case 0x5d:
        stack.push({ kind: 'list', items: [] });
        break;
      case 0x29:
        stack.push({ kind: 'tuple', items: [] });
        break;
      case 0x28:
        stack.push({ kind: 'mark' });
        break;
      case 0x75: {
        const pairs = popMark();
        if (pairs.length % 2) fail(opAt, 'an odd number of items for SETITEMS');
        setItems(top(), pairs);
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x61: {
        const v = pop();
        const l = top();
        if (l.kind !== 'list') fail(opAt, `APPEND to a ${l.kind}`);
        (l as { items: PickleValue[] }).items.push(v);
        break;
      }
      case 0x65: {
        const items = popMark();
        const l = top();
        if (l.kind !== 'list') fail(opAt, `APPENDS to a ${l.kind}`);
        (l as { items: PickleValue[] }).items.push(...items);
        break;
      }
      case 0x74:
        stack.push({ kind: 'tuple', items: popMark() });
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        stack.push({ kind: 'tuple', items });
        break;
      }
      case 0x58:
        stack.push({ kind: 'str', value: text(u32('the string length')) });
        break;
      case 0x8c:
        stack.push({ kind: 'str', value: text(c.take(1, 'the string length')[0]!) });
        break;
      case 0x8d:
        stack.push({ kind: 'str', value: text(u64('the string length')) });
        break;
      case 0x43:
        stack.push(bytes(c.take(1, 'the bytes length')[0]!));
        break;
      case 0x42:
        stack.push(bytes(u32('the bytes length')));
        break;
      case 0x8e:
      case 0x96: // BYTEARRAY8: protocol 5's in-band buffer of a writable array
        stack.push(bytes(u64('the bytes length')));
        break;
      case 0x4a:
        stack.push({ kind: 'int', value: BigInt(c.take(4, 'the int').readInt32LE(0)) });
        break;
      case 0x4b:
        stack.push({ kind: 'int', value: BigInt(c.take(1, 'the int')[0]!) });
        break;
      case 0x4d:
        stack.push({ kind: 'int', value: BigInt(c.take(2, 'the int').readUInt16LE(0)) });
        break;
      case 0x8a: {
        const n = c.take(1, 'the long length')[0]!;
        const b = c.take(n, 'the long');
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push({ kind: 'int', value: v });
        break;
      }
      case 0x4e:
        stack.push({ kind: 'none' });
        break;
      case 0x88:
      case 0x89:
        stack.push({ kind: 'bool', value: op === 0x88 });
        break;
      case 0x71:
        memo.set(c.take(1, 'the memo index')[0]!, top());
        break;
      case 0x72:
        memo.set(u32('the memo index'), top());
        break;
      case 0x94:
        memo.set(memo.size, top());
        break;
      case 0x68:
      case 0x6a: {
        const i = op === 0x68 ? c.take(1, 'the memo index')[0]! : u32('the memo index');
        const v = memo.get(i);
        if (v === undefined) fail(opAt, `memo entry ${i} was never stored`);
        stack.push(v!);
        break;
      }
      case 0x63: {
        // GLOBAL: "module\nname\n", read up to two newlines (short: these are numpy names).
        const line = () => {
          let s = '';
          for (;;) {
            const ch = c.take(1, 'the global name')[0]!;
            if (ch === 0x0a) return s;
            if (s.length > 200) fail(opAt, 'a global name longer than 200 bytes');
            s += String.fromCharCode(ch);
          }
        };
        const module = line();
        stack.push(global(`${module}.${line()}`));
        break;
      }
      case 0x93: {
        const name = pop();
        const module = pop();
        if (module.kind !== 'str' || name.kind !== 'str') fail(opAt, 'STACK_GLOBAL needs two strings');
        stack.push(global(`${(module as { value: string }).value}.${(name as { value: string }).value}`));
        break;
      }
      case 0x52: {
        const args = pop();
        const fn = pop();
        stack.push(reduce(fn, args, (what) => fail(opAt, what)));
        break;
      }
      case 0x62: {
        const state = pop();
        const obj = top();
        stack[stack.length - 1] = build(obj, state, (what) => fail(opAt, what));
        // Memo entries point at the unbuilt object: repoint them at the built one.
        for (const [k, v] of memo) if (v === obj) memo.set(k, stack[stack.length - 1] as PickleValue);
        break;
      }
      default:
        fail(opAt, `opcode ${opcodeName(op)} is not allowed (only dicts, strings, ints, bytes, tuples, lists and numpy arrays)`);
    }
  }
}

const fnName = (v: PickleValue) => (v.kind === 'global' ? v.name.replace(/^numpy\._?core\.(multiarray|numeric)\./, '') : null);

function reduce(fn: PickleValue, args: PickleValue, fail: (what: string) => never): PickleValue {
  const name = fnName(fn);
  const a = args.kind === 'tuple' ? args.items : null;
  if (name === 'numpy.dtype') {
    if (a?.length !== 3 || a[0]!.kind !== 'str' || a[1]!.kind !== 'bool' || a[2]!.kind !== 'bool') return fail('numpy.dtype expects (str, bool, bool)');
    return { kind: 'pending-dtype', str: (a[0] as { value: string }).value };
  }
  if (name === '_reconstruct') {
    if (a?.length !== 3 || a[0]!.kind !== 'global' || a[0].name !== 'numpy.ndarray') return fail('_reconstruct expects (numpy.ndarray, shape, bytes)');
    return { kind: 'pending-array' };
  }
  if (name === 'scalar') {
    if (a?.length !== 2 || a[0]!.kind !== 'dtype' || a[1]!.kind !== 'bytes') return fail('scalar expects (dtype, bytes)');
    return { kind: 'scalar', dtype: a[0], data: a[1] };
  }
  if (name === '_frombuffer') {
    // (buffer, dtype, shape, order): the array whole, no BUILD follows.
    const [buf, dtype, shape, order] = a ?? [];
    if (a?.length !== 4 || buf?.kind !== 'bytes' || dtype?.kind !== 'dtype' || shape?.kind !== 'tuple' || order?.kind !== 'str') {
      return fail('_frombuffer expects (bytes, dtype, shape, order)');
    }
    if (!shape.items.every((d) => d.kind === 'int' && d.value >= 0n)) return fail('an ndarray shape must be a tuple of non-negative ints');
    if (order.value !== 'C' && order.value !== 'F') return fail(`an ndarray order must be "C" or "F", found ${JSON.stringify(order.value)}`);
    return { kind: 'ndarray', shape: shape.items.map((d) => Number((d as { value: bigint }).value)), dtype, fortran: order.value === 'F', data: buf };
  }
  return fail(`REDUCE of ${fn.kind === 'global' ? fn.name : fn.kind} is not allowed`);
}

function build(obj: PickleValue, state: PickleValue, fail: (what: string) => never): PickleValue {
  const s = state.kind === 'tuple' ? state.items : null;
  if (obj.kind === 'pending-dtype') {
    // numpy writes (3, byteorder, subdescr, names, fields, elsize, alignment, flags); only plain dtypes here.
    if (!s || s.length !== 8 || s[1]!.kind !== 'str' || s[2]!.kind !== 'none' || s[3]!.kind !== 'none') return fail(`dtype ${obj.str}: only plain (not structured) dtypes are accepted`);
    return { kind: 'dtype', str: obj.str, byteorder: (s[1] as { value: string }).value };
  }
  if (obj.kind === 'pending-array') {
    // (version, shape, dtype, is_fortran, raw data)
    if (!s || s.length !== 5) return fail('an ndarray state must be (version, shape, dtype, fortran, data)');
    const [, shape, dtype, fortran, data] = s as [PickleValue, PickleValue, PickleValue, PickleValue, PickleValue];
    if (shape.kind !== 'tuple' || !shape.items.every((d) => d.kind === 'int' && d.value >= 0n)) return fail('an ndarray shape must be a tuple of non-negative ints');
    if (dtype.kind !== 'dtype') return fail('an ndarray dtype must be a numpy.dtype');
    if (fortran.kind !== 'bool') return fail('an ndarray order flag must be a bool');
    if (data.kind !== 'bytes') return fail(`an ndarray's data must be raw bytes, found ${data.kind} (object arrays are not accepted)`);
    return { kind: 'ndarray', shape: shape.items.map((d) => Number((d as { value: bigint }).value)), dtype, fortran: fortran.value, data };
  }
  return fail(`BUILD on a ${obj.kind} is not allowed`);
}
