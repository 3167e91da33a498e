/**
 * Shared plumbing of the fuzzers in test/fuzz/*.test.ts (not a test file itself).
 *
 * Every property runs with one fixed seed, so `npm test` is reproducible and
 * a failure in CI fails the same way on a laptop. Environment knobs:
 *
 *   FUZZ_SEED=N        another seed (decimal or 0x hex); every test name shows the one in use
 *   FUZZ_PATH=P        with FUZZ_SEED, replay the shrunk counterexample fast-check printed
 *                      ("seed: N, path: P"); run that one test with --test-name-pattern
 *   FUZZ_RUNS=K        multiply every property's run count by K (default 1; FUZZ_LONG=1 makes it 25)
 *   FUZZ_TIME_MS=T     instead of a run count, run every property for T milliseconds
 *                      (an interrupted run is a pass: it only bounds the time)
 *   FUZZ_LONG=1        the long local mode: runs x25 and a fresh random seed unless FUZZ_SEED is set
 *
 * e.g. `FUZZ_LONG=1 node --test dist/test/fuzz/*.test.js`, or
 *      `FUZZ_SEED=0x1234 FUZZ_TIME_MS=120000 node --test dist/test/fuzz/spool-codec.test.js`.
 *
 * Found inputs live in test/fuzz/corpus/<target>/ and are replayed on every run.
 */
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { mulberry32 as prng } from '../helpers/random.js';
export { prng };

const env = process.env;

function parseSeed(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED=${JSON.stringify(text)} is not an integer`);
  return n | 0; // fast-check takes a 32-bit seed
}

export const LONG = env.FUZZ_LONG === '1';
/** The seed of every property in this process. */
export const SEED: number = parseSeed(env.FUZZ_SEED) ?? (LONG ? (Date.now() ^ (process.pid << 16)) | 0 : 0x5eed0010);
const RUNS_FACTOR = Math.max(0, Number(env.FUZZ_RUNS ?? (LONG ? 25 : 1)) || 1);
const TIME_MS = env.FUZZ_TIME_MS ? Math.max(1, Number(env.FUZZ_TIME_MS)) : undefined;
const PATH = env.FUZZ_PATH || undefined;

/** "[seed 0x5eed0010]": appended to every fuzz test's name so a CI log names the seed. */
export const SEED_TAG = `[seed 0x${(SEED >>> 0).toString(16)}]`;

/**
 * fast-check parameters for a property that runs `runs` times in the default mode.
 * fast-check's failure report carries the seed and the path of the shrunk
 * counterexample; `withSeed` below adds the env line that replays it.
 */
export function params<T>(runs: number): fc.Parameters<T> {
  const p: fc.Parameters<T> = { seed: SEED, numRuns: Math.max(1, Math.round(runs * RUNS_FACTOR)) };
  if (TIME_MS !== undefined) {
    p.numRuns = Number.MAX_SAFE_INTEGER;
    p.interruptAfterTimeLimit = TIME_MS;
    p.markInterruptAsFailure = false;
  }
  if (PATH !== undefined) p.path = PATH;
  return p;
}

/** fc.assert, with the replay recipe added to the error of a failing property. */
export function check<Ts extends [unknown, ...unknown[]]>(
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => void,
  runs: number,
): void {
  try {
    fc.assert(fc.property(...arbs, predicate), params<Ts>(runs));
  } catch (err) {
    throw withReplay(err);
  }
}

/** `check` for an async predicate. */
export async function checkAsync<Ts extends [unknown, ...unknown[]]>(
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => Promise<void>,
  runs: number,
): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(...arbs, predicate), params<Ts>(runs));
  } catch (err) {
    throw withReplay(err);
  }
}

function withReplay(err: unknown): unknown {
  if (err instanceof Error) {
    const m = /seed: (-?\d+), path: "([^"]*)"/.exec(err.message);
    const replay = m ? `FUZZ_SEED=${m[1]} FUZZ_PATH=${m[2]}` : `FUZZ_SEED=${SEED}`;
    // fast-check keeps the predicate's own error as `cause`, which the test runner does not print.
    const cause = err.cause instanceof Error ? `\n\nfailure: ${err.cause.message}` : '';
    err.message = `${err.message}${cause}\n\nreplay with: ${replay} node --test --test-name-pattern '<this test>' dist/test/fuzz/<file>.test.js`;
  }
  return err;
}

// ---------------------------------------------------------------- files

export const CORPUS = new URL('../../../test/fuzz/corpus/', import.meta.url);
export const FIXTURES = new URL('../../../spool-fixtures/', import.meta.url);

/** Every file of test/fuzz/corpus/<target>/, sorted by name. */
export function corpus(target: string): Array<{ name: string; bytes: Buffer }> {
  const dir = new URL(`${target}/`, CORPUS);
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.') && name !== 'README.md')
    .sort()
    .map((name) => ({ name, bytes: readFileSync(new URL(name, dir)) }));
}

export function fixture(relative: string): Buffer {
  return readFileSync(new URL(relative, FIXTURES));
}

export function fixtureNames(dir: string, suffix: string): string[] {
  return readdirSync(fileURLToPath(new URL(`${dir}/`, FIXTURES)))
    .filter((n) => n.endsWith(suffix))
    .sort();
}

// ---------------------------------------------------------------- mutations

/** One edit of a byte string; positions are taken modulo the length at the time. */
export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'truncate'; at: number }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate'; at: number; length: number; times: number }
  | { op: 'insert'; at: number; bytes: readonly number[] };

/** The bytes that change how line-based parsers cut their input, and friends. */
const NASTY_BYTES = [0x0a, 0x0d, 0x00, 0x3a, 0x20, 0x3d, 0x23, 0x28, 0x29, 0x22, 0x2c, 0x3b, 0xff, 0xc3, 0xe2, 0xed, 0xf0, 0x80];

export const nastyByte = fc.oneof(fc.constantFrom(...NASTY_BYTES), fc.integer({ min: 0, max: 255 }));

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: nastyByte }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({
    op: fc.constant('duplicate' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 256 }),
    times: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.array(nastyByte, { minLength: 1, maxLength: 8 }),
      fc.constantFrom<readonly number[]>([0x0d], [0x0a], [0x00], [0x0d, 0x0a], [0x0a, 0x0a], [0x0d, 0x0d, 0x0a], [0xef, 0xbb, 0xbf]),
    ),
  }),
);

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.op) {
      case 'flip':
        if (b.length > 0) b[at % b.length]! ^= 1 << m.bit;
        break;
      case 'set':
        if (b.length > 0) b[at % b.length] = m.byte;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'duplicate': {
        const piece = b.subarray(at, at + m.length);
        b = Buffer.concat([b.subarray(0, at + piece.length), ...Array<Buffer>(m.times).fill(piece), b.subarray(at + piece.length)]);
        break;
      }
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
    }
  }
  return b;
}

/** Cut points for splitting `length` bytes into chunks: sorted, within 0..length, repeats allowed (empty chunks). */
export const cuts = fc.array(fc.nat(), { maxLength: 40 });

/** Splits `bytes` at the given cut points (taken modulo length + 1). */
export function split(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const points = at.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}


/** A few split patterns for replaying one input: whole, every byte, and seeded random cuts. */
export function replaySplits(bytes: Uint8Array, name: string): Array<{ label: string; chunks: Uint8Array[] }> {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  const rnd = prng(h ^ SEED);
  const out: Array<{ label: string; chunks: Uint8Array[] }> = [{ label: 'whole', chunks: [bytes] }];
  if (bytes.length <= 200_000) {
    out.push({ label: 'byte by byte', chunks: Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)) });
  }
  for (let k = 0; k < 3; k++) {
    const at = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => Math.floor(rnd() * (bytes.length + 1)));
    out.push({ label: `cuts ${at.sort((a, b) => a - b).join(',')}`, chunks: split(bytes, at) });
  }
  return out;
}

// ---------------------------------------------------------------- memory

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap plus ArrayBuffer memory after a full collection: what a parser can hold on to. */
export function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export const MiB = 1024 * 1024;

/** Python bytes literal (`b'...'`) as printed in the AMI transcripts' `repr:` lines. */
export function pyBytes(repr: string): Buffer {
  const m = /^b(['"])(.*)\1$/.exec(repr);
  if (!m) throw new Error(`not a bytes literal: ${repr}`);
  const body = m[2]!;
  const out: number[] = [];
  const simple: Record<string, number> = { r: 13, n: 10, t: 9, '\\': 92, "'": 39, '"': 34, '0': 0 };
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== '\\') {
      out.push(ch.charCodeAt(0));
      continue;
    }
    const esc = body[++i]!;
    if (esc === 'x') {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (esc in simple) out.push(simple[esc]!);
    else throw new Error(`unknown escape \\${esc}`);
  }
  return Buffer.from(out);
}
