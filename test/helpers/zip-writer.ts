/**
 * Writes small zip files (fake wheels) for tests, independently of the
 * reader under test: node:zlib's deflateRawSync and crc32, headers laid out
 * from the zip specification (APPNOTE 4.3), optionally with every size and
 * offset in Zip64 records as large wheels have them.
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipInput {
  name: string;
  data: Buffer | string;
  /** 0 stored, 8 deflated (default). */
  method?: 0 | 8;
  /** Unix permission bits (default 0644). */
  mode?: number;
}

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

export function makeZip(files: ZipInput[], { zip64 = false } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data);
    const method = f.method ?? 8;
    const body = method === 8 ? deflateRawSync(data) : data;
    const crc = crc32(data);
    const name = Buffer.from(f.name, 'utf8');
    const version = zip64 ? 45 : 20;
    const sat = (n: number) => (zip64 ? 0xffffffff : n);
    const localExtra = zip64 ? Buffer.concat([u16(1), u16(16), u64(data.length), u64(body.length)]) : Buffer.alloc(0);
    const local = Buffer.concat([
      u32(0x04034b50),
      u16(version),
      u16(0x0800),
      u16(method),
      u16(0),
      u16(0x21),
      u32(crc),
      u32(sat(body.length)),
      u32(sat(data.length)),
      u16(name.length),
      u16(localExtra.length),
      name,
      localExtra,
    ]);
    const centralExtra = zip64 ? Buffer.concat([u16(1), u16(24), u64(data.length), u64(body.length), u64(offset)]) : Buffer.alloc(0);
    central.push(
      Buffer.concat([
        u32(0x02014b50),
        u16((3 << 8) | version),
        u16(version),
        u16(0x0800),
        u16(method),
        u16(0),
        u16(0x21),
        u32(crc),
        u32(sat(body.length)),
        u32(sat(data.length)),
        u16(name.length),
        u16(centralExtra.length),
        u16(0),
        u16(0),
        u16(0),
        u32(((0o100000 | (f.mode ?? 0o644)) << 16) >>> 0),
        u32(sat(offset)),
        name,
        centralExtra,
      ]),
    );
    parts.push(local, body);
    offset += local.length + body.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (zip64) {
    const recordOffset = offset + cd.length;
    tail.push(
      Buffer.concat([u32(0x06064b50), u64(44), u16((3 << 8) | 45), u16(45), u32(0), u32(0), u64(files.length), u64(files.length), u64(cd.length), u64(offset)]),
      Buffer.concat([u32(0x07064b50), u32(0), u64(recordOffset), u32(1)]),
      Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(0xffff), u16(0xffff), u32(0xffffffff), u32(0xffffffff), u16(0)]),
    );
  } else {
    tail.push(Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(files.length), u16(files.length), u32(cd.length), u32(offset), u16(0)]));
  }
  return Buffer.concat([...parts, cd, ...tail]);
}
