/**
 * Latency under load: messages arrive in morx at a steady rate for a while
 * (a separate writer process renames them in, as app_sms does); for each,
 * the time from its rename into morx to its hand-over: the mttx file
 * appearing (S, seen by fs.watch) or the MessageSend reaching the fake AMI (T).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeAmiServer } from '../../test/fakes/ami-server.js';
import { decodeSmsFile } from '../../src/spool/sms-file.js';
import { seqOf } from '../lib/corpus.js';
import { spawnDaemon } from '../lib/daemon.js';
import { monoMs, percentile, sleep } from '../lib/stats.js';
import { makeTree, recipientNumbers, seedDirectory, senderNumbers } from '../lib/tree.js';
import { ArrivalWatcher } from '../lib/watch.js';
import type { WriterJob, WriterResult } from '../writer.js';
import { fsyncLabel, type Context } from './context.js';

const WRITER = fileURLToPath(new URL('../writer.js', import.meta.url));

export interface LatencyRun {
  sent: number;
  received: number;
  p50: number;
  p99: number;
  max: number;
  hwmMiB: number;
  writerLagMs: number;
}

async function runWriter(job: WriterJob, dir: string): Promise<WriterResult> {
  const jobFile = path.join(dir, 'writer-job.json');
  writeFileSync(jobFile, JSON.stringify(job));
  const child = spawn(process.execPath, [WRITER, jobFile], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`the writer failed (exit ${code})`);
  return JSON.parse(readFileSync(`${jobFile}.out`, 'utf8')) as WriterResult;
}

export async function latencyOnce(route: 'S' | 'T', rate: number, durationMs: number, fsync: boolean, ctx: Pick<Context, 'main'>): Promise<LatencyRun> {
  const fake = route === 'T' ? await FakeAmiServer.start() : undefined;
  const tree = makeTree({ fsync, amiPort: fake?.port });
  let watcher: ArrivalWatcher | undefined;
  const delivered: number[] = [];
  try {
    const recipients = recipientNumbers(50, route);
    const senders = senderNumbers(200);
    seedDirectory(tree, recipients, route, senders);
    const daemon = spawnDaemon(tree, { main: ctx.main });
    try {
      await daemon.ready();
      if (fake) {
        const until = monoMs() + 10_000;
        while (!fake.connections.some((c) => c.authenticated && c.closedAt === undefined)) {
          if (monoMs() > until) throw new Error('the daemon did not log in to the fake AMI');
          await sleep(20);
        }
        fake.on('change', () => {
          while (delivered.length < fake.delivered.length) delivered.push(monoMs());
        });
      } else {
        watcher = new ArrivalWatcher(tree.mttx);
      }
      // Let start-up work (the first rescan, the AMI login) settle.
      await sleep(500);
      const written = await runWriter({ morx: tree.morx, rate, durationMs, recipients, senders, seed: 7 + rate }, tree.dir);
      const sent = written.seq.length;
      // What is still queued gets a while to come out (a route slower than the rate builds a backlog).
      const deadline = monoMs() + Math.max(10_000, durationMs * 2);
      const got = () => (watcher ? watcher.seen.size : delivered.length);
      while (got() < sent && monoMs() < deadline) await sleep(50);
      const sample = daemon.sample();
      await daemon.stop();
      const sentAt = new Map(written.seq.map((s, i) => [s, written.at[i]!]));
      const latencies: number[] = [];
      if (watcher) {
        watcher.close();
        for (const [name, at] of watcher.seen) {
          const r = decodeSmsFile(readFileSync(path.join(tree.mttx, name)));
          const seq = r.ok ? seqOf(r.message.text) : undefined;
          const t0 = seq === undefined ? undefined : sentAt.get(seq);
          if (t0 !== undefined) latencies.push(at - t0);
        }
      } else {
        fake!.delivered.forEach((d, i) => {
          const seq = seqOf(d.body);
          const t0 = seq === undefined ? undefined : sentAt.get(seq);
          if (t0 !== undefined && delivered[i] !== undefined) latencies.push(delivered[i]! - t0);
        });
      }
      latencies.sort((a, b) => a - b);
      return {
        sent,
        received: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies[latencies.length - 1] ?? NaN,
        hwmMiB: (sample?.hwmKiB ?? NaN) / 1024,
        writerLagMs: written.maxLagMs,
      };
    } finally {
      await daemon.stop();
    }
  } finally {
    watcher?.close();
    await fake?.close();
    tree.cleanup();
  }
}

export function latencyRates(): number[] {
  return [50, 200, 1000];
}

export async function benchLatency(route: 'S' | 'T', ctx: Context): Promise<void> {
  const group = route === 'S' ? 'latency-s' : 'latency-t';
  const durationMs = ctx.quick ? 4_000 : 30_000;
  // fsync only matters where files are written: the S route.
  // Quick mode: the default (fsync=true) only.
  const modes = route === 'S' && !ctx.quick ? ctx.fsyncModes : [ctx.fsyncModes[0]!];
  for (const fsync of modes) {
    for (const rate of latencyRates()) {
      // 30-second runs: two for the figure with a target (S, the default fsync), one for the others, to keep the full run near 20 minutes.
      const reps = ctx.quick ? 1 : route === 'S' && fsync === ctx.fsyncModes[0] ? Math.min(ctx.reps, 2) : 1;
      const runs: LatencyRun[] = [];
      for (let i = 0; i < reps; i++) {
        ctx.progress(`${group}: ${rate}/s for ${durationMs / 1000} s, ${route === 'S' ? fsyncLabel(fsync) : 'fsync n/a'}, run ${i + 1}/${reps}`);
        const r = await latencyOnce(route, rate, durationMs, fsync, ctx);
        ctx.progress(`  ${r.received}/${r.sent} handed over; p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms; peak RSS ${r.hwmMiB.toFixed(1)} MiB; writer lag ≤ ${r.writerLagMs.toFixed(1)} ms`);
        runs.push(r);
      }
      const what = `${route} at ${rate}/s for ${durationMs / 1000} s${route === 'S' ? `, ${fsyncLabel(fsync)}` : ''}`;
      const id = `${group}/${rate}/${route === 'S' ? (fsync ? 'fsync' : 'nofsync') : 'ami'}`;
      const lost = runs.reduce((s, r) => s + (r.sent - r.received), 0);
      const note = lost > 0 ? `${lost} of ${runs.reduce((s, r) => s + r.sent, 0)} not handed over within the wait (not counted)` : undefined;
      ctx.results.add({ id: `${id}/p50`, group, label: `${what}: latency p50`, unit: 'ms', values: runs.map((r) => r.p50), note });
      ctx.results.add({ id: `${id}/p99`, group, label: `${what}: latency p99`, unit: 'ms', values: runs.map((r) => r.p99), ...(rate === 200 ? { targetMax: 50 } : {}), note });
      ctx.results.add({ id: `${id}/max`, group, label: `${what}: latency max`, unit: 'ms', values: runs.map((r) => r.max), note });
      ctx.results.add({ id: `${id}/rss`, group, label: `${what}: peak RSS (VmHWM)`, unit: 'MiB', values: runs.map((r) => r.hwmMiB) });
      // Not the daemon's: how late the writer process ran at worst. Tens of ms mean the machine itself stalled.
      ctx.results.add({ id: `${id}/writer-lag`, group, label: `${what}: the writer's worst lag (machine stalls)`, unit: 'ms', values: runs.map((r) => r.writerLagMs) });
    }
  }
}
