// An example hook plugin: a custom metric logger. It writes `<run>/curve.csv`, one row per
// evaluation point (`eval.every`) with the mean of each loss term over the steps since the
// previous point, so the curve and the loss can be plotted side by side in any tool.
// A recipe loads it like any plugin:  plugins: [dist/examples/hooks/curve-csv.js]
// (in your own project: import { TOKENS } from 'facedistill').
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ContainerModule } from 'inversify';
import { TOKENS, type Hook, type RunEvent } from '../../core/index.js';

export class CurveCsvHook implements Hook {
  readonly priority = 100; // after the engine's own hooks, if any
  private file?: string;
  private sums: Record<string, number> = {};
  private steps = 0;

  on(e: RunEvent): void {
    if (e.type === 'run-start') {
      this.file = path.join(e.dir, 'curve.csv');
      this.sums = {};
      this.steps = 0;
      writeFileSync(this.file, 'stage,step,model,images_seen,train_sec,accuracy,std,auc,mean_terms\n');
    } else if (e.type === 'step') {
      for (const [k, v] of Object.entries(e.terms)) this.sums[k] = (this.sums[k] ?? 0) + v;
      this.steps++;
    } else if (e.type === 'eval-point' && this.file) {
      const p = e.point;
      const terms = this.steps > 0 ? Object.entries(this.sums).map(([k, v]) => `${k}=${(v / this.steps).toPrecision(5)}`).join(' ') : '';
      appendFileSync(this.file, `${e.stage},${e.step},${p.model},${p.imagesSeen},${p.elapsedSec.toFixed(1)},${p.accuracy},${p.std},${p.auc},${terms}\n`);
      if (p.model === 'student') { this.sums = {}; this.steps = 0; }
    }
  }
}

export default new ContainerModule(({ bind }) => { bind<Hook>(TOKENS.Hook).toConstantValue(new CurveCsvHook()); });
