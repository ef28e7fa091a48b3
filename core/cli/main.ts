import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import type { ContainerModule } from 'inversify';
import { stringify as toYaml } from 'yaml';
import { selectBackend } from '../backends/select.js';
import { createRootContainer, importPlugin, PluginError } from '../di/container.js';
import { ContributionRegistry } from '../di/registry.js';
import { SLOTS } from '../di/contribution.js';
import { RunError } from '../engine/errors.js';
import { build, buildContext, evaluateModels, runDirOf, runRecipe } from '../engine/run.js';
import { planRuns } from '../ablation/cells.js';
import { isFinished } from '../ablation/results.js';
import { runAblation } from '../ablation/runner.js';
import { stopWhenStdinCloses } from './parent-watch.js';
import { CacheError, cacheRootOf, clearCache, formatBytes, listCache, listingJson, nFiles, renderClear, renderListing, shown } from '../cache/store.js';
import { CACHE_KINDS } from '../cache/kinds.js';
import { readAblation } from '../ablation/spec.js';
import { RecipeError } from '../recipe/errors.js';
import { recipeJsonSchema } from '../recipe/json-schema.js';
import { loadRecipe } from '../recipe/load.js';
import { mergedRecipe } from '../recipe/validate.js';
import { renderReport } from '../report/markdown.js';
import { writeFileAtomic, writeJsonAtomic, ensureDir } from '../util/fs.js';
import { stderrLogger } from '../util/logger.js';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Teacher } from '../interfaces/teacher.js';

const collect = (v: string, prev: string[]) => [...prev, v];


/** Exit codes: 0 ok, 2 bad input (recipe, flags), 3 the run failed (and said why). */
export async function main(argv: readonly string[], modules: readonly ContainerModule[]): Promise<number> {
  const root = createRootContainer(modules);
  // --debug anywhere on the line: an unexpected error prints its stack too (otherwise one line).
  const debug = argv.includes('--debug');
  argv = argv.filter((a) => a !== '--debug');
  const program = new Command('facedistill')
    .description('Knowledge distillation of face-recognition models on TensorFlow.js')
    .addHelpText('after', '\nAdd --debug to any command to see the stack of an unexpected error.')
    .exitOverride()
    .showHelpAfterError();

  program.command('run')
    .description('train the recipe\'s stages, export the student, evaluate, write runs/<name>/report.md')
    .argument('<recipe>', 'recipe YAML')
    .option('--set <key=value>', 'override a recipe key (repeatable), e.g. --set stages.0.steps=20', collect, [])
    .option('--resume', 'continue the run in runs/<name>/ from its latest checkpoint')
    .option('--fresh', 'move an existing runs/<name>/ aside and start again')
    .option('--quiet', 'no progress bar or info lines')
    .addOption(new Option('--stop-with-parent', 'exit when stdin closes (ablation cells: a killed sweep leaves no orphan runs)').hideHelp())
    .addHelpText('after', '\nExample:\n  npx facedistill run examples/quickstart.yaml --set stages.0.steps=50\n')
    .action(async (file: string, o: { set: string[]; resume?: boolean; fresh?: boolean; quiet?: boolean; stopWithParent?: boolean }) => {
      if (o.stopWithParent) stopWhenStdinCloses();
      const log = stderrLogger(o.quiet);
      const recipe = await loadRecipe(file, o.set, root);
      const res = await runRecipe(recipe, { root, log, ...(o.resume ? { resume: true } : {}), ...(o.fresh ? { fresh: true } : {}), progress: !o.quiet });
      if (res.student && res.teacher) {
        log.info(`teacher ${(100 * res.teacher.accuracy).toFixed(2)} ± ${(100 * res.teacher.std).toFixed(2)} % · student ${(100 * res.student.accuracy).toFixed(2)} ± ${(100 * res.student.std).toFixed(2)} %`);
      }
    });

  program.command('plan')
    .description('print the merged recipe, the resolved components and the stage schedule; trains nothing')
    .argument('<recipe>', 'recipe YAML')
    .option('--set <key=value>', 'override a recipe key (repeatable)', collect, [])
    .addHelpText('after', '\nExample:\n  npx facedistill plan examples/quickstart.yaml --set seed=3\n')
    .action(async (file: string, o: { set: string[] }) => {
      const recipe = await loadRecipe(file, o.set, root);
      const lines = ['# merged recipe', toYaml(mergedRecipe(recipe)).trimEnd(), '', '# components'];
      const comp = (label: string, c?: { kind: string; contribution: { summary: string } }) => { if (c) lines.push(`${label.padEnd(22)} ${c.kind.padEnd(20)} ${c.contribution.summary}`); };
      comp('teacher', recipe.teacher); comp('student', recipe.student); comp('data', recipe.data); comp('eval.pairs', recipe.evalPairs);
      lines.push('', '# stages');
      let total = 0;
      recipe.stages.forEach((s, i) => {
        const r = s.recipe;
        lines.push(`${i + 1}. ${r.name}: ${s.strategy.kind}, ${r.steps} steps × batch ${r.batchSize} = ${r.steps * r.batchSize} images; ${r.optimizer.kind} lr ${r.optimizer.lr}, schedule ${r.schedule.kind}${r.schedule.warmupSteps ? ` (warm-up ${r.schedule.warmupSteps})` : ''}; checkpoint every ${r.checkpointEvery}${s.data ? `; data ${s.data.kind}` : ''}${s.teacher ? `; teacher ${s.teacher.kind}` : ''}`);
        total += r.steps;
      });
      lines.push('', `run folder: ${path.relative(process.cwd(), runDirOf(recipe))}/ · ${total} steps · backend ${recipe.shape.backend} · seed ${recipe.shape.seed} · recipe hash ${recipe.hash.slice(0, 12)}`);
      process.stdout.write(lines.join('\n') + '\n');
    });

  program.command('eval')
    .description('evaluate the recipe\'s teacher (and a trained student) on its eval pairs')
    .requiredOption('--recipe <recipe>', 'recipe YAML with teacher: and eval:')
    .option('--set <key=value>', 'override a recipe key (repeatable)', collect, [])
    .option('--student <model.json>', 'also evaluate this student (e.g. runs/quickstart/student/model.json) and report agreement')
    .option('--json', 'print the results as JSON on stdout')
    .addHelpText('after', '\nExample:\n  npx facedistill eval --recipe examples/lfw-eval.yaml --json\n')
    .action(async (o: { recipe: string; set: string[]; student?: string; json?: boolean }) => {
      const log = stderrLogger(false);
      const recipe = await loadRecipe(o.recipe, o.set, root);
      if (!recipe.evalPairs) throw new RecipeError(recipe.source.locate([]), 'eval', 'required key missing: `eval:` with `pairs:` is needed to evaluate');
      const t0 = performance.now();
      const backend = await selectBackend(recipe.shape.backend, log);
      const dir = runDirOf(recipe);
      await ensureDir(dir);
      const ctx = buildContext(recipe, dir, log);
      const teacher = await build(recipe.teacher, ctx);
      const reg = ContributionRegistry.fromContainer(root);
      const studentModel = o.student ? (await reg.find('teacher', 'layers-model')!.create({ path: o.student }, ctx)) as Teacher : undefined;
      try {
        const res = await evaluateModels(recipe, dir, log, {
          teacher, ...(studentModel ? { student: { name: `student ${o.student}`, embed: (x) => studentModel.embed(x) } } : {}),
        });
        await writeJsonAtomic(path.join(dir, 'eval.json'), res);
        await writeFileAtomic(path.join(dir, 'report.md'), renderReport({
          run: recipe.shape.name, recipeFile: recipe.source.file, backend: backend.name, backendReason: backend.reason,
          wallSec: (performance.now() - t0) / 1000, stages: [], data: [],
          models: [{ role: 'teacher', name: teacher.name, params: teacher.paramCount, dim: teacher.embeddingDim, result: res.teacher }],
        }));
        if (o.json) process.stdout.write(JSON.stringify({ model: teacher.name, backend: backend.name, ...res.teacher, ...(res.student ? { student: res.student, agreement: res.agreement } : {}) }) + '\n');
        else log.info(`${teacher.name}: accuracy ${(100 * res.teacher.accuracy).toFixed(2)} ± ${(100 * res.teacher.std).toFixed(2)} % (report: ${path.relative(process.cwd(), path.join(dir, 'report.md'))})`);
      } finally {
        teacher.dispose();
        studentModel?.dispose();
      }
    });

  program.command('ablate')
    .description('run an ablation (factors × levels × seeds, each run in its own process), resumably; write runs/<name>/report.md, report.html, results.csv, results.json')
    .argument('<ablation>', 'ablation YAML (base recipe, factors, seeds, baseline, parallel)')
    .option('--set <key=value>', 'override an ablation key (repeatable), e.g. --set parallel=2 --set seeds=[0]', collect, [])
    .option('--parallel <n>', 'runs at once (overrides parallel:)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new RecipeError({ file: '--parallel' }, '', `expected a positive integer, got "${v}"`);
      return n;
    })
    .option('--report-only', 'run nothing: rewrite the report from the runs already finished')
    .option('--plan', 'list the runs (and which are finished) and exit')
    .addHelpText('after', '\nA finished run (same merged recipe hash) is never re-run; run the command again to continue a killed sweep.\n\nExample:\n  npx facedistill ablate examples/ablations/feature-kd-losses-short.yaml\n')
    .action(async (file: string, o: { set: string[]; parallel?: number; reportOnly?: boolean; plan?: boolean }) => {
      const log = stderrLogger(false);
      const spec = readAblation(file, o.set);
      const rootFor = () => createRootContainer(modules);
      if (o.plan) {
        const { runs, layout } = await planRuns(spec, rootFor);
        for (const r of runs) process.stdout.write(`${r.name.padEnd(40)} ${isFinished(r.dir, r.recipe.hash, r.recipe.evalPairs !== undefined) ? 'finished' : 'to run'}  ${r.cell.isBaseline ? 'baseline ' : ''}recipe ${r.recipe.hash.slice(0, 12)}\n`);
        process.stdout.write(`${runs.length} runs → ${path.relative(process.cwd(), layout.root)}/\n`);
        return;
      }
      const res = await runAblation(spec, {
        rootFor, log, cliEntry: fileURLToPath(new URL('../../cli.js', import.meta.url)),
        ...(o.parallel !== undefined ? { parallel: o.parallel } : {}), ...(o.reportOnly ? { reportOnly: true } : {}),
      });
      log.info(`report: ${path.relative(process.cwd(), path.join(res.layout.root, 'report.md'))} and report.html (${res.skipped} runs were finished already, ${res.finished} finished now, ${res.failed} failed)`);
      if (res.failed > 0) throw new RunError(`${res.failed} run(s) failed; their errors are in the report. Run the command again to retry them`);
    });

  program.command('schema')
    .description('print the JSON Schema of recipes (every registered kind) for editor completion')
    .option('--plugin <module>', 'also include a plugin\'s kinds (repeatable)', collect, [])
    .addHelpText('after', '\nExample:\n  npx facedistill schema --plugin dist/examples/custom-strategy/hard-cosine-kd.js > recipe.schema.json\n')
    .action(async (o: { plugin: string[] }) => {
      for (const p of o.plugin) {
        try {
          await importPlugin(root, p);
        } catch (e) {
          if (e instanceof PluginError) {
            process.stderr.write(`error: --plugin ${p}: ${e.message}\n`);
            throw new CommanderError(2, 'facedistill.plugin', e.message);
          }
          throw e;
        }
      }
      process.stdout.write(JSON.stringify(recipeJsonSchema(ContributionRegistry.fromContainer(root)), null, 2) + '\n');
    });

  const cache = program.command('cache')
    .description('list, size and clear the shared caches (teacher and evaluation embeddings, landmarks, detected faces, fitted generators)')
    .addHelpText('after', `\nThe cache folder is runs/.cache (relative to the working directory), <DIR>/.cache with --runs-dir DIR, or DIR with --cache-dir DIR (a recipe's cacheDir:).\nKinds: ${CACHE_KINDS.map((k) => k.name).join(', ')}.\n\nExamples:\n  npx facedistill cache ls\n  npx facedistill cache clear eval-embeddings --yes\n`);
  // Cache errors (missing folder, not a cache folder, unknown kind) are bad input: one line, exit 2.
  const cacheAction = <A extends unknown[]>(f: (...a: A) => Promise<void>) => async (...a: A) => {
    try {
      await f(...a);
    } catch (e) {
      if (!(e instanceof CacheError)) throw e;
      process.stderr.write(`error: ${e.message}\n`);
      throw new CommanderError(2, 'facedistill.cache', e.message);
    }
  };
  type CacheDirOptions = { runsDir?: string; cacheDir?: string };
  const cacheDirOptions = (c: Command) => c
    .option('--runs-dir <dir>', 'the runs folder whose .cache to use (default: runs)')
    .option('--cache-dir <dir>', 'the cache folder itself (a recipe\'s cacheDir:)');
  cacheDirOptions(cache.command('ls')
    .description('one row per cache kind: files, size, newest file; and the total'))
    .option('--json', 'print the listing as JSON on stdout')
    .addHelpText('after', '\nExample:\n  npx facedistill cache ls --runs-dir runs --json\n')
    .action(cacheAction(async (o: CacheDirOptions & { json?: boolean }) => {
      const listing = await listCache(cacheRootOf(o));
      process.stdout.write(o.json ? JSON.stringify(listingJson(listing)) + '\n' : renderListing(listing));
    }));
  cacheDirOptions(cache.command('clear')
    .description('delete the files of the given cache kinds (all kinds when none are given); they are recomputed when next needed')
    .argument('[kinds...]', `cache kinds: ${CACHE_KINDS.map((k) => k.name).join(', ')}`))
    .option('--yes', 'do not ask (needed when stdin is not a terminal)')
    .option('--dry-run', 'delete nothing: print what would be removed')
    .addHelpText('after', '\nOnly files inside the known kind folders are deleted; symbolic links are never followed. Do not clear while runs are using the cache.\n\nExamples:\n  npx facedistill cache clear --yes\n  npx facedistill cache clear teacher-embeddings eval-embeddings --cache-dir /data/fd-cache --dry-run\n')
    .action(cacheAction(async (kinds: string[], o: CacheDirOptions & { yes?: boolean; dryRun?: boolean }) => {
      const root = cacheRootOf(o);
      const plan = await clearCache(root, kinds, { dryRun: true });
      if (o.dryRun || plan.total.files === 0) { process.stdout.write(renderClear(o.dryRun ? plan : { ...plan, dryRun: false })); return; }
      if (!o.yes) {
        const what = `${nFiles(plan.total.files)} (${formatBytes(plan.total.bytes)}) of ${plan.removed.filter((k) => k.files > 0).map((k) => k.kind).join(', ')} in ${shown(plan.root)}`;
        if (!process.stdin.isTTY) throw new CacheError(`cache clear would remove ${what}; add --yes to remove them (or --dry-run to list them)`);
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`remove ${what}? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) { process.stderr.write('nothing removed\n'); return; }
      }
      process.stdout.write(renderClear(await clearCache(root, kinds)));
    }));

  program.command('list')
    .description('list the registered component kinds per slot')
    .action(() => {
      const reg = ContributionRegistry.fromContainer(root);
      for (const s of SLOTS) for (const c of reg.all(s)) process.stdout.write(`${s.padEnd(9)} ${c.kind.padEnd(22)} ${c.summary}\n`);
    });

  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof RecipeError) { process.stderr.write(`error: ${e.message}\n`); return 2; }
    if (e instanceof RunError) { process.stderr.write(`error: ${e.message}\n`); return 3; }
    const err = e as Error;
    process.stderr.write(debug ? `error: ${err.stack ?? String(e)}\n` : `error: ${err.message ?? String(e)} (${err.name ?? 'Error'}; --debug shows where)\n`);
    return 3;
  }
}
