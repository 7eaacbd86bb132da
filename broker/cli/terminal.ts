/**
 * What the CLI may put on a terminal: strings from sites (names, image references, error
 * messages) made printable so an escape sequence in them cannot drive the user's terminal;
 * colour only on a TTY without NO_COLOR; a progress line rewritten in place only on a TTY.
 */

// C0 controls but tab and newline, DEL, and C1 controls (U+0080–U+009F: 0x9b is a one-byte CSI).
// Bidirectional overrides and isolates are escaped too: they reorder what the user reads.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNPRINTABLE_INLINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character shown as a visible escape (ESC as \x1b); newlines and tabs kept. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/** `text` for one line or one table cell: every control character escaped, newlines and tabs too. */
export function printableInline(text: string): string {
  return text.replace(UNPRINTABLE_INLINE, escapeChar);
}

function escapeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** A stream the CLI writes to, as far as terminal decisions go. */
export interface TerminalStream {
  isTTY?: boolean;
}

/** True when `stream` is a terminal (progress rewritten in place; colour unless NO_COLOR). */
export function isTerminal(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** True when colour may be written to `stream`: a terminal, and NO_COLOR unset or empty (no-color.org). */
export function colourOn(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return isTerminal(stream, env) && !env.NO_COLOR;
}

/** Colour functions for one stream: identity functions when colour is off. */
export interface Palette {
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

/** The palette for `stream` (plain when colour is off). Apply it to text already made printable. */
export function palette(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): Palette {
  const on = colourOn(stream, env);
  const sgr = (open: number, close: number) => (text: string) => (on ? `\u001b[${open}m${text}\u001b[${close}m` : text);
  return { green: sgr(32, 39), red: sgr(31, 39), yellow: sgr(33, 39), dim: sgr(2, 22), bold: sgr(1, 22) };
}

/**
 * One progress line on stderr: on a terminal rewritten in place; elsewhere a plain line each
 * time it changes (a log or a pipe keeps every state); nothing at all when `quiet` (--json).
 */
export class ProgressLine {
  readonly #tty: boolean;
  readonly #quiet: boolean;
  readonly #write: (text: string) => void;
  #last = '';
  #shown = false;

  constructor(options: { quiet: boolean; stream?: TerminalStream & { write(text: string): unknown }; env?: NodeJS.ProcessEnv }) {
    const stream = options.stream ?? process.stderr;
    this.#tty = isTerminal(stream, options.env);
    this.#quiet = options.quiet;
    this.#write = (text) => void stream.write(text);
  }

  /** Show `line` (made printable); `key` is what must change for a non-terminal to get a new line (default the line). */
  update(line: string, key = line): void {
    if (this.#quiet) return;
    const text = printableInline(line);
    if (this.#tty) {
      this.#write(`\r\u001b[2K${text}`);
      this.#shown = true;
    } else if (key !== this.#last) {
      this.#write(`${text}\n`);
    }
    this.#last = key;
  }

  /** End the in-place line so what follows starts on a line of its own. */
  done(): void {
    if (this.#tty && this.#shown) this.#write('\n');
    this.#shown = false;
  }
}
