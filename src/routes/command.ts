/**
 * Route C: a number that is a service, not a person. The message's text is a
 * command; the reply goes back to the sender through the sender's own
 * service (an SMS to an S phone, a SIP message to a T softphone). Replies
 * are journalled as notices, so a reply that cannot be delivered is logged
 * and never answered again (no loops between services).
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { RecipientDirectory } from '../directory/recipients.js';
import { newMessage, type Journal, type MessageRow } from '../journal/journal.js';
import { CommandService } from '../commands/service.js';
import { isoLocal } from '../spool/scts.js';
import type { DeliveryItem } from './sms.js';

export class CommandRoute {
  readonly letter = 'C' as const;
  private service: CommandService;
  private readonly serviceDeps: ConstructorParameters<typeof CommandService>[1];

  constructor(
    private readonly config: Config,
    private readonly journal: Journal,
    private readonly directory: RecipientDirectory,
    private readonly log: Logger,
    private readonly replyQueued: () => void,
    startedAt = new Date(),
  ) {
    this.serviceDeps = {
      now: () => new Date(),
      daemonStartedAt: startedAt,
      systemUptimeSeconds: () => os.uptime(),
      journalCounts: () => journal.commandStatus(),
      setSenderService: (number, letter) => {
        directory.set(number, { service: letter });
      },
      log,
    };
    this.service = new CommandService(config.commands, this.serviceDeps);
  }

  /** SIGHUP: new [commands] settings take effect for the next command (per-sender counts start again). */
  reconfigure(commands: Config['commands']): void {
    this.service = new CommandService(commands, this.serviceDeps);
  }

  async deliver(items: readonly DeliveryItem[]): Promise<void> {
    for (const { message } of items) {
      if (message.kind === 'notice' || !message.oa) {
        // A notice or a reply addressed to a command number is not a command: taking it as one could loop.
        this.journal.update(message.id, { state: 'delivered', route: 'C', lastError: null });
        this.log.info({ msgId: message.id, from: message.oa, to: message.da, route: 'C', outcome: 'delivered', kind: message.kind }, 'not a command; kept');
        continue;
      }
      const result = await this.service.handle({
        commandNumber: message.da,
        sender: message.oa,
        senderEntry: this.directory.get(message.oa),
        text: message.text,
      });
      this.complete(message, result.command, result.outcome, result.reply);
    }
  }

  private complete(message: MessageRow, command: string, outcome: string, reply: string | null): void {
    const replyId = this.journal.transaction(() => {
      let id: number | undefined;
      if (reply !== null) {
        id = this.journal.recordReceived([
          newMessage({
            kind: 'notice',
            parentId: message.id,
            source: 'command',
            sourceName: `reply-to-${message.id}`,
            oa: message.da,
            da: message.oa,
            text: reply,
            scts: isoLocal(new Date()),
          }),
        ])[0]!.id;
      }
      this.journal.update(message.id, { state: 'delivered', route: 'C', lastError: outcome === 'ok' ? null : outcome, attempts: message.attempts + 1 });
      this.journal.setRouteDetail(message.id, { command, outcome, replyId: id ?? null });
      return id;
    });
    this.log.info({ msgId: message.id, from: message.oa, to: message.da, route: 'C', outcome: 'delivered', command: outcome === 'ok' ? command : undefined, result: outcome, replyId }, 'command answered');
    if (replyId !== undefined) this.replyQueued();
  }
}
