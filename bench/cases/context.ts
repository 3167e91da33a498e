/** What every benchmark case is given: the mode, the repetitions, where to report progress and results. */
import type { Results } from '../lib/report.js';

export interface Context {
  quick: boolean;
  /** Repetitions of each measured run (median/min/max over them). */
  reps: number;
  /** [spool] fsync settings to measure the daemon with. */
  fsyncModes: boolean[];
  results: Results;
  progress(message: string): void;
  /** Write a V8 CPU profile of each daemon run into this directory. */
  cpuProfDir?: string;
  /** The daemon to run (default: this build's dist/src/main.js). */
  main?: string;
  /** Only these backlog sizes (drain). */
  sizes?: number[];
}

export const fsyncLabel = (fsync: boolean) => (fsync ? 'fsync=true' : 'fsync=false');
