import type { Row } from './types.js';
import type { Column } from './fields.js';
import { BinaryRowDecoder, type BinaryDecoderOptions, type RawRows } from './binary-decoder.js';
import { malformed } from './errors.js';

// States for the markup that may interrupt the base64 text of a STREAM.
const B64 = 0;
const LT = 1; // after '<'
const ENAME = 2; // end-tag name
const EREST = 3; // white space before '>'
const BANG = 4; // after '<!'
const COMMENT = 5;
const CDATA = 6;
const CDATA_END = 7; // inside the "]]>" that ends a CDATA section

/**
 * Reads the content of an inline base64 STREAM inside BINARY or BINARY2: hands the base64
 * text to the row decoder and stops after the STREAM end tag. Comments and CDATA sections
 * (legal XML, if unusual here) are handled; any element is an error.
 */
export class StreamScanner {
  private state = B64;
  private name = '';
  private bang = '';
  private marks = 0;
  readonly decoder: BinaryRowDecoder;

  constructor(cols: Column[], binary2: boolean, opts: BinaryDecoderOptions, onRow: (row: Row) => void, onRaw?: RawRows) {
    this.decoder = new BinaryRowDecoder(cols, binary2, opts, onRow, onRaw);
  }

  /** Rows completed so far. */
  get rowCount(): number {
    return this.decoder.rowCount;
  }

  /** Where the scanner is, for truncation messages. */
  describe(): string {
    const partial = this.decoder.pendingBytes;
    return partial > 0
      ? `in the middle of row ${this.rowCount + 1} (${partial} bytes of it read)`
      : `after row ${this.rowCount}`;
  }

  /** Scans text[start...]; returns the index just after the STREAM end tag, or -1 if not reached. */
  scan(text: string, start: number): number {
    const end = text.length;
    let i = start;
    while (i < end) {
      switch (this.state) {
        case B64: {
          const lt = text.indexOf('<', i);
          const stop = lt < 0 ? end : lt;
          if (stop > i) this.decoder.push(text, i, stop);
          if (lt < 0) return -1;
          i = lt + 1;
          this.state = LT;
          break;
        }
        case LT: {
          const c = text.charCodeAt(i++);
          if (c === 47) {
            this.state = ENAME;
            this.name = '';
          } else if (c === 33) {
            this.state = BANG;
            this.bang = '';
          } else {
            throw malformed('unexpected markup inside a base64 STREAM');
          }
          break;
        }
        case ENAME: {
          const c = text.charCodeAt(i++);
          if (c === 62) return this.close(i);
          if (c === 32 || c === 9 || c === 10 || c === 13) this.state = EREST;
          else this.name += String.fromCharCode(c);
          break;
        }
        case EREST: {
          const c = text.charCodeAt(i++);
          if (c === 62) return this.close(i);
          if (c !== 32 && c !== 9 && c !== 10 && c !== 13) throw malformed(`malformed end tag </${this.name}`);
          break;
        }
        case BANG: {
          this.bang += text[i++];
          if (this.bang === '--') {
            this.state = COMMENT;
            this.marks = 0;
          } else if (this.bang === '[CDATA[') {
            this.state = CDATA;
            this.marks = 0;
          } else if (!'--'.startsWith(this.bang) && !'[CDATA['.startsWith(this.bang)) {
            throw malformed(`unexpected markup <!${this.bang} inside a base64 STREAM`);
          }
          break;
        }
        case COMMENT: {
          for (; i < end; i++) {
            const c = text.charCodeAt(i);
            if (c === 45) this.marks++;
            else if (c === 62 && this.marks >= 2) break;
            else this.marks = 0;
          }
          if (i < end) {
            i++;
            this.state = B64;
          }
          break;
        }
        case CDATA: {
          // Base64 has no ']', so the first ']' must begin the "]]>" that ends the section.
          const close = text.indexOf(']', i);
          const stop = close < 0 ? end : close;
          if (stop > i) this.decoder.push(text, i, stop);
          if (close < 0) return -1;
          i = close + 1;
          this.state = CDATA_END;
          this.marks = 1;
          break;
        }
        case CDATA_END: {
          const c = text.charCodeAt(i++);
          if (c === 93 && this.marks === 1) this.marks = 2;
          else if (c === 62 && this.marks === 2) this.state = B64;
          else throw malformed('invalid character "]" in base64 CDATA inside a STREAM');
          break;
        }
      }
    }
    return -1;
  }

  private close(i: number): number {
    const colon = this.name.indexOf(':');
    const local = colon < 0 ? this.name : this.name.slice(colon + 1);
    if (local !== 'STREAM') throw malformed(`unexpected </${this.name}> inside a STREAM`);
    this.decoder.finish();
    return i;
  }
}
