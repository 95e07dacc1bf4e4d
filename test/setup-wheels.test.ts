/**
 * `st-native setup` without Python: the index's JSON API, following torch's
 * pins, picking the host's wheel, the zip reader, and whole installs against
 * a local HTTP server serving small fake wheels (success and a no-op rerun,
 * a wrong sha256, a cut connection resumed by the next run, offline).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseMethod, preloadShim, runSetup, verifyLoadsWithShim, type SetupResult, type WheelHooks } from '../ts/cli/setup.js';
import { readMarker, SetupError } from '../ts/runtime/cache.js';
import { findLibtorch } from '../ts/runtime/libtorch.js';
import { pickWheel, type DistFile } from '../ts/runtime/pypi.js';
import { compareVersions, evaluateMarker, exactPin, linuxMarkerEnv, matchesPin, parseRequirement, requirementApplies } from '../ts/runtime/requirements.js';
import { requiresFromMetadata, wantedEntry } from '../ts/runtime/wheel.js';
import { ZipError, ZipReader } from '../ts/runtime/zip.js';
import { root } from './helpers/cli.js';
import { sha256, startIndex, type FakeRelease } from './helpers/fake-index.js';
import { makeZip } from './helpers/zip-writer.js';

/** Buffer equality without ava's deep diff, which is slow on megabytes. */
function sameBytes(t: { true: (v: boolean, m?: string) => void }, actual: Buffer, expected: Buffer, message?: string): void {
  t.true(actual.equals(expected), `${message ?? 'bytes'}: ${actual.length} bytes, expected ${expected.length}${actual.length === expected.length ? ' (contents differ)' : ''}`);
}

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'st-native-wheels-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------- requirements

test('requirements: names, extras, specifiers and markers as torch and cuda-toolkit write them', (t) => {
  t.deepEqual(parseRequirement('cuda-toolkit[cublas,cudart,cupti]==13.0.2; platform_system == "Linux"'), {
    name: 'cuda-toolkit',
    extras: ['cublas', 'cudart', 'cupti'],
    specifier: '==13.0.2',
    marker: 'platform_system == "Linux"',
  });
  t.deepEqual(parseRequirement('cuda-bindings<14,>=13.0.3; platform_system == "Linux"'), { name: 'cuda-bindings', extras: [], specifier: '<14,>=13.0.3', marker: 'platform_system == "Linux"' });
  t.deepEqual(parseRequirement('filelock'), { name: 'filelock', extras: [], specifier: '', marker: null });
  t.deepEqual(parseRequirement('nvidia-cublas (==13.1.0.3)'), { name: 'nvidia-cublas', extras: [], specifier: '==13.1.0.3', marker: null });
  t.throws(() => parseRequirement('pkg @ https://example.com/pkg.whl'), { message: /not a requirement/ });

  t.deepEqual(exactPin('==13.0.2'), { version: '13.0.2', prefix: false });
  t.deepEqual(exactPin('==13.0.96.*'), { version: '13.0.96', prefix: true });
  t.is(exactPin('>=13.0.3'), null);
  t.is(exactPin('<14,>=13.0.3'), null);
  t.is(exactPin('~=3.9.0'), null);
  t.true(matchesPin('13.0.96', { version: '13.0.96', prefix: true }));
  t.true(matchesPin('13.0.96.1', { version: '13.0.96', prefix: true }));
  t.false(matchesPin('13.0.961', { version: '13.0.96', prefix: true }));
  t.true(matchesPin('1.0.0', { version: '1.0', prefix: false }));

  t.is(compareVersions('13.0.96', '13.0.100'), -1);
  t.is(compareVersions('1.0', '1.0.0'), 0);
  t.is(compareVersions('1.2.post1', '1.2'), 1);
  t.is(compareVersions('2.11.0+cu130', '2.11.0'), 0);
});

test('markers: and/or/parentheses, version comparisons, extras one at a time', (t) => {
  const env = linuxMarkerEnv('x86_64', '3.13');
  t.true(evaluateMarker('platform_system == "Linux"', env));
  t.false(evaluateMarker("sys_platform == 'win32'", env));
  t.true(evaluateMarker('platform_system == "Linux" and python_version < "3.15"', env));
  t.false(evaluateMarker('platform_system == "Linux" and python_version < "3.13"', env));
  t.true(evaluateMarker('python_version >= "3.9"', env), 'versions compare numerically, not as strings');
  t.true(evaluateMarker("platform_machine == 'aarch64' or platform_machine == 'x86_64'", env));
  t.true(evaluateMarker("'linux' in sys_platform", env));
  t.true(evaluateMarker("platform_machine not in 'aarch64 arm64'", env));
  t.throws(() => evaluateMarker('python_version < "3.15" and', env), { message: /expected a value/ });
  t.throws(() => evaluateMarker('gpu_count > "0"', env), { message: /unknown marker variable 'gpu_count'/ });

  const cudart = parseRequirement("nvidia-cuda-runtime==13.0.96.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cudart'");
  t.true(requirementApplies(cudart, env, ['cublas', 'cudart']));
  t.false(requirementApplies(cudart, env, ['cublas']));
  t.false(requirementApplies(cudart, env, []));
  t.true(requirementApplies(cudart, env, ['CudaRT']), 'extras compare normalised');
  const culibos = parseRequirement("nvidia-cuda-culibos==13.0.85.*; (sys_platform == 'linux') and extra == 'culibos'");
  t.false(requirementApplies(culibos, linuxMarkerEnv('aarch64', '3.12'), ['cudart']));
});

test('METADATA: the Requires-Dist headers, not the description after the blank line', (t) => {
  const text = [
    'Metadata-Version: 2.4',
    'Name: torch',
    'Requires-Dist: filelock',
    'Requires-Dist: nvidia-cudnn-cu13==9.19.0.56; platform_system == "Linux"',
    '',
    'Requires-Dist: not-a-header (this is the README)',
  ].join('\r\n');
  t.deepEqual(requiresFromMetadata(text), ['filelock', 'nvidia-cudnn-cu13==9.19.0.56; platform_system == "Linux"']);
});

// ---------------------------------------------------------------- wheel choice

function dist(filename: string): DistFile {
  return { filename, url: `http://x/${filename}`, sha256: '0'.repeat(64), size: 1, yanked: false, metadata: null };
}

test("pickWheel: the host's architecture and glibc, the newest regular CPython build, py3 wheels", (t) => {
  const torch = [
    'torch-2.11.0-cp310-cp310-manylinux_2_28_x86_64.whl',
    'torch-2.11.0-cp313-cp313-manylinux_2_28_x86_64.whl',
    'torch-2.11.0-cp313-cp313t-manylinux_2_28_x86_64.whl',
    'torch-2.11.0-cp314-cp314t-manylinux_2_28_x86_64.whl',
    'torch-2.11.0-cp313-cp313-manylinux_2_28_aarch64.whl',
    'torch-2.11.0-cp313-cp313-win_amd64.whl',
    'torch-2.11.0-cp313-cp313-macosx_11_0_arm64.whl',
  ].map(dist);
  const x86 = pickWheel(torch, { machine: 'x86_64', glibc: [2, 35] });
  t.is(x86?.file.filename, 'torch-2.11.0-cp313-cp313-manylinux_2_28_x86_64.whl');
  t.is(x86?.python, '3.13');
  t.is(pickWheel(torch, { machine: 'aarch64', glibc: [2, 39] })?.file.filename, 'torch-2.11.0-cp313-cp313-manylinux_2_28_aarch64.whl');
  t.is(pickWheel(torch, { machine: 'x86_64', glibc: [2, 17] }), null, 'manylinux_2_28 needs glibc 2.28');
  t.is(pickWheel(torch, { machine: 'x86_64', glibc: null })?.file.filename, 'torch-2.11.0-cp313-cp313-manylinux_2_28_x86_64.whl');
  t.is(pickWheel([{ ...torch[1]!, yanked: true }], { machine: 'x86_64', glibc: [2, 35] }), null);

  const cudart = [
    dist('nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl'),
    dist('nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl'),
    dist('nvidia_cuda_runtime-13.0.96-py3-none-win_amd64.whl'),
  ];
  const picked = pickWheel(cudart, { machine: 'x86_64', glibc: [2, 17] });
  t.is(picked?.file.filename, 'nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl');
  t.is(picked?.python, null);
  t.is(pickWheel([dist('cuda_toolkit-13.0.2-py2.py3-none-any.whl')], { machine: 'aarch64', glibc: [2, 28] })?.file.filename, 'cuda_toolkit-13.0.2-py2.py3-none-any.whl');
});

test('wantedEntry: only the shared libraries st-native loads, and torch/version.py', (t) => {
  for (const name of ['torch/lib/libc10.so', 'torch/lib/libtorch_cpu.so', 'torch/lib/libgomp.so.1', 'torch/version.py', 'nvidia/cu13/lib/libcudart.so.13', 'nvidia/cudnn/lib/libcudnn.so.9', 'torch.libs/libgomp-a34b3233.so.1.0.0']) {
    t.true(wantedEntry(name, 'cpu'), name);
  }
  for (const name of [
    'torch/__init__.py',
    'torch/include/ATen/ATen.h',
    'torch/lib/libtorch_python.so',
    'torch/lib/libshm/manager.h',
    'nvidia/cu13/lib/libcudart_static.a',
    'nvidia/cu13/lib/stubs/libcuda.so',
    'nvidia/cu13/include/cuda.h',
    'torch-2.11.0.dist-info/METADATA',
    '../evil.so',
  ]) {
    t.false(wantedEntry(name, 'cuda'), name);
  }
  t.false(wantedEntry('torch/lib/libtorch_cuda.so', 'cpu'));
  t.true(wantedEntry('torch/lib/libtorch_cuda.so', 'cuda'));
});

// ---------------------------------------------------------------- zip reader

test('zip: stored, deflated and Zip64 entries read back byte for byte, with their Unix modes', async (t) => {
  const dir = tempDir(t);
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  const files = [
    { name: 'a/stored.txt', data: 'stored bytes\n', method: 0 as const },
    { name: 'a/deflated.so', data: big, mode: 0o755 },
    { name: 'empty', data: '' },
    { name: 'ünïcode.txt', data: 'utf-8 names' },
  ];
  for (const zip64 of [false, true]) {
    const file = path.join(dir, `t${zip64 ? 64 : 32}.zip`);
    writeFileSync(file, makeZip(files, { zip64 }));
    const zip = await ZipReader.open(file);
    t.deepEqual(
      zip.entries.map((e) => e.name),
      files.map((f) => f.name),
    );
    for (const f of files) {
      const entry = zip.entries.find((e) => e.name === f.name)!;
      sameBytes(t, await zip.read(entry), Buffer.from(f.data), `${f.name} (zip64 ${zip64})`);
    }
    const out = path.join(dir, `out${zip64 ? 64 : 32}`, 'lib.so');
    await zip.extract(zip.entries[1]!, out);
    sameBytes(t, readFileSync(out), big);
    t.is(statSync(out).mode & 0o777, 0o755);
    await zip.close();
  }
});

test('zip: a corrupt entry fails its CRC, a cut file and a non-zip are named', async (t) => {
  const dir = tempDir(t);
  const data = Buffer.from('x'.repeat(1000));
  const good = makeZip([{ name: 'f.so', data, method: 0 }]);
  const corrupt = Buffer.from(good);
  const at = 30 + 'f.so'.length + 10;
  corrupt.writeUInt8(corrupt.readUInt8(at) ^ 0xff, at);
  writeFileSync(path.join(dir, 'corrupt.zip'), corrupt);
  const zip = await ZipReader.open(path.join(dir, 'corrupt.zip'));
  await t.throwsAsync(zip.read(zip.entries[0]!), { instanceOf: ZipError, message: /f\.so fails its CRC-32 check/ });
  await zip.close();

  const deflated = makeZip([{ name: 'g.so', data }]);
  const broken = Buffer.from(deflated);
  broken.fill(0xff, 30 + 4, 30 + 4 + 6);
  writeFileSync(path.join(dir, 'broken.zip'), broken);
  const z2 = await ZipReader.open(path.join(dir, 'broken.zip'));
  await t.throwsAsync(z2.read(z2.entries[0]!), { instanceOf: ZipError, message: /g\.so (does not inflate|fails its CRC-32|has \d+ bytes)/ });
  await z2.close();

  writeFileSync(path.join(dir, 'cut.whl'), good.subarray(0, good.length >> 1));
  await t.throwsAsync(ZipReader.open(path.join(dir, 'cut.whl')), { instanceOf: ZipError, message: /cut\.whl: not a zip file/ });
  writeFileSync(path.join(dir, 'page.whl'), '<html>proxy login</html>');
  await t.throwsAsync(ZipReader.open(path.join(dir, 'page.whl')), { instanceOf: ZipError, message: /not a zip file/ });
});

test('zip: a deflated entry with a wrong CRC or stated size fails and leaves nothing at its destination; unsafe names are refused', async (t) => {
  const dir = tempDir(t);
  const data = Buffer.from('libtorch '.repeat(5000));
  const good = makeZip([{ name: 'h.so', data }]);
  // One entry, no Zip64: the central directory header follows the local header (30 bytes + name) and the deflated body.
  const central = good.length - 22 - (46 + 'h.so'.length);
  t.is(good.readUInt32LE(central), 0x02014b50);
  const cases: [string, number, RegExp][] = [
    ['crc', 16, /crc\.zip: h\.so fails its CRC-32 check/],
    ['size', 24, /size\.zip: h\.so is damaged: .*bytes/],
  ];
  for (const [name, field, message] of cases) {
    const bad = Buffer.from(good);
    bad.writeUInt32LE((bad.readUInt32LE(central + field) + 1) >>> 0, central + field);
    const file = path.join(dir, `${name}.zip`);
    writeFileSync(file, bad);
    const zip = await ZipReader.open(file);
    const out = path.join(dir, name, 'lib', 'h.so');
    await t.throwsAsync(zip.extract(zip.entries[0]!, out), { instanceOf: ZipError, message });
    t.deepEqual(readdirSync(path.dirname(out)), [], `${name}: neither the library nor its temp file is left`);
    await zip.close();
  }
  // The unchanged zip extracts (the offsets above are right), replacing what was there.
  writeFileSync(path.join(dir, 'good.zip'), good);
  const zip = await ZipReader.open(path.join(dir, 'good.zip'));
  const out = path.join(dir, 'good', 'h.so');
  mkdirSync(path.dirname(out));
  writeFileSync(out, 'old');
  await zip.extract(zip.entries[0]!, out);
  sameBytes(t, readFileSync(out), data);
  t.deepEqual(readdirSync(path.dirname(out)), ['h.so']);
  await zip.close();

  writeFileSync(path.join(dir, 'escape.whl'), makeZip([{ name: '../../evil.so', data: 'x' }]));
  await t.throwsAsync(ZipReader.open(path.join(dir, 'escape.whl')), { instanceOf: ZipError, message: /escape\.whl: not a readable zip: .*\.\./ });
});

// ---------------------------------------------------------------- whole installs

/** Pseudo-random bytes: incompressible, so a wheel spans several reads and a cut lands mid-file. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const TORCH_REQUIRES = [
  'filelock',
  'cuda-toolkit[cublas,cudart,cupti]==13.0.2; platform_system == "Linux"',
  'cuda-bindings<14,>=13.0.3; platform_system == "Linux"',
  'nvidia-cudnn-cu13==9.19.0.56; platform_system == "Linux"',
  'triton==3.6.0; platform_system == "Linux"',
  'optree>=0.13.0; extra == "optree"',
];
const TOOLKIT_REQUIRES = [
  "nvidia-cublas==13.1.0.3.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cublas'",
  "nvidia-cuda-runtime==13.0.96.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cudart'",
  "nvidia-cuda-cupti==13.0.85.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'cupti'",
  "nvidia-nvtx==13.0.85.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'nvtx'",
];

const metadata = (name: string, version: string, requires: string[]) => [`Metadata-Version: 2.1`, `Name: ${name}`, `Version: ${version}`, ...requires.map((r) => `Requires-Dist: ${r}`), '', 'description'].join('\n');

/** The fake libraries, by path in the install folder. */
const LIBS = {
  'torch/lib/libc10.so': noise(4000, 1),
  'torch/lib/libtorch_cpu.so': noise(1_500_000, 2),
  'torch/lib/libtorch.so': noise(3000, 3),
  'torch/lib/libc10_cuda.so': noise(2000, 4),
  'torch/lib/libtorch_cuda.so': noise(5000, 5),
  'nvidia/cu13/lib/libcudart.so.13': noise(700, 6),
  'nvidia/cu13/lib/libcupti.so.13': noise(800, 7),
  'nvidia/cu13/lib/libcublas.so.13': noise(900, 8),
  'nvidia/cudnn/lib/libcudnn.so.9': noise(600, 9),
};

/** torch 2.11.0 and what it pins, as fake wheels; `cuda-toolkit` only in the project document (as some mirrors serve it). */
function fakeReleases(): FakeRelease[] {
  const torchFiles = [
    { name: 'torch/__init__.py', data: 'raise ImportError("not for Python")\n' },
    { name: 'torch/version.py', data: "__version__ = '2.11.0+cu130'\ncuda = '13.0'\n" },
    { name: 'torch/include/torch.h', data: '// header\n' },
    { name: 'torch/lib/libtorch_python.so', data: noise(100, 10) },
    ...(['libc10.so', 'libtorch_cpu.so', 'libtorch.so', 'libc10_cuda.so', 'libtorch_cuda.so'] as const).map((l) => ({ name: `torch/lib/${l}`, data: LIBS[`torch/lib/${l}`], mode: 0o755 })),
    { name: 'torch-2.11.0.dist-info/METADATA', data: metadata('torch', '2.11.0', TORCH_REQUIRES) },
  ];
  const torch = makeZip(torchFiles, { zip64: true });
  const lib = (dist: string, version: string, files: Record<string, Buffer>, requires: string[] = []) =>
    makeZip([...Object.entries(files).map(([name, data]) => ({ name, data })), { name: `${dist}-${version}.dist-info/METADATA`, data: metadata(dist, version, requires) }]);
  const manylinux = 'py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64';
  return [
    {
      name: 'torch',
      version: '2.11.0',
      requiresDist: TORCH_REQUIRES,
      versioned: true,
      wheels: [
        { filename: 'torch-2.11.0-cp313-cp313-manylinux_2_28_x86_64.whl', content: torch },
        { filename: 'torch-2.11.0-cp313-cp313t-manylinux_2_28_x86_64.whl', content: torch },
        { filename: 'torch-2.11.0-cp313-cp313-manylinux_2_28_aarch64.whl', content: torch },
        { filename: 'torch-2.11.0-cp313-cp313-win_amd64.whl', content: torch },
      ],
    },
    { name: 'cuda-toolkit', version: '13.0.2', requiresDist: null, versioned: false, wheels: [{ filename: 'cuda_toolkit-13.0.2-py2.py3-none-any.whl', content: lib('cuda_toolkit', '13.0.2', {}, TOOLKIT_REQUIRES) }] },
    // Two releases match neither pin's prefix; 13.0.96 is taken for `==13.0.96.*`.
    { name: 'nvidia-cuda-runtime', version: '13.0.48', requiresDist: [], versioned: true, wheels: [{ filename: `nvidia_cuda_runtime-13.0.48-${manylinux}.whl`, content: Buffer.from('old') }] },
    { name: 'nvidia-cuda-runtime', version: '13.0.96', requiresDist: [], versioned: true, wheels: [{ filename: `nvidia_cuda_runtime-13.0.96-${manylinux}.whl`, content: lib('nvidia_cuda_runtime', '13.0.96', { 'nvidia/cu13/lib/libcudart.so.13': LIBS['nvidia/cu13/lib/libcudart.so.13'], 'nvidia/cu13/lib/libcudart_static.a': noise(50, 11), 'nvidia/cu13/include/cuda_runtime.h': Buffer.from('//') }) }] },
    { name: 'nvidia-cuda-runtime', version: '13.1.0', requiresDist: [], versioned: true, wheels: [{ filename: `nvidia_cuda_runtime-13.1.0-${manylinux}.whl`, content: Buffer.from('new') }] },
    { name: 'nvidia-cuda-cupti', version: '13.0.85', requiresDist: [], versioned: true, wheels: [{ filename: `nvidia_cuda_cupti-13.0.85-${manylinux}.whl`, content: lib('nvidia_cuda_cupti', '13.0.85', { 'nvidia/cu13/lib/libcupti.so.13': LIBS['nvidia/cu13/lib/libcupti.so.13'] }) }] },
    { name: 'nvidia-cublas', version: '13.1.0.3', requiresDist: [], versioned: true, wheels: [{ filename: `nvidia_cublas-13.1.0.3-${manylinux}.whl`, content: lib('nvidia_cublas', '13.1.0.3', { 'nvidia/cu13/lib/libcublas.so.13': LIBS['nvidia/cu13/lib/libcublas.so.13'] }) }] },
    { name: 'nvidia-cudnn-cu13', version: '9.19.0.56', requiresDist: ['nvidia-cublas'], versioned: true, wheels: [{ filename: `nvidia_cudnn_cu13-9.19.0.56-${manylinux}.whl`, content: lib('nvidia_cudnn_cu13', '9.19.0.56', { 'nvidia/cudnn/lib/libcudnn.so.9': LIBS['nvidia/cudnn/lib/libcudnn.so.9'] }) }] },
    { name: 'triton', version: '3.6.0', requiresDist: [], versioned: true, wheels: [{ filename: 'triton-3.6.0-cp313-cp313-manylinux_2_27_x86_64.whl', content: makeZip([{ name: 'triton/_C/libtriton.so', data: 'x' }]) }] },
  ];
}

const HOST: WheelHooks['platform'] = { machine: 'x86_64', glibc: [2, 35] };

function setupWith(base: string, cache: string, flavor: 'cpu' | 'cuda', hooks: Partial<WheelHooks> = {}, extraEnv: NodeJS.ProcessEnv = {}) {
  const lines: string[] = [];
  const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ST_NATIVE_PYPI_URL: base, ST_NATIVE_PYTHON: path.join(cache, 'no-python'), ...extraEnv };
  const run = runSetup(
    { flavor, force: false, method: 'wheels', cache, env, wheels: { platform: HOST, progress: { line: (s) => lines.push(s) }, tuning: { retries: 0, retryDelayMs: 0 }, loadCheck: false, ...hooks } },
    io,
  );
  return { run, lines };
}

const fileHits = (requests: { path: string }[], name: string) => requests.filter((r) => r.path === `/files/${name}`).length;
const TORCH_WHEEL = 'torch-2.11.0-cp313-cp313-manylinux_2_28_x86_64.whl';

test.serial('setup --cpu fetches torch and the two CUDA runtime wheels, extracts only the libraries; a rerun downloads nothing', async (t) => {
  const index = await startIndex(fakeReleases());
  t.teardown(() => index.close());
  const cache = tempDir(t);
  const { run, lines } = setupWith(index.base, cache, 'cpu');
  const r = (await run) as SetupResult;
  t.like(r, { ok: true, flavor: 'cpu', method: 'wheels', alreadyInstalled: false, torchVersion: '2.11.0+cu130' }, lines.join('\n'));
  const dir = path.join(cache, 'libtorch-2.11.0-cpu');
  t.is(r.dir, dir);
  for (const f of ['torch/lib/libc10.so', 'torch/lib/libtorch_cpu.so', 'torch/lib/libtorch.so', 'nvidia/cu13/lib/libcudart.so.13', 'nvidia/cu13/lib/libcupti.so.13'] as const) {
    sameBytes(t, readFileSync(path.join(dir, f)), LIBS[f], f);
  }
  t.is(statSync(path.join(dir, 'torch/lib/libtorch_cpu.so')).mode & 0o777, 0o755);
  // Nothing else: no CUDA libraries of torch, no Python, headers or static archives.
  const all = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(path.join(d, e.name)).map((x) => `${e.name}/${x}`) : [e.name]));
  t.deepEqual(all(dir).sort(), [
    'nvidia/cu13/lib/libcudart.so.13',
    'nvidia/cu13/lib/libcupti.so.13',
    'st-native-libtorch.json',
    'torch/lib/libc10.so',
    'torch/lib/libtorch.so',
    'torch/lib/libtorch_cpu.so',
    'torch/version.py',
  ]);
  t.like(readMarker(dir), { version: '2.11.0', flavor: 'cpu', method: 'wheels', packages: ['torch==2.11.0', 'cuda-toolkit==13.0.2', 'nvidia-cuda-runtime==13.0.96', 'nvidia-cuda-cupti==13.0.85'] });
  // The host's wheel was taken, cuBLAS (not asked for by --cpu), cuDNN and triton were not fetched.
  t.is(fileHits(index.requests, TORCH_WHEEL), 1);
  t.false(index.requests.some((r) => /cp313t|aarch64|win_amd64|cublas|cudnn|triton|13\.0\.48|13\.1\.0/.test(r.path)), JSON.stringify(index.requests));
  // The wheels are deleted once installed; no temp folder is left.
  t.deepEqual(readdirSync(cache), ['libtorch-2.11.0-cpu']);
  // The runtime finds it in the cache.
  const found = findLibtorch({ env: { PATH: process.env.PATH, ST_NATIVE_PYTHON: path.join(cache, 'no-python') }, packageRoot: path.join(cache, 'pkg'), cache });
  t.true(found.ok);
  if (found.ok) t.is(found.libDir, path.join(dir, 'torch', 'lib'));

  const before = index.requests.length;
  const again = setupWith(index.base, cache, 'cpu');
  t.like(await again.run, { ok: true, alreadyInstalled: true, method: 'wheels' });
  t.is(index.requests.length, before, 'a complete install is kept without asking the index');
});

test.serial('setup --cuda follows cuda-toolkit extras to the NVIDIA wheels, checks unpinned NVIDIA requirements, skips triton', async (t) => {
  const index = await startIndex(fakeReleases());
  t.teardown(() => index.close());
  const cache = tempDir(t);
  const { run, lines } = setupWith(index.base, cache, 'cuda');
  const r = (await run) as SetupResult;
  t.like(r, { ok: true, flavor: 'cuda' }, lines.join('\n'));
  const dir = path.join(cache, 'libtorch-2.11.0-cuda');
  for (const [f, data] of Object.entries(LIBS)) sameBytes(t, readFileSync(path.join(dir, f)), data, f);
  t.false(existsSync(path.join(dir, 'torch/lib/libtorch_python.so')));
  t.deepEqual(readMarker(dir)?.packages, ['torch==2.11.0', 'cuda-toolkit==13.0.2', 'nvidia-cudnn-cu13==9.19.0.56', 'nvidia-cublas==13.1.0.3', 'nvidia-cuda-runtime==13.0.96', 'nvidia-cuda-cupti==13.0.85']);
  t.false(index.requests.some((q) => /triton|nvtx|cuda-bindings|filelock/.test(q.path)), 'only the pinned NVIDIA libraries asked for are fetched');
});

test.serial('a wrong sha256 is a clear error and leaves nothing of that wheel, nor an install or temp folder', async (t) => {
  const releases = fakeReleases();
  const index = await startIndex(releases);
  t.teardown(() => index.close());
  index.badHash.add(TORCH_WHEEL);
  const cache = tempDir(t);
  const { run } = setupWith(index.base, cache, 'cpu');
  const e = await t.throwsAsync(run, { instanceOf: SetupError });
  const real = sha256(releases[0]!.wheels[0]!.content);
  t.true(e!.message.startsWith(`${TORCH_WHEEL}: sha256 mismatch after downloading 1.5 MB from ${index.base.replace(/\/pypi$/, '')}/files/${TORCH_WHEEL}: got ${real}, the index says `), e!.message);
  t.regex(e!.message, /the index says [0-9a-f]{64}; the download was deleted, run again to retry\. Nothing was installed\.$/);
  t.is(e!.code, 'ERR_SETUP');
  const left = readdirSync(cache);
  t.false(left.some((n) => n.startsWith('libtorch-') || n.startsWith('.tmp-')), left.join(', '));
  // Only the verified cuda-toolkit wheel (read for its requirements) waits for the next run.
  t.deepEqual(readdirSync(path.join(cache, 'downloads')), ['cuda_toolkit-13.0.2-py2.py3-none-any.whl']);
});

test.serial('a connection cut mid-wheel keeps the .part; the next run resumes it with a Range request and installs', async (t) => {
  const index = await startIndex(fakeReleases());
  t.teardown(() => index.close());
  index.cutOnce.add(TORCH_WHEEL);
  const cache = tempDir(t);
  const first = setupWith(index.base, cache, 'cpu');
  const e = await t.throwsAsync(first.run, { instanceOf: SetupError });
  const part = path.join(cache, 'downloads', `${TORCH_WHEEL}.part`);
  t.true(e!.message.startsWith(`downloading ${TORCH_WHEEL} failed: `), e!.message);
  t.true(e!.message.includes(`What arrived is kept in ${part}: rerun \`st-native setup\` to resume`), e!.message);
  const have = statSync(part).size;
  t.true(have > 0, 'the first half arrived');
  t.false(readdirSync(cache).some((n) => n.startsWith('libtorch-') || n.startsWith('.tmp-')));

  const toolkitHits = fileHits(index.requests, 'cuda_toolkit-13.0.2-py2.py3-none-any.whl');
  const second = setupWith(index.base, cache, 'cpu');
  t.like(await second.run, { ok: true, alreadyInstalled: false }, second.lines.join('\n'));
  const resumed = index.requests.filter((r) => r.path === `/files/${TORCH_WHEEL}`).at(-1)!;
  t.is(resumed.range, `bytes=${have}-`);
  t.true(second.lines.some((l) => l.startsWith(`${TORCH_WHEEL}: resuming at`)), second.lines.join('\n'));
  t.is(fileHits(index.requests, 'cuda_toolkit-13.0.2-py2.py3-none-any.whl'), toolkitHits, 'a verified wheel from the first run is reused');
  sameBytes(t, readFileSync(path.join(cache, 'libtorch-2.11.0-cpu', 'torch/lib/libtorch_cpu.so')), LIBS['torch/lib/libtorch_cpu.so']);
  t.false(existsSync(path.join(cache, 'downloads')), 'downloads are removed once installed');
});

test.serial('offline (ST_NATIVE_OFFLINE): no request at all, and the error says what to copy instead', async (t) => {
  const index = await startIndex(fakeReleases());
  t.teardown(() => index.close());
  const cache = tempDir(t);
  const { run } = setupWith(index.base, cache, 'cpu', {}, { ST_NATIVE_OFFLINE: '1' });
  const e = await t.throwsAsync(run, { instanceOf: SetupError });
  t.true(e!.message.startsWith(`libtorch 2.11.0 (cpu) is not in ${path.join(cache, 'libtorch-2.11.0-cpu')}, and installing it failed (downloads are off: ST_NATIVE_OFFLINE is set).`), e!.message);
  t.regex(e!.message, new RegExp(`from ${index.base.replace(/\./g, '\\.')} `));
  t.regex(e!.message, /copy <cache>\/libtorch-2\.11\.0-cpu from a machine where `st-native setup --cpu` ran/);
  t.regex(e!.message, /ST_NATIVE_LIBTORCH/);
  t.is(index.requests.length, 0);
  t.deepEqual(readdirSync(cache), []);
});

test.serial('an index without the release, or that is not a JSON API, is named in the error', async (t) => {
  const index = await startIndex(fakeReleases().filter((r) => r.name !== 'torch'));
  t.teardown(() => index.close());
  const cache = tempDir(t);
  const { run } = setupWith(index.base, cache, 'cpu');
  await t.throwsAsync(run, { instanceOf: SetupError, message: new RegExp(`the package index has no torch: ${index.base.replace(/\./g, '\\.')}/torch/json answered 404`) });
  const html = setupWith(index.base.replace(/\/pypi$/, '/files'), cache, 'cpu');
  await t.throwsAsync(html.run, { instanceOf: SetupError, message: /answered 404|did not answer with JSON/ });
});

test('the method: --pip wins, else ST_NATIVE_SETUP, else the wheels', (t) => {
  t.is(chooseMethod(false, {}), 'wheels');
  t.is(chooseMethod(false, { ST_NATIVE_SETUP: 'pip' }), 'pip');
  t.is(chooseMethod(true, { ST_NATIVE_SETUP: 'wheels' }), 'pip');
  t.throws(() => chooseMethod(false, { ST_NATIVE_SETUP: 'conda' }), { message: "ST_NATIVE_SETUP must be 'wheels' or 'pip', not 'conda'" });
});

// ---------------------------------------------------------------- the load check

const shim = preloadShim();
/** A shared library this process has loaded: the C library, present wherever Node runs. */
const libc = readFileSync('/proc/self/maps', 'utf8')
  .split('\n')
  .map((l) => l.split(/\s+/)[5])
  .find((p): p is string => Boolean(p && /\/libc[.-][^/]*so/.test(p)));

(shim && libc ? test : test.skip)('the load check opens real libraries through the preload shim and reports a dlerror for a fake one', (t) => {
  t.is(verifyLoadsWithShim(shim!, [libc!]), null);
  const dir = tempDir(t);
  const fake = path.join(dir, 'libc10.so');
  mkdirSync(dir, { recursive: true });
  writeFileSync(fake, 'not an ELF file');
  const err = verifyLoadsWithShim(shim!, [libc!, fake]);
  t.truthy(err);
  t.regex(err!, /libc10\.so.*(invalid ELF header|file too short)/);
});

// ---------------------------------------------------------------- the CLI

test('CLI: offline setup exits 1 with the message; ST_NATIVE_SETUP=pip without Python names what to install', (t) => {
  const cache = tempDir(t);
  const cli = (env: NodeJS.ProcessEnv, ...args: string[]) =>
    spawnSync(process.execPath, [path.join(root, 'bin', 'st-native.js'), 'setup', ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true', ST_NATIVE_CACHE_DIR: cache, ...env } });
  const off = cli({ ST_NATIVE_OFFLINE: '1', ST_NATIVE_SETUP: '' }, '--cpu');
  t.is(off.status, 1);
  t.regex(off.stderr, /error \[ERR_SETUP\]: libtorch 2\.11\.0 \(cpu\) is not in .*downloads are off: ST_NATIVE_OFFLINE is set/);
  const pip = cli({ ST_NATIVE_OFFLINE: '', ST_NATIVE_SETUP: 'pip', ST_NATIVE_PYTHON: path.join(cache, 'no-python') }, '--cpu');
  t.is(pip.status, 1);
  t.regex(pip.stderr, /\[ERR_SETUP\].*no-python not found.*Python 3\.10-3\.14 with pip/);
  t.regex(cli({}, '--help').stdout, /--pip/);
});
