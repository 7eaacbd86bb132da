import type { Row } from './types.js';
import type { Column } from './fields.js';
import { isSpace } from './fields.js';
import { malformed } from './errors.js';
import { CellError, parseTableDataCell } from './tabledata-values.js';

// Scanner states. The scanner never looks back at earlier input, so any split of the text
// into chunks (down to one character) gives the same rows.
const OUT = 0; // inside TABLEDATA or TR, between elements
const LT = 1; // after '<' outside a cell
const NAME = 2; // start-tag name
const ATTRS = 3; // start-tag attributes
const SLASH = 4; // '/' in a start tag, '>' must follow
const ENAME = 5; // end-tag name
const EREST = 6; // white space after an end-tag name
const CELL = 7; // TD content
const CELL_LT = 8; // '<' inside TD content
const ENTITY = 9; // after '&'
const BANG = 10; // after '<!'
const COMMENT = 11;
const CDATA = 12;
const PI = 13;

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Options the TABLEDATA scanner needs from the reader. */
export interface TableDataOptions {
  invalidValues: 'error' | 'null';
  maxCellBytes: number;
}

/**
 * Reads the content of a TABLEDATA element (TR/TD markup, entities, CDATA, comments) from
 * text chunks and emits one row per TR. It is handed text right after the TABLEDATA start
 * tag and stops after the matching end tag.
 */
export class TableDataScanner {
  private state = OUT;
  private inTR = false;
  private row: Row = [];
  private cellIndex = 0;
  private cell = '';
  private name = '';
  private attrs = '';
  private quote = 0;
  private entity = '';
  private bang = '';
  private marks = 0;
  private returnState = OUT;
  private cellOpen = false;
  private rowCountValue = 0;
  private readonly prefix: string;
  private readonly tdOpen: string;
  private readonly tdClose: string;
  private readonly trOpen: string;
  private readonly trClose: string;
  private readonly tdEmpty: string;

  constructor(
    private readonly cols: Column[],
    private readonly opts: TableDataOptions,
    private readonly onRow: (row: Row) => void,
    /** The qualified name of the TABLEDATA element ("TABLEDATA" or "ns0:TABLEDATA"). */
    qname: string,
  ) {
    const colon = qname.indexOf(':');
    this.prefix = colon < 0 ? '' : qname.slice(0, colon + 1);
    // Exact spellings of the common tags, for a fast path that skips the state machine.
    this.tdOpen = `${this.prefix}TD>`;
    this.tdClose = `/${this.prefix}TD>`;
    this.trOpen = `${this.prefix}TR>`;
    this.trClose = `/${this.prefix}TR>`;
    this.tdEmpty = `${this.prefix}TD/>`;
  }

  /** Rows completed so far. */
  get rowCount(): number {
    return this.rowCountValue;
  }

  /** Where the scanner is, for truncation messages. */
  describe(): string {
    const row = this.rowCountValue + 1;
    if (this.cellOpen) return `inside cell ${this.cellIndex + 1} of row ${row}`;
    return this.inTR ? `inside row ${row}` : `after row ${this.rowCountValue}`;
  }

  /** Scans text[start...]; returns the index just after the TABLEDATA end tag, or -1 if not reached. */
  scan(text: string, start: number): number {
    const end = text.length;
    let i = start;
    let amp = -2;
    while (i < end) {
      switch (this.state) {
        case OUT: {
          for (; i < end; i++) {
            const c = text.charCodeAt(i);
            if (c === 60) break;
            if (!isSpace(c)) throw this.error(`unexpected text ${JSON.stringify(text.slice(i, i + 20))} outside a TD`);
          }
          if (i === end) break;
          i++;
          // Fast path: the exact spellings most writers use.
          if (this.inTR) {
            if (text.startsWith(this.tdOpen, i)) {
              i += this.tdOpen.length;
              this.openCell();
              break;
            }
            if (text.startsWith(this.tdEmpty, i)) {
              i += this.tdEmpty.length;
              this.cell = '';
              this.closeCell();
              break;
            }
            if (text.startsWith(this.trClose, i)) {
              i += this.trClose.length;
              this.closeRow();
              break;
            }
          } else if (text.startsWith(this.trOpen, i)) {
            i += this.trOpen.length;
            this.openRow();
            break;
          }
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
            this.returnState = OUT;
          } else if (c === 63) {
            this.state = PI;
            this.marks = 0;
            this.returnState = OUT;
          } else {
            this.state = NAME;
            this.name = String.fromCharCode(c);
            this.attrs = '';
          }
          break;
        }
        case NAME: {
          const c = text.charCodeAt(i++);
          if (c === 62) this.startTag(false);
          else if (c === 47) this.state = SLASH;
          else if (isSpace(c)) this.state = ATTRS;
          else this.name += String.fromCharCode(c);
          break;
        }
        case ATTRS: {
          const c = text.charCodeAt(i++);
          if (this.quote !== 0) {
            if (c === this.quote) this.quote = 0;
            this.attrs += String.fromCharCode(c);
          } else if (c === 34 || c === 39) {
            this.quote = c;
            this.attrs += String.fromCharCode(c);
          } else if (c === 62) {
            this.startTag(false);
          } else if (c === 47) {
            this.state = SLASH;
          } else {
            this.attrs += String.fromCharCode(c);
          }
          break;
        }
        case SLASH: {
          const c = text.charCodeAt(i++);
          if (c !== 62) throw this.error(`malformed start tag <${this.name}`);
          this.startTag(true);
          break;
        }
        case ENAME: {
          const c = text.charCodeAt(i++);
          if (c === 62) {
            const done = this.endTag();
            if (done) return i;
          } else if (isSpace(c)) {
            this.state = EREST;
          } else {
            this.name += String.fromCharCode(c);
          }
          break;
        }
        case EREST: {
          const c = text.charCodeAt(i++);
          if (c === 62) {
            if (this.endTag()) return i;
          } else if (!isSpace(c)) {
            throw this.error(`malformed end tag </${this.name}`);
          }
          break;
        }
        case CELL: {
          // Cell text runs to the next '<' or '&'; '&' is rare, so its position is looked up
          // once and reused until the scan passes it (-1: none in the rest of this text).
          if (amp !== -1 && amp < i) amp = text.indexOf('&', i);
          const lt = text.indexOf('<', i);
          let j = lt < 0 ? end : lt;
          if (amp >= 0 && amp < j) j = amp;
          if (j > i) {
            this.cell += text.slice(i, j);
            if (this.cell.length > this.opts.maxCellBytes) throw this.error(`cell exceeds ${this.opts.maxCellBytes} characters`);
          }
          if (j === end) {
            i = end;
            break;
          }
          if (text.charCodeAt(j) === 60) {
            i = j + 1;
            if (text.startsWith(this.tdClose, i)) {
              i += this.tdClose.length;
              this.closeCell();
            } else {
              this.state = CELL_LT;
            }
          } else {
            i = j + 1;
            this.state = ENTITY;
            this.entity = '';
          }
          break;
        }
        case CELL_LT: {
          const c = text.charCodeAt(i++);
          if (c === 47) {
            this.state = ENAME;
            this.name = '';
          } else if (c === 33) {
            this.state = BANG;
            this.bang = '';
            this.returnState = CELL;
          } else if (c === 63) {
            this.state = PI;
            this.marks = 0;
            this.returnState = CELL;
          } else {
            throw this.error('an element inside a TD');
          }
          break;
        }
        case ENTITY: {
          const c = text.charCodeAt(i++);
          if (c === 59) {
            this.cell += this.resolveEntity(this.entity);
            this.state = CELL;
          } else {
            this.entity += String.fromCharCode(c);
            if (this.entity.length > 10) throw this.error(`malformed entity reference &${this.entity}`);
          }
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
            throw this.error(`unexpected markup <!${this.bang}`);
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
            this.state = this.returnState;
          }
          break;
        }
        case CDATA: {
          i = this.scanCData(text, i, end);
          break;
        }
        case PI: {
          for (; i < end; i++) {
            const c = text.charCodeAt(i);
            if (c === 62 && this.marks === 1) break;
            this.marks = c === 63 ? 1 : 0;
          }
          if (i < end) {
            i++;
            this.state = this.returnState;
          }
          break;
        }
      }
    }
    return -1;
  }

  private scanCData(text: string, i: number, end: number): number {
    const inCell = this.returnState === CELL;
    let out = '';
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 93) {
        this.marks++;
        continue;
      }
      if (c === 62 && this.marks >= 2) {
        out += ']'.repeat(this.marks - 2);
        this.marks = 0;
        this.state = this.returnState;
        i++;
        break;
      }
      if (this.marks > 0) {
        out += ']'.repeat(this.marks);
        this.marks = 0;
      }
      out += text[i];
    }
    if (inCell) this.cell += out;
    else if (!/^\s*$/.test(out)) throw this.error('CDATA text outside a TD');
    return i;
  }

  private startTag(selfClosing: boolean): void {
    const local = this.localName(this.name);
    if (local === 'TR' && !this.inTR) {
      this.openRow();
      if (selfClosing) this.closeRow();
      return;
    }
    if (local === 'TD' && this.inTR) {
      if (/\bencoding\s*=\s*["']\s*[^"'\s]/.test(this.attrs)) {
        throw this.error('TD encoding attribute (encoded cells) is not supported');
      }
      this.openCell();
      if (selfClosing) this.closeCell();
      return;
    }
    throw this.error(`unexpected <${this.name}> ${this.inTR ? 'inside TR' : 'in TABLEDATA'}`);
  }

  /** Returns true when the end tag closes the TABLEDATA element. */
  private endTag(): boolean {
    const local = this.localName(this.name);
    if (this.state === ENAME || this.state === EREST) this.state = OUT;
    if (local === 'TD' && this.cellOpen) {
      this.closeCell();
      return false;
    }
    if (this.cellOpen) throw this.error(`</${this.name}> inside a TD`);
    if (local === 'TR' && this.inTR) {
      this.closeRow();
      return false;
    }
    if (local === 'TABLEDATA' && !this.inTR) return true;
    throw this.error(`unexpected </${this.name}>`);
  }

  private openRow(): void {
    this.inTR = true;
    this.row = new Array(this.cols.length);
    this.cellIndex = 0;
    this.state = OUT;
  }

  private closeRow(): void {
    if (this.cellIndex !== this.cols.length) {
      throw this.error(`row ${this.rowCountValue + 1} has ${this.cellIndex} cells, the table has ${this.cols.length} FIELDs`);
    }
    this.inTR = false;
    this.state = OUT;
    this.rowCountValue++;
    this.onRow(this.row);
  }

  private openCell(): void {
    if (this.cellIndex >= this.cols.length) {
      throw this.error(`row ${this.rowCountValue + 1} has more cells than the table's ${this.cols.length} FIELDs`);
    }
    this.cellOpen = true;
    this.cell = '';
    this.state = CELL;
  }

  private closeCell(): void {
    if (this.cellIndex >= this.cols.length) {
      throw this.error(`row ${this.rowCountValue + 1} has more cells than the table's ${this.cols.length} FIELDs`);
    }
    const col = this.cols[this.cellIndex];
    try {
      this.row[this.cellIndex] = parseTableDataCell(col, this.cell);
    } catch (err) {
      if (!(err instanceof CellError)) throw err;
      if (this.opts.invalidValues !== 'null') {
        throw malformed(`TABLEDATA row ${this.rowCountValue + 1}, column "${col.field.name}": ${err.message}`, err);
      }
      this.row[this.cellIndex] = null;
    }
    this.cellIndex++;
    this.cell = '';
    this.cellOpen = false;
    this.state = OUT;
  }

  private resolveEntity(name: string): string {
    const named = ENTITIES[name];
    if (named !== undefined) return named;
    let code = Number.NaN;
    if (/^#[0-9]+$/.test(name)) code = Number(name.slice(1));
    else if (/^#x[0-9a-fA-F]+$/.test(name)) code = Number.parseInt(name.slice(2), 16);
    if (!Number.isInteger(code) || code > 0x10ffff) throw this.error(`unknown entity &${name};`);
    return String.fromCodePoint(code);
  }

  private localName(qname: string): string {
    const colon = qname.indexOf(':');
    return colon < 0 ? qname : qname.slice(colon + 1);
  }

  private error(message: string): Error {
    return malformed(`TABLEDATA: ${message}`);
  }
}
