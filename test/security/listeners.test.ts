/**
 * Security: the daemon's listeners (FastAGI, and the optional HTTP /healthz +
 * /metrics) are bound to loopback unless the operator names another address;
 * AMI, which the daemon connects to, defaults to loopback too. What the HTTP
 * listener serves holds neither the AMI secret nor message texts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { makeSpoolTree, type SpoolTree } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { parseConfig, type Config } from '../../src/config.js';
import { writeMorx } from '../../src/cli/send.js';

const MINIMAL = '[centre]\nreceive_number = "1000"\nsend_number = "1001"\n';

/** This host's own non-loopback IPv4 addresses: a listener on 0.0.0.0 would answer on them. */
function externalAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a): a is NonNullable<typeof a> => !!a && a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

/** Resolves 'refused' or 'accepted'. */
function tryConnect(host: string, port: number): Promise<'refused' | 'accepted'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', () => resolve('refused'));
  });
}

async function assertLoopbackOnly(address: { host: string; port: number }): Promise<void> {
  assert.equal(address.host, '127.0.0.1');
  assert.equal(await tryConnect('127.0.0.1', address.port), 'accepted');
  for (const ip of externalAddresses()) assert.equal(await tryConnect(ip, address.port), 'refused', `not reachable on ${ip}`);
}

/** The tree's config with its listeners' ports set to 0 (the defaults may be taken on a test machine), hosts untouched. */
function withFreePorts(t: SpoolTree): SpoolTree {
  const c = t.config;
  const config: Config = { ...c, agi: { ...c.agi, port: 0 }, http: { listen: c.http.listen && { ...c.http.listen, port: 0 } } };
  return { ...t, config };
}

test('defaults: FastAGI listens on 127.0.0.1:4573, AMI is reached on 127.0.0.1, HTTP is off', () => {
  const c = parseConfig('/x.toml', MINIMAL);
  assert.deepEqual({ host: c.agi.host, port: c.agi.port }, { host: '127.0.0.1', port: 4573 });
  assert.equal(c.ami.host, '127.0.0.1');
  assert.equal(c.http.listen, undefined);
});

test('the real daemon with the default [agi] binds FastAGI to loopback only, and starts no HTTP listener', async () => {
  // An [agi] section without listen: the default address, with a free port instead of 4573.
  const t = makeSpoolTree('[agi]\nadvertise = ""\n');
  try {
    assert.equal(t.config.agi.host, '127.0.0.1');
    const { daemon, stop } = await startDaemon(withFreePorts(t));
    try {
      await assertLoopbackOnly(daemon.agiListening!);
      assert.equal(daemon.httpListening, undefined);
    } finally {
      await stop();
    }
  } finally {
    t.cleanup();
  }
});

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
    req.end();
  });
}

test('[http] listen = PORT binds loopback only; /healthz and /metrics hold no AMI secret and no message text', async () => {
  assert.deepEqual(parseConfig('/x.toml', `${MINIMAL}[http]\nlisten = "9464"\n`).http.listen, { host: '127.0.0.1', port: 9464 });
  const fake = await FakeAmiServer.start();
  fake.secret = 'Http-Ami-S3cret-55aa';
  const t = makeSpoolTree(`[ami]\nenabled = true\nport = ${fake.port}\nusername = "${fake.username}"\nsecret = "${fake.secret}"\n[http]\nlisten = "9464"\n`);
  try {
    assert.deepEqual(t.config.http.listen, { host: '127.0.0.1', port: 9464 });
    const { daemon, stop } = await startDaemon(withFreePorts(t));
    try {
      await assertLoopbackOnly(daemon.httpListening!);
      await daemon.ami!.waitConnected(5_000);
      daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
      writeMorx(t.morx, { from: '2001', to: '1001', text: 'TXT-http-3e4f private' }, false);
      await fake.waitFor(() => fake.delivered.length === 1, 10_000, 'the T message');
      for (const path of ['/healthz', '/metrics']) {
        const body = await get(daemon.httpListening!.port, path);
        assert.ok(body.length > 0, path);
        for (const f of [fake.secret, 'TXT-http-3e4f']) assert.ok(!body.includes(f), `${path} holds ${f}`);
      }
    } finally {
      await stop();
    }
  } finally {
    await fake.close();
    t.cleanup();
  }
});
