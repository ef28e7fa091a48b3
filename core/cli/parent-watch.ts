import { Worker } from 'node:worker_threads';

// An ablation child's stdin is a pipe from the sweep: its end means the sweep is gone. Training
// keeps the main thread busy for long stretches whose awaits resolve as microtasks (no I/O
// between checkpoints), so a stdin listener there could wait minutes; a worker thread's own
// event loop watches the pipe instead and ends the process the moment it closes. The worker is
// unref'd and its socket closes with it, so a run that finishes exits normally.
const WATCH = `
const net = require('node:net');
const pipe = new net.Socket({ fd: 0, readable: true, writable: false });
const stop = () => process.kill(process.pid, 'SIGTERM');
pipe.on('data', () => {});
pipe.on('end', stop);
pipe.on('error', stop);
`;

/** Ends this process (SIGTERM) when stdin, a pipe from the parent, closes. */
export function stopWhenStdinCloses(): void {
  new Worker(WATCH, { eval: true }).unref();
}
