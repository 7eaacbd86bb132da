import { describe, expect, it } from 'vitest';
import { AdqlSyntaxError, tokenize, type Token } from '../../adapters/ivoa/adql/index.js';

const kinds = (text: string): string[] => tokenize(text).map((t) => `${t.kind}:${t.value}`);

function lexError(text: string): AdqlSyntaxError {
  try {
    tokenize(text);
  } catch (err) {
    expect(err).toBeInstanceOf(AdqlSyntaxError);
    return err as AdqlSyntaxError;
  }
  throw new Error(`no error for ${text}`);
}

describe('ADQL lexer', () => {
  it('tells reserved words from identifiers, case-insensitively', () => {
    expect(kinds('select Ra FROM t')).toEqual(['keyword:SELECT', 'ident:Ra', 'keyword:FROM', 'ident:t', 'eof:']);
    expect(kinds('Top offset iLike in_unit')).toEqual(['keyword:TOP', 'keyword:OFFSET', 'keyword:ILIKE', 'keyword:IN_UNIT', 'eof:']);
    // Words that are reserved only in other dialects stay plain identifiers.
    expect(kinds('limit objectId coord_ra2')).toEqual(['ident:limit', 'ident:objectId', 'ident:coord_ra2', 'eof:']);
  });

  it('reads delimited identifiers with "" escapes and keeps their exact case', () => {
    const [t] = tokenize('"My ""odd"" Name"');
    expect(t).toMatchObject({ kind: 'quoted', value: 'My "odd" Name', text: '"My ""odd"" Name"' });
    expect(tokenize('"size"')[0]).toMatchObject({ kind: 'quoted', value: 'size' });
    expect(tokenize('"Ω µ"')[0].value).toBe('Ω µ');
  });

  it("reads string literals with '' escapes, across lines", () => {
    const toks = tokenize("'Earth''s satellite' 'a\nb' ''");
    expect(toks.map((t) => t.value)).toEqual(["Earth's satellite", 'a\nb', '', '']);
    expect(toks[2].pos).toEqual({ line: 2, column: 4, offset: 27 });
  });

  it('reads every numeric literal form and records its shape', () => {
    const toks = tokenize('12 12.3 12. .5 12.3E4 1e-3 2.5E+10 0x2F 0XaB');
    expect(toks.slice(0, -1).map((t: Token) => [t.value, t.shape])).toEqual([
      ['12', 'integer'], ['12.3', 'decimal'], ['12.', 'decimal'], ['.5', 'decimal'], ['12.3E4', 'approximate'],
      ['1e-3', 'approximate'], ['2.5E+10', 'approximate'], ['0x2F', 'hex'], ['0XaB', 'hex'],
    ]);
  });

  it('reads every operator, the two-character ones greedily', () => {
    expect(kinds('<> <= >= != || ( ) , . * + - / = < > & | ^ ~ ;').slice(0, -1)).toEqual(
      ['<>', '<=', '>=', '!=', '||', '(', ')', ',', '.', '*', '+', '-', '/', '=', '<', '>', '&', '|', '^', '~', ';'].map((o) => `op:${o}`),
    );
    expect(kinds('a.b')).toEqual(['ident:a', 'op:.', 'ident:b', 'eof:']);
    expect(kinds('t.*')).toEqual(['ident:t', 'op:.', 'op:*', 'eof:']);
  });

  it('skips -- comments to end of line and lenient /* */ comments, keeping positions right', () => {
    const toks = tokenize('SELECT -- the list\n  a /* two\nlines */ , b --- dashes\r\nFROM t');
    expect(toks.map((t) => t.value)).toEqual(['SELECT', 'a', ',', 'b', 'FROM', 't', '']);
    expect(toks[1].pos).toEqual({ line: 2, column: 3, offset: 21 });
    expect(toks[2].pos).toMatchObject({ line: 3, column: 10 });
    expect(toks[4].pos).toMatchObject({ line: 4, column: 1 });
  });

  it('does not take -- inside strings or quoted names for a comment', () => {
    expect(kinds("'a -- b' \"c -- d\"")).toEqual(['string:a -- b', 'quoted:c -- d', 'eof:']);
  });

  it('separates a minus sign from a number and from another minus', () => {
    expect(kinds('a - -1')).toEqual(['ident:a', 'op:-', 'op:-', 'number:1', 'eof:']);
    expect(kinds('a-1')).toEqual(['ident:a', 'op:-', 'number:1', 'eof:']);
  });

  it('reports positions of tokens on later lines and the end of input', () => {
    const toks = tokenize('SELECT\n\tra\r\nFROM x');
    expect(toks[1].pos).toEqual({ line: 2, column: 2, offset: 8 });
    expect(toks[2].pos).toEqual({ line: 3, column: 1, offset: 12 });
    expect(toks[toks.length - 1]).toMatchObject({ kind: 'eof', pos: { line: 3, column: 7, offset: 18 } });
  });

  it('rejects bad characters and malformed literals with their position', () => {
    expect(lexError('SELECT a @ b')).toMatchObject({ line: 1, column: 10, token: '@' });
    expect(lexError('SELECT 1a')).toMatchObject({ column: 8, token: '1a', detail: 'malformed number' });
    expect(lexError('SELECT 1e')).toMatchObject({ column: 8, detail: 'malformed number' });
    expect(lexError('SELECT 0x')).toMatchObject({ column: 8, detail: 'malformed number' });
    expect(lexError('SELECT 1.2.3')).toMatchObject({ column: 8, detail: 'malformed number' });
    expect(lexError("SELECT 'abc")).toMatchObject({ column: 8 });
    expect(lexError('SELECT "abc')).toMatchObject({ column: 8 });
    expect(lexError('SELECT ""')).toMatchObject({ column: 8, token: '""' });
    expect(lexError('SELECT a /* open')).toMatchObject({ column: 10 });
    expect(lexError('SELECT _x')).toMatchObject({ column: 8, token: '_x' });
    expect(lexError('SELECT naïve')).toMatchObject({ column: 10 });
    expect(lexError('SELECT a ! b')).toMatchObject({ column: 10, token: '!' });
  });
});
