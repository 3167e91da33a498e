/**
 * Readiness for systemd (Type=notify). Node cannot send on a Unix datagram
 * socket by itself, so the message goes through systemd-notify(1), which
 * waits until systemd has taken it; the unit therefore says
 * NotifyAccess=all. Outside systemd (no NOTIFY_SOCKET) nothing happens.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

export function notifySystemd(ready: boolean, status: string, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve();
  // Arguments, never a shell; the status text is ours, and has no newline (a newline would start another assignment).
  const args = [...(ready ? ['--ready'] : []), `--status=${status.replace(/[\r\n]+/g, ' ')}`];
  return new Promise((resolve) => {
    execFile('systemd-notify', args, { env, timeout: 10_000 }, (err) => {
      if (err) log.warn({ code: 'SYSTEMD_NOTIFY_FAILED', err: err.message }, 'could not tell systemd; with Type=notify the unit will time out starting');
      else log.debug({ ready, status }, 'systemd notified');
      resolve();
    });
  });
}
