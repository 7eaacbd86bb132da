/**
 * ADQL 2.1 lexer. Comments: `--` to end of line as the standard says; `/* ... *\/` is also
 * skipped (not nested) because users paste SQL from tools that write them; neither is kept.
 * Hexadecimal literals (0x2F) are accepted although the final 2.1 text withdrew them, because
 * services built on the 2.1 drafts (taplib, DaCHS) accept them and users write them.
 */
import { AdqlSyntaxError, type Pos } from './errors.js';
import { RESERVED_WORDS, type NumberShape, type Token } from './tokens.js';

const TWO_CHAR_OPS = new Set(['<>', '<=', '>=', '!=', '||']);
const ONE_CHAR_OPS = new Set(['(', ')', ',', '.', '*', '+', '-', '/', '=', '<', '>', '&', '|', '^', '~', ';']);

function isLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isHexDigit(c: string): boolean {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/** Characters that glue onto a number or word and make it malformed (any letter, digit, '_'). */
function isWordChar(c: string): boolean {
  return c !== '' && (isLetter(c) || isDigit(c) || c === '_' || /\p{L}/u.test(c));
}

/** Split ADQL text into tokens, ending with one `eof` token; throws AdqlSyntaxError on bad characters. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;

  const posAt = (offset: number): Pos => ({ line, column: offset - lineStart + 1, offset });
  // Newlines inside strings, quoted names and block comments still move the line counter.
  const advanceOver = (from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      const c = text[k];
      if (c === '\n' || (c === '\r' && text[k + 1] !== '\n')) {
        line++;
        lineStart = k + 1;
      }
    }
  };

  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      advanceOver(i, i + 1);
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const start = posAt(i);
      const close = text.indexOf('*/', i + 2);
      if (close < 0) throw new AdqlSyntaxError('unterminated comment: /* without */', start, '/*');
      advanceOver(i, close + 2);
      i = close + 2;
      continue;
    }
    const pos = posAt(i);
    if (isLetter(c)) {
      let j = i + 1;
      while (j < text.length && (isLetter(text[j]) || isDigit(text[j]) || text[j] === '_')) j++;
      if (j < text.length && /\p{L}/u.test(text[j])) {
        throw new AdqlSyntaxError(
          `unexpected character '${text[j]}' in identifier: unquoted names use only Latin letters, digits and '_'; write the name in double quotes`,
          posAt(j),
          text.slice(i, j + 1),
        );
      }
      const word = text.slice(i, j);
      const upper = word.toUpperCase();
      if (RESERVED_WORDS.has(upper)) tokens.push({ kind: 'keyword', text: word, value: upper, pos, end: j });
      else tokens.push({ kind: 'ident', text: word, value: word, pos, end: j });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1] ?? ''))) {
      const { end, shape } = scanNumber(text, i, pos);
      tokens.push({ kind: 'number', text: text.slice(i, end), value: text.slice(i, end), pos, end, shape });
      i = end;
      continue;
    }
    if (c === "'") {
      const { end, value } = scanQuoted(text, i, "'");
      if (end < 0) throw new AdqlSyntaxError("unterminated string literal: ' without closing '", pos, text.slice(i, i + 20));
      tokens.push({ kind: 'string', text: text.slice(i, end), value, pos, end });
      advanceOver(i, end);
      i = end;
      continue;
    }
    if (c === '"') {
      const { end, value } = scanQuoted(text, i, '"');
      if (end < 0) throw new AdqlSyntaxError('unterminated delimited identifier: " without closing "', pos, text.slice(i, i + 20));
      if (value === '') throw new AdqlSyntaxError('empty delimited identifier ""', pos, '""');
      tokens.push({ kind: 'quoted', text: text.slice(i, end), value, pos, end });
      advanceOver(i, end);
      i = end;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (TWO_CHAR_OPS.has(two)) {
      tokens.push({ kind: 'op', text: two, value: two, pos, end: i + 2 });
      i += 2;
      continue;
    }
    if (ONE_CHAR_OPS.has(c)) {
      tokens.push({ kind: 'op', text: c, value: c, pos, end: i + 1 });
      i++;
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(i) ?? 0);
    if (c === '_') {
      let j = i + 1;
      while (j < text.length && (isLetter(text[j]) || isDigit(text[j]) || text[j] === '_')) j++;
      const word = text.slice(i, j);
      throw new AdqlSyntaxError(`identifiers must begin with a letter; write "${word}" (in double quotes) to use this name`, pos, word);
    }
    throw new AdqlSyntaxError(`unexpected character ${JSON.stringify(ch)}`, pos, ch);
  }
  tokens.push({ kind: 'eof', text: '', value: '', pos: posAt(text.length), end: text.length });
  return tokens;
}

/** Scan a numeric literal starting at `i`: decimal, exponent or 0x hexadecimal. */
function scanNumber(text: string, i: number, pos: Pos): { end: number; shape: NumberShape } {
  let j = i;
  let shape: NumberShape = 'integer';
  const malformed = (to: number): never => {
    let k = to;
    while (k < text.length && (isWordChar(text[k]) || text[k] === '.')) k++;
    throw new AdqlSyntaxError('malformed number', pos, text.slice(i, Math.max(k, to)));
  };
  if (text[j] === '0' && (text[j + 1] === 'x' || text[j + 1] === 'X')) {
    j += 2;
    const startDigits = j;
    while (j < text.length && isHexDigit(text[j])) j++;
    if (j === startDigits || isWordChar(text[j] ?? '')) malformed(j + 1);
    return { end: j, shape: 'hex' };
  }
  while (j < text.length && isDigit(text[j])) j++;
  if (text[j] === '.') {
    shape = 'decimal';
    j++;
    while (j < text.length && isDigit(text[j])) j++;
  }
  if (text[j] === 'e' || text[j] === 'E') {
    shape = 'approximate';
    j++;
    if (text[j] === '+' || text[j] === '-') j++;
    const startExp = j;
    while (j < text.length && isDigit(text[j])) j++;
    if (j === startExp) malformed(j);
  }
  if (j < text.length && (isWordChar(text[j]) || text[j] === '.')) malformed(j + 1);
  return { end: j, shape };
}

/** Scan a '...' or "..." token whose quote is escaped by doubling; end is -1 when unterminated. */
function scanQuoted(text: string, i: number, quote: string): { end: number; value: string } {
  let j = i + 1;
  let value = '';
  for (;;) {
    const k = text.indexOf(quote, j);
    if (k < 0) return { end: -1, value: '' };
    value += text.slice(j, k);
    if (text[k + 1] === quote) {
      value += quote;
      j = k + 2;
      continue;
    }
    return { end: k + 1, value };
  }
}
