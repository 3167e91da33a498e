/**
 * Route V: the message read out in a phone call. The WAV (8 kHz mono 16-bit,
 * the only .wav Asterisk plays) says "Message from 4 8 6 …" and the text;
 * the call's FastAGI session plays it, reads PLAYBACKSTATUS, and offers
 * "Press 1 to hear it again". Played to the end = delivered; a refused file
 * or a hang-up before the end = a failed attempt.
 */
import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { MessageRow } from '../journal/journal.js';
import { DEFAULT_WORDING, Speech, spokenText } from '../render/speech.js';
import { errorCode } from '../errors.js';
import { CallRoute, type CallRouteDeps } from './call-route.js';
import { crashPoint } from '../testing/crash-points.js';
import { SPOOL_FILE_MODE, setFileMode } from '../spool/atomic-write.js';

/** What the F and V sessions need of a FastAGI session. */
export interface SessionLike {
  readonly hungUp: boolean;
  setVariable(name: string, value: string): Promise<void>;
  getVariable(name: string): Promise<string | undefined>;
  exec(app: string, args?: string | readonly string[], options?: { timeoutMs?: number }): Promise<{ code: number; result: string }>;
  command(command: string, args?: readonly string[], options?: { timeoutMs?: number }): Promise<{ code: number; result: string }>;
  streamFile(file: string, escapeDigits?: string, options?: { timeoutMs?: number }): Promise<{ code: number; result: string }>;
  hangup(): Promise<void>;
}

const PLAY_TIMEOUT_MS = 30 * 60 * 1000;
const DIGIT_ONE = String('1'.charCodeAt(0));

export function voiceWavBase(config: Config, id: number): string {
  return path.join(config.voice.dir, String(id));
}

function promptBase(config: Config, language: string): string {
  return path.join(config.voice.dir, `prompt-${language}`);
}

export function createVoiceRoute(deps: CallRouteDeps, speech: Speech): CallRoute {
  const { config } = deps;
  return new CallRoute(
    {
      letter: 'V',
      script: 'voice',
      service: config.voice,
      dir: config.voice.dir,
      keep: config.voice.keep,
      async prepare(message, recipient) {
        const language = recipient.language ?? config.voice.language;
        const wav = `${voiceWavBase(config, message.id)}.wav`;
        if (!existsSync(wav)) {
          const spoken = spokenText({ from: message.oa || '', text: message.text, language });
          // Synthesise beside, then rename: Asterisk must never play half a file.
          const temp = path.join(config.voice.dir, `.${message.id}.wav`);
          const result = await speech.synthesize({ text: spoken, language, outFile: temp });
          // Security: sox creates the file with the umask's mode; Asterisk's group needs to read it, nobody else.
          setFileMode(temp, SPOOL_FILE_MODE);
          crashPoint('render.voice');
          renameSync(temp, wav);
          deps.log.debug({ msgId: message.id, engine: result.engine, language: result.language, durationMs: result.durationMs }, 'speech ready');
        }
        const prompt = `${promptBase(config, language)}.wav`;
        if (!existsSync(prompt)) {
          const wording = DEFAULT_WORDING[language] ?? DEFAULT_WORDING[config.voice.language] ?? DEFAULT_WORDING.en!;
          const temp = path.join(config.voice.dir, `.prompt-${language}.wav`);
          await speech.synthesize({ text: wording.pressOne, language, outFile: temp });
          setFileMode(temp, SPOOL_FILE_MODE);
          renameSync(temp, prompt);
        }
      },
      artefacts: (message) => [`${voiceWavBase(config, message.id)}.wav`],
    },
    deps,
  );
}

/**
 * The fate of a voice attempt from PLAYBACKSTATUS: SUCCESS is delivered,
 * anything else (FAILED: Asterisk refused the file; unset: Playback never
 * ran) a failed attempt. The FastAGI session records through here, and so
 * does the outcome keeper for a session that could not. Returns whether it
 * was delivered.
 */
export function recordPlaybackOutcome(
  route: CallRoute,
  message: MessageRow,
  status: string | undefined,
  extra: Record<string, unknown> = {},
  options: { keepFiles?: boolean } = {},
): boolean {
  if (status !== 'SUCCESS') {
    route.failedAttempt(message, `Asterisk could not play the message (PLAYBACKSTATUS=${status ?? 'unset'})`, { playbackStatus: status ?? null, ...extra });
    return false;
  }
  route.delivered(message, { playbackStatus: status, ...extra }, options);
  return true;
}

/** The FastAGI session of one voice call: agi://HOST:PORT/voice/<journal id>. */
export async function runVoiceSession(session: SessionLike, message: MessageRow, route: CallRoute, config: Config, language: string): Promise<void> {
  const file = voiceWavBase(config, message.id);
  let status: string | undefined;
  try {
    crashPoint('agi.session');
    const played = await session.exec('Playback', [file], { timeoutMs: PLAY_TIMEOUT_MS });
    if (played.result === '-1' || session.hungUp) {
      route.failedAttempt(message, 'hang-up before the end of the message', { playback: played.result });
      return;
    }
    status = await session.getVariable('PLAYBACKSTATUS');
  } catch (err) {
    route.failedAttempt(message, `the call ended before the message was played (${errorCode(err)})`);
    return;
  }
  crashPoint('agi.outcome');
  // Keep the file for the repeats; it is removed when the session ends.
  if (!recordPlaybackOutcome(route, message, status, {}, { keepFiles: true })) return;
  // Heard once: offering repeats cannot change that, and a hang-up here is the listener's choice.
  const prompt = promptBase(config, language);
  try {
    for (let i = 0; i < config.voice.repeats && !session.hungUp; i++) {
      let pressed = await session.streamFile(prompt, '1', { timeoutMs: 60_000 });
      if (pressed.result !== DIGIT_ONE) pressed = await session.command('WAIT FOR DIGIT', ['5000'], { timeoutMs: 10_000 });
      if (pressed.result !== DIGIT_ONE || session.hungUp) break;
      await session.exec('Playback', [file], { timeoutMs: PLAY_TIMEOUT_MS });
    }
    await session.hangup();
  } catch {
    /* the listener hung up: already delivered */
  } finally {
    route.cleanup(message);
  }
}
