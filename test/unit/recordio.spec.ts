import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { DataSource } from '../../core/interfaces/data-source.js';
import type { BuildContext } from '../../core/di/contribution.js';
import { decodeImage } from '../../core/images/decode.js';
import { stderrLogger } from '../../core/util/logger.js';
import { readPackLayout } from '../../data-sources/recordio/pack-layout.js';
import { recordio, type RecordioSource } from '../../data-sources/recordio/recordio.js';
import { parseIdx, readIdx, RecordFile } from '../../data-sources/recordio/recordio-file.js';
import { testContext, tmpDir } from '../helpers/fixtures.js';
import { channelMeans, pythonMissing, synthJpeg } from '../helpers/jpegs.js';

// The packs are written by test/fixtures/make_recordio.py (struct-packed from the byte layouts of
// strategy-specs 7.8, including dmlc's split-at-magic writer logic); the JPEGs by sharp below.
const SCRIPT = path.resolve('test/fixtures/make_recordio.py');
const SIDE = 20;
const COLOURS: [number, number, number][] = Array.from({ length: 12 }, (_, i) => [40 + 15 * i, 220 - 12 * i, i % 2 ? 60 : 190]);

interface RecMeta { offset: number; parts: number; sha256: string; length: number; label?: number; image?: number | null; identity?: number; header?: boolean }
type Manifest = Record<'pack' | 'flat', Record<string, RecMeta>>;

function ctx(seed = 0): BuildContext {
  return testContext('.', seed);
}

const base = { size: SIDE, flip: false, cacheImages: 16 };

async function drain(src: DataSource, batch: number, times: number) {
  const out: { keys: string[]; labels: number[]; pixels: Float32Array[]; unflipped: (string | null)[] }[] = [];
  for (let t = 0; t < times; t++) {
    const b = await src.next(batch);
    const data = b.images.dataSync() as Float32Array;
    const px = SIDE * SIDE * 3;
    out.push({ keys: [...b.keys], labels: Array.from(b.labels!), pixels: b.keys.map((_, i) => data.slice(i * px, (i + 1) * px)), unflipped: b.keys.map((_, i) => b.unflipped?.[i] ?? null) });
    b.images.dispose();
  }
  return out;
}

describe('recordio training packs (strategy-specs 7.8)', function () {
  let dir = '';
  let jpegs: Buffer[] = [];
  let man: Manifest;
  let direct: Uint8Array[] = [];

  before(async function () {
    const why = pythonMissing();
    if (why) { console.warn(`    skipped: ${why}`); this.skip(); }
    dir = tmpDir('rec');
    jpegs = await Promise.all(COLOURS.map((c) => synthJpeg(SIDE, c)));
    jpegs.forEach((j, i) => writeFileSync(path.join(dir, `j${i}.jpg`), j));
    execFileSync('python3', [SCRIPT, dir], { stdio: 'pipe' });
    man = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    direct = await Promise.all(jpegs.map(async (j) => (await decodeImage(j, { size: SIDE })).data));
  });

  const pack = (name = 'pack') => path.join(dir, name);
  /** A copy of a pack with `edit` applied to its train.rec bytes. */
  const corrupted = (name: string, edit: (rec: Buffer) => Buffer, files: Record<string, string> = {}) => {
    const out = path.join(tmpDir('rec-bad'), name);
    cpSync(pack(), out, { recursive: true });
    writeFileSync(path.join(out, 'train.rec'), edit(readFileSync(path.join(out, 'train.rec'))));
    for (const [f, text] of Object.entries(files)) writeFileSync(path.join(out, f), text);
    return out;
  };
  const initError = async (root: string) => {
    const src = await recordio.create({ ...base, root }, ctx());
    try { await src.init(); } catch (e) { return (e as Error).message; } finally { src.dispose(); }
    return 'no error';
  };

  it('the writer split keys 5 and 7 at the magic word (cflag 1 … 3 in the file); the reader rejoins every payload', async () => {
    const raw = readFileSync(path.join(pack(), 'train.rec'));
    const cflag = (off: number) => raw.readUInt32LE(off + 4) >>> 29;
    expect(cflag(man.pack['5']!.offset)).to.equal(1);
    expect(cflag(man.pack['7']!.offset)).to.equal(1);
    expect(cflag(man.pack['1']!.offset)).to.equal(0);
    expect([man.pack['5']!.parts, man.pack['7']!.parts]).to.deep.equal([2, 3]);
    const rec = await RecordFile.open(path.join(pack(), 'train.rec'));
    for (const [key, m] of Object.entries(man.pack)) {
      for (const hint of [16384, 8]) { // one read, and a first read too short for anything
        const p = await rec.read(m.offset, hint);
        expect(p.length, `key ${key}`).to.equal(m.length);
        expect(createHash('sha256').update(p).digest('hex'), `key ${key} hint ${hint}`).to.equal(m.sha256);
      }
    }
    await rec.close();
  });

  it('layout: header record [14, 17) → image keys 1…13, 3 identities with their key ranges; idx order is write order', async () => {
    const { index } = await readIdx(path.join(pack(), 'train.idx'));
    expect(Array.from(index.keys)).to.deep.equal([...Array.from({ length: 16 }, (_, i) => i + 1), 0]);
    const rec = await RecordFile.open(path.join(pack(), 'train.rec'));
    const l = await readPackLayout(pack(), rec, index, stderrLogger(true));
    expect(l.kind).to.equal('header');
    expect(Array.from(l.imageKeys)).to.deep.equal(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(l.classes).to.equal(3);
    // Identity ranges written: [1, 6), [6, 10), [10, 14).
    expect(Array.from(l.classOfKey!)).to.deep.equal([-1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    expect(l.property).to.deep.equal({ classes: 3, height: 112, width: 112, images: 13 });
    await rec.close();
  });

  it('batches: labels from label / label[0], pixels of the stored JPEG, the unreadable record skipped and listed', async () => {
    const src = await recordio.create({ ...base, root: pack() }, ctx(7)) as RecordioSource;
    const info = await src.init();
    expect([info.images, info.identities, info.skipped.length]).to.deep.equal([13, 3, 0]);
    expect(Array.from(src.imageClasses()!)).to.deep.equal([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    const [b] = await drain(src, 13, 1);
    expect(b!.keys).to.have.length(13);
    // 12 readable records in the first epoch + 1 from the second to fill the batch.
    expect(new Set(b!.keys.slice(0, 12))).to.deep.equal(new Set(Array.from({ length: 12 }, (_, i) => `recordio:${i + 1}`)));
    expect(b!.keys).to.not.include('recordio:13');
    b!.keys.forEach((k, i) => {
      const key = Number(k.split(':')[1]);
      const m = man.pack[String(key)]!;
      expect(b!.labels[i], k).to.equal(m.label);
      expect(Array.from(b!.pixels[i]!), k).to.deep.equal(Array.from(direct[m.image!]!));
      channelMeans(direct[m.image!]!).forEach((v, c) => expect(v, `${k} channel ${c}`).to.be.closeTo(COLOURS[m.image!]![c]!, 6));
    });
    expect(info.skipped).to.have.length(1);
    expect(info.skipped[0]!.file).to.equal(`train.rec key 13 (byte ${man.pack['13']!.offset})`);
    expect(info.skipped[0]!.reason).to.match(/^Input buffer has corrupt header/); // sharp/libvips on the non-JPEG bytes
    await drain(src, 13, 2);
    expect(info.skipped, 'each bad record is listed once').to.have.length(1);
    src.dispose();
  });

  it('flip: seeded, p = 0.5, named in the key, pixels mirrored', async () => {
    const src = await recordio.create({ ...base, flip: true, root: pack() }, ctx(3));
    await src.init();
    const batches = await drain(src, 8, 4);
    let flips = 0;
    for (const b of batches) {
      b.keys.forEach((k, i) => {
        const [, key, f] = k.split(':');
        const want = direct[man.pack[key!]!.image!]!;
        const mirrored = new Uint8Array(want.length);
        for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) for (let c = 0; c < 3; c++) mirrored[(y * SIDE + SIDE - 1 - x) * 3 + c] = want[(y * SIDE + x) * 3 + c]!;
        expect(Array.from(b.pixels[i]!), k).to.deep.equal(Array.from(f === 'flip' ? mirrored : want));
        expect(b.unflipped[i], `unflipped key of ${k}`).to.equal(f === 'flip' ? `recordio:${key}` : null);
        if (f === 'flip') flips++;
      });
    }
    // 32 fair coin flips: the seeded stream gives some of each (P(all equal) = 2^-31).
    expect(flips).to.be.above(0).and.below(32);
    src.dispose();
  });

  it('deterministic per seed; state()/restore() continues the same stream (keys, flips, pixels); no tensor leak', async () => {
    const make = async (seed: number) => { const s = await recordio.create({ ...base, flip: true, root: pack() }, ctx(seed)); await s.init(); return s; };
    const a = await make(11), b = await make(11), c = await make(12);
    const ka = (await drain(a, 5, 3)).flatMap((x) => x.keys);
    expect((await drain(b, 5, 3)).flatMap((x) => x.keys)).to.deep.equal(ka);
    expect((await drain(c, 5, 3)).flatMap((x) => x.keys)).to.not.deep.equal(ka);
    const st = JSON.parse(JSON.stringify(a.state()));
    const after = await drain(a, 5, 3);
    const d = await make(99);
    d.restore(st);
    const resumed = await drain(d, 5, 3);
    expect(resumed.map((x) => x.keys)).to.deep.equal(after.map((x) => x.keys));
    expect(resumed.map((x) => x.labels)).to.deep.equal(after.map((x) => x.labels));
    expect(resumed.map((x) => x.pixels.map((p) => Array.from(p)))).to.deep.equal(after.map((x) => x.pixels.map((p) => Array.from(p))));
    const before = tf.memory().numTensors;
    await drain(d, 6, 5);
    expect(tf.memory().numTensors).to.equal(before);
    for (const s of [a, b, c, d]) s.dispose();
  });

  it('flag-0 header: every key (0 included) is an image with its scalar label; limit takes the first keys', async () => {
    const src = await recordio.create({ ...base, root: pack('flat') }, ctx(1));
    const info = await src.init();
    expect([info.images, info.identities]).to.deep.equal([12, 3]);
    const [b] = await drain(src, 12, 1);
    expect(new Set(b!.keys)).to.deep.equal(new Set(Array.from({ length: 12 }, (_, k) => `recordio:${k}`)));
    b!.keys.forEach((k, i) => {
      const key = Number(k.split(':')[1]);
      expect(b!.labels[i]).to.equal(key % 3);
      expect(Array.from(b!.pixels[i]!)).to.deep.equal(Array.from(direct[key]!));
    });
    const lim = await recordio.create({ ...base, root: pack('flat'), limit: 4 }, ctx(1));
    expect((await lim.init()).images).to.equal(4);
    const [c] = await drain(lim, 8, 1);
    expect([...new Set(c!.keys)].sort()).to.deep.equal(['recordio:0', 'recordio:1', 'recordio:2', 'recordio:3']);
    src.dispose(); lim.dispose();
  });

  it('a bad magic, the old 0x3ED7230A variant and a truncated file are clear, located errors', async () => {
    const off0 = man.pack['0']!.offset;
    const setMagic = (off: number, v: number) => (r: Buffer) => { r.writeUInt32LE(v, off); return r; };
    expect(await initError(corrupted('bad-magic', setMagic(off0, 0x12345678))))
      .to.equal(`train.rec: record at byte offset ${off0}: bad magic 0x12345678 at ${off0} (expected 0xCED7230A; wrong offset in the .idx or a corrupt file)`);
    expect(await initError(corrupted('old-magic', setMagic(off0, 0x3ed7230a))))
      .to.match(new RegExp(`^train\\.rec: record at byte offset ${off0}: magic 0x3ED7230A at ${off0} is the old RecordIO variant`));
    // Record 0 is written last: cutting 4 bytes off leaves its part short.
    const size = readFileSync(path.join(pack(), 'train.rec')).length;
    expect(await initError(corrupted('cut', (r) => r.subarray(0, size - 4))))
      .to.equal(`train.rec: record at byte offset ${off0}: part at ${off0} needs ${size - off0} bytes but the file ends at ${size - 4} (truncated?)`);
    expect(await initError(corrupted('cut2', (r) => r.subarray(0, off0))))
      .to.equal(`train.idx: key 0 points at byte ${off0}, beyond the end of train.rec (${off0} bytes; truncated?)`);
    // A bad magic inside the second part of key 5: the join fails there, naming both offsets.
    const part2 = man.pack['5']!.offset + 8 + 8;
    const src = await recordio.create({ ...base, root: corrupted('bad-part', setMagic(part2, 0)) }, ctx());
    await src.init();
    let err = '';
    try { await drain(src, 13, 1); } catch (e) { err = (e as Error).message; }
    expect(err).to.equal(`train.rec: record at byte offset ${man.pack['5']!.offset}: bad magic 0x00000000 at ${part2} (expected 0xCED7230A; wrong offset in the .idx or a corrupt file)`);
    src.dispose();
  });

  it('labels that disagree with the identity records or are not class ids are skipped; a header range beyond 2^24 is an error', async () => {
    // Payload offset 4 = the IRHeader label field (float32 LE); records 2 and 3 are single-part.
    const setLabel = (key: string, v: number) => (r: Buffer) => { r.writeFloatLE(v, man.pack[key]!.offset + 8 + 4); return r; };
    const root = corrupted('labels', (r) => setLabel('3', 1.5)(setLabel('2', 2)(r)));
    const src = await recordio.create({ ...base, root }, ctx());
    const info = await src.init();
    const [b] = await drain(src, 10, 1);
    expect(b!.keys).to.not.include.members(['recordio:2', 'recordio:3', 'recordio:13']);
    expect(info.skipped.map((s) => s.reason).filter((r) => r.startsWith('label')).sort()).to.deep.equal([
      'label 1.5 is not a non-negative integer',
      'label 2 but the identity records put key 2 in class 0',
    ]);
    src.dispose();
    // Record 0 stores [A, B_end] = [14, 17] as float32 at payload offset 24.
    const bigA = corrupted('big-a', (r) => { r.writeFloatLE(2 ** 24, man.pack['0']!.offset + 8 + 24); return r; });
    expect(await initError(bigA)).to.equal(`train.rec: key 0 (byte ${man.pack['0']!.offset}): header A = 16777216 is ≥ 2^24, where float32 labels are no longer exact`);
  });

  it('bad idx lines, a property that disagrees with the header, and labels beyond 2^24 are rejected', async () => {
    expect(() => parseIdx(Buffer.from('1\t0\n2\t88\nthree\t176\n'), 'x.idx')).to.throw('x.idx:3: expected "<key>\\t<offset>", found "three\t176"');
    expect(() => parseIdx(Buffer.from('1\t0\n1\t88\n'), 'x.idx')).to.throw('x.idx: key 1 listed twice (offsets 0 and 88)');
    expect(() => parseIdx(Buffer.from('\n\n'), 'x.idx')).to.throw('x.idx: no records listed');
    expect(parseIdx(Buffer.from('0\t8\r\n7\t16\r\n\r\n9000000\t24\n'), 'x.idx').offsetOf(9000000)).to.equal(24); // sparse keys, CRLF
    expect(await initError(corrupted('prop', (r) => r, { property: '4,112,112\n' })))
      .to.match(/property: num_classes 4 but the header record of train\.rec lists 3 identity records \(\[14, 17\)\)$/);
    expect(await initError(corrupted('big', (r) => r, { property: '16777217,112,112\n' })))
      .to.match(/property:1: 16777217 classes: labels ≥ 2\^24 are not exact in float32/);
    expect(await initError(corrupted('prop-bad', (r) => r, { property: '3;112;112\n' })))
      .to.match(/property:1: expected "num_classes,height,width", found "3;112;112"$/);
  });
});
