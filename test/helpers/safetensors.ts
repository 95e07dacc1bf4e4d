/**
 * A minimal safetensors reader/writer for tests (float32 only): enough to
 * build bad checkpoints (scaled, bit-flipped, retyped) from good ones the
 * way a PyTorch user's file would look, without Python.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface TensorEntry {
  dtype: string;
  shape: number[];
  data: Buffer;
}

export interface SafetensorsFile {
  metadata: Record<string, string> | undefined;
  tensors: Map<string, TensorEntry>;
}

export function readSafetensors(file: string): SafetensorsFile {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const body = bytes.subarray(8 + n);
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> | undefined;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: [start, end] } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors.set(name, { dtype, shape, data: Buffer.from(body.subarray(start, end)) });
  }
  return { metadata, tensors };
}

export function writeSafetensors(file: string, st: SafetensorsFile): void {
  const header: Record<string, unknown> = {};
  if (st.metadata) header.__metadata__ = st.metadata;
  let offset = 0;
  const chunks: Buffer[] = [];
  for (const [name, t] of [...st.tensors].sort(([a], [b]) => a.localeCompare(b))) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
    chunks.push(t.data);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces to 8 bytes, as the format recommends.
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, ...chunks]));
}

/** Every float32 tensor multiplied by `factor`; metadata (and so our checksum) dropped, as a PyTorch file has none. */
export function scaledCopy(from: string, to: string, factor: number): void {
  const st = readSafetensors(from);
  for (const t of st.tensors.values()) {
    if (t.dtype !== 'F32') continue;
    const f = new Float32Array(t.data.buffer, t.data.byteOffset, t.data.length / 4);
    for (let i = 0; i < f.length; i++) f[i] = f[i]! * factor;
  }
  writeSafetensors(to, { metadata: undefined, tensors: st.tensors });
}
