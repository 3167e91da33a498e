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

/** The FastAGI session of one fax call: agi://HOST:PORT/fax/<journal id>. */
export async function runFaxSession(session: SessionLike, message: MessageRow, route: CallRoute, config: Config): Promise<void> {
  const tiff = faxTiffPath(config, message.id);
  const expectedPages = readTiffPages(readFileSync(tiff)).length;
  let status: string | undefined;
  const detail: Record<string, unknown> = {};
  try {
    await session.setVariable('FAXOPT(localstationid)', config.fax.localStationId);
    await session.setVariable('FAXOPT(headerinfo)', config.fax.headerInfo);
    await session.setVariable('FAXOPT(ecm)', config.fax.ecm ? 'yes' : 'no');
    await session.setVariable('FAXOPT(minrate)', String(config.fax.minRate));
    await session.setVariable('FAXOPT(maxrate)', String(config.fax.maxRate));
    crashPoint('agi.session');
    await session.exec('SendFAX', [tiff], { timeoutMs: SENDFAX_TIMEOUT_MS });
    // Dead AGI: after the far end hung up the channel variables can still be read.
    status = await session.getVariable('FAXSTATUS');
    detail.faxStatus = status ?? null;
    detail.faxError = (await session.getVariable('FAXERROR')) ?? null;
    detail.faxPages = Number((await session.getVariable('FAXPAGES')) ?? 0);
    detail.faxBitrate = Number((await session.getVariable('FAXBITRATE')) ?? 0);
  } catch (err) {
    route.failedAttempt(message, `the call ended before the fax outcome was known (${errorCode(err)})`, detail);
    return;
  }
  detail.expectedPages = expectedPages;
  crashPoint('agi.outcome');
  if (status === 'SUCCESS' && detail.faxPages === expectedPages) {
    route.delivered(message, detail);
  } else {
    const reason = status === 'SUCCESS' ? `only ${String(detail.faxPages)} of ${expectedPages} pages went through` : String(detail.faxError || status || 'no FAXSTATUS');
    route.failedAttempt(message, reason, detail);
  }
  await session.hangup().catch(() => undefined);
}
