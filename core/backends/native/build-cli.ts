/**
 * `npm install` (through "prepare") and `npm run build:native` compile the native kernels ahead of the first run.
 * Never fails the install: without a compiler the reason is printed and `backend: auto` falls back to wasm.
 */
import { loadNativeKernels } from './addon.js';

const r = loadNativeKernels();
process.stderr.write(r.ok
  ? `facedistill: native kernels ${r.built ? 'built' : 'up to date'} (${r.detail}) at ${r.file}\n`
  : `facedistill: native kernels unavailable, backend auto will use wasm (${r.why})\n`);
