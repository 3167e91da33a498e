/**
 * Backlog drain: N morx files are already there when `run` starts; how long
 * until the last message is handed on (S: the last sms/mttx file renamed in;
 * T: the last MessageSend answered by the fake AMI), how many SMS per second,
 * and how much memory the daemon needed for it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { FakeAmiServer } from '../../test/fakes/ami-server.js';
import { corpusStats, makeCorpus, writeCorpus } from '../lib/corpus.js';
import { spawnDaemon } from '../lib/daemon.js';
import { monoMs, sleep } from '../lib/stats.js';
import { makeTree, recipientNumbers, seedDirectory, senderNumbers } from '../lib/tree.js';
import { ArrivalWatcher, ctimeRange } from '../lib/watch.js';
import { fsyncLabel, type Context } from './context.js';

export const DRAIN_RECIPIENTS = 50;
export const DRAIN_SENDERS = 200;

export interface DrainRun {
  files: number;
  messages: number;
  /** From spawn to the last hand-over, ms. */
  totalMs: number;
  /** From spawn to the first hand-over, ms (start-up: node, modules, database, listing morx). */
  firstMs: number;
  /** SMS (morx files) per second over totalMs. */
  rate: number;
  /** SMS per second between the first and the last hand-over. */
  steadyRate: number;
  hwmMiB: number;
  cpuSeconds: number;
}

export function syncDisks(): void {
  spawnSync('sync');
}

export async function drainOnce(route: 'S' | 'T', files: number, fsync: boolean, ctx: Pick<Context, 'cpuProfDir' | 'main'>): Promise<DrainRun> {
  const fake = route === 'T' ? await FakeAmiServer.start() : undefined;
  const tree = makeTree({ fsync, amiPort: fake?.port });
  let watcher: ArrivalWatcher | undefined;
  try {
    const recipients = recipientNumbers(DRAIN_RECIPIENTS, route);
    const senders = senderNumbers(DRAIN_SENDERS);
    seedDirectory(tree, recipients, route, senders);
    const corpus = makeCorpus({ files, recipients, senders });
    const stats = corpusStats(corpus);
    writeCorpus(tree.morx, corpus);
    syncDisks();

    let lastDelivery = 0;
    let firstDelivery = 0;
    let deliveredSoFar = 0;
    if (fake) {
      fake.on('change', () => {
        const n = fake.delivered.length;
        if (n > 0 && firstDelivery === 0) firstDelivery = monoMs();
        if (n > deliveredSoFar) {
          deliveredSoFar = n;
          lastDelivery = monoMs();
        }
      });
    } else {
      watcher = new ArrivalWatcher(tree.mttx);
    }
    const nodeArgs = ctx.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.cpuProfDir}`] : [];
    const daemon = spawnDaemon(tree, { nodeArgs, main: ctx.main });
    let exited = false;
    void daemon.exited.then(() => (exited = true));
    const failed = () => (exited ? `the daemon exited early:\n${daemon.log().slice(-2000)}` : undefined);
    const timeoutMs = Math.max(120_000, files * (fsync ? 20 : 5));
    if (watcher) {
      await watcher.until(stats.mttx, timeoutMs, failed);
    } else {
      const deadline = monoMs() + timeoutMs;
      while (fake!.delivered.length < stats.messages) {
        const why = failed();
        if (why) throw new Error(why);
        if (monoMs() > deadline) throw new Error(`T drain: ${fake!.delivered.length} of ${stats.messages} delivered after ${timeoutMs} ms`);
        await sleep(50);
      }
    }
    const sample = daemon.sample();
    await daemon.stop();
    let totalMs: number;
    let firstMs: number;
    if (watcher) {
      watcher.close();
      // A rename sets ctime: the kernel's own time of each hand-over, whatever our event loop was doing.
      const range = ctimeRange(tree.mttx);
      if (range.count < stats.mttx) throw new Error(`S drain: ${range.count} mttx files, ${stats.mttx} expected`);
      totalMs = range.last - daemon.startedAtWall;
      firstMs = range.first - daemon.startedAtWall;
    } else {
      totalMs = lastDelivery - daemon.startedAt;
      firstMs = firstDelivery - daemon.startedAt;
    }
    const left = readdirSync(tree.morx).filter((n) => !n.startsWith('.')).length;
    if (left > 0) throw new Error(`${left} files left in morx`);
    return {
      files: stats.files,
      messages: stats.messages,
      totalMs,
      firstMs,
      rate: stats.files / (totalMs / 1000),
      steadyRate: stats.files / ((totalMs - firstMs) / 1000),
      hwmMiB: (sample?.hwmKiB ?? NaN) / 1024,
      cpuSeconds: sample?.cpuSeconds ?? NaN,
    };
  } finally {
    watcher?.close();
    await fake?.close();
    tree.cleanup();
  }
}

export function drainSizes(ctx: Context): number[] {
  return ctx.sizes ?? (ctx.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]);
}

/** Repetitions for a size: the 100k backlog with fsync takes minutes, so it runs fewer times. */
function repsFor(ctx: Context, route: 'S' | 'T', files: number, fsync: boolean): number {
  if (route === 'T' && files >= 100_000) return 1;
  if (files >= 100_000) return fsync ? Math.min(ctx.reps, 1) : Math.min(ctx.reps, 2);
  if (ctx.quick && files >= 10_000) return fsync ? 1 : 2;
  return ctx.reps;
}

export async function benchDrain(route: 'S' | 'T', ctx: Context): Promise<DrainRun[]> {
  const group = route === 'S' ? 'drain-s' : 'drain-t';
  const all: DrainRun[] = [];
  // The T route writes no spool files: [spool] fsync does not apply to it.
  const modes = route === 'S' ? ctx.fsyncModes : [ctx.fsyncModes[0]!];
  for (const fsync of modes) {
    for (const files of drainSizes(ctx)) {
      const runs: DrainRun[] = [];
      const reps = repsFor(ctx, route, files, fsync);
      for (let i = 0; i < reps; i++) {
        ctx.progress(`${group}: ${files} files, ${route === 'S' ? fsyncLabel(fsync) : 'fsync n/a'}, run ${i + 1}/${reps}`);
        const r = await drainOnce(route, files, fsync, ctx);
        ctx.progress(`  ${Math.round(r.totalMs)} ms, ${Math.round(r.rate)} SMS/s (steady ${Math.round(r.steadyRate)}), start-up ${Math.round(r.firstMs)} ms, peak RSS ${r.hwmMiB.toFixed(1)} MiB, CPU ${r.cpuSeconds.toFixed(2)} s`);
        runs.push(r);
      }
      all.push(...runs);
      const what = `${route} backlog ${files.toLocaleString('en-US')}${route === 'S' ? `, ${fsyncLabel(fsync)}` : ''}`;
      const id = `${group}/${files}/${route === 'S' ? (fsync ? 'fsync' : 'nofsync') : 'ami'}`;
      const fullRate = route === 'S' && files >= 10_000;
      ctx.results.add({
        id: `${id}/time`,
        group,
        label: `${what}: time to the last ${route === 'S' ? 'mttx file' : 'MessageSend'}`,
        unit: 'ms',
        values: runs.map((r) => r.totalMs),
      });
      ctx.results.add({
        id: `${id}/rate`,
        group,
        label: `${what}: SMS per second`,
        unit: 'SMS/s',
        better: 'higher',
        values: runs.map((r) => r.rate),
        ...(fullRate ? { targetMin: 5000 } : {}),
      });
      ctx.results.add({
        id: `${id}/steady`,
        group,
        label: `${what}: SMS per second after the first hand-over`,
        unit: 'SMS/s',
        better: 'higher',
        values: runs.map((r) => r.steadyRate),
      });
      ctx.results.add({
        id: `${id}/rss`,
        group,
        label: `${what}: peak RSS (VmHWM)`,
        unit: 'MiB',
        values: runs.map((r) => r.hwmMiB),
      });
      ctx.results.add({
        id: `${id}/cpu`,
        group,
        label: `${what}: daemon CPU time per 1,000 SMS`,
        unit: 'ms',
        values: runs.map((r) => (r.cpuSeconds * 1000 * 1000) / r.files),
      });
    }
  }
  return all;
}
