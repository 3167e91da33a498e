/**
 * /metrics and /healthz on the real daemon (in process) with a real HTTP
 * listener, a fake Asterisk manager and real spool files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { makeSpoolTree, waitUntil } from '../helpers/spool-tree.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { startDaemon } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';
import { parseConfig } from '../../src/config.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample line of the Prometheus text, 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

test('/metrics counters move as messages are routed, and /healthz turns unhealthy when AMI goes away', async () => {
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(
    `[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${fake.port}\nusername = "labami"\nsecret = "labsecret123"\naction_timeout = 2\n[http]\nlisten = "127.0.0.1:0"\n`,
  );
  try {
    const { daemon, stop } = await startDaemon(tree);
    try {
      const port = daemon.httpListening!.port;
      assert.equal(daemon.httpListening!.host, '127.0.0.1');
      await waitUntil(() => daemon.ami!.state === 'connected', 10_000, 'AMI login');
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      daemon.directory.add({ number: '3001', service: 'T', channel: 'PJSIP/3001' });

      const before = await get(port, '/metrics');
      assert.equal(before.status, 200);
      assert.match(before.type, /^text\/plain/);
      assert.equal(sample(before.body, 'sms_router_messages_received_total{source="morx"}'), 0);

      for (let i = 0; i < 3; i++) writeMorx(tree.morx, { from: '2001', to: '3001', text: `to a softphone ${i}` }, false);
      for (let i = 0; i < 2; i++) writeMorx(tree.morx, { from: '3001', to: '2001', text: `to a phone ${i}` }, false);
      writeMorx(tree.morx, { from: '2001', to: '9999', text: 'to nobody' }, false);
      await fake.waitFor(() => fake.delivered.length === 3, 10_000, 'three MessageSends');
      await waitUntil(() => daemon.journal.countByState().received === 0, 10_000, 'everything routed');
      await daemon.idle();

      const after = (await get(port, '/metrics')).body;
      assert.equal(sample(after, 'sms_router_messages_received_total{source="morx"}'), 6);
      // The notice for 9999 is a message of its own.
      assert.equal(sample(after, 'sms_router_messages_received_total{source="notice"}'), 1);
      assert.equal(sample(after, 'sms_router_messages_routed_total{service="T"}'), 3);
      // Two messages to the S phone and the notice back to 2001 (an S phone too).
      assert.equal(sample(after, 'sms_router_messages_routed_total{service="S"}'), 3);
      // MessageSend accepted means handed to Asterisk (spooled), not known delivered: nothing counts as delivered yet.
      assert.equal(sample(after, 'sms_router_messages_finished_total{service="T",outcome="delivered"}'), 0);
      assert.equal(sample(after, 'sms_router_messages_finished_total{service="N",outcome="bounced"}'), 1);
      const depth = daemon.journal.countByState();
      assert.equal(sample(after, 'sms_router_queue_depth{state="spooled"}'), depth.spooled);
      assert.equal(depth.spooled, 6, 'T messages handed to Asterisk, S messages waiting for app_sms');
      assert.equal(sample(after, 'sms_router_ami_up'), 1);
      assert.match(after, /^sms_router_process_resident_memory_bytes \d+/m);

      const healthy = await get(port, '/healthz');
      assert.equal(healthy.status, 200);
      const report = JSON.parse(healthy.body) as { status: string; checks: Array<{ name: string; ok: boolean }> };
      assert.equal(report.status, 'ok');
      assert.deepEqual(report.checks.map((c) => [c.name, c.ok]), [['daemon', true], ['database', true], ['ami', true]]);

      // The PBX goes away: AMI is down, so is health; the daemon itself keeps running.
      await fake.stopListening();
      await waitUntil(() => daemon.ami!.state !== 'connected', 10_000, 'AMI drop noticed');
      const sick = await get(port, '/healthz');
      assert.equal(sick.status, 503);
      const sickReport = JSON.parse(sick.body) as { status: string; checks: Array<{ name: string; ok: boolean }> };
      assert.equal(sickReport.status, 'unhealthy');
      assert.deepEqual(sickReport.checks.map((c) => [c.name, c.ok]), [['daemon', true], ['database', true], ['ami', false]]);
      assert.equal(sample((await get(port, '/metrics')).body, 'sms_router_ami_up'), 0);

      // Back again: healthy, and the reconnect is counted.
      await fake.listen();
      await waitUntil(() => daemon.ami!.state === 'connected', 30_000, 'AMI reconnect');
      assert.equal((await get(port, '/healthz')).status, 200);
      assert.equal(sample((await get(port, '/metrics')).body, 'sms_router_ami_reconnects_total'), 1);

      assert.equal((await get(port, '/nothing')).status, 404);
      assert.equal((await get(port, '/metrics', 'POST')).status, 405);
    } finally {
      await stop();
    }
  } finally {
    await fake.close();
    tree.cleanup();
  }
});

test('[http] is off unless set, and a bare port listens on loopback only', () => {
  const base = '[centre]\nreceive_number = "1000"\nsend_number = "1000"\n';
  assert.equal(parseConfig('/x.toml', base).http.listen, undefined);
  assert.deepEqual(parseConfig('/x.toml', `${base}[http]\nlisten = "9464"\n`).http.listen, { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseConfig('/x.toml', `${base}[http]\nlisten = "0.0.0.0:9464"\n`).http.listen, { host: '0.0.0.0', port: 9464 });
  assert.throws(() => parseConfig('/x.toml', `${base}[http]\nlisten = "everywhere"\n`), /\/x\.toml.*\[http\] listen|http.*listen/);
});
