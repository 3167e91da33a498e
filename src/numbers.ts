/**
 * Validation of the values that end up in file names and call files.
 * Everything from a phone or a SIP client is hostile until it passed here.
 */
import { InvalidChannelError, InvalidNumberError } from './errors.js';

// app_sms ignores an oa/da of 20 characters or more (its buffers hold 19 and a NUL).
const NUMBER = /^(?=.{1,19}$)\+?[0-9]+$/;
// TECH/resource[@context][/options]; no spaces, no control characters, no commas
// or pipes (they would split application arguments in the dialplan).
const CHANNEL = /^[A-Za-z][A-Za-z0-9_-]*\/[A-Za-z0-9_.+@:#*\/-]{1,120}$/;

export function isValidNumber(value: string): boolean {
  return NUMBER.test(value);
}

export function assertNumber(value: string): string {
  if (!NUMBER.test(value)) throw new InvalidNumberError(value);
  return value;
}

export function isValidChannel(value: string): boolean {
  return CHANNEL.test(value) && !value.includes('..');
}

export function assertChannel(value: string): string {
  if (!isValidChannel(value)) throw new InvalidChannelError(value);
  return value;
}

/**
 * The queue name app_sms uses for a number: app_sms replaces every
 * non-alphanumeric character of its first argument with '-', and matches
 * `sms/mttx/QUEUE.*`. Only valid numbers get here, so the result is digits
 * with at most a leading '-'.
 */
export function queueForNumber(number: string): string {
  return assertNumber(number).replace(/[^A-Za-z0-9]/g, '-');
}
