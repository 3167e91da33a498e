/**
 * The arrival side of the latency benchmark, in its own process so that its
 * work never delays the measuring one: writes morx files as app_sms does
 * (`.NAME`, then rename to NAME) at a steady rate, and records when each
 * rename returned on the monotonic clock every process shares.
 *
 *   node dist/bench/writer.js JOB.json   (writes JOB.json.out: { seq: [...], at: [...] })
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeCorpus } from './lib/corpus.js';
import { monoMs, sleep } from './lib/stats.js';

export interface WriterJob {
  morx: string;
  rate: number;
  durationMs: number;
  recipients: string[];
  senders: string[];
  seed: number;
}

export interface WriterResult {
  seq: number[];
  at: number[];
  /** How far behind its schedule the writer fell at worst (ms). */
  maxLagMs: number;
}

async function main(jobFile: string): Promise<void> {
  const job = JSON.parse(readFileSync(jobFile, 'utf8')) as WriterJob;
  const count = Math.round((job.rate * job.durationMs) / 1000);
  // Single SMS only (GSM and UCS-2): one file in, one mttx file or one MessageSend out.
  const corpus = makeCorpus({ files: count, recipients: job.recipients, senders: job.senders, seed: job.seed, multipartShare: 0, start: new Date() });
  const result: WriterResult = { seq: [], at: [], maxLagMs: 0 };
  const interval = 1000 / job.rate;
  const t0 = monoMs() + 50;
  for (let i = 0; i < corpus.length; i++) {
    const due = t0 + i * interval;
    let now = monoMs();
    if (due > now + 1) {
      await sleep(Math.max(0, due - now - 1));
      now = monoMs();
    }
    result.maxLagMs = Math.max(result.maxLagMs, now - due);
    const m = corpus[i]!;
    const f = m.files[0]!;
    const temp = path.join(job.morx, `.${f.name}`);
    writeFileSync(temp, f.body);
    renameSync(temp, path.join(job.morx, f.name));
    result.seq.push(m.seq);
    result.at.push(monoMs());
  }
  writeFileSync(`${jobFile}.out`, JSON.stringify(result));
}

main(process.argv[2]!).catch((err: unknown) => {
  process.stderr.write(`writer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
