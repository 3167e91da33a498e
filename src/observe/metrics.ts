/**
 * What /metrics says, in Prometheus' text format (prom-client). Counters are
 * fed by the journal's observer (every state change passes through it, so
 * no route can forget to count) and by the daemon; gauges are read from the
 * journal when scraped, so they are always the truth on disk.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JournalObserver, MessageState } from '../journal/journal.js';

export interface MetricsSources {
  /** Messages per journal state, read at scrape time. */
  countByState(): Record<MessageState, number>;
  /** 'connected', 'backoff', … or undefined when AMI is not configured. */
  amiState(): string | undefined;
}

const FINAL_STATES = new Set<MessageState>(['delivered', 'failed', 'bounced']);

export class Metrics implements JournalObserver {
  readonly registry = new Registry();
  private readonly received: Counter<'source'>;
  private readonly routed: Counter<'service'>;
  private readonly finished: Counter<'service' | 'outcome'>;
  private readonly attempts: Counter<'service' | 'status'>;
  readonly amiReconnects: Counter;
  private readonly renderSeconds: Histogram<'kind'>;
  private sources: MetricsSources | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'sms_router_' });
    this.received = new Counter({
      name: 'sms_router_messages_received_total',
      help: 'Messages recorded in the journal, by where they came from (morx, sip, concat, notice, reply)',
      labelNames: ['source'],
      registers,
    });
    this.routed = new Counter({
      name: 'sms_router_messages_routed_total',
      help: 'Messages handed to a route, by service letter',
      labelNames: ['service'],
      registers,
    });
    this.finished = new Counter({
      name: 'sms_router_messages_finished_total',
      help: 'Messages that reached a final state (delivered, failed, bounced), by service letter',
      labelNames: ['service', 'outcome'],
      registers,
    });
    this.attempts = new Counter({
      name: 'sms_router_call_attempts_total',
      help: 'Calls placed by the daemon whose outcome is known, by service and status (Completed, Expired, Failed, SUCCESS, ...)',
      labelNames: ['service', 'status'],
      registers,
    });
    this.amiReconnects = new Counter({
      name: 'sms_router_ami_reconnects_total',
      help: 'Times the AMI connection was established again after being lost',
      registers,
    });
    this.renderSeconds = new Histogram({
      name: 'sms_router_render_seconds',
      help: 'Time to prepare what a call plays: fax (TIFF) or speech (WAV)',
      labelNames: ['kind'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'sms_router_queue_depth',
      help: 'Messages in the journal by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = self.sources?.countByState();
        if (!counts) return;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'sms_router_ami_up',
      help: '1 when the AMI connection is logged in, 0 when it is not, absent when AMI is not configured',
      registers,
      collect() {
        const state = self.sources?.amiState();
        this.reset();
        if (state !== undefined) this.set(state === 'connected' ? 1 : 0);
      },
    });
  }

  /** Where the gauges read from (the daemon, once its journal is open). */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  messagesReceived(source: string, count: number): void {
    if (count > 0) this.received.inc({ source }, count);
  }

  messagesRouted(service: string, count: number): void {
    if (count > 0) this.routed.inc({ service }, count);
  }

  stateChanged(state: MessageState, route: string | null): void {
    if (FINAL_STATES.has(state)) this.finished.inc({ service: route ?? 'none', outcome: state });
  }

  callFinished(service: string, status: string | null): void {
    this.attempts.inc({ service, status: status ?? 'unknown' });
  }

  rendered(kind: 'fax' | 'speech', seconds: number): void {
    this.renderSeconds.observe({ kind }, seconds);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
