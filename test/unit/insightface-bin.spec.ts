import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { BuildContext } from '../../core/di/contribution.js';
import { decodeImage } from '../../core/images/decode.js';
import { stderrLogger } from '../../core/util/logger.js';
import { parseBinPack } from '../../data-sources/insightface-bin/bin-pack.js';
import { insightfaceBin } from '../../data-sources/insightface-bin/insightface-bin.js';
import { PyGlobal, PyObject, PyTuple, unpickle, type PickleValue } from '../../data-sources/insightface-bin/pickle.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { channelMeans, pythonMissing, synthJpeg } from '../helpers/jpegs.js';

// The packs are written by CPython's pickle (and numpy 2's ndarray pickling) in
// test/fixtures/make_bin_packs.py; the JPEGs by sharp below. Nothing here is produced by our reader.
const SCRIPT = path.resolve('test/fixtures/make_bin_packs.py');
const ISSAME = [true, false, true];
const COLOURS: [number, number, number][] = [[200, 40, 40], [128, 128, 128], [40, 200, 40], [40, 40, 200], [220, 200, 30], [30, 180, 200]];
const SIZE = 24;

interface Manifest { [pack: string]: { first: Record<string, number>; length: number } }

function ctx(dir: string): BuildContext {
  return testContext(dir);
}

describe('insightface-bin pack reader (strategy-specs 7.3)', function () {
  let dir = '';
  let jpegs: Buffer[] = [];
  let manifest: Manifest = {};

  before(async function () {
    const why = pythonMissing(['numpy']);
    if (why) { console.warn(`    skipped: ${why}`); this.skip(); }
    dir = tmpDir('bin');
    jpegs = [
      await synthJpeg(24, COLOURS[0]!),
      // A one-channel JPEG (decodes to RGB all the same), under 256 bytes: SHORT_BINBYTES / SHORT_BINSTRING.
      await synthJpeg(8, COLOURS[1]!, { grey: true, quality: 50 }),
      await synthJpeg(16, COLOURS[2]!, { quality: 90 }),
      await synthJpeg(32, COLOURS[3]!, { quality: 90 }),
      await synthJpeg(20, COLOURS[4]!),
      await synthJpeg(24, COLOURS[5]!),
    ];
    expect(jpegs[1]!.length, 'one element short enough for the 1-byte length forms').to.be.below(256);
    expect(jpegs[0]!.length).to.be.above(255);
    jpegs.forEach((j, i) => writeFileSync(path.join(dir, `j${i}.jpg`), j));
    writeFileSync(path.join(dir, 'issame.json'), JSON.stringify(ISSAME));
    execFileSync('python3', [SCRIPT, dir], { stdio: 'pipe' });
    manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  });

  const pack = (name: string) => path.join(dir, `${name}.bin`);
  const opcodes = (name: string) => Object.keys(manifest[name]!.first);

  // Each variant with the opcodes that make it that variant (so the test cannot pass on a degenerate pack).
  const GOOD: [string, string[]][] = [
    ['bytes-p0', ['UNICODE', 'GLOBAL', 'PUT', 'GET', 'LIST', 'INT']], // Python 3 bytes at protocol < 3: _codecs.encode(str, 'latin1')
    ['bytes-p1', ['BINUNICODE', 'GLOBAL', 'BINPUT', 'BINGET', 'INT']],
    ['bytes-p2', ['PROTO', 'BINUNICODE', 'NEWTRUE', 'TUPLE2']],
    ['bytes-p3', ['SHORT_BINBYTES', 'BINBYTES', 'NEWTRUE', 'NEWFALSE']],
    ['bytes-p4', ['FRAME', 'MEMOIZE', 'SHORT_BINBYTES', 'BINBYTES']],
    ['bytes-p5', ['FRAME', 'MEMOIZE', 'SHORT_BINBYTES', 'BINBYTES']],
    ['bytes8', ['BINBYTES8']],
    ['py2-p0', ['STRING', 'INT']],
    ['py2-p1', ['SHORT_BINSTRING', 'BINSTRING', 'INT']],
    ['py2-p2', ['SHORT_BINSTRING', 'BINSTRING', 'NEWTRUE']],
    ['numpy-p0', ['GLOBAL', 'REDUCE', 'BUILD', 'UNICODE', 'INT']],
    ['numpy-p1', ['GLOBAL', 'REDUCE', 'BUILD', 'BINUNICODE', 'BININT2']],
    ['numpy-p2', ['GLOBAL', 'REDUCE', 'BUILD', 'BINUNICODE', 'NEWFALSE']],
    ['numpy-p3', ['GLOBAL', 'REDUCE', 'BUILD', 'BINBYTES', 'SHORT_BINBYTES']],
    ['numpy-p4', ['STACK_GLOBAL', 'REDUCE', 'BUILD', 'FRAME', 'MEMOIZE']],
    ['numpy-p5', ['STACK_GLOBAL', 'REDUCE', 'BUILD', 'BINBYTES']], // numpy's _frombuffer form
    ['numpy-p5-rw', ['STACK_GLOBAL', 'BYTEARRAY8']],
  ];

  for (const [name, ops] of GOOD) {
    it(`${name}: every element is the original JPEG, labels as written`, () => {
      expect(opcodes(name)).to.include.members(ops);
      const p = parseBinPack(readFileSync(pack(name)), name);
      expect(p.issame).to.deep.equal(ISSAME);
      expect(p.images).to.have.length(6);
      p.images.forEach((b, i) => expect(Buffer.from(b).equals(jpegs[i]!), `bins[${i}]`).to.equal(true));
    });
  }

  it('numpy packs name numpy 2\'s module numpy._core.multiarray', () => {
    expect(readFileSync(pack('numpy-p2')).includes('numpy._core.multiarray\n_reconstruct')).to.equal(true);
  });

  it('pair source: pair i = (bins[2i], bins[2i+1]), folds left to the contiguous rule, RGB pixels of the JPEG', async () => {
    const src = await insightfaceBin.create({ path: pack('numpy-p3'), size: SIZE }, ctx(dir));
    const { pairs, images, listHash } = await src.init();
    expect(pairs.map((p) => [p.a, p.b, p.same, p.fold])).to.deep.equal([
      ['numpy-p3.bin#0', 'numpy-p3.bin#1', true, undefined],
      ['numpy-p3.bin#2', 'numpy-p3.bin#3', false, undefined],
      ['numpy-p3.bin#4', 'numpy-p3.bin#5', true, undefined],
    ]);
    expect(images).to.have.length(6);
    expect(listHash).to.match(/^[0-9a-f]{64}$/);
    const t = await src.load([images[5]!, images[0]!, images[1]!]);
    expect(t.shape).to.deep.equal([3, SIZE, SIZE, 3]);
    const got = t.dataSync();
    t.dispose();
    for (const [row, j] of [[0, 5], [1, 0], [2, 1]] as const) {
      const direct = await decodeImage(jpegs[j]!, { size: SIZE });
      const px = Float32Array.from(direct.data);
      expect(Array.from(got.subarray(row * px.length, (row + 1) * px.length))).to.deep.equal(Array.from(px));
      // Independent of our decoder: the colour the JPEG was made from (JPEG error and the ±8 ramp).
      channelMeans(direct.data).forEach((m, c) => expect(m, `image ${j} channel ${c}`).to.be.closeTo(COLOURS[j]![c]!, 6));
    }
    src.dispose();
  });

  it('limit keeps the first N pairs; the list hash follows images, labels and size, not the pickling', async () => {
    const hash = async (name: string, o: { limit?: number; size?: number } = {}) => {
      const r = await (await insightfaceBin.create({ path: pack(name), size: o.size ?? SIZE, ...(o.limit ? { limit: o.limit } : {}) }, ctx(dir))).init();
      return { same: r.pairs.map((p) => p.same), hash: r.listHash };
    };
    const a = await hash('bytes-p4', { limit: 2 });
    expect(a.same).to.deep.equal([true, false]);
    expect((await hash('numpy-p2', { limit: 2 })).hash).to.equal(a.hash);
    expect((await hash('py2-p0', { limit: 2 })).hash).to.equal(a.hash);
    expect((await hash('bytes-p4')).hash).to.not.equal(a.hash);
    expect((await hash('bytes-p4', { limit: 2, size: 32 })).hash).to.not.equal(a.hash);
  });

  it('a truncated pack: located errors (mid-argument, before STOP, inside a FRAME)', () => {
    const p3 = readFileSync(pack('bytes-p3'));
    const binbytes = manifest['bytes-p3']!.first.BINBYTES!;
    expect(() => parseBinPack(p3.subarray(0, binbytes + 3), 'cut.bin'))
      .to.throw(`cut.bin: pickle byte offset ${binbytes}: truncated: BINBYTES argument needs 4 bytes, the data ends after 2`);
    const newtrue = manifest['bytes-p3']!.first.NEWTRUE!;
    expect(() => parseBinPack(p3.subarray(0, newtrue), 'cut.bin'))
      .to.throw(`cut.bin: pickle byte offset ${newtrue}: the data ends without a STOP opcode (truncated?)`);
    const p4 = readFileSync(pack('bytes-p4'));
    expect(() => parseBinPack(p4.subarray(0, p4.length - 1), 'cut4.bin'))
      .to.throw(`cut4.bin: pickle byte offset ${manifest['bytes-p4']!.first.FRAME}: truncated: FRAME needs ${p4.length - 11} bytes, the data ends after ${p4.length - 12}`);
  });

  it('a corrupted pack: unknown opcodes are errors naming the byte and its offset', () => {
    const p3 = Buffer.from(readFileSync(pack('bytes-p3')));
    const at = manifest['bytes-p3']!.first.NEWFALSE!;
    p3[at] = 0xff;
    expect(() => parseBinPack(p3, 'x.bin')).to.throw(`x.bin: pickle byte offset ${at}: unknown opcode 0xff`);
    const dict = manifest['bad-dict']!.first.EMPTY_DICT!;
    expect(() => parseBinPack(readFileSync(pack('bad-dict')), 'd.bin')).to.throw(`d.bin: pickle byte offset ${dict}: unknown opcode 0x7d ('}')`);
    const trailing = Buffer.concat([readFileSync(pack('bytes-p3')), Buffer.from([0x2e])]);
    expect(() => parseBinPack(trailing, 't.bin')).to.throw(`t.bin: pickle byte offset ${trailing.length - 2}: 1 trailing byte(s) after STOP`);
  });

  it('well-formed pickles that are not packs: errors name the element and where it was written', () => {
    expect(() => parseBinPack(readFileSync(pack('bad-issame-int')), 'i.bin')).to.throw(/^i\.bin: issame_list\[0\] \(pickle byte offset \d+\): expected a bool, found int 1$/);
    expect(() => parseBinPack(readFileSync(pack('bad-count')), 'c.bin')).to.throw('c.bin: 4 images but 3 labels (a pack holds 2 images per pair)');
    expect(() => parseBinPack(readFileSync(pack('bad-dtype')), 'n.bin')).to.throw(/^n\.bin: bins\[0\] \(pickle byte offset \d+\): numpy array of dtype 'i2', expected uint8/);
  });

  it('create() reports a bad pack with the file path', async () => {
    const src = await insightfaceBin.create({ path: pack('bad-count'), size: SIZE }, ctx(dir));
    let err: Error | undefined;
    try { await src.init(); } catch (e) { err = e as Error; }
    expect(err?.message).to.equal(`${pack('bad-count')}: 4 images but 3 labels (a pack holds 2 images per pair)`);
  });

  it('an undecodable element fails load() loudly, naming it', async () => {
    const script = 'import pickle,sys; open(sys.argv[1],"wb").write(pickle.dumps(([b"\\xff\\xd8not a jpeg", b"x"], [True]), protocol=4))';
    execFileSync('python3', ['-c', script, path.join(dir, 'junk.bin')]);
    const src = await insightfaceBin.create({ path: path.join(dir, 'junk.bin'), size: SIZE }, ctx(dir));
    const { images } = await src.init();
    let err: Error | undefined;
    try { (await src.load(images)).dispose(); } catch (e) { err = e as Error; }
    expect(err?.message).to.match(/^insightface-bin: .*junk\.bin: cannot decode junk\.bin#0 \(bins\[0\]\): /);
  });
});

/** Plain JSON-able view of unpickled values, for deep comparison. */
function plain(v: PickleValue): unknown {
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (v instanceof PyGlobal) return { global: v.qualified };
  if (v instanceof PyObject) return { call: plain(v.callable), args: plain(v.args), ...(v.state === undefined ? {} : { state: plain(v.state) }) };
  return v;
}

describe('pickle VM on a value mix, all protocols (strategy-specs 7.3 opcode set)', function () {
  let dir = '';
  before(function () {
    const why = pythonMissing(['numpy']);
    if (why) { console.warn(`    skipped: ${why}`); this.skip(); }
    dir = tmpDir('pkl');
    writeFileSync(path.join(dir, 'issame.json'), '[]');
    execFileSync('python3', [SCRIPT, dir], { stdio: 'pipe' });
  });

  // The value pickled by make_bin_packs.py:
  //   ('a\\b\n\u20ac\U0001F600 \u00e9', b"\x00'\"\\\n\t\xff", [1, -1, 255, 256, 65535, 65536, -70000, 2**31 - 1], None, (), (True,), (False, True))
  const TEXT = 'a\\b\n\u20ac\u{1F600} \u00e9';
  const BYTES = [0x00, 0x27, 0x22, 0x5c, 0x0a, 0x09, 0xff];
  const rest = [[1, -1, 255, 256, 65535, 65536, -70000, 2 ** 31 - 1], null, { tuple: [] }, { tuple: [true] }, { tuple: [false, true] }];
  const py3Bytes = (p: number) => (p >= 3 ? { bytes: BYTES }
    : { call: { global: '_codecs.encode' }, args: { tuple: [String.fromCharCode(...BYTES), 'latin1'] } });

  for (const p of [0, 1, 2, 3, 4, 5]) {
    it(`protocol ${p}`, () => {
      const u = unpickle(readFileSync(path.join(dir, `values-p${p}.pkl`)));
      expect(plain(u.value)).to.deep.equal({ tuple: [TEXT, py3Bytes(p), ...rest] });
    });
  }
  for (const p of [0, 2]) {
    it(`Python-2 str at protocol ${p} (escapes in STRING / raw bytes in BINSTRING)`, () => {
      const u = unpickle(readFileSync(path.join(dir, `values-py2-p${p}.pkl`)));
      expect(plain(u.value)).to.deep.equal({ tuple: [TEXT, { bytes: BYTES }, ...rest] });
    });
  }

  it('hand-written bytes: memo reuse, MARK errors, bad GET', () => {
    // PROTO 2, SHORT_BINBYTES "ab", BINPUT 0, BINGET 0, TUPLE2, STOP
    const ok = unpickle(Uint8Array.from([0x80, 2, 0x43, 2, 0x61, 0x62, 0x71, 0, 0x68, 0, 0x86, 0x2e]));
    const t = ok.value as PyTuple;
    expect(t.items[0]).to.equal(t.items[1]); // the same object, as in Python
    expect(ok.offsetOf(t)).to.equal(10);
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x68, 3, 0x2e]))).to.throw('pickle byte offset 2: memo key 3 was never stored');
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x4e, 0x65, 0x2e]))).to.throw('pickle byte offset 3: APPENDS: no MARK on the stack');
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x86, 0x2e]))).to.throw('pickle byte offset 2: TUPLE2: stack is empty');
    expect(() => unpickle(Uint8Array.from([0x80, 6, 0x4e, 0x2e]))).to.throw('pickle byte offset 0: unsupported pickle protocol 6');
  });
});
