/**
 * `sms-router render-fax`: render a text as the daemon would fax it, to look at
 * the pages (PNG) or to try the TIFF with a real SendFAX, without sending a
 * message through the router.
 *
 * Exit codes: 0 written, 1 rendering or writing failed, 2 the command line was
 * wrong. Errors are one line on stderr: this is run by people at a prompt.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeFaxPngs, encodeFaxTiff, faxHeader, renderFaxPages, FAX_Y_DPI, type FaxResolution } from '../render/fax-tiff.js';

export const RENDER_FAX_USAGE =
  'usage: sms-router render-fax [--resolution standard|fine|superfine] [--compression g4|g3] --out FILE.tif [--png DIR] [--from NUMBER] [TEXT]';

/** The daemon's default header ([fax] header in the config). */
const HEADER_TEMPLATE = 'Text message from {from} sent {time} (ref {ref})';

const PREFIX = 'sms-router render-fax';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Local time as "YYYY-MM-DD HH:MM:SS", the form the daemon's header uses. */
function localTime(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export async function runRenderFaxCommand(
  args: string[],
  io: { stdout(s: string): void; stderr(s: string): void },
  stdin: () => Promise<string> = readStdin,
): Promise<number> {
  const usage = (message: string): number => {
    io.stderr(`${PREFIX}: ${message}; ${RENDER_FAX_USAGE}\n`);
    return 2;
  };
  let values: { resolution?: string; compression?: string; out?: string; png?: string; from?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        resolution: { type: 'string' },
        compression: { type: 'string' },
        out: { type: 'string', short: 'o' },
        png: { type: 'string' },
        from: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    io.stdout(`${RENDER_FAX_USAGE}\n`);
    return 0;
  }
  const resolution = (values.resolution ?? 'fine') as FaxResolution;
  if (!Object.hasOwn(FAX_Y_DPI, resolution)) return usage(`--resolution must be standard, fine or superfine, not ${JSON.stringify(values.resolution)}`);
  const compression = values.compression ?? 'g4';
  if (compression !== 'g4' && compression !== 'g3') return usage(`--compression must be g4 or g3, not ${JSON.stringify(values.compression)}`);
  if (!values.out) return usage('--out FILE.tif is required');
  if (values.png === '') return usage('--png needs a directory');

  try {
    const text = positionals.length ? positionals.join(' ') : await stdin();
    const options = {
      resolution,
      compression,
      header: faxHeader(HEADER_TEMPLATE, { from: values.from ?? 'unknown', time: localTime(new Date()), reference: '-' }),
    } as const;
    const pages = await renderFaxPages(text, options);
    await writeFile(values.out, await encodeFaxTiff(pages, options));
    io.stdout(`${pages.length} page${pages.length === 1 ? '' : 's'} (${resolution}, ${compression}): ${values.out}\n`);
    if (values.png !== undefined) {
      await mkdir(values.png, { recursive: true });
      const pngs = await encodeFaxPngs(pages);
      const files = pngs.map((_, i) => path.join(values.png!, `page-${i + 1}.png`));
      await Promise.all(pngs.map((png, i) => writeFile(files[i]!, png)));
      io.stdout(`${files.length} PNG${files.length === 1 ? '' : 's'}: ${files.join(' ')}\n`);
    }
    return 0;
  } catch (err) {
    io.stderr(`${PREFIX}: ${(err as Error).message}\n`);
    return 1;
  }
}
