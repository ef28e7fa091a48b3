import { spawnSync, spawn, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve('dist/cli.js');

/** Runs the built CLI in a child process (the real entry point, exit codes included). */
export function runCli(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: opts.cwd ?? process.cwd(), env: { ...process.env, ...opts.env }, timeout: 600_000 });
}

export function runCliAsync(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? process.cwd(), env: { ...process.env, ...opts.env } });
    let stderr = '', stdout = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.stdout.on('data', (d) => (stdout += d));
    p.on('close', (code, signal) => resolve({ code, signal, stderr, stdout }));
  });
}
