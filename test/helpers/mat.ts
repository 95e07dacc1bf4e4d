/**
 * A small MATLAB level-5 MAT-file writer for test fixtures, written from the
 * format's specification (MathWorks, "MAT-File Format"): 128-byte header,
 * miMATRIX elements (array flags, dimensions, name, real part), optionally
 * each wrapped in a zlib miCOMPRESSED element as MATLAB does since v7, and
 * small data elements for short names, as MATLAB writes them.
 */
import { deflateSync } from 'node:zlib';

export const miINT8 = 1;
export const miUINT8 = 2;
export const miINT32 = 5;
export const miUINT32 = 6;
export const miDOUBLE = 9;
export const miMATRIX = 14;
export const miCOMPRESSED = 15;
export const mxDOUBLE_CLASS = 6;
export const mxUINT8_CLASS = 9;

export interface MatVariable {
  name: string;
  classId: number;
  dims: number[];
  /** Values in column-major order. */
  values: ArrayLike<number>;
  /** How the values are stored (MATLAB may store a double array as miUINT8). */
  storeAs: typeof miUINT8 | typeof miDOUBLE;
}

export interface MatOptions {
  compress?: boolean;
  bigEndian?: boolean;
  /** Replaces the 116-byte descriptive text. */
  text?: string;
}

class Writer {
  constructor(private readonly be: boolean) {}
  u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.be) b.writeUInt32BE(v >>> 0);
    else b.writeUInt32LE(v >>> 0);
    return b;
  }
  i32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.be) b.writeInt32BE(v);
    else b.writeInt32LE(v);
    return b;
  }
  /** A data element: tag, data, padding to 8 bytes (or the small format for ≤ 4 bytes when allowed). */
  element(type: number, data: Buffer, small = false): Buffer {
    if (small && data.length <= 4) {
      return Buffer.concat([this.u32(((data.length << 16) | type) >>> 0), data, Buffer.alloc(4 - data.length)]);
    }
    return Buffer.concat([this.u32(type), this.u32(data.length), data, Buffer.alloc((8 - (data.length % 8)) % 8)]);
  }
  values(v: MatVariable): Buffer {
    if (v.storeAs === miUINT8) return Buffer.from(Uint8Array.from(v.values));
    const b = Buffer.alloc(v.values.length * 8);
    for (let i = 0; i < v.values.length; i++) {
      if (this.be) b.writeDoubleBE(v.values[i]!, i * 8);
      else b.writeDoubleLE(v.values[i]!, i * 8);
    }
    return b;
  }
  matrix(v: MatVariable): Buffer {
    const body = Buffer.concat([
      this.element(miUINT32, Buffer.concat([this.u32(v.classId), this.u32(0)])),
      this.element(miINT32, Buffer.concat(v.dims.map((d) => this.i32(d)))),
      this.element(miINT8, Buffer.from(v.name, 'latin1'), true),
      this.element(v.storeAs, this.values(v)),
    ]);
    return Buffer.concat([this.u32(miMATRIX), this.u32(body.length), body]);
  }
}

export function matFile(variables: MatVariable[], options: MatOptions = {}): Buffer {
  const w = new Writer(Boolean(options.bigEndian));
  const header = Buffer.alloc(128, 0x20);
  header.write((options.text ?? 'MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: (st-native test fixture)').padEnd(116, ' '), 0, 116, 'latin1');
  header.fill(0, 116, 124);
  if (options.bigEndian) header.writeUInt16BE(0x0100, 124);
  else header.writeUInt16LE(0x0100, 124);
  header.write(options.bigEndian ? 'MI' : 'IM', 126, 'latin1');
  const elements = variables.map((v) => {
    const m = w.matrix(v);
    if (!options.compress) return m;
    const z = deflateSync(m);
    return Buffer.concat([w.u32(miCOMPRESSED), w.u32(z.length), z]);
  });
  return Buffer.concat([header, ...elements]);
}

/** A deterministic pixel value for image n, channel ch, row r, column c. */
export const pixel = (n: number, ch: number, r: number, c: number) => (n * 37 + ch * 71 + r * 5 + c * 3) & 255;

/**
 * SVHN's X: uint8 32×32×3×N, filled in memory order (row fastest, then
 * column, channel, image), so element (r, c, ch, n) holds pixel(n, ch, r, c).
 */
export function svhnX(n: number): MatVariable {
  const values = new Uint8Array(32 * 32 * 3 * n);
  let i = 0;
  for (let img = 0; img < n; img++) {
    for (let ch = 0; ch < 3; ch++) {
      for (let c = 0; c < 32; c++) {
        for (let r = 0; r < 32; r++) values[i++] = pixel(img, ch, r, c);
      }
    }
  }
  return { name: 'X', classId: mxUINT8_CLASS, dims: [32, 32, 3, n], values, storeAs: miUINT8 };
}

/** SVHN's y: double N×1, labels 1..10. */
export function svhnY(labels: number[], storeAs: typeof miUINT8 | typeof miDOUBLE = miDOUBLE): MatVariable {
  return { name: 'y', classId: mxDOUBLE_CLASS, dims: [labels.length, 1], values: labels, storeAs };
}
