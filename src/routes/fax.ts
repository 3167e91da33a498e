/**
 * Route F: the message as a fax. The text (under a header line naming the
 * sender, the time and the journal reference) is rendered to a TIFF that
 * spandsp accepts; the call's FastAGI session sets FAXOPT(...), runs
 * SendFAX and reads FAXSTATUS/FAXERROR/FAXPAGES/FAXBITRATE. Only SUCCESS
 * with every page is a delivery: EXEC's own result is -1 even then, because
 * the far end hangs up at the end of a good fax (fixtures/agi).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { MessageRow } from '../journal/journal.js';
import { renderFax, faxHeader } from '../render/fax-tiff.js';
import { readTiffPages } from '../render/tiff-tags.js';
import { writeViaDotFile } from '../spool/atomic-write.js';
import { errorCode } from '../errors.js';
import { CallRoute, type CallRouteDeps } from './call-route.js';
import type { SessionLike } from './voice.js';
import { crashPoint } from '../testing/crash-points.js';

/** SendFAX can take minutes per page; the AGI command must wait for it. */
const SENDFAX_TIMEOUT_MS = 60 * 60 * 1000;

export function faxTiffPath(config: Config, id: number): string {
  return path.join(config.fax.dir, `${id}.tif`);
}

export function createFaxRoute(deps: CallRouteDeps): CallRoute {
  const { config } = deps;
  return new CallRoute(
    {
      letter: 'F',
      script: 'fax',
      service: config.fax,
      dir: config.fax.dir,
      keep: config.fax.keep,
      async prepare(message, recipient) {
        if (existsSync(faxTiffPath(config, message.id))) return;
        const header = faxHeader(config.fax.header, {
          from: message.oa || 'unknown',
          time: (message.scts ?? message.receivedAt.slice(0, 19)).replace('T', ' '),
          reference: message.id,
        });
        const rendered = await renderFax(message.text, {
          resolution: recipient.faxResolution ?? config.fax.resolution,
          compression: config.fax.compression,
          header,
        });
        crashPoint('render.fax');
        writeViaDotFile(config.fax.dir, `${message.id}.tif`, rendered.tiff, { fsync: config.spool.fsync, mode: 0o640 });
      },
      artefacts: (message) => [faxTiffPath(config, message.id)],
    },
    deps,
  );
}

/** Pages of the TIFF a fax message sends (all must go through). Throws when the TIFF is gone or unreadable. */
export function faxPageCount(config: Config, id: number): number {
  return readTiffPages(readFileSync(faxTiffPath(config, id))).length;
}

/** What Asterisk said of one fax attempt (FAXSTATUS, FAXERROR, FAXPAGES), and anything else worth keeping. */
export type FaxDetail = Record<string, unknown> & { faxStatus: string | null; faxError: string | null; faxPages: number };

/**
 * The fate of a fax attempt: delivered only with SUCCESS and every page of
 * the TIFF, else a failed attempt naming why. The FastAGI session records
 * through here, and so does the outcome keeper for a session that could not.
 */
export function recordFaxOutcome(route: CallRoute, message: MessageRow, detail: FaxDetail, expectedPages: number): void {
  const full = { ...detail, expectedPages };
  if (detail.faxStatus === 'SUCCESS' && detail.faxPages === expectedPages) {
    route.delivered(message, full);
  } else {
    const reason = detail.faxStatus === 'SUCCESS' ? `only ${detail.faxPages} of ${expectedPages} pages went through` : String(detail.faxError || detail.faxStatus || 'no FAXSTATUS');
    route.failedAttempt(message, reason, full);
  }
}

/** The FastAGI session of one fax call: agi://HOST:PORT/fax/<journal id>. */
export async function runFaxSession(session: SessionLike, message: MessageRow, route: CallRoute, config: Config): Promise<void> {
  const tiff = faxTiffPath(config, message.id);
  const expectedPages = faxPageCount(config, message.id);
  const read: Record<string, unknown> = {};
  let detail: FaxDetail;
  try {
    await session.setVariable('FAXOPT(localstationid)', config.fax.localStationId);
    await session.setVariable('FAXOPT(headerinfo)', config.fax.headerInfo);
    await session.setVariable('FAXOPT(ecm)', config.fax.ecm ? 'yes' : 'no');
    await session.setVariable('FAXOPT(minrate)', String(config.fax.minRate));
    await session.setVariable('FAXOPT(maxrate)', String(config.fax.maxRate));
    crashPoint('agi.session');
    await session.exec('SendFAX', [tiff], { timeoutMs: SENDFAX_TIMEOUT_MS });
    // Dead AGI: after the far end hung up the channel variables can still be read.
    read.faxStatus = (await session.getVariable('FAXSTATUS')) ?? null;
    read.faxError = (await session.getVariable('FAXERROR')) ?? null;
    read.faxPages = Number((await session.getVariable('FAXPAGES')) ?? 0);
    read.faxBitrate = Number((await session.getVariable('FAXBITRATE')) ?? 0);
    detail = read as FaxDetail;
  } catch (err) {
    route.failedAttempt(message, `the call ended before the fax outcome was known (${errorCode(err)})`, read);
    return;
  }
  crashPoint('agi.outcome');
  recordFaxOutcome(route, message, detail, expectedPages);
  await session.hangup().catch(() => undefined);
}
