/**
 * Idle footprint: the daemon on an empty spool (S recipients, no AMI), after
 * it settled; its RSS sampled every second and its CPU use per 10-second
 * window (2-second windows in quick mode) over the period.
 */
import { spawnDaemon } from '../lib/daemon.js';
import { sampleProcess } from '../lib/machine.js';
import { sleep } from '../lib/stats.js';
import { makeTree, recipientNumbers, seedDirectory, senderNumbers } from '../lib/tree.js';
import type { Context } from './context.js';

export async function benchIdle(ctx: Context): Promise<void> {
  const seconds = ctx.quick ? 10 : 60;
  const window = ctx.quick ? 2 : 10;
  const tree = makeTree({ fsync: true });
  try {
    seedDirectory(tree, recipientNumbers(50, 'S'), 'S', senderNumbers(20));
    const daemon = spawnDaemon(tree, { main: ctx.main, sampleEveryMs: 0 });
    try {
      await daemon.ready();
      await sleep(2000);
      ctx.progress(`idle: sampling the daemon for ${seconds} s`);
      const rss: number[] = [];
      const cpu: number[] = [];
      let last = sampleProcess(daemon.pid)!;
      let hwm = 0;
      for (let s = 1; s <= seconds; s++) {
        await sleep(1000);
        const now = sampleProcess(daemon.pid);
        if (!now) throw new Error('the idle daemon exited');
        rss.push(now.rssKiB / 1024);
        hwm = now.hwmKiB / 1024;
        if (s % window === 0) {
          cpu.push((100 * (now.cpuSeconds - last.cpuSeconds)) / window);
          last = now;
        }
      }
      ctx.progress(`  RSS ${Math.min(...rss).toFixed(1)}–${Math.max(...rss).toFixed(1)} MiB, CPU ${cpu.map((c) => c.toFixed(2)).join(', ')} %`);
      ctx.results.add({ id: 'idle/rss', group: 'idle', label: `idle daemon: RSS, sampled every second for ${seconds} s`, unit: 'MiB', values: rss, targetMax: 80, note: 'runs = samples within one run' });
      ctx.results.add({ id: 'idle/hwm', group: 'idle', label: 'idle daemon: peak RSS since start (VmHWM)', unit: 'MiB', values: [hwm] });
      ctx.results.add({ id: 'idle/cpu', group: 'idle', label: `idle daemon: CPU, per ${window}-second window`, unit: '% of a core', values: cpu, note: 'runs = windows within one run' });
    } finally {
      await daemon.stop();
    }
  } finally {
    tree.cleanup();
  }
}
