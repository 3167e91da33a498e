/**
 * The gtts package run in a process of its own. gtts@0.2.1 leaves its HTTP
 * requests' 'error' events unhandled, so without network it throws from the
 * event loop and kills whatever process loaded it; here that process is this
 * throwaway worker, and the daemon only sees an exit status.
 *
 *   node gtts-worker.js languages                 → JSON array of language codes on stdout
 *   node gtts-worker.js fetch LANG OUT.mp3 [URL]  → the text on stdin, spoken, into OUT.mp3
 *
 * Exit status: 0 done, 1 failed (reason on stderr), 3 the gtts package is not installed.
 * The caller checks that OUT.mp3 is really MP3 (an HTTP error page is saved too).
 */
import { createWriteStream } from 'node:fs';

const EXIT_FAILED = 1;
const EXIT_MISSING = 3;
const MAX_MP3_BYTES = 20 * 1024 * 1024;

function fail(reason: string, status = EXIT_FAILED): never {
  process.stderr.write(`gtts-worker: ${reason.split('\n')[0]}\n`);
  process.exit(status);
}

process.on('uncaughtException', (err) => fail(err instanceof Error ? err.message : String(err)));
process.on('unhandledRejection', (err) => fail(err instanceof Error ? err.message : String(err)));

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(argv: string[]): Promise<void> {
  let GTTS: typeof import('gtts');
  try {
    GTTS = (await import('gtts')).default;
  } catch (err) {
    fail(`cannot load the gtts package: ${err instanceof Error ? err.message : String(err)}`, EXIT_MISSING);
  }
  const [mode, lang, out, url] = argv;
  if (mode === 'languages') {
    process.stdout.write(JSON.stringify(Object.keys(new GTTS('x', 'en').LANGUAGES)));
    return;
  }
  if (mode !== 'fetch' || !lang || !out) fail('usage: gtts-worker languages | fetch LANG OUT.mp3 [URL]');
  const text = await readStdin();
  const tts = new GTTS(text, lang);
  if (url) tts.GOOGLE_TTS_URL = url;
  const source = tts.stream();
  const sink = createWriteStream(out);
  let bytes = 0;
  source.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_MP3_BYTES) fail(`more than ${MAX_MP3_BYTES} bytes received`);
  });
  source.on('error', (err: Error) => fail(err.message));
  sink.on('error', (err) => fail(err.message));
  sink.on('finish', () => process.exit(0));
  source.pipe(sink);
}

main(process.argv.slice(2)).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
