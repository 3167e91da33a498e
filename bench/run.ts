/**
 * `npm run bench [-- --quick] [-- --only NAME[,NAME]]`: the benchmark suite.
 * Prints a table and writes bench/results.json. BENCHMARKS.md explains every
 * figure and records a full run.
 *
 * Options:
 *   --quick            1,000 and 10,000-message backlogs only, 4-second latency runs
 *                      (S with fsync=true only), 10 s of idle, fewer repetitions (about two minutes)
 *   --only NAME,...    only these groups (see GROUPS)
 *   --reps N           repetitions of each measured run (default 3; quick 2)
 *   --fsync on|off|both  [spool] fsync settings for the S route (default both, true first)
 *   --sizes N,...      backlog sizes for drain-s / drain-t
 *   --main FILE        run another build's dist/src/main.js (A/B comparisons)
 *   --cpu-prof DIR     write a V8 CPU profile of every daemon run into DIR
 *                      (read one with: node dist/bench/profile.js FILE)
 *   --out FILE         where to write the JSON results (default bench/results.json)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { busyProcesses, describeMachine, loadavg } from './lib/machine.js';
import { Results, table } from './lib/report.js';
import { benchDrain } from './cases/drain.js';
import { benchLatency } from './cases/latency.js';
import { benchFax, benchFaxBaseline, benchSpeech } from './cases/render.js';
import { benchIdle } from './cases/idle.js';
import { addDrainRatios, benchFloor, benchPerProcess } from './cases/baselines.js';
import type { Context } from './cases/context.js';

export const GROUPS = ['drain-s', 'baseline-floor', 'baseline-process', 'drain-t', 'latency-s', 'latency-t', 'fax', 'baseline-fax', 'speech', 'idle'] as const;
type Group = (typeof GROUPS)[number];

function pressure(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kind of ['cpu', 'io']) {
    try {
      out[kind] = readFileSync(`/proc/pressure/${kind}`, 'utf8').split('\n')[0]!.trim();
    } catch {
      /* no PSI on this kernel */
    }
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      reps: { type: 'string' },
      fsync: { type: 'string' },
      sizes: { type: 'string' },
      main: { type: 'string' },
      'cpu-prof': { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  const only = (values.only ?? []).flatMap((s) => s.split(',')).filter(Boolean);
  for (const o of only) if (!(GROUPS as readonly string[]).includes(o)) throw new Error(`--only ${o}: unknown; one of ${GROUPS.join(', ')}`);
  const selected = (g: Group) => only.length === 0 || only.includes(g);
  const quick = values.quick!;
  if (values.fsync && !['on', 'off', 'both'].includes(values.fsync)) throw new Error('--fsync: on, off or both');
  const results = new Results();
  const started = Date.now();
  const ctx: Context = {
    quick,
    reps: values.reps ? Number(values.reps) : quick ? 2 : 3,
    fsyncModes: values.fsync === 'on' ? [true] : values.fsync === 'off' ? [false] : [true, false],
    results,
    progress: (m) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}\n`),
    cpuProfDir: values['cpu-prof'],
    main: values.main,
    sizes: values.sizes ? values.sizes.split(',').map(Number) : undefined,
  };
  const machine = describeMachine();
  const pressureStart = pressure();
  ctx.progress(`${quick ? 'QUICK run' : 'full run'} on ${machine.cpus} × ${machine.cpuModel}, ${machine.memTotalMiB} MiB, node ${machine.node}, Linux ${machine.kernel}; load ${machine.loadavgStart}`);
  if (machine.busyProcesses.length) ctx.progress(`busy at the start: ${machine.busyProcesses.join('; ')}`);

  if (selected('baseline-floor')) await benchFloor(ctx);
  if (selected('drain-s')) await benchDrain('S', ctx);
  if (selected('baseline-process')) await benchPerProcess(ctx);
  addDrainRatios(ctx);
  if (selected('drain-t')) await benchDrain('T', ctx);
  if (selected('latency-s')) await benchLatency('S', ctx);
  if (selected('latency-t')) await benchLatency('T', ctx);
  const fax = selected('fax') ? await benchFax(ctx) : undefined;
  if (selected('baseline-fax')) await benchFaxBaseline(ctx, fax);
  if (selected('speech')) await benchSpeech(ctx);
  if (selected('idle')) await benchIdle(ctx);

  const wallSeconds = (Date.now() - started) / 1000;
  const header = quick
    ? 'QUICK MODE: backlogs of 1,000 and 10,000 only (no 100,000), 4-second latency runs (S with fsync=true only), 10 s of idle, fewer runs. BENCHMARKS.md holds a full run.'
    : 'Full run.';
  process.stdout.write(`\n${header}\n${machine.cpus} × ${machine.cpuModel}, ${machine.memTotalMiB} MiB, node ${machine.node}, Linux ${machine.kernel}\n`);
  process.stdout.write(`load average at start ${machine.loadavgStart}, at end ${loadavg()}; ${wallSeconds.toFixed(0)} s\n\n${table(results)}\n`);
  for (const f of results.figures) if (f.note) process.stdout.write(`note: ${f.label}: ${f.note}\n`);
  const out = values.out ?? fileURLToPath(new URL('../../bench/results.json', import.meta.url));
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        mode: quick ? 'quick' : 'full',
        argv: process.argv.slice(2),
        startedAt: new Date(started).toISOString(),
        wallSeconds,
        machine,
        pressureStart,
        pressureEnd: pressure(),
        loadavgEnd: loadavg(),
        busyAtEnd: busyProcesses(),
        figures: results.figures,
        ratios: results.ratios,
        skipped: results.skipped,
      },
      null,
      2,
    )}\n`,
  );
  process.stderr.write(`results written to ${out}\n`);
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
