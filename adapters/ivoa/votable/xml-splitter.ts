// Lexical states outside the data sections. Only enough XML is recognised to know where
// markup begins and ends; saxes checks well-formedness of everything this scanner passes on.
const TEXT = 0;
const LT = 1; // after '<'
const NAME = 2; // start-tag name
const ATTRS = 3; // start-tag attributes
const ETAG = 4; // end tag
const BANG = 5; // after '<!'
const COMMENT = 6;
const CDATA = 7;
const PI = 8;
const DECL = 9; // <!DOCTYPE ...>, possibly with an internal subset

/**
 * Finds, in XML text arriving in chunks, the end of each start tag of a TABLEDATA or STREAM
 * element, so the reader can hand everything before it to the XML parser and read the data
 * section itself. Comments, CDATA, processing instructions, the DOCTYPE and quoted attribute
 * values are skipped, so a "<TABLEDATA>" inside them is not mistaken for the element.
 */
export class XmlSplitter {
  private state = TEXT;
  private name = '';
  private bang = '';
  private quote = 0;
  private marks = 0;
  private depth = 0;
  private lastNonSpace = 0;
  // Comments and processing instructions inside a DOCTYPE internal subset may hold quotes or
  // brackets that are not syntax; `sub` walks them: 1 '<', 2 '<!', 3 '<!-', 4 comment, 5 PI.
  private sub = 0;
  /** Qualified name of the data start tag found by the last successful `scan`. */
  qname = '';

  /** Tracks comments and PIs inside a DOCTYPE; true when `c` belongs to one (or may start one). */
  private declSkip(c: number): boolean {
    if (this.quote !== 0) return false;
    switch (this.sub) {
      case 0:
        if (c !== 60) return false;
        this.sub = 1;
        return false;
      case 1:
        this.sub = c === 33 ? 2 : c === 63 ? 5 : 0;
        this.marks = 0;
        return this.sub !== 0;
      case 2:
        this.sub = c === 45 ? 3 : 0;
        return this.sub !== 0;
      case 3:
        this.sub = c === 45 ? 4 : 0;
        return this.sub !== 0;
      case 4:
        if (c === 62 && this.marks >= 2) this.sub = 0;
        else this.marks = c === 45 ? this.marks + 1 : 0;
        return true;
      default:
        if (c === 62 && this.marks === 1) this.sub = 0;
        else this.marks = c === 63 ? 1 : 0;
        return true;
    }
  }

  /**
   * Scans text[start...]; returns the index just after the '>' of the next non-empty
   * TABLEDATA or STREAM start tag, or -1 when the text ends first.
   */
  scan(text: string, start: number): number {
    const end = text.length;
    let i = start;
    while (i < end) {
      switch (this.state) {
        case TEXT: {
          const lt = text.indexOf('<', i);
          if (lt < 0) return -1;
          i = lt + 1;
          this.state = LT;
          break;
        }
        case LT: {
          const c = text.charCodeAt(i++);
          if (c === 47) this.state = ETAG;
          else if (c === 33) {
            this.state = BANG;
            this.bang = '';
          } else if (c === 63) {
            this.state = PI;
            this.marks = 0;
          } else {
            this.state = NAME;
            this.name = String.fromCharCode(c);
          }
          break;
        }
        case NAME: {
          const c = text.charCodeAt(i);
          if (c === 62 || c === 47 || c === 32 || c === 9 || c === 10 || c === 13) {
            this.state = ATTRS;
            this.quote = 0;
            this.lastNonSpace = 0;
          } else {
            this.name += text[i++];
          }
          break;
        }
        case ATTRS: {
          for (; i < end; i++) {
            const c = text.charCodeAt(i);
            if (this.quote !== 0) {
              if (c === this.quote) this.quote = 0;
              this.lastNonSpace = c;
            } else if (c === 34 || c === 39) {
              this.quote = c;
              this.lastNonSpace = c;
            } else if (c === 62) {
              break;
            } else if (c !== 32 && c !== 9 && c !== 10 && c !== 13) {
              this.lastNonSpace = c;
            }
          }
          if (i === end) break;
          i++;
          this.state = TEXT;
          if (this.lastNonSpace !== 47 && isDataElement(this.name)) {
            this.qname = this.name;
            return i;
          }
          break;
        }
        case ETAG: {
          const gt = text.indexOf('>', i);
          if (gt < 0) return -1;
          i = gt + 1;
          this.state = TEXT;
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
          } else if (this.bang[0] !== '-' && this.bang[0] !== '[') {
            // <!DOCTYPE (or another declaration): '>' ends it outside quotes and [...].
            this.state = DECL;
            this.quote = 0;
            this.depth = 0;
            this.sub = 0;
          } else if (!'--'.startsWith(this.bang) && !'[CDATA['.startsWith(this.bang)) {
            // Not well-formed; saxes reports it.
            this.state = TEXT;
          }
          break;
        }
        case COMMENT:
        case CDATA: {
          const mark = this.state === COMMENT ? 45 : 93;
          for (; i < end; i++) {
            const c = text.charCodeAt(i);
            if (c === mark) this.marks++;
            else if (c === 62 && this.marks >= 2) break;
            else this.marks = 0;
          }
          if (i < end) {
            i++;
            this.state = TEXT;
          }
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
            this.state = TEXT;
          }
          break;
        }
        case DECL: {
          for (; i < end; i++) {
            const c = text.charCodeAt(i);
            if (this.declSkip(c)) continue;
            if (this.quote !== 0) {
              if (c === this.quote) this.quote = 0;
            } else if (c === 34 || c === 39) this.quote = c;
            else if (c === 91) this.depth++;
            else if (c === 93) this.depth--;
            else if (c === 62 && this.depth <= 0) break;
          }
          if (i < end) {
            i++;
            this.state = TEXT;
          }
          break;
        }
      }
    }
    return -1;
  }
}

function isDataElement(qname: string): boolean {
  const colon = qname.indexOf(':');
  const local = colon < 0 ? qname : qname.slice(colon + 1);
  return local === 'TABLEDATA' || local === 'STREAM';
}
