/**
 * The Asterisk side of one F or V call, for tests that run the daemon in
 * process: take our call file out of outgoing/ (as pbx_spool does), play the
 * answered call's FastAGI session, and archive the call file into
 * outgoing_done with its Status (as pbx_spool does with Archive: yes).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitUntil, type SpoolTree } from './spool-tree.js';
import { connectFakeAgi, type AgiScript } from '../fakes/agi-client.js';
import { parseCallFile } from '../../src/asterisk/call-file.js';

/** Waits for our call file for attempt N, checks it, and takes it out of outgoing/ as Asterisk would. */
export async function takeCall(tree: SpoolTree, letter: 'F' | 'V', id: number, attempt: number) {
  const name = `smsr-${letter}-${id}-a${attempt}.call`;
  const file = path.join(tree.outgoing, name);
  await waitUntil(() => existsSync(file), 20_000, name);
  const text = readFileSync(file, 'utf8');
  const call = parseCallFile(text);
  rmSync(file);
  const url = new URL(call.get('Data')!);
  assert.equal(call.get('Application'), 'AGI');
  assert.equal(call.get('Archive'), 'yes');
  return { name, text, call, port: Number(url.port), script: url.pathname.slice(1) };
}

/** The answered call's FastAGI session, to its end. */
export async function answer(port: number, script: string, answers: AgiScript, extra: { closeAfter?: number } = {}) {
  const client = await connectFakeAgi({ port, script, answers, closeAfter: extra.closeAfter, env: { agi_channel: 'PJSIP/fax1-00000001' } });
  await client.closed;
  return client;
}

export const faxAnswers = (status: string, error: string, pages: number): AgiScript => ({
  'EXEC SendFAX': ['200 result=-1', 'HANGUP'],
  'GET VARIABLE FAXSTATUS': [`200 result=1 (${status})`],
  'GET VARIABLE FAXERROR': [`200 result=1 (${error})`],
  'GET VARIABLE FAXPAGES': [`200 result=1 (${pages})`],
  'GET VARIABLE FAXBITRATE': ['200 result=1 (14400)'],
});

export const played = (status: string): AgiScript => ({
  'EXEC Playback': ['200 result=0'],
  'GET VARIABLE PLAYBACKSTATUS': [`200 result=1 (${status})`],
  'STREAM FILE': ['200 result=0 endpos=8000'],
  'WAIT FOR DIGIT': ['200 result=0'],
  HANGUP: ['200 result=1', 'HANGUP'],
});

/** pbx_spool's archive of a taken call: its text, a StartRetry line and the Status, renamed into outgoing_done. */
export function archiveCall(tree: SpoolTree, taken: { name: string; text: string }, status: 'Completed' | 'Expired' | 'Failed'): void {
  const done = tree.config.spool.outgoingDone;
  mkdirSync(done, { recursive: true });
  writeFileSync(path.join(done, `.${taken.name}`), `${taken.text}StartRetry: 4242 1 (${Math.floor(Date.now() / 1000)})\nStatus: ${status}\n`);
  renameSync(path.join(done, `.${taken.name}`), path.join(done, taken.name));
}
