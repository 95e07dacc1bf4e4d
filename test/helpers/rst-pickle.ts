/**
 * A tiny pickle writer emitting the opcodes CPython's pickler writes for
 * numpy arrays, and RST's pickle (a dict of `data` N×32×32×3 uint8 and
 * `extrapolated_targets`) made with it: the test fixtures of the RST reader.
 */

export class P {
  private parts: Buffer[] = [];
  private memo = 0;
  constructor(readonly protocol: 3 | 4 | 5) {}
  raw(...bytes: (number | Buffer | string)[]): this {
    for (const b of bytes) this.parts.push(typeof b === 'number' ? Buffer.from([b]) : typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
    return this;
  }
  private globals = new Map<string, number>();
  put(): this {
    const i = this.memo++;
    return this.protocol >= 4 ? this.raw(0x94) : this.raw(0x71, i & 0xff);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (this.protocol >= 4 && b.length < 256) return this.raw(0x8c, b.length, b).put();
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.raw(0x58, n, b).put();
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.raw(0x4b, v);
    if (v >= 0 && v < 65536) {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(v);
      return this.raw(0x4d, b);
    }
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.raw(0x4a, b);
  }
  /** Like CPython: a global already written is fetched back from the memo (BINGET). */
  global(module: string, name: string): this {
    const seen = this.globals.get(`${module}.${name}`);
    if (seen !== undefined) return this.raw(0x68, seen);
    if (this.protocol >= 4) this.str(module).str(name).raw(0x93);
    else this.raw(0x63, `${module}\n${name}\n`);
    this.globals.set(`${module}.${name}`, this.memo);
    return this.put();
  }
  bytes(b: Buffer): this {
    if (b.length < 256) return this.raw(0x43, b.length, b).put();
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.raw(0x42, n, b).put();
  }
  dtype(str: string, order: string): this {
    this.global('numpy', 'dtype');
    this.str(str).raw(0x89, 0x88, 0x87).put().raw(0x52).put();
    return this.raw(0x28).int(3).str(order).raw(0x4e, 0x4e, 0x4e).int(-1).int(-1).int(0).raw(0x74).put().raw(0x62);
  }
  /** numpy's __reduce__ of an ndarray: _reconstruct(ndarray, (0,), b'b') then BUILD (1, shape, dtype, False, data). */
  array(shape: number[], dtype: [string, string], data: Buffer, opts: { module?: string } = {}): this {
    if (this.protocol === 5) {
      // Protocol 5: _frombuffer(PickleBuffer, dtype, shape, order), the buffer in-band as BYTEARRAY8 (the array is writable).
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(data.length));
      this.global('numpy.core.numeric', '_frombuffer').raw(0x28, 0x96, n, data).put().dtype(dtype[0], dtype[1]).raw(0x28);
      for (const d of shape) this.int(d);
      return this.raw(0x74).put().str('C').raw(0x74).put().raw(0x52).put();
    }
    this.global(opts.module ?? 'numpy.core.multiarray', '_reconstruct').global('numpy', 'ndarray');
    this.int(0).raw(0x85).put().bytes(Buffer.from('b')).raw(0x87).put().raw(0x52).put();
    this.raw(0x28).int(1);
    this.raw(0x28);
    for (const d of shape) this.int(d);
    this.raw(0x74).put();
    this.dtype(dtype[0], dtype[1]);
    return this.raw(0x89).bytes(data).raw(0x74).put().raw(0x62);
  }
  done(): Buffer {
    const body = Buffer.concat(this.parts);
    if (this.protocol === 3) return Buffer.concat([Buffer.from([0x80, 3]), body, Buffer.from('.')]);
    // One FRAME around everything (CPython splits frames around large bytes; the reader ignores frame bounds either way).
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(body.length + 1));
    return Buffer.concat([Buffer.from([0x80, this.protocol, 0x95]), len, body, Buffer.from('.')]);
  }
}

/** A deterministic image set: pixel (n, r, c, ch) in numpy's N×32×32×3 order. */
export function hwcImages(n: number): Buffer {
  const b = Buffer.alloc(n * 3072);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 11) * 13) & 0xff;
  return b;
}
export function int64Labels(labels: number[], bigEndian = false): Buffer {
  const b = Buffer.alloc(labels.length * 8);
  labels.forEach((l, i) => (bigEndian ? b.writeBigInt64BE(BigInt(l), i * 8) : b.writeBigInt64LE(BigInt(l), i * 8)));
  return b;
}

export interface RstOpts {
  protocol?: 3 | 4 | 5;
  n?: number;
  labels?: number[];
  dataDtype?: [string, string];
  shape?: number[];
  labelsDtype?: [string, string];
  labelBytes?: Buffer;
  listLabels?: boolean;
  extraKey?: boolean;
}

export function rstPickle(o: RstOpts = {}): { bytes: Buffer; images: Buffer; labels: number[] } {
  const n = o.n ?? 30;
  const labels = o.labels ?? Array.from({ length: n }, (_, i) => (i * 3) % 10);
  const images = hwcImages(n);
  const p = new P(o.protocol ?? 4);
  p.raw(0x7d).put().raw(0x28);
  p.str('data').array(o.shape ?? [n, 32, 32, 3], o.dataDtype ?? ['u1', '|'], images);
  p.str('extrapolated_targets');
  if (o.listLabels) {
    p.raw(0x5d).put().raw(0x28);
    for (const l of labels) p.int(l);
    p.raw(0x65);
  } else {
    // The second array's globals come back from the memo (BINGET), as CPython writes them.
    p.array([labels.length], o.labelsDtype ?? ['i8', '<'], o.labelBytes ?? int64Labels(labels));
  }
  if (o.extraKey) {
    // Other keys are ignored: a note, and a numpy float64 scalar as np.float64(0.5) pickles.
    p.str('prediction_model').str('vanilla/model-epoch200.pt');
    const half = Buffer.alloc(8);
    half.writeDoubleLE(0.5);
    p.str('accuracy').global('numpy.core.multiarray', 'scalar').dtype('f8', '<').bytes(half).raw(0x86).put().raw(0x52).put();
  }
  p.raw(0x75);
  return { bytes: p.done(), images, labels };
}
