/**
 * Baselines the S drain is compared with, in the same run:
 *  (a) the original suite's approach: one process per message doing the file
 *      work (bench/baseline/process-one.py, or the Node twin without python3);
 *  (b) the floor: a bare loop in this process doing only the file operations
 *      one message needs (read; write the mttx dot-file and the call file;
 *      rename both; unlink the morx file), no journal, no decoding.
 * Both run on the same corpus as the drain benchmark, synced to disk first.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCorpus, writeCorpus } from '../lib/corpus.js';
import { monoMs } from '../lib/stats.js';
import { makeTree, recipientNumbers, senderNumbers } from '../lib/tree.js';
import { commandExists } from './render.js';
import { DRAIN_RECIPIENTS, DRAIN_SENDERS, syncDisks } from './drain.js';
import { fsyncLabel, type Context } from './context.js';

const PYTHON_SCRIPT = fileURLToPath(new URL('../../../bench/baseline/process-one.py', import.meta.url));
const NODE_SCRIPT = fileURLToPath(new URL('../baseline/process-one.js', import.meta.url));

function prepare(files: number, fsync: boolean) {
  const tree = makeTree({ fsync });
  const corpus = makeCorpus({ files, recipients: recipientNumbers(DRAIN_RECIPIENTS, 'S'), senders: senderNumbers(DRAIN_SENDERS) });
  writeCorpus(tree.morx, corpus);
  syncDisks();
  return tree;
}

/**
 * The python3 a dialplan's `#!/usr/bin/env python3` would run on Debian. A pyenv
 * (or similar) shim first on PATH costs ~75 ms per start here, which is not the
 * original suite's cost: the real interpreter is used.
 */
function python3(): string | undefined {
  if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
  if (!commandExists('python3')) return undefined;
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : 'python3';
}

export function perProcessRunner(): { label: string; argv: (file: string, dirs: string[]) => [string, string[]] } {
  const python = python3();
  if (python) return { label: 'python3', argv: (file, dirs) => [python, [PYTHON_SCRIPT, file, ...dirs]] };
  return { label: 'node', argv: (file, dirs) => [process.execPath, [NODE_SCRIPT, file, ...dirs]] };
}

/** (a): SMS per second, one process per message, one after another (as the dialplan ran them). */
export async function benchPerProcess(ctx: Context): Promise<number | undefined> {
  const files = ctx.quick ? 40 : 150;
  const reps = ctx.quick ? 2 : 3;
  const runner = perProcessRunner();
  const values: number[] = [];
  for (let i = 0; i < reps; i++) {
    const tree = prepare(files, false);
    try {
      const names = readdirSync(tree.morx).sort();
      const t = monoMs();
      for (const name of names) {
        const [cmd, args] = runner.argv(path.join(tree.morx, name), [tree.mttx, tree.tmp, tree.outgoing, '0']);
        const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        if (r.status !== 0) throw new Error(`baseline (a): ${cmd} failed on ${name}: ${r.stderr?.toString()}`);
      }
      const elapsed = monoMs() - t;
      values.push(names.length / (elapsed / 1000));
      ctx.progress(`baseline (a) one ${runner.label} process per message: ${names.length} files in ${elapsed.toFixed(0)} ms`);
    } finally {
      tree.cleanup();
    }
  }
  const f = ctx.results.add({
    id: 'baseline-process/rate',
    group: 'baseline-process',
    label: `baseline (a): one ${runner.label} process per message (${files} files, no fsync, as smsq)`,
    unit: 'SMS/s',
    better: 'higher',
    values,
  });
  return f.summary.median;
}

function writeFile(file: string, data: Buffer, fsync: boolean): void {
  const fd = openSync(file, 'w', 0o640);
  try {
    writeSync(fd, data);
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** (b): the floor, SMS per second. */
export async function benchFloor(ctx: Context): Promise<void> {
  const reps = ctx.quick ? 2 : 3;
  for (const fsync of ctx.fsyncModes) {
    const files = ctx.quick && fsync ? 2_000 : 10_000;
    const values: number[] = [];
    for (let i = 0; i < reps; i++) {
      const tree = prepare(files, fsync);
      try {
        const t = monoMs();
        const names = readdirSync(tree.morx);
        for (const name of names) {
          const file = path.join(tree.morx, name);
          const bytes = readFileSync(file);
          const queue = name.slice(0, name.indexOf('.'));
          const mttx = path.join(tree.mttx, `.${name}`);
          writeFile(mttx, bytes, fsync);
          renameSync(mttx, path.join(tree.mttx, name));
          const call = path.join(tree.tmp, `smsr-S-${queue}.call`);
          writeFile(call, Buffer.from(`Channel: PJSIP/${queue}\nApplication: SMS\nData: ${queue},s\n`), fsync);
          renameSync(call, path.join(tree.outgoing, `smsr-S-${queue}.call`));
          unlinkSync(file);
        }
        const elapsed = monoMs() - t;
        values.push(names.length / (elapsed / 1000));
        ctx.progress(`baseline (b) floor, ${fsyncLabel(fsync)}: ${names.length} files in ${elapsed.toFixed(0)} ms`);
      } finally {
        tree.cleanup();
      }
    }
    ctx.results.add({
      id: `baseline-floor/${fsync ? 'fsync' : 'nofsync'}/rate`,
      group: 'baseline-floor',
      label: `baseline (b): floor, bare file operations, ${files.toLocaleString('en-US')} files, ${fsyncLabel(fsync)}`,
      unit: 'SMS/s',
      better: 'higher',
      values,
    });
  }
}

/** The ratios the issue asks for, from whatever figures this run produced. */
export function addDrainRatios(ctx: Context): void {
  const { results } = ctx;
  const perProcess = results.get('baseline-process/rate');
  for (const fsync of ctx.fsyncModes) {
    const mode = fsync ? 'fsync' : 'nofsync';
    const drain = results.get(`drain-s/10000/${mode}/rate`);
    if (!drain) continue;
    const floor = results.get(`baseline-floor/${mode}/rate`);
    if (floor) {
      const r = floor.summary.median / drain.summary.median;
      results.ratios.push({ id: `ratio/floor/${mode}`, label: `S drain 10,000, ${fsyncLabel(fsync)}: floor ÷ daemon (target ≤ 3)`, value: r, meaning: `the daemon runs at ${(100 / r).toFixed(0)} % of the bare file operations' speed; target ${r <= 3 ? 'met' : 'MISSED'}` });
    }
    if (perProcess) {
      const r = drain.summary.median / perProcess.summary.median;
      results.ratios.push({ id: `ratio/process/${mode}`, label: `S drain 10,000, ${fsyncLabel(fsync)}: daemon ÷ one process per message`, value: r, meaning: `the daemon is ${r.toFixed(0)}× faster than the original approach` });
    }
  }
}
