/**
 * Splitting the text of a message to a command number (service C) into a
 * command word and its arguments. Pure.
 *
 * The words are data, never code: they reach configured programs as separate
 * argv entries (no shell anywhere), so nothing here quotes, unescapes or
 * rejects `;`, `$(...)` or backquotes — each word is kept exactly as sent.
 */

export interface ParsedCommand {
  /** The first word, upper-cased so `help`, `Help` and `HELP` are one command; '' for an empty message. */
  word: string;
  /** The other words, verbatim, in order. */
  args: string[];
  /** Everything after the first word as sent (inner spacing kept), trimmed: what PING echoes. */
  rest: string;
}

// Phones pad with spaces, tabs and line breaks (and some insert no-break
// spaces); `\s` covers them all, so none of them can hide inside a word.
const WHITESPACE = /\s+/u;

export function parseCommand(text: string): ParsedCommand {
  const trimmed = text.trim();
  if (trimmed === '') return { word: '', args: [], rest: '' };
  const split = WHITESPACE.exec(trimmed);
  const first = split ? trimmed.slice(0, split.index) : trimmed;
  const rest = split ? trimmed.slice(split.index + split[0].length) : '';
  return {
    // toUpperCase, not toLocaleUpperCase: the host's locale (Turkish dotted I)
    // must not change which command a word names.
    word: first.toUpperCase(),
    args: rest === '' ? [] : rest.split(WHITESPACE),
    rest,
  };
}
