/**
 * `sms-router say`: writes the WAV a V recipient would hear, so the voice,
 * the language and the engine can be judged (and Asterisk tried) without
 * sending a message.
 *
 * Exit codes: 0 written, 1 speech failed (one line on stderr naming what to
 * install or what went wrong), 2 the command line itself was wrong.
 */
import { parseArgs } from 'node:util';
import { Speech, SpeechError, spokenText, type EngineName, type SpeechEngine } from '../render/speech.js';

export interface SayIo {
  stdout(s: string): void;
  stderr(s: string): void;
  /** The text when none is given as arguments (default: all of process.stdin). */
  readStdin?: () => Promise<string>;
  /** Replaces the engines (tests). */
  engines?: Partial<Record<EngineName, SpeechEngine>>;
}

export const SAY_USAGE = 'usage: sms-router say [--language pl] [--engine espeak|gtts] [--from NUMBER] --out FILE.wav [TEXT…]  (the text from standard input when no TEXT)';

const OPTIONS = {
  language: { type: 'string', short: 'l' },
  engine: { type: 'string', short: 'e' },
  from: { type: 'string', short: 'f' },
  out: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runSayCommand(args: string[], io: SayIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    io.stderr(`sms-router say: ${err instanceof Error ? err.message.replace(/\s*[\r\n]+\s*/g, ' ') : String(err)}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${SAY_USAGE}\n`);
    return 0;
  }
  const usage = (why: string) => {
    io.stderr(`sms-router say: ${why}; ${SAY_USAGE}\n`);
    return 2;
  };
  if (!values.out) return usage('--out FILE.wav is required');
  const engine = values.engine ?? 'espeak';
  if (engine !== 'espeak' && engine !== 'gtts') return usage(`--engine must be espeak or gtts, not ${JSON.stringify(engine)}`);
  const language = values.language ?? 'en';
  if (!/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(language)) return usage(`--language must be a code such as en or pl, not ${JSON.stringify(language)}`);

  // Trailing newline of piped text is the shell's, not the message's.
  const text = positionals.length > 0 ? positionals.join(' ') : (await (io.readStdin ?? readProcessStdin)()).replace(/\r?\n$/, '');
  if (text.trim() === '') return usage('no text to say');
  const spoken = values.from !== undefined ? spokenText({ from: values.from, text, language }) : text;

  const log = {
    info: () => {},
    warn: (_o: object, m: string) => io.stderr(`sms-router say: warning: ${m}\n`),
  };
  const speech = new Speech({ engine, defaultLanguage: 'en', log, ...(io.engines ? { engines: io.engines } : {}) });
  try {
    const result = await speech.synthesize({ text: spoken, language, outFile: values.out });
    io.stdout(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof SpeechError) {
      io.stderr(`sms-router say: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
