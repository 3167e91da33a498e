/** The real daemon, in process, on a test spool tree. */
import { Writable } from 'node:stream';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';
import type { SpoolTree } from './spool-tree.js';

/** A pino logger whose JSON lines land in `lines` (and nowhere else). */
export function memoryLogger(lines: string[] = [], level: 'info' | 'debug' = 'info') {
  return createLogger(
    level,
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
}

/** Starts `run()` and resolves once it is watching; `stop()` ends it the way SIGTERM does. */
export async function startDaemon(tree: SpoolTree, lines: string[] = [], options: { now?: () => Date } = {}) {
  const daemon = new Daemon(tree.config, memoryLogger(lines), { fsync: false, now: options.now });
  let ready!: () => void;
  const started = new Promise<void>((r) => (ready = r));
  const running = daemon.run(() => ready());
  await started;
  return {
    daemon,
    async stop() {
      await daemon.stop();
      await running;
    },
  };
}
