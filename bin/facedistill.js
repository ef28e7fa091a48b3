#!/usr/bin/env node
// Launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
import('../dist/cli.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli.js')) {
    process.stderr.write('facedistill is not built yet: run `npm run build` (npm install does it through "prepare")\n');
    process.exit(2);
  }
  throw e;
});
