/**
 * CIFAR-10/100 and SVHN: real decoding on fixtures in the exact official
 * formats (built here at run time), checksums, the data folder, downloads
 * against a local HTTP server (Range resume, a dropped connection, a bad
 * checksum), the offline message and `st-native data`.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { dataCommand } from '../ts/cli/data.js';
import { report } from '../ts/cli/errors.js';
import { main } from '../ts/cli/main.js';
import { CIFAR10_LAYOUT, CIFAR100_LAYOUT, decodeCifarArchive } from '../ts/data/cifar.js';
import { DownloadError, downloadFile } from '../ts/data/download.js';
import { parseSetArgument, resolveConfig } from '../ts/config/resolve.js';
import { resolveDataDir } from '../ts/data/folder.js';
import { dataDir } from '../ts/runtime/cache.js';
import {
  datasetInfo,
  datasetStatus,
  DatasetError,
  fetchDataset,
  loadDataset,
  OFFICIAL_SOURCES,
  prepareDataset,
  type DatasetSources,
  type RemoteFile,
} from '../ts/data/index.js';
import { ProgressBar } from '../ts/data/progress.js';
import { decodeSvhnMat } from '../ts/data/svhn.js';
import { cifar10Archive, cifar10Label, cifarRecords, writeTarGz } from './helpers/cifar.js';
import { closedPort, serve } from './helpers/http.js';
import { matFile, miDOUBLE, miUINT8, mxDOUBLE_CLASS, mxUINT8_CLASS, pixel, svhnX, svhnY, type MatVariable } from './helpers/mat.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const tmp = (prefix = 'st-data-') => mkdtempSync(path.join(tmpdir(), prefix));
const quiet = { progress: null } as const;

/** Checks image k of a decoded C×H×W buffer against pixel(n, ...) at a spread of positions. */
function expectImage(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, images: Uint8Array, k: number, n: number): void {
  const img = images.subarray(k * 3072, (k + 1) * 3072);
  const want = new Uint8Array(3072);
  for (let ch = 0; ch < 3; ch++) for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) want[ch * 1024 + r * 32 + c] = pixel(n, ch, r, c);
  t.deepEqual(Buffer.from(img), Buffer.from(want), `image ${k} (fixture ${n})`);
}

/** Sources whose files are the given fixtures (names as the official ones, URLs on `base`). */
function sourcesFor(files: Partial<Record<'cifar10' | 'cifar100' | 'svhn', { name: string; body: Buffer; url?: string }[]>>): DatasetSources {
  const out = { ...OFFICIAL_SOURCES } as Record<keyof DatasetSources, DatasetSources[keyof DatasetSources]>;
  for (const [name, list] of Object.entries(files) as [keyof DatasetSources, { name: string; body: Buffer; url?: string }[]][]) {
    out[name] = {
      ...OFFICIAL_SOURCES[name],
      files: list.map((f): RemoteFile => ({ name: f.name, url: f.url ?? `http://127.0.0.1:9/${f.name}`, md5: md5(f.body), bytes: f.body.length })),
    };
  }
  return out;
}

function placeFile(root: string, folder: string, name: string, body: Buffer): string {
  mkdirSync(path.join(root, folder), { recursive: true });
  const file = path.join(root, folder, name);
  writeFileSync(file, body);
  return file;
}

function cifar10Fixture(perBatch = [2, 1, 3, 2, 2], testN = 3): Buffer {
  const dir = tmp();
  const file = path.join(dir, 'cifar-10-binary.tar.gz');
  cifar10Archive(file, perBatch, testN);
  return readFileSync(file);
}

const svhnLabels = [10, 1, 2, 3, 9];

function svhnFixture(options: { compress?: boolean; bigEndian?: boolean; labelsAs?: typeof miUINT8 | typeof miDOUBLE; labels?: number[]; x?: MatVariable; y?: MatVariable } = {}): Buffer {
  const labels = options.labels ?? svhnLabels;
  return matFile([options.x ?? svhnX(labels.length), options.y ?? svhnY(labels, options.labelsAs)], { compress: options.compress, bigEndian: options.bigEndian });
}

// ---------------------------------------------------------------- decoding

test('CIFAR-10: a real .tar.gz of binary records decodes to the exact pixels and labels, batches 1..5 in order', (t) => {
  const body = cifar10Fixture();
  const root = tmp();
  placeFile(root, 'cifar10', 'cifar-10-binary.tar.gz', body);
  const d = loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }, { sources: sourcesFor({ cifar10: [{ name: 'cifar-10-binary.tar.gz', body }] }) });
  t.deepEqual([d.channels, d.height, d.width], [3, 32, 32]);
  t.is(d.train.labels.length, 10);
  t.is(d.train.images.length, 10 * 3072);
  t.deepEqual([...d.train.labels], Array.from({ length: 10 }, (_, i) => cifar10Label(i)));
  for (let i = 0; i < 10; i++) expectImage(t, d.train.images, i, i);
  t.deepEqual([...d.test.labels], [1, 2, 3].map(cifar10Label));
  for (let j = 0; j < 3; j++) expectImage(t, d.test.images, j, 1000 + j);
  t.is(d.validation, undefined);
  // The red plane of the first image, row 0, columns 0..3: pixel(0, 0, 0, c) = 3c.
  t.deepEqual([...d.train.images.subarray(0, 4)], [0, 3, 6, 9]);
});

test('CIFAR-100: the fine labels (0..99) are used and the coarse ones range-checked', (t) => {
  const dir = tmp();
  const file = path.join(dir, 'cifar-100-binary.tar.gz');
  writeTarGz(file, {
    'cifar-100-binary/train.bin': cifarRecords([[19, 99], [0, 0], [7, 42], [3, 58]]),
    'cifar-100-binary/test.bin': cifarRecords([[4, 71], [11, 5]], 500),
    'cifar-100-binary/fine_label_names.txt': 'apple\n',
  });
  const { train, test: testSplit } = decodeCifarArchive(file, CIFAR100_LAYOUT);
  t.deepEqual([...train.labels], [99, 0, 42, 58]);
  t.deepEqual([...testSplit.labels], [71, 5]);
  for (let i = 0; i < 4; i++) expectImage(t, train.images, i, i);
  expectImage(t, testSplit.images, 1, 501);
  t.is(datasetInfo('cifar100').numClasses, 100);
});

test('SVHN: column-major X becomes C×H×W and label 10 becomes digit 0 (compressed, plain, big-endian, y stored compactly)', (t) => {
  const variants = [
    { compress: true },
    { compress: false },
    { compress: true, labelsAs: miUINT8 as typeof miUINT8 },
    { compress: false, bigEndian: true },
  ];
  for (const v of variants) {
    const dir = tmp();
    const file = path.join(dir, 'train_32x32.mat');
    writeFileSync(file, svhnFixture(v));
    const split = decodeSvhnMat(file);
    t.deepEqual([...split.labels], [0, 1, 2, 3, 9], JSON.stringify(v));
    t.is(split.images.length, 5 * 3072);
    for (let k = 0; k < 5; k++) expectImage(t, split.images, k, k);
    // X(r=1, c=2, ch=0, n=0) is the 66th value in the file; it lands at row 1, column 2.
    t.is(split.images[1 * 32 + 2], pixel(0, 0, 1, 2));
    t.not(pixel(0, 0, 1, 2), pixel(0, 0, 2, 1));
  }
  const compressed = svhnFixture({ compress: true });
  t.true(compressed.length < svhnFixture({ compress: false }).length, 'the compressed variant really is compressed');
});

test('SVHN through loadDataset: train and test files, verified and subset', (t) => {
  const root = tmp();
  const trainBody = svhnFixture({ compress: true });
  const testBody = svhnFixture({ compress: true, labels: [4, 10] });
  placeFile(root, 'svhn', 'train_32x32.mat', trainBody);
  placeFile(root, 'svhn', 'test_32x32.mat', testBody);
  const sources = sourcesFor({ svhn: [{ name: 'train_32x32.mat', body: trainBody }, { name: 'test_32x32.mat', body: testBody }] });
  const d = loadDataset('svhn', { trainSize: 3, testSize: null, validationSize: 1, dataDir: root }, { sources });
  t.deepEqual([...d.train.labels], [0, 1, 2]);
  t.deepEqual([...d.validation!.labels], [9]);
  t.deepEqual([...d.test.labels], [4, 0]);
  expectImage(t, d.validation!.images, 0, 4);
});

test('subsetting takes the first N (train after carving validation off the end), as for MNIST', (t) => {
  const body = cifar10Fixture();
  const root = tmp();
  placeFile(root, 'cifar10', 'cifar-10-binary.tar.gz', body);
  const sources = sourcesFor({ cifar10: [{ name: 'cifar-10-binary.tar.gz', body }] });
  const d = loadDataset('cifar10', { trainSize: 4, testSize: 2, validationSize: 3, dataDir: root }, { sources });
  t.deepEqual([...d.train.labels], [0, 1, 2, 3].map(cifar10Label));
  t.is(d.train.images.length, 4 * 3072);
  expectImage(t, d.train.images, 3, 3);
  t.deepEqual([...d.validation!.labels], [7, 8, 9].map(cifar10Label));
  expectImage(t, d.validation!.images, 0, 7);
  t.is(d.test.labels.length, 2);
  // More than there is: all of it.
  t.is(loadDataset('cifar10', { trainSize: 1000, testSize: 1000, dataDir: root }, { sources }).train.labels.length, 10);
  t.throws(() => loadDataset('cifar10', { trainSize: null, testSize: null, validationSize: 10, dataDir: root }, { sources }), {
    instanceOf: DatasetError,
    message: /validationSize 10 leaves no training images \(the split has 10\)/,
  });
});

// ------------------------------------------------------- CIFAR error paths

test('CIFAR archives that are truncated, corrupt or not gzip are refused, naming the file', (t) => {
  const dir = tmp();
  const good = cifar10Fixture();
  const file = path.join(dir, 'cifar-10-binary.tar.gz');
  const decode = () => decodeCifarArchive(file, CIFAR10_LAYOUT);
  writeFileSync(file, good.subarray(0, Math.floor(good.length / 2)));
  t.throws(decode, { instanceOf: DatasetError, message: /cifar-10-binary\.tar\.gz: truncated: the gzip stream ends early/ });
  writeFileSync(file, good.subarray(0, good.length - 4));
  t.throws(decode, { instanceOf: DatasetError, message: /truncated/ });
  // A whole gzip stream around a tar cut in the middle of a member.
  const tarBytes = gunzipSync(good);
  writeFileSync(file, gzipSync(tarBytes.subarray(0, 512 * 20)));
  t.throws(decode, { instanceOf: DatasetError, message: /cifar-10-binary\.tar\.gz: (truncated|not a valid tar archive)/ });
  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
  writeFileSync(file, flipped);
  t.throws(decode, { instanceOf: DatasetError, message: /cifar-10-binary\.tar\.gz: (corrupt gzip data|truncated|not a valid tar archive|.*record)/ });
  writeFileSync(file, tarBytes);
  t.throws(decode, { instanceOf: DatasetError, message: /not a gzip archive \(it starts with 0x6369\)/ });
  writeFileSync(file, '');
  t.throws(decode, { instanceOf: DatasetError, message: /not a gzip archive \(it starts with nothing: the file is empty\)/ });
  writeFileSync(file, gzipSync(Buffer.from('hello, this is not a tar archive at all'.repeat(20))));
  t.throws(decode, { instanceOf: DatasetError, message: /not a valid tar archive/ });
  t.throws(() => decodeCifarArchive(path.join(dir, 'nope.tar.gz'), CIFAR10_LAYOUT), { instanceOf: DatasetError, message: /nope\.tar\.gz: cannot read/ });
});

test('CIFAR: a wrong record size, an out-of-range label or a missing batch is refused, naming file and member', (t) => {
  const dir = tmp();
  const file = path.join(dir, 'cifar-10-binary.tar.gz');
  const decode10 = () => decodeCifarArchive(file, CIFAR10_LAYOUT);
  cifar10Archive(file, [2, 2, 2, 2, 2], 3, { 'cifar-10-batches-bin/data_batch_3.bin': Buffer.concat([cifarRecords([[1], [2]]), Buffer.from([7])]) });
  t.throws(decode10, {
    instanceOf: DatasetError,
    message: /cifar-10-binary\.tar\.gz: cifar-10-batches-bin\/data_batch_3\.bin: 6147 bytes is not a whole, positive number of 3073-byte records/,
  });
  cifar10Archive(file, [2, 2, 2, 2, 2], 3, { 'cifar-10-batches-bin/test_batch.bin': cifarRecords([[1], [10], [2]]) });
  t.throws(decode10, { instanceOf: DatasetError, message: /test_batch\.bin: record 1 has label 10, expected 0\.\.9/ });
  // CIFAR-100 records (3074 bytes) are not CIFAR-10 records.
  cifar10Archive(file, [2, 2, 2, 2, 2], 3, { 'cifar-10-batches-bin/data_batch_1.bin': cifarRecords([[1, 1], [2, 2], [3, 3]]) });
  t.throws(decode10, { instanceOf: DatasetError, message: /data_batch_1\.bin: 9222 bytes is not a whole, positive number of 3073-byte records/ });
  writeTarGz(file, {
    'cifar-10-batches-bin/data_batch_1.bin': cifarRecords([[1]]),
    'cifar-10-batches-bin/data_batch_2.bin': cifarRecords([[1]]),
    'cifar-10-batches-bin/test_batch.bin': cifarRecords([[1]]),
  });
  t.throws(decode10, { instanceOf: DatasetError, message: /has no cifar-10-batches-bin\/data_batch_3\.bin .*not the official cifar-10-batches-bin archive/ });
  const file100 = path.join(dir, 'cifar-100-binary.tar.gz');
  writeTarGz(file100, { 'cifar-100-binary/train.bin': cifarRecords([[1, 100]]), 'cifar-100-binary/test.bin': cifarRecords([[1, 1]]) });
  t.throws(() => decodeCifarArchive(file100, CIFAR100_LAYOUT), { instanceOf: DatasetError, message: /train\.bin: record 0 has fine label 100, expected 0\.\.99/ });
  writeTarGz(file100, { 'cifar-100-binary/train.bin': cifarRecords([[1, 1], [20, 1]]), 'cifar-100-binary/test.bin': cifarRecords([[1, 1]]) });
  t.throws(() => decodeCifarArchive(file100, CIFAR100_LAYOUT), { instanceOf: DatasetError, message: /train\.bin: record 1 has coarse label 20, expected 0\.\.19/ });
  // The CIFAR-10 archive is not the CIFAR-100 one.
  cifar10Archive(file);
  t.throws(() => decodeCifarArchive(file, CIFAR100_LAYOUT), { instanceOf: DatasetError, message: /has no cifar-100-binary\/train\.bin/ });
});

// -------------------------------------------------------- SVHN error paths

test('SVHN: a .mat with the wrong shape, class, labels or variables is refused, naming the file', (t) => {
  const dir = tmp();
  const file = path.join(dir, 'test_32x32.mat');
  const fails = (body: Buffer, message: RegExp) => {
    writeFileSync(file, body);
    t.throws(() => decodeSvhnMat(file), { instanceOf: DatasetError, message }, String(message));
  };
  const x = svhnX(2);
  fails(matFile([{ ...x, dims: [28, 28, 3, 2], values: x.values }, svhnY([1, 2])], { compress: true }), /test_32x32\.mat: variable X is a uint8 array of 28×28×3×2; expected uint8 32×32×3×N/);
  fails(matFile([{ ...x, dims: [32, 32, 6] }, svhnY([1, 2])]), /variable X is a uint8 array of 32×32×6; expected/);
  fails(matFile([{ ...x, classId: mxDOUBLE_CLASS, storeAs: miDOUBLE }, svhnY([1, 2])], { compress: true }), /variable X is a double array of 32×32×3×2; expected uint8/);
  fails(matFile([x, { ...svhnY([1, 2]), classId: mxUINT8_CLASS, storeAs: miUINT8 }]), /variable y is a uint8 array of 2×1; expected double N×1/);
  fails(matFile([x, { ...svhnY([1, 2]), dims: [1, 2] }]), /variable y is a double array of 1×2; expected double N×1/);
  fails(matFile([x, svhnY([1, 11])], { compress: true }), /variable y: label 11 at index 1 \(1-based 2\), expected an integer 1\.\.10/);
  fails(matFile([x, svhnY([0, 1])]), /variable y: label 0 at index 0/);
  fails(matFile([x, svhnY([1, 2.5])]), /variable y: label 2\.5 at index 1/);
  fails(matFile([x, svhnY([1, 2, 3])], { compress: true }), /X has 2 images but y has 3 labels/);
  fails(matFile([x], { compress: true }), /has no variable y \(the labels\)/);
  fails(matFile([svhnY([1, 2])]), /has no variable X \(the images\)/);
  fails(matFile([x, svhnY([1, 2]), svhnY([1, 2])], { compress: true }), /variable y appears twice/);
  // X's data element shorter than its dimensions say.
  fails(matFile([{ ...x, values: (x.values as Uint8Array).subarray(0, 3072 + 100) }, svhnY([1, 2])]), /variable X: 3172 bytes of pixels, expected 6144 for 32×32×3×2/);
});

test('SVHN: truncated files (plain or compressed), non-MAT files and v7.3 files are refused', (t) => {
  const dir = tmp();
  const file = path.join(dir, 'train_32x32.mat');
  const fails = (body: Buffer, message: RegExp) => {
    writeFileSync(file, body);
    t.throws(() => decodeSvhnMat(file), { instanceOf: DatasetError, message }, String(message));
  };
  const plain = svhnFixture({ compress: false });
  const packed = svhnFixture({ compress: true });
  fails(plain.subarray(0, plain.length - 100), /train_32x32\.mat: truncated/);
  fails(plain.subarray(0, 128 + 60), /train_32x32\.mat: truncated/);
  fails(packed.subarray(0, packed.length - 30), /train_32x32\.mat: truncated/);
  fails(packed.subarray(0, 400), /train_32x32\.mat: truncated/);
  const corrupt = Buffer.from(packed);
  corrupt[300]! ^= 0xff;
  fails(corrupt, /train_32x32\.mat: (corrupt compressed element|truncated|variable|array)/);
  fails(Buffer.from('just some text, not a MAT-file'), /truncated or not a MAT-file: 30 bytes, less than the 128-byte level-5 header/);
  fails(Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(200)]), /not a MATLAB level-5 MAT-file/);
  const v73 = Buffer.from(plain);
  v73.write('MATLAB 7.3 MAT-file, Platform: GLNXA64', 0, 'latin1');
  fails(v73, /is a MATLAB v7\.3 \(HDF5\) file; expected a level-5 MAT-file/);
  const badEndian = Buffer.from(plain);
  badEndian.write('XX', 126, 'latin1');
  fails(badEndian, /endian indicator "XX"/);
});

// ------------------------------------------------ checksums and the folder

test('a file whose md5 is not the published one is refused on load; a verified one is stamped and not re-hashed', (t) => {
  const body = cifar10Fixture();
  const root = tmp();
  const file = placeFile(root, 'cifar10', 'cifar-10-binary.tar.gz', body);
  const wrong: DatasetSources = { ...OFFICIAL_SOURCES, cifar10: { ...OFFICIAL_SOURCES.cifar10, files: [{ ...OFFICIAL_SOURCES.cifar10.files[0]!, bytes: body.length }] } };
  const err = t.throws(() => loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }, { sources: wrong }), { instanceOf: DatasetError });
  t.is(err!.code, 'ERR_INVALID_DATA');
  t.regex(err!.message, new RegExp(`cifar-10-binary\\.tar\\.gz: checksum mismatch: md5 ${md5(body)}, expected c32a1d4ab5d03f1284b67883e8d87530`));
  t.false(existsSync(`${file}.verified`));
  const right = sourcesFor({ cifar10: [{ name: 'cifar-10-binary.tar.gz', body }] });
  t.is(datasetStatus(right.cifar10, root, false).state, 'unverified');
  loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }, { sources: right });
  t.true(existsSync(`${file}.verified`));
  t.is(datasetStatus(right.cifar10, root, false).state, 'verified');
  // Changed after verification (same size, new mtime): hashed again, and refused.
  const changed = Buffer.from(body);
  changed[100]! ^= 1;
  writeFileSync(file, changed);
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  t.is(datasetStatus(right.cifar10, root, false).state, 'unverified');
  t.throws(() => loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }, { sources: right }), { instanceOf: DatasetError, message: /checksum mismatch/ });
  t.is(datasetStatus(right.cifar10, root, true).state, 'corrupt');
});

test('the data folder: flag or config over ST_NATIVE_DATA_DIR over the XDG default', (t) => {
  const xdgDefault = dataDir({});
  t.true(xdgDefault.endsWith(`${path.sep}st-native`), xdgDefault);
  t.is(resolveDataDir(null, {}), xdgDefault);
  t.is(resolveDataDir(null, { ST_NATIVE_DATA_DIR: '/env/data' }), '/env/data');
  t.is(resolveDataDir('/flag/data', { ST_NATIVE_DATA_DIR: '/env/data' }), '/flag/data');
  t.is(resolveDataDir('rel', {}), path.resolve('rel'));
  // The config field exists, defaults to null, and takes a path.
  t.is(resolveConfig({}).dataset.dataDir, null);
  t.is(resolveConfig({ overrides: [parseSetArgument(`dataset.dataDir=${JSON.stringify('/cfg/data')}`)] }).dataset.dataDir, '/cfg/data');
});

// --------------------------------------------------------------- downloads

test('download: an interrupted .part resumes with a Range request and is renamed only after its md5 matched', async (t) => {
  const body = Buffer.alloc(300_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 8)) & 255;
  const server = await serve({ 'f.bin': { body } });
  try {
    const dir = tmp();
    const dest = path.join(dir, 'sub', 'f.bin');
    mkdirSync(path.dirname(dest));
    writeFileSync(`${dest}.part`, body.subarray(0, 123_456));
    await downloadFile({ name: 'f.bin', url: server.url('f.bin'), md5: md5(body), bytes: body.length }, dest, { retryDelayMs: 1 });
    t.deepEqual(readFileSync(dest), body);
    t.false(existsSync(`${dest}.part`));
    t.false(existsSync(`${dest}.lock`));
    t.true(existsSync(`${dest}.verified`));
    t.deepEqual(server.requests, [{ path: 'f.bin', range: 'bytes=123456-', status: 206 }]);
  } finally {
    await server.close();
  }
});

test('download: a connection cut mid-file is resumed from where it stopped; with no retries left the .part stays and nothing passes for complete', async (t) => {
  const body = Buffer.alloc(400_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 255;
  const remote = (url: string): RemoteFile => ({ name: 'g.bin', url, md5: md5(body), bytes: body.length });
  const server = await serve({ 'g.bin': { body, cuts: [100_000, 50_000] } });
  try {
    const dest = path.join(tmp(), 'g.bin');
    const lines: string[] = [];
    await downloadFile(remote(server.url('g.bin')), dest, { retryDelayMs: 1, progress: { line: (s) => lines.push(s) } });
    t.deepEqual(readFileSync(dest), body);
    t.false(existsSync(`${dest}.part`));
    t.is(server.requests.length, 3);
    t.is(server.requests[0]!.range, null);
    // Each retry asks for the rest, from the bytes already on disk.
    const second = Number(/^bytes=(\d+)-$/.exec(server.requests[1]!.range ?? '')?.[1]);
    const third = Number(/^bytes=(\d+)-$/.exec(server.requests[2]!.range ?? '')?.[1]);
    t.true(second > 0 && second <= 100_000, String(second));
    t.true(third >= second && third <= second + 50_000, String(third));
    t.true(lines.some((l) => /g\.bin: connection lost after .*; trying again from/.test(l)), lines.join('\n'));
  } finally {
    await server.close();
  }
  const cutting = await serve({ 'g.bin': { body, cuts: [150_000] } });
  try {
    const dest = path.join(tmp(), 'g.bin');
    const err = await t.throwsAsync(downloadFile(remote(cutting.url('g.bin')), dest, { retries: 0 }), { instanceOf: DownloadError });
    t.true(err!.retryable);
    t.false(existsSync(dest), 'no file under the final name');
    const kept = readFileSync(`${dest}.part`).length;
    t.true(kept > 0 && kept <= 150_000, String(kept));
    t.false(existsSync(`${dest}.lock`));
    // The next run resumes it.
    await downloadFile(remote(cutting.url('g.bin')), dest, { retries: 0 });
    t.deepEqual(readFileSync(dest), body);
    t.is(cutting.requests[1]!.range, `bytes=${kept}-`);
  } finally {
    await cutting.close();
  }
});

test('download: a checksum mismatch deletes the .part; a server that ignores Range restarts cleanly; HTTP errors are not retried', async (t) => {
  const body = Buffer.from('the real file '.repeat(5000));
  const other = Buffer.from('something else'.repeat(5000));
  const server = await serve({ 'bad.bin': { body: other }, 'norange.bin': { body, ranges: false } });
  try {
    const dir = tmp();
    const dest = path.join(dir, 'bad.bin');
    await t.throwsAsync(downloadFile({ name: 'bad.bin', url: server.url('bad.bin'), md5: md5(body), bytes: body.length }, dest), {
      instanceOf: DatasetError,
      message: new RegExp(`bad\\.bin: checksum mismatch after downloading .* md5 ${md5(other)}, expected ${md5(body)}; the download was deleted`),
    });
    t.false(existsSync(dest));
    t.false(existsSync(`${dest}.part`));
    const dest2 = path.join(dir, 'norange.bin');
    writeFileSync(`${dest2}.part`, Buffer.from('garbage that is not the start of the file'));
    await downloadFile({ name: 'norange.bin', url: server.url('norange.bin'), md5: md5(body), bytes: body.length }, dest2);
    t.deepEqual(readFileSync(dest2), body);
    const missing = await t.throwsAsync(downloadFile({ name: 'x', url: server.url('nothing-here'), md5: md5(body), bytes: 1 }, path.join(dir, 'x')), {
      instanceOf: DownloadError,
      message: /HTTP 404/,
    });
    t.false(missing!.retryable);
    t.is(server.requests.filter((r) => r.path === 'nothing-here').length, 1);
  } finally {
    await server.close();
  }
});

test('download: one process at a time per file (a lock with the pid; a dead process\'s lock is taken over)', async (t) => {
  const body = Buffer.from('locked file '.repeat(1000));
  const server = await serve({ 'l.bin': { body } });
  try {
    const dest = path.join(tmp(), 'l.bin');
    const remote: RemoteFile = { name: 'l.bin', url: server.url('l.bin'), md5: md5(body), bytes: body.length };
    writeFileSync(`${dest}.lock`, `${process.ppid}\n`);
    await t.throwsAsync(downloadFile(remote, dest), { instanceOf: DatasetError, message: new RegExp(`l\\.bin: another process \\(pid ${process.ppid}\\) is downloading it`) });
    t.is(server.requests.length, 0);
    writeFileSync(`${dest}.lock`, '2147483646\n');
    await downloadFile(remote, dest);
    t.deepEqual(readFileSync(dest), body);
    t.false(existsSync(`${dest}.lock`));
  } finally {
    await server.close();
  }
});

test('offline: a missing dataset fails with ERR_DATASET_MISSING naming the files, URLs and folder; the CLI reports it (exit 1)', async (t) => {
  const port = await closedPort();
  const trainBody = Buffer.from('a');
  const testBody = Buffer.from('b');
  const sources = sourcesFor({
    svhn: [
      { name: 'train_32x32.mat', body: trainBody, url: `http://127.0.0.1:${port}/train_32x32.mat` },
      { name: 'test_32x32.mat', body: testBody, url: `http://127.0.0.1:${port}/test_32x32.mat` },
    ],
  });
  const root = tmp();
  const err = await t.throwsAsync(prepareDataset('svhn', { trainSize: null, testSize: null, dataDir: root }, { sources, ...quiet }), { instanceOf: DatasetError });
  t.is(err!.code, 'ERR_DATASET_MISSING');
  const folder = path.join(root, 'svhn');
  t.true(err!.message.startsWith(`svhn: not in ${folder}, and downloading it failed (fetch failed: `), err!.message);
  t.regex(err!.message, /ECONNREFUSED/);
  t.true(err!.message.includes(`Put these files in ${folder}${path.sep}`));
  t.true(err!.message.includes(`train_32x32.mat  http://127.0.0.1:${port}/train_32x32.mat`));
  t.true(err!.message.includes(`test_32x32.mat   http://127.0.0.1:${port}/test_32x32.mat`));
  t.regex(err!.message, /st-native data fetch svhn/);
  t.regex(err!.message, /--data-dir, the config's dataset\.dataDir, or ST_NATIVE_DATA_DIR/);
  // ST_NATIVE_OFFLINE: no network attempt at all, the same message.
  const off = await t.throwsAsync(prepareDataset('svhn', { trainSize: null, testSize: null, dataDir: root }, { sources, ...quiet, env: { ST_NATIVE_OFFLINE: '1' } }), { instanceOf: DatasetError });
  t.is(off!.code, 'ERR_DATASET_MISSING');
  t.true(off!.message.startsWith(`svhn: not in ${folder}, and downloading it failed (downloads are off: ST_NATIVE_OFFLINE is set).`), off!.message);
  const printed: string[] = [];
  t.is(report(err, (s) => printed.push(s)), 1);
  t.true(printed[0]!.startsWith('dataset error: svhn: not in'));
  // The official sources name the official URLs; without trying the network, loadDataset says what is missing.
  const sync = t.throws(() => loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }), { instanceOf: DatasetError });
  t.is(sync!.code, 'ERR_DATASET_MISSING');
  t.regex(sync!.message, /^cifar10: not downloaded yet: cifar-10-binary\.tar\.gz is not in .*cifar10\./);
  t.regex(sync!.message, /cifar-10-binary\.tar\.gz {2}https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10-binary\.tar\.gz {2}\(170,052,171 bytes, md5 c32a1d4ab5d03f1284b67883e8d87530\)/);
});

test('a folder, a link to a device or a broken link where an archive belongs is named as such, not called missing', (t) => {
  const root = tmp();
  const folder = path.join(root, 'cifar10');
  mkdirSync(folder, { recursive: true });
  const archive = path.join(folder, 'cifar-10-binary.tar.gz');
  const cases: [() => void, RegExp][] = [
    [() => mkdirSync(archive), /cifar-10-binary\.tar\.gz: is a folder, not the downloaded file cifar-10-binary\.tar\.gz; move it away/],
    [() => symlinkSync('/dev/null', archive), /is a symbolic link to a character device, not the downloaded file/],
    [() => symlinkSync(path.join(root, 'nowhere'), archive), /is a broken symbolic link, not the downloaded file/],
  ];
  for (const [make, message] of cases) {
    rmSync(archive, { recursive: true, force: true });
    make();
    const e = t.throws(() => loadDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }), { instanceOf: DatasetError });
    t.regex(e!.message, message);
    t.notRegex(e!.message, /not downloaded yet|Put this file/);
  }
});

test('prepareDataset downloads a missing dataset, then loads it', async (t) => {
  const body = cifar10Fixture([1, 1, 1, 1, 1], 2);
  const server = await serve({ 'cifar-10-binary.tar.gz': { body } });
  try {
    const root = tmp();
    const sources = sourcesFor({ cifar10: [{ name: 'cifar-10-binary.tar.gz', body, url: server.url('cifar-10-binary.tar.gz') }] });
    const d = await prepareDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }, { sources, ...quiet });
    t.is(d.train.labels.length, 5);
    t.is(d.test.labels.length, 2);
    expectImage(t, d.train.images, 4, 4);
    t.true(existsSync(path.join(root, 'cifar10', 'cifar-10-binary.tar.gz')));
    // There now: no second request.
    await prepareDataset('cifar10', { trainSize: null, testSize: null, dataDir: root }, { sources, ...quiet });
    t.is(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

// -------------------------------------------------------------------- CLI

test('st-native data list and data fetch: states, line progress without a TTY, JSON', async (t) => {
  const trainBody = svhnFixture({ compress: true });
  const testBody = svhnFixture({ compress: false, labels: [5, 10, 7] });
  const server = await serve({ 'train_32x32.mat': { body: trainBody, cuts: [500] }, 'test_32x32.mat': { body: testBody } });
  try {
    const root = tmp();
    const sources = sourcesFor({
      svhn: [
        { name: 'train_32x32.mat', body: trainBody, url: server.url('train_32x32.mat') },
        { name: 'test_32x32.mat', body: testBody, url: server.url('test_32x32.mat') },
      ],
    });
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), tty: false };
    const listJson = async () => {
      out.length = 0;
      t.is(await dataCommand(['list', '--json', '--data-dir', root], io, { sources }), 0);
      return JSON.parse(out[0]!) as { dataDir: string; datasets: { name: string; state: string; folder: string | null; files: { name: string; state: string }[] }[] };
    };
    let listed = await listJson();
    t.is(listed.dataDir, root);
    t.deepEqual(
      listed.datasets.map((d) => [d.name, d.state]),
      [['mnist-embedded', 'embedded'], ['cifar10', 'missing'], ['cifar100', 'missing'], ['svhn', 'missing']],
    );
    t.is(listed.datasets[3]!.folder, path.join(root, 'svhn'));
    mkdirSync(path.join(root, 'svhn'), { recursive: true });
    writeFileSync(path.join(root, 'svhn', 'train_32x32.mat.part'), trainBody.subarray(0, 1000));
    listed = await listJson();
    t.is(listed.datasets[3]!.state, 'partial');
    t.deepEqual(listed.datasets[3]!.files.map((f) => f.state), ['partial', 'missing']);

    out.length = 0;
    t.is(await dataCommand(['fetch', 'svhn', '--data-dir', root], io, { sources, tuning: { retryDelayMs: 1 } }), 0);
    t.regex(out.join('\n'), /^svhn: ready in .*svhn \(train_32x32\.mat downloaded in \d+ s, test_32x32\.mat downloaded in \d+ s\)$/);
    const log = err.join('\n');
    t.regex(log, /train_32x32\.mat: resuming at 0\.0 MB of 0\.0 MB from http:\/\/127\.0\.0\.1:\d+\/train_32x32\.mat/);
    t.regex(log, /train_32x32\.mat: connection lost after/);
    t.regex(log, /test_32x32\.mat: \d+% \(/);
    t.regex(log, /test_32x32\.mat: done, md5 verified/);
    t.false(log.includes('\r'), 'no terminal redraws without a TTY');
    t.deepEqual(readFileSync(path.join(root, 'svhn', 'train_32x32.mat')), trainBody);
    t.is(server.requests[0]!.range, 'bytes=1000-');
    listed = await listJson();
    t.is(listed.datasets[3]!.state, 'verified');
    const d = loadDataset('svhn', { trainSize: null, testSize: null, dataDir: root }, { sources });
    t.deepEqual([...d.test.labels], [5, 0, 7]);

    out.length = 0;
    t.is(await dataCommand(['fetch', 'svhn', '--json', '--data-dir', root], io, { sources }), 0);
    const fetched = JSON.parse(out[0]!) as { name: string; files: { downloaded: boolean }[] }[];
    t.deepEqual(fetched.map((r) => [r.name, r.files.map((f) => f.downloaded)]), [['svhn', [false, false]]]);
    out.length = 0;
    t.is(await dataCommand(['list', '--data-dir', root], io, { sources }), 0);
    t.regex(out.join('\n'), /svhn {12}verified/);
  } finally {
    await server.close();
  }
});

test('data fetch: ST_NATIVE_OFFLINE stops it before any request, naming the variable; a failed fetch leaves no empty folder behind', async (t) => {
  const body = svhnFixture();
  const server = await serve({ 'train_32x32.mat': { body }, 'test_32x32.mat': { body } });
  try {
    const sources = sourcesFor({
      svhn: [
        { name: 'train_32x32.mat', body, url: server.url('train_32x32.mat') },
        { name: 'test_32x32.mat', body, url: server.url('test_32x32.mat') },
      ],
    });
    const root = path.join(tmp(), 'not-yet');
    const err: string[] = [];
    const io = { out: () => undefined, err: (s: string) => err.push(s), tty: false };
    t.is(await dataCommand(['fetch', 'svhn', '--data-dir', root], io, { sources, env: { ST_NATIVE_OFFLINE: '1' } }), 1);
    t.regex(err.join('\n'), /svhn: not in .*, and downloading it failed \(downloads are off: ST_NATIVE_OFFLINE is set\)/);
    t.is(server.requests.length, 0);
    t.false(existsSync(root), 'nothing created offline');
    // Through the API as well; 0 means online.
    await t.throwsAsync(fetchDataset('svhn', { dataDir: root, sources, ...quiet, env: { ST_NATIVE_OFFLINE: 'yes' } }), { message: /ST_NATIVE_OFFLINE is set/ });
    t.is(server.requests.length, 0);
    const fetched = await fetchDataset('svhn', { dataDir: root, sources, ...quiet, env: { ST_NATIVE_OFFLINE: '0' } });
    t.deepEqual(fetched.files.map((f) => f.downloaded), [true, true]);
    // Offline with everything there: nothing to download, so no error.
    const again = await fetchDataset('svhn', { dataDir: root, sources, ...quiet, env: { ST_NATIVE_OFFLINE: '1' } });
    t.deepEqual(again.files.map((f) => f.downloaded), [false, false]);
  } finally {
    await server.close();
  }
  // A server that refuses: the dataset folder (and the data folder) made for it are removed again.
  const port = await closedPort();
  const refused = sourcesFor({ svhn: [{ name: 'train_32x32.mat', body, url: `http://127.0.0.1:${port}/train_32x32.mat` }, { name: 'test_32x32.mat', body, url: `http://127.0.0.1:${port}/test_32x32.mat` }] });
  const parent = tmp();
  const root = path.join(parent, 'data');
  await t.throwsAsync(fetchDataset('svhn', { dataDir: root, sources: refused, ...quiet, env: {}, tuning: { retries: 0 } }), { instanceOf: DatasetError, message: /ECONNREFUSED/ });
  t.deepEqual(readdirSync(parent), [], 'no empty data or dataset folder left');
  // A folder that was there stays, even empty.
  mkdirSync(path.join(root, 'svhn'), { recursive: true });
  await t.throwsAsync(fetchDataset('svhn', { dataDir: root, sources: refused, ...quiet, env: {}, tuning: { retries: 0 } }), { instanceOf: DatasetError });
  t.true(existsSync(path.join(root, 'svhn')));
});

test('st-native data: usage errors and dispatch from main', async (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), tty: false };
  t.is(await main(['data', 'frobnicate'], io), 2);
  t.regex(err.join('\n'), /unknown command 'frobnicate'/);
  t.is(await main(['data', 'fetch', 'imagenet'], io), 2);
  t.regex(err.join('\n'), /data fetch: unknown dataset "imagenet"/);
  t.is(await main(['data', 'fetch'], io), 2);
  t.is(await main(['data', 'list', '--bogus'], io), 2);
  t.is(await main(['nope'], io), 2);
  t.regex(err.join('\n'), /unknown command 'nope'/);
  out.length = 0;
  t.is(await main(['data', '--help'], io), 0);
  t.regex(out.join('\n'), /Usage: st-native data[\s\S]*fetch \[options\] <names\.\.\.>/);
  out.length = 0;
  const root = tmp();
  t.is(await main(['data', 'list', '--json', '--data-dir', root], io), 0);
  const listed = JSON.parse(out[0]!) as { datasets: { name: string; state: string; files: { url: string }[] }[] };
  t.is(listed.datasets.find((d) => d.name === 'cifar100')!.state, 'missing');
  t.is(listed.datasets.find((d) => d.name === 'svhn')!.files[1]!.url, 'http://ufldl.stanford.edu/housenumbers/test_32x32.mat');
});

test('the progress bar: a line per 10 % without a TTY, an in-place bar on one', (t) => {
  const lines: string[] = [];
  let now = 0;
  const bar = new ProgressBar('f.bin', 1_000_000, { line: (s) => lines.push(s) }, 0, () => now);
  for (let r = 0; r <= 1_000_000; r += 50_000) {
    now += 100;
    bar.update(r);
  }
  t.is(lines.length, 10);
  t.regex(lines[0]!, /^f\.bin: 10% \(0\.1 MB of 1\.0 MB, 0\.\d MB\/s\)$/);
  t.regex(lines[9]!, /^f\.bin: 100% \(1\.0 MB of 1\.0 MB/);
  const drawn: string[] = [];
  const tty = new ProgressBar('f.bin', 1_000_000, { line: (s) => drawn.push(`L${s}`), redraw: (s) => drawn.push(s), columns: 80 }, 0, () => now);
  now += 1000;
  tty.update(500_000);
  tty.end();
  t.regex(drawn[0]!, /^\rf\.bin \[#+\.+\] {2}50\.0% {2}0\.5 MB\/1\.0 MB {2}0\.5 MB\/s {2}ETA 1s\x1b\[K$/);
  t.is(drawn[1], '\n');
});

test('the registry: CIFAR-10/100 and SVHN are available, with the paper\'s augmentation recorded', (t) => {
  t.like(datasetInfo('cifar10'), { available: true, downloadable: true, numClasses: 10, shape: [3, 32, 32], paperAugment: { randomCropPadding: 4, horizontalFlip: true } });
  t.like(datasetInfo('cifar100'), { available: true, numClasses: 100, paperAugment: { randomCropPadding: 4, horizontalFlip: true } });
  t.like(datasetInfo('svhn'), { available: true, numClasses: 10, paperAugment: { randomCropPadding: 0, horizontalFlip: false } });
  t.like(datasetInfo('mnist-embedded'), { downloadable: false });
});
