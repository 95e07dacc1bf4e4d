/**
 * RST's extra data: the strict pickle reader on files written here in the
 * exact format Python's pickle + numpy produce (protocols 3 and 4), wrong
 * and truncated files, a forbidden GLOBAL refused without running it, the
 * import into the plain format and its checksum, the download and offline
 * paths, and (where the project's Python has numpy) a file made by Python.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { dataCommand } from '../ts/cli/data.js';
import { DatasetError } from '../ts/data/errors.js';
import { EXTRA_MAGIC, openExtraData, readExtraImages, writeExtraData } from '../ts/data/extra.js';
import { INLINE_LIMIT, readPickle } from '../ts/data/pickle.js';
import { fetchRst, importRst, openRstExtra, readRstPickle, RST_IMPORTED_NAME } from '../ts/data/rst.js';
import { RST_SOURCE, type ExtraSource } from '../ts/data/sources.js';
import { serve } from './helpers/http.js';
import { root } from './helpers/cli.js';
import { hwcImages, int64Labels, P, rstPickle, type RstOpts } from './helpers/rst-pickle.js';

// The project's Python (the one with torch); numpy goes into it for tests, as for the agreement tests.
const { findTorchPython } = (await import(pathToFileURL(path.join(root, 'scripts', 'libtorch.mjs')).href)) as { findTorchPython: () => string | null };
const { ensureTestPackages } = (await import(pathToFileURL(path.join(root, 'scripts', 'python-test-deps.mjs')).href)) as {
  ensureTestPackages: (python: string, log?: (s: string) => void) => void;
};
const python = findTorchPython();

const tmp = () => mkdtempSync(path.join(tmpdir(), 'st-rst-'));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function write(dir: string, name: string, bytes: Buffer): string {
  const f = path.join(dir, name);
  writeFileSync(f, bytes);
  return f;
}

/** Image k in C×H×W from the N×H×W×C source. */
function chw(images: Buffer, k: number): Buffer {
  const out = Buffer.alloc(3072);
  for (let ch = 0; ch < 3; ch++) for (let q = 0; q < 1024; q++) out[ch * 1024 + q] = images[k * 3072 + q * 3 + ch]!;
  return out;
}

// ---- The reader ----

for (const protocol of [3, 4, 5] as const) {
  test(`protocol ${protocol}: the images are located (not read), the labels decoded`, (t) => {
    const dir = tmp();
    const n = 40; // 122,880 pixel bytes: above INLINE_LIMIT, so located only
    t.true(n * 3072 > INLINE_LIMIT);
    const { bytes, images, labels } = rstPickle({ protocol, n, extraKey: true });
    const f = write(dir, 'ti.pickle', bytes);
    const r = readRstPickle(f);
    t.is(r.count, n);
    t.is(r.imagesLength, n * 3072);
    t.deepEqual(bytes.subarray(r.imagesOffset, r.imagesOffset + r.imagesLength), images);
    t.deepEqual([...r.labels], labels);
    // The pixels were skipped over, not read into memory.
    const top = readPickle(f);
    const data = top.kind === 'dict' ? top.entries.get('data') : undefined;
    t.true(data?.kind === 'ndarray' && data.data.data === null && data.data.length === n * 3072);
  });
}

test('labels as a list of ints, and small arrays held inline, read the same', (t) => {
  const dir = tmp();
  const { bytes, labels } = rstPickle({ n: 3, listLabels: true });
  const r = readRstPickle(write(dir, 'list.pickle', bytes));
  t.deepEqual([...r.labels], labels);
  const top = readPickle(path.join(dir, 'list.pickle'));
  t.is(top.kind, 'dict');
});

test('a truncated file is refused naming the file and the byte offset, wherever it is cut', (t) => {
  const dir = tmp();
  const { bytes } = rstPickle({ n: 25 });
  for (const cut of [1, 2, 11, 40, 200, Math.floor(bytes.length / 2), bytes.length - 300, bytes.length - 1]) {
    const f = write(dir, `cut-${cut}.pickle`, bytes.subarray(0, cut));
    const e = t.throws(() => readRstPickle(f), { instanceOf: DatasetError });
    t.true(e!.message.startsWith(`${f}: not an RST-style pickle: at byte `), e!.message);
    t.regex(e!.message, /truncated|stack underflow|no MARK/, `cut at ${cut}`);
    t.is(e!.code, 'ERR_INVALID_DATA');
  }
  // Trailing bytes after STOP are refused as well.
  const f = write(dir, 'long.pickle', Buffer.concat([bytes, Buffer.from('x')]));
  t.throws(() => readRstPickle(f), { message: /1 bytes after STOP/ });
});

test('wrong dtype, shape, order, byte order, label count or label range: each refused with what was expected', (t) => {
  const dir = tmp();
  const n = 4;
  const cases: [string, RstOpts, RegExp][] = [
    ['float images', { n, dataDtype: ['f4', '<'] }, /"data" has dtype <f4, expected uint8/],
    ['CHW images', { n, shape: [n, 3, 32, 32] }, /"data" has shape \(4, 3, 32, 32\), expected \(N, 32, 32, 3\)/],
    ['big-endian labels', { n, labelsDtype: ['i8', '>'], labelBytes: int64Labels([1, 2, 3, 4], true) }, /byte order ">", expected little-endian "<"/],
    ['float labels', { n, labelsDtype: ['f8', '<'] }, /extrapolated_targets has dtype f8, expected an integer dtype/],
    ['labels out of range', { n, labels: [0, 1, 10, 2] }, /extrapolated_targets\[2\] is 10, expected a class 0..9/],
    ['too few labels', { n, labels: [0, 1, 2] }, /extrapolated_targets has shape \(3\), expected \(4,\)/],
  ];
  for (const [what, o, re] of cases) {
    const f = write(dir, `${what.replaceAll(' ', '-')}.pickle`, rstPickle(o).bytes);
    t.throws(() => readRstPickle(f), { instanceOf: DatasetError, message: re }, what);
  }
  // The images' bytes must match their shape.
  const p = new P(4);
  p.raw(0x7d).put().raw(0x28).str('data').array([2, 32, 32, 3], ['u1', '|'], Buffer.alloc(100)).str('extrapolated_targets').array([2], ['i8', '<'], int64Labels([0, 1])).raw(0x75);
  t.throws(() => readRstPickle(write(dir, 'short-data.pickle', p.done())), { message: /"data" holds 100 bytes, expected 6144 for 2 images/ });
  // A dict without the labels, and something that is not a dict.
  const q = new P(4);
  q.raw(0x7d).put().raw(0x28).str('data').array([1, 32, 32, 3], ['u1', '|'], Buffer.alloc(3072)).raw(0x75);
  t.throws(() => readRstPickle(write(dir, 'nolabels.pickle', q.done())), { message: /no "extrapolated_targets"/ });
  t.throws(() => readRstPickle(write(dir, 'list.pickle', new P(4).raw(0x5d).done())), { message: /holds a list, expected a dict/ });
  // Python 2's protocol and other protocols are refused at PROTO.
  t.throws(() => readRstPickle(write(dir, 'p2.pickle', Buffer.from([0x80, 2, 0x7d, 0x2e]))), { message: /protocol 2; expected 3 to 5/ });
});

test('a forbidden GLOBAL (os.system, builtins.eval) is refused at its opcode, and nothing runs', (t) => {
  const dir = tmp();
  const marker = path.join(dir, 'ran');
  // The classic payload: os.system("touch <marker>") through GLOBAL + REDUCE.
  const p3 = new P(3).raw(0x63, 'os\nsystem\n').str(`touch ${marker}`).raw(0x85, 0x52).done();
  const f3 = write(dir, 'evil3.pickle', p3);
  const e = t.throws(() => readRstPickle(f3), { instanceOf: DatasetError });
  t.is(e!.message, `${f3}: not an RST-style pickle: at byte 2 (opcode GLOBAL at byte 2): global os.system is not allowed (only numpy's _reconstruct, ndarray, dtype, scalar and _frombuffer)`);
  // Protocol 4 spells it STACK_GLOBAL; hidden inside an otherwise valid dict.
  const p4 = new P(4).raw(0x7d).put().raw(0x28).str('data').global('builtins', 'eval').str(`__import__('os').system('touch ${marker}')`).raw(0x85, 0x52).raw(0x75).done();
  const f4 = write(dir, 'evil4.pickle', p4);
  t.throws(() => readRstPickle(f4), { message: /opcode STACK_GLOBAL at byte \d+\): global builtins\.eval is not allowed/ });
  // An allowed global called the wrong way, and an opcode outside the subset (INST, BINFLOAT).
  const wrong = new P(4).global('numpy', 'ndarray').raw(0x29, 0x52).done();
  t.throws(() => readRstPickle(write(dir, 'wrong.pickle', wrong)), { message: /REDUCE of numpy\.ndarray is not allowed/ });
  const inst = Buffer.concat([Buffer.from([0x80, 3, 0x28]), Buffer.from('ios\nsystem\n'), Buffer.from('.')]);
  t.throws(() => readRstPickle(write(dir, 'inst.pickle', inst)), { message: /at byte 3 \(opcode 0x69 \("i"\) at byte 3\): opcode 0x69 \("i"\) is not allowed/ });
  // A string claiming gigabytes is refused before anything is allocated for it.
  const huge = Buffer.from([0x80, 4, 0x58, 0, 0, 0, 0x40, 0x2e]);
  t.throws(() => readRstPickle(write(dir, 'huge.pickle', huge)), { message: /a string of 1073741824 bytes \(at most 1 MiB is accepted\)/ });
  t.false(existsSync(marker), 'nothing was executed');
});

// ---- The plain format and the import ----

test('import: the plain file holds the images as C×H×W and the labels, with a sha256 over both; written atomically', (t) => {
  const dir = tmp();
  const n = 37;
  const { bytes, images, labels } = rstPickle({ n, protocol: 3 });
  const f = write(dir, 'ti_500K_pseudo_labeled.pickle', bytes);
  const out = path.join(dir, 'out.stextra');
  const r = importRst(f, { out, chunk: 8 }); // chunks not dividing N
  t.is(r.out, out);
  t.deepEqual(readdirSync(dir).sort(), ['out.stextra', 'ti_500K_pseudo_labeled.pickle'], 'no temp file left');
  const raw = readFileSync(out);
  t.is(raw.toString('latin1', 0, 8), EXTRA_MAGIC);
  const hlen = raw.readUInt32LE(8);
  const header = JSON.parse(raw.toString('utf8', 12, 12 + hlen)) as Record<string, unknown>;
  t.like(header, { count: n, channels: 3, height: 32, width: 32, layout: 'NCHW', numClasses: 10, source: 'ti_500K_pseudo_labeled.pickle' });
  t.is(raw.length, 12 + hlen + n * 3072 + n);
  t.is(header.sha256, sha256(raw.subarray(12 + hlen)));
  t.deepEqual([...raw.subarray(12 + hlen + n * 3072)], labels);
  const opened = openExtraData(out, true);
  t.deepEqual([...opened.labels], labels);
  for (const k of [0, 7, 8, n - 1]) t.deepEqual(Buffer.from(readExtraImages(opened, k, 1)), chw(images, k), `image ${k}`);
  t.deepEqual(Buffer.from(readExtraImages(opened, 5, 3)), Buffer.concat([5, 6, 7].map((k) => chw(images, k))));
  t.deepEqual(r.classCounts.reduce((a, b) => a + b, 0), n);
  // A changed pixel: the size still fits, the checksum does not.
  raw[12 + hlen + 100]! ^= 1;
  writeFileSync(out, raw);
  t.notThrows(() => openExtraData(out, false));
  t.throws(() => openExtraData(out, true), { message: /checksum mismatch: sha256 [0-9a-f]{64}, the header says/ });
  // A truncated plain file.
  writeFileSync(out, raw.subarray(0, raw.length - 5));
  t.throws(() => openExtraData(out), { message: new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated: `) });
  // A refused pickle writes nothing.
  const bad = write(dir, 'bad.pickle', rstPickle({ n: 2, labels: [0, 11] }).bytes);
  const out2 = path.join(dir, 'never.stextra');
  t.throws(() => importRst(bad, { out: out2 }), { message: /is 11/ });
  t.false(existsSync(out2));
});

test('the plain format as users write it: NHWC from numpy, no checksum, read back as C×H×W; bad headers named', (t) => {
  const dir = tmp();
  const images = hwcImages(3);
  const header = Buffer.from(JSON.stringify({ count: 3, channels: 3, height: 32, width: 32, layout: 'NHWC', numClasses: 10 }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const f = write(dir, 'mine.stextra', Buffer.concat([Buffer.from(EXTRA_MAGIC), len, header, images, Buffer.from([9, 0, 4])]));
  const d = openExtraData(f, true);
  t.deepEqual([...d.labels], [9, 0, 4]);
  t.deepEqual(Buffer.from(readExtraImages(d, 1, 2)), Buffer.concat([chw(images, 1), chw(images, 2)]));
  t.throws(() => readExtraImages(d, 2, 2), { message: /images 2..3 asked, the file has 3/ });
  const badHeader = Buffer.from(JSON.stringify({ count: 3, channels: 3, height: 32, width: 32, layout: 'HWC', numClasses: 10 }));
  len.writeUInt32LE(badHeader.length);
  const g = write(dir, 'bad.stextra', Buffer.concat([Buffer.from(EXTRA_MAGIC), len, badHeader, images, Buffer.from([9, 0, 4])]));
  t.throws(() => openExtraData(g), { message: /header field "layout" must be "NCHW" or "NHWC", found "HWC"/ });
  t.throws(() => openExtraData(write(dir, 'x.stextra', Buffer.from('PK\x03\x04 not ours'))), { message: /expected it to start with "STEXTRA1"/ });
  // writeExtraData checks what it was given.
  t.throws(() => writeExtraData(path.join(dir, 'w.stextra'), { count: 2, channels: 3, height: 32, width: 32, layout: 'NCHW', numClasses: 10 }, [new Uint8Array(3072)], new Uint8Array(2)), {
    message: /wrote 3072 pixel bytes, expected 6144/,
  });
  t.false(readdirSync(dir).some((n) => n.includes('.tmp-')));
});

// ---- The CLI, downloads and the offline message ----

const capture = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), tty: false } };
};

test('data import-rst: default paths in the data folder, text and JSON output, the sha256; openRstExtra finds it', async (t) => {
  const root = tmp();
  const { bytes, labels } = rstPickle({ n: 12 });
  mkdirSync(path.join(root, 'rst'));
  const pickle = write(path.join(root, 'rst'), RST_SOURCE.file.name, bytes);
  // Before the import: the missing message says to import the file that is there.
  t.throws(() => openRstExtra({ dataDir: root }), { message: /not imported yet: .* is there; run `st-native data import-rst / });
  const c = capture();
  t.is(await dataCommand(['import-rst', '--data-dir', root], c.io), 0, c.err.join('\n'));
  const out = path.join(root, 'rst', RST_IMPORTED_NAME);
  t.is(c.out[0], `imported 12 images (3×32×32) with labels into ${out}`);
  const opened = openRstExtra({ dataDir: root, verify: true });
  t.regex(c.out[1]!, new RegExp(`^sha256 ${opened.header.sha256}; images per class: `));
  t.deepEqual([...opened.labels], labels);
  const j = capture();
  t.is(await dataCommand(['import-rst', pickle, '--out', path.join(root, 'again.stextra'), '--json'], j.io), 0);
  const parsed = JSON.parse(j.out[0]!) as { out: string; header: { sha256: string; count: number } };
  t.is(parsed.header.sha256, opened.header.sha256!, 'the same input gives the same checksum');
  t.is(parsed.header.count, 12);
  // data list: the rst row says imported, and JSON has it under "extra".
  const l = capture();
  t.is(await dataCommand(['list', '--data-dir', root], l.io), 0);
  t.true(l.out.some((line) => /^rst \(extra\) {5}imported {4}/.test(line) && line.endsWith(out.replace(process.env.HOME ?? '\0', '~'))), l.out.join('\n'));
  const lj = capture();
  t.is(await dataCommand(['list', '--data-dir', path.join(root, 'empty'), '--json'], lj.io), 0);
  t.like((JSON.parse(lj.out[0]!) as { extra: unknown[] }).extra[0], { name: 'rst', state: 'missing', bytes: null });
  // A forbidden pickle through the CLI: exit 1 and the file named.
  const evil = write(root, 'evil.pickle', new P(3).raw(0x63, 'os\nsystem\n').str('true').raw(0x85, 0x52).done());
  const e = capture();
  t.is(await dataCommand(['import-rst', evil, '--data-dir', root], e.io), 1);
  t.regex(e.err.join('\n'), /evil\.pickle: not an RST-style pickle: at byte 2 \(opcode GLOBAL at byte 2\): global os\.system is not allowed/);
});

test('data fetch rst: offline names the URL, folder and import command without a request; online it downloads, checks the contents and refuses a bad file', async (t) => {
  const good = rstPickle({ n: 5 }).bytes;
  const bad = rstPickle({ n: 5 }).bytes.subarray(0, 500);
  const server = await serve({ 'good.pickle': { body: good }, 'bad.pickle': { body: bad } });
  try {
    const source = (file: string): ExtraSource => ({ ...RST_SOURCE, file: { ...RST_SOURCE.file, url: server.url(file) } });
    const root = path.join(tmp(), 'data');
    const c = capture();
    t.is(await dataCommand(['fetch', 'rst', '--data-dir', root], c.io, { rstSource: source('good.pickle'), env: { ST_NATIVE_OFFLINE: '1' }, progress: null }), 1);
    const msg = c.err.join('\n');
    t.regex(msg, /rst: not in .*, and downloading it failed \(downloads are off: ST_NATIVE_OFFLINE is set\)/);
    t.true(msg.includes(`  ${RST_SOURCE.file.name}  ${server.url('good.pickle')}  (about 1.5 GB; its authors publish no checksum`), msg);
    t.true(msg.includes(`st-native data import-rst ${path.join(root, 'rst', RST_SOURCE.file.name)}`), msg);
    t.is(server.requests.length, 0);
    // The default source is the RST README's Google Drive file.
    t.regex(RST_SOURCE.file.url, /1LTw3Sb5QoiCCN-6Y5PEKkq9C9W60w-Hi/);
    const got = await fetchRst({ dataDir: root, source: source('good.pickle'), progress: null, env: {} });
    t.deepEqual(got, { path: path.join(root, 'rst', RST_SOURCE.file.name), downloaded: true });
    t.deepEqual(readFileSync(got.path), good);
    const again = await fetchRst({ dataDir: root, source: source('good.pickle'), progress: null, env: { ST_NATIVE_OFFLINE: '1' } });
    t.false(again.downloaded, 'there already: checked, not downloaded, even offline');
    // A truncated download fails its content check; the .part is deleted.
    const other = path.join(tmp(), 'data');
    await t.throwsAsync(fetchRst({ dataDir: other, source: source('bad.pickle'), progress: null, env: {} }), { instanceOf: DatasetError, message: /truncated/ });
    t.deepEqual(readdirSync(path.join(other, 'rst')), []);
  } finally {
    await server.close();
  }
});

// ---- Cross-check against Python's own pickle + numpy: the project's Python (the one with torch
// that `npm install` provisions), numpy installed into it for tests as the agreement tests do ----


(python ? test : test.skip)('a file written by Python (pickle.dump of numpy arrays, protocols 3 to 5) reads the same (needs the Python with torch)', (t) => {
  ensureTestPackages(python!, (s) => t.log(s));
  const dir = tmp();
  for (const protocol of [3, 4, 5]) {
    const f = path.join(dir, `py${protocol}.pickle`);
    const script = [
      'import pickle, sys, numpy as np',
      'n = 21',
      'data = (np.arange(n * 3072, dtype=np.int64) * 7 % 251).astype(np.uint8).reshape(n, 32, 32, 3)',
      'targets = np.arange(n, dtype=np.int64) % 10',
      `pickle.dump({'data': data, 'extrapolated_targets': targets, 'prediction_model': 'm.pt'}, open(sys.argv[1], 'wb'), protocol=${protocol})`,
    ].join('\n');
    const run = spawnSync(python!, ['-c', script, f], { encoding: 'utf8' });
    t.is(run.status, 0, run.stderr);
    const r = readRstPickle(f);
    t.is(r.count, 21);
    t.deepEqual([...r.labels], Array.from({ length: 21 }, (_, i) => i % 10));
    const px = readFileSync(f).subarray(r.imagesOffset, r.imagesOffset + r.imagesLength);
    t.deepEqual([px[0], px[1], px[3071 * 21]], [0, 7, (3071 * 21 * 7) % 251]);
  }
});

// Without numpy: Python's own unpickler reads the files written here, with find_class mapping numpy's
// names to stand-ins that record what they are given. That checks the test writer (and so the
// reader's tests) against CPython's opcode semantics: memo, MARK, REDUCE, BUILD.
const STANDINS = `
import pickle, sys, json
class Arr:
    def __init__(self, *a): self.args = a
    def __setstate__(self, s): self.state = s
class Dtype:
    def __init__(self, s, align, copy): self.s = s
    def __setstate__(self, st): self.order = st[1]
def frombuffer(buf, dtype, shape, order):
    a = Arr(); a.state = (1, shape, dtype, order == 'F', bytes(buf)); return a
class U(pickle.Unpickler):
    def find_class(self, module, name):
        table = {('numpy.core.multiarray', '_reconstruct'): lambda cls, shape, b: Arr(),
                 ('numpy', 'ndarray'): Arr, ('numpy', 'dtype'): Dtype,
                 ('numpy.core.numeric', '_frombuffer'): frombuffer,
                 ('numpy.core.multiarray', 'scalar'): lambda dt, b: {'scalar': dt.order + dt.s, 'bytes': len(b)}}
        if (module, name) not in table: raise pickle.UnpicklingError('refused ' + module + '.' + name)
        return table[(module, name)]
d = U(open(sys.argv[1], 'rb')).load()
def desc(a):
    _, shape, dt, fortran, data = a.state
    return {'shape': list(shape), 'dtype': dt.order + dt.s, 'fortran': fortran, 'bytes': len(data), 'head': list(data[:8])}
print(json.dumps({'keys': sorted(d), 'data': desc(d['data']), 'targets': desc(d['extrapolated_targets'])}))
`;
const anyPython = [python ?? 'python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import pickle'], { stdio: 'ignore' }).status === 0);

(anyPython ? test : test.skip)("the test writer's pickles load in CPython's own unpickler (numpy stood in by find_class) to the same arrays", (t) => {
  const dir = tmp();
  for (const protocol of [3, 4, 5] as const) {
    const { bytes, images } = rstPickle({ protocol, n: 6, extraKey: true });
    const f = write(dir, `w${protocol}.pickle`, bytes);
    const run = spawnSync(anyPython!, ['-c', STANDINS, f], { encoding: 'utf8' });
    t.is(run.status, 0, run.stderr);
    const got = JSON.parse(run.stdout) as { keys: string[]; data: { shape: number[]; dtype: string; bytes: number; head: number[] }; targets: { shape: number[]; dtype: string; head: number[] } };
    t.deepEqual(got.keys, ['accuracy', 'data', 'extrapolated_targets', 'prediction_model'], `protocol ${protocol}`);
    t.like(got.data, { shape: [6, 32, 32, 3], dtype: '|u1', bytes: 6 * 3072, head: [...images.subarray(0, 8)] });
    t.like(got.targets, { shape: [6], dtype: '<i8', head: [0, 0, 0, 0, 0, 0, 0, 0] });
    const r = readRstPickle(f);
    t.deepEqual([r.count, r.imagesLength], [6, 6 * 3072]);
  }
});
