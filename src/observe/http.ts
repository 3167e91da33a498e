/**
 * The optional HTTP listener ([http] listen): GET /healthz and GET /metrics,
 * nothing else. It is read-only: no request can change what the daemon does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { Metrics } from './metrics.js';

export interface HealthCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface HttpOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** Each check of /healthz; all must pass for 200. */
  health: () => HealthCheck[];
  log: Logger;
}

export class HttpService {
  private server: Server | undefined;

  constructor(private readonly options: HttpOptions) {}

  async listen(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.options.log.error({ code: 'HTTP_INTERNAL', err: errorMessage(err), url: req.url }, 'HTTP request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    // Scrapers keep connections open; none of ours is worth holding a socket for long.
    server.keepAliveTimeout = 5_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('only GET\n');
      return;
    }
    if (url === '/healthz') {
      const checks = this.options.health();
      const healthy = checks.every((c) => c.ok);
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify({ status: healthy ? 'ok' : 'unhealthy', checks })}\n`);
      return;
    }
    if (url === '/metrics') {
      const body = await this.options.metrics.text();
      res.writeHead(200, { 'content-type': this.options.metrics.contentType });
      res.end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /healthz or /metrics\n');
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
