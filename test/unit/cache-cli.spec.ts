import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CACHE_KINDS } from '../../core/cache/kinds.js';
import { CacheError, cacheRootOf, clearCache, formatBytes, listCache } from '../../core/cache/store.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/fixtures.js';

/** A cache root with a few files in kind folders, one foreign entry and a link leading out of it. */
function fixture(): { runs: string; root: string; outside: string } {
  const dir = tmpDir('cache-cli');
  const runs = path.join(dir, 'runs'), root = path.join(runs, '.cache');
  const put = (rel: string, bytes: number) => {
    const f = path.join(root, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, Buffer.alloc(bytes, 1));
  };
  put('teacher-embeddings/aaaa.bin', 1000);
  put('teacher-embeddings/bbbb.bin', 2000);
  put('eval-embeddings/teacher-x-0123-p2.embeddings.f32', 4096);
  put('eval-embeddings/teacher-x-0123-p2.embeddings.f32.json', 50);
  put('sample-faces/abcd-c0.5-p2/crops.u8', 3 * 1024 * 1024);
  put('sample-faces/abcd-c0.5-p2/crops.json', 24);
  put('notes/keep.txt', 7);
  // A file outside the cache, linked from inside a kind folder: clearing removes the link only.
  const outside = path.join(dir, 'precious.txt');
  writeFileSync(outside, 'keep me');
  symlinkSync(outside, path.join(root, 'eval-embeddings', 'link-out'));
  return { runs, root, outside };
}

describe('cache: ls and clear', () => {
  it('lists every kind with its files, bytes and newest file; other entries are left out', async () => {
    const f = fixture();
    const l = await listCache(f.root);
    const by = Object.fromEntries(l.kinds.map((k) => [k.kind, k]));
    expect(l.kinds.map((k) => k.kind)).to.deep.equal(CACHE_KINDS.map((k) => k.name));
    expect([by['teacher-embeddings']!.files, by['teacher-embeddings']!.bytes]).to.deep.equal([2, 3000]);
    // The link counts as a file of its own size (the length of its target's path), not its target's.
    expect([by['eval-embeddings']!.files, by['eval-embeddings']!.bytes]).to.deep.equal([3, 4096 + 50 + f.outside.length]);
    expect([by['sample-faces']!.files, by['sample-faces']!.bytes]).to.deep.equal([2, 3 * 1024 * 1024 + 24]);
    expect([by['landmarks']!.files, by['landmarks']!.bytes, by['landmarks']!.newest]).to.deep.equal([0, 0, null]);
    expect(by['teacher-embeddings']!.newest).to.be.instanceOf(Date);
    expect(l.total.files).to.equal(7);
    expect(l.other).to.deep.equal(['notes/']);
  });

  it('clears one kind only, never through a link; clearing all keeps foreign entries', async () => {
    const f = fixture();
    const dry = await clearCache(f.root, ['eval-embeddings'], { dryRun: true });
    expect(dry.total.files).to.equal(3);
    expect(readdirSync(path.join(f.root, 'eval-embeddings'))).to.have.length(3);
    const r = await clearCache(f.root, ['eval-embeddings']);
    expect(r.removed.map((k) => [k.kind, k.files])).to.deep.equal([['eval-embeddings', 3]]);
    expect(readdirSync(path.join(f.root, 'eval-embeddings')), 'the kind folder stays, empty').to.deep.equal([]);
    expect(readFileSync(f.outside, 'utf8'), 'the link target is untouched').to.equal('keep me');
    expect(readdirSync(path.join(f.root, 'teacher-embeddings'))).to.have.length(2);
    expect(existsSync(path.join(f.root, 'sample-faces', 'abcd-c0.5-p2', 'crops.u8'))).to.equal(true);
    const all = await clearCache(f.root);
    expect(all.total).to.deep.equal({ files: 4, bytes: 3000 + 3 * 1024 * 1024 + 24 });
    expect((await listCache(f.root)).total).to.deep.equal({ files: 0, bytes: 0 });
    expect(readFileSync(path.join(f.root, 'notes', 'keep.txt'), 'utf8')).to.have.length(7);
  });

  it('a linked kind folder is neither measured nor cleared', async () => {
    const f = fixture();
    const elsewhere = path.join(path.dirname(f.runs), 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(path.join(elsewhere, 'x.bin'), 'x');
    symlinkSync(elsewhere, path.join(f.root, 'pca-face'));
    const l = await listCache(f.root);
    expect(l.kinds.find((k) => k.kind === 'pca-face')!.note).to.match(/symbolic link/);
    await clearCache(f.root, ['pca-face']);
    expect(readdirSync(elsewhere)).to.deep.equal(['x.bin']);
  });

  it('refuses a folder that is not a cache, a missing folder and unknown kinds', async () => {
    const f = fixture();
    const err = async (p: Promise<unknown>) => { try { await p; } catch (e) { return e as Error; } throw new Error('expected a rejection'); };
    const notCache = await err(clearCache(f.runs));
    expect(notCache).to.be.instanceOf(CacheError);
    expect(notCache.message).to.match(/is not a facedistill cache folder/);
    expect(await err(listCache(path.join(f.runs, 'nope')))).to.be.instanceOf(CacheError);
    expect((await err(clearCache(f.root, ['teacher-embeddings', 'bogus']))).message).to.match(/unknown cache kind "bogus"/);
    expect(readdirSync(path.join(f.root, 'teacher-embeddings')), 'nothing deleted').to.have.length(2);
    expect(() => cacheRootOf({ runsDir: 'a', cacheDir: 'b' })).to.throw(CacheError);
    expect(cacheRootOf({}, '/w')).to.equal(path.resolve('/w/runs/.cache'));
    expect(cacheRootOf({ runsDir: 'r' }, '/w')).to.equal(path.resolve('/w/r/.cache'));
    expect(cacheRootOf({ cacheDir: '/c' }, '/w')).to.equal('/c');
    // An empty folder is an empty cache.
    const empty = path.join(f.runs, 'empty-cache');
    mkdirSync(empty);
    expect((await listCache(empty)).total).to.deep.equal({ files: 0, bytes: 0 });
  });

  it('formats sizes', () => {
    expect([0, 1023, 1536, 3 * 1024 * 1024 + 24, 5 * 1024 ** 3].map(formatBytes)).to.deep.equal(['0 B', '1023 B', '1.5 KiB', '3.0 MiB', '5.0 GiB']);
  });

  it('CLI: cache ls (default runs/.cache, --runs-dir, --json) and cache clear KIND --yes; exit 2 on bad input', function () {
    this.timeout(120_000);
    const f = fixture();
    const cwd = path.dirname(f.runs);
    const ls = runCli(['cache', 'ls'], { cwd });
    expect(ls.status, ls.stderr).to.equal(0);
    expect(ls.stdout).to.match(/cache folder: runs\/\.cache/);
    expect(ls.stdout).to.match(/^teacher-embeddings\s+2\s+2\.9 KiB\s/m);
    expect(ls.stdout).to.match(/^sample-faces\s+2\s+3\.0 MiB\s/m);
    expect(ls.stdout).to.match(/^landmarks\s+0\s+0 B\s+-/m);
    expect(ls.stdout).to.match(/^total\s+7\s+3\.0 MiB/m);
    expect(ls.stdout).to.match(/not a cache kind \(left alone\): notes\//);
    const json = runCli(['cache', 'ls', '--runs-dir', f.runs, '--json']);
    expect(json.status, json.stderr).to.equal(0);
    const parsed = JSON.parse(json.stdout) as { root: string; kinds: { kind: string; files: number; bytes: number }[]; total: { files: number } };
    expect(parsed.root).to.equal(f.root);
    expect(parsed.kinds.find((k) => k.kind === 'teacher-embeddings')).to.include({ files: 2, bytes: 3000 });
    expect(parsed.total.files).to.equal(7);

    const noYes = runCli(['cache', 'clear', 'teacher-embeddings', '--cache-dir', f.root]);
    expect(noYes.status, 'stdin is not a terminal: --yes needed').to.equal(2);
    expect(noYes.stderr).to.match(/add --yes/);
    expect(readdirSync(path.join(f.root, 'teacher-embeddings'))).to.have.length(2);
    const clear = runCli(['cache', 'clear', 'teacher-embeddings', '--cache-dir', f.root, '--yes']);
    expect(clear.status, clear.stderr).to.equal(0);
    expect(clear.stdout).to.equal(`removed teacher-embeddings: 2 files, 2.9 KiB\nfreed 2.9 KiB (2 files) in ${f.root}\n`);
    expect(readdirSync(path.join(f.root, 'teacher-embeddings'))).to.deep.equal([]);
    expect(readdirSync(path.join(f.root, 'eval-embeddings'))).to.have.length(3);

    const unknown = runCli(['cache', 'clear', 'bogus', '--yes'], { cwd });
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr.trim().split('\n')).to.deep.equal([`error: unknown cache kind "bogus" (known: ${CACHE_KINDS.map((k) => k.name).join(', ')})`]);
    const missing = runCli(['cache', 'ls', '--runs-dir', path.join(cwd, 'nowhere')]);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.match(/^error: no cache folder at /);
    const notCache = runCli(['cache', 'clear', '--cache-dir', f.runs, '--yes']);
    expect(notCache.status).to.equal(2);
    expect(notCache.stderr).to.match(/is not a facedistill cache folder/);
    expect(existsSync(path.join(f.root, 'sample-faces', 'abcd-c0.5-p2', 'crops.u8'))).to.equal(true);
  });
});
