/**
 * A small namespace-aware element tree built with saxes. The IVOA documents read with it
 * (capabilities, tablesets, availability, UWS jobs) are held whole, bounded in nesting and size
 * (./limits.ts) because a site's answer is untrusted; the large ones (a tableset) are parsed in
 * slices so the event loop keeps turning (parseXmlAsync).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { ConstellationError, isConstellationError, type Violation } from '../../../registry/model/errors.js';
import { XML_MAX_NODES, XmlBudget, type XmlLimits } from './limits.js';
import { NS, nsMatches, type NsMatch } from './namespaces.js';

/** One attribute with its resolved namespace URI ('' when unprefixed). */
export interface XmlAttribute {
  uri: string;
  local: string;
  prefix: string;
  value: string;
}

/** A resolved qualified name such as an xsi:type value. */
export interface QName {
  /** Namespace URI bound to the prefix; undefined when the prefix is not bound. */
  uri: string | undefined;
  local: string;
  prefix: string;
}

/** One element of a parsed document. */
export class XmlElement {
  readonly children: XmlElement[] = [];
  /** Direct character data (text and CDATA sections), untrimmed. */
  text = '';
  /** Offsets of the content between start and end tag in the parsed source. */
  innerStart = 0;
  innerEnd = 0;

  constructor(
    readonly uri: string,
    readonly local: string,
    readonly prefix: string,
    readonly attributes: readonly XmlAttribute[],
    /** Namespace declarations made on this element ('' is the default namespace). */
    readonly nsDecls: Readonly<Record<string, string>>,
    readonly parent: XmlElement | undefined,
    readonly line: number,
    readonly column: number,
    private readonly source: { text: string },
  ) {}

  /** The qualified name as written, for messages. */
  get name(): string {
    return this.prefix === '' ? this.local : `${this.prefix}:${this.local}`;
  }

  /** The value of attribute `local` in namespace `uri` ('' = unprefixed). */
  attr(local: string, uri = ''): string | undefined {
    for (const a of this.attributes) if (a.local === local && a.uri === uri) return a.value;
    return undefined;
  }

  /** The first child element named `local` whose namespace satisfies `ns`. */
  child(local: string, ns: NsMatch): XmlElement | undefined {
    for (const c of this.children) if (c.local === local && nsMatches(ns, c.uri)) return c;
    return undefined;
  }

  /** Every child element named `local` whose namespace satisfies `ns`. */
  childrenNamed(local: string, ns: NsMatch): XmlElement[] {
    return this.children.filter((c) => c.local === local && nsMatches(ns, c.uri));
  }

  /** Direct text, trimmed. */
  get trimmedText(): string {
    return this.text.trim();
  }

  /** True when the element carries xsi:nil="true". */
  get isNil(): boolean {
    const v = this.attr('nil', NS.xsi)?.trim();
    return v === 'true' || v === '1';
  }

  /** The URI bound to `prefix` at this element, walking up the ancestors. */
  resolvePrefix(prefix: string): string | undefined {
    if (prefix === 'xml') return 'http://www.w3.org/XML/1998/namespace';
    for (let e: XmlElement | undefined = this; e !== undefined; e = e.parent) {
      if (Object.prototype.hasOwnProperty.call(e.nsDecls, prefix)) return e.nsDecls[prefix];
    }
    return undefined;
  }

  /** Resolves a QName-valued attribute value (xsi:type) against the in-scope bindings. */
  resolveQName(value: string): QName {
    const v = value.trim();
    const colon = v.indexOf(':');
    const prefix = colon < 0 ? '' : v.slice(0, colon);
    const local = colon < 0 ? v : v.slice(colon + 1);
    // An unprefixed QName takes the default namespace (XML Schema), which may be none.
    const uri = this.resolvePrefix(prefix) ?? (prefix === '' ? '' : undefined);
    return { uri, local, prefix };
  }

  /** The element's xsi:type, resolved; undefined when absent. */
  get xsiType(): QName | undefined {
    const v = this.attr('type', NS.xsi);
    return v === undefined || v.trim() === '' ? undefined : this.resolveQName(v);
  }

  /** The markup between start and end tag exactly as it appears in the source. */
  innerXml(): string {
    return this.source.text.slice(this.innerStart, this.innerEnd);
  }
}

/** Turns bytes into text: BOM first, then the XML declaration's encoding, else UTF-8. */
export function decodeXmlInput(input: string | Uint8Array, what: string): string {
  if (typeof input === 'string') return input;
  const b = input;
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return new TextDecoder('utf-8').decode(b);
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return new TextDecoder('utf-16le').decode(b);
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return new TextDecoder('utf-16be').decode(b);
  const head = new TextDecoder('latin1').decode(b.subarray(0, 256));
  const m = /^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/.exec(head);
  const label = m?.[1]?.toLowerCase() ?? 'utf-8';
  try {
    return new TextDecoder(label).decode(b);
  } catch (err) {
    throw new ConstellationError('UPSTREAM_MALFORMED', `${what}: unsupported character encoding "${m?.[1]}"`, {
      cause: err,
      violations: [{ path: 'line 1', rule: 'xml-encoding', message: `unsupported encoding ${m?.[1]}` }],
    });
  }
}

/** A ConstellationError for a document that is not what it claims to be. */
export function malformed(what: string, message: string, options: { cause?: unknown; path?: string; rule?: string } = {}): ConstellationError {
  const violations: Violation[] = [{ path: options.path ?? '/', rule: options.rule ?? 'document-structure', message }];
  return new ConstellationError('UPSTREAM_MALFORMED', `${what}: ${message}`, { cause: options.cause, violations });
}

/** Names an element with its namespace, for error messages. */
export function describeElement(el: XmlElement): string {
  return `<${el.name}> (${el.uri === '' ? 'no namespace' : `namespace ${el.uri}`})`;
}

/** The error for a document whose root is not one of the expected ones. */
export function wrongRoot(what: string, expected: string, root: XmlElement, hint?: string): ConstellationError {
  return malformed(what, `expected ${expected}, found ${describeElement(root)}${hint === undefined ? '' : `; ${hint}`}`, {
    path: `line ${root.line}, column ${root.column}`,
    rule: 'root-element',
  });
}

/** A locator like "line 4, column 7" for an element. */
export function locate(el: XmlElement): string {
  return `line ${el.line}, column ${el.column}`;
}

/**
 * Parses a whole XML document into an element tree and returns its root. `what` names the
 * document in error messages ("VOSI capabilities document"). Malformed XML, nesting deeper
 * than `limits.maxDepth` (XML_MAX_DEPTH) and more than `limits.maxNodes` elements and
 * attributes (XML_MAX_NODES) throw a ConstellationError of kind UPSTREAM_MALFORMED, the
 * bounds as soon as they are crossed, before the rest of the document is read.
 */
export function parseXml(input: string | Uint8Array, what: string, limits: XmlLimits = {}): XmlElement {
  const text = xmlText(input, what);
  const builder = new TreeBuilder(text, what, limits);
  builder.write(0, text.length);
  return builder.finish();
}

/** Characters of XML parsed between two turns of the event loop (about 10 ms of work). */
export const XML_SLICE_CHARS = 128 * 1024;

/**
 * {@link parseXml} in slices of XML_SLICE_CHARS, giving the event loop a turn after each: a
 * site's tableset of a million nodes costs seconds of parsing, which must not stop the broker
 * answering meanwhile. Same tree, same errors.
 */
export async function parseXmlAsync(input: string | Uint8Array, what: string, limits: XmlLimits = {}, sliceChars = XML_SLICE_CHARS): Promise<XmlElement> {
  const text = xmlText(input, what);
  const builder = new TreeBuilder(text, what, limits);
  for (let at = 0; at < text.length; at += sliceChars) {
    if (at > 0) await yieldToLoop();
    builder.write(at, Math.min(text.length, at + sliceChars));
  }
  return builder.finish();
}

/** The document as text: decoded, without a BOM or the blank lines some servers put before the declaration. */
function xmlText(input: string | Uint8Array, what: string): string {
  let text = decodeXmlInput(input, what);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // Some servers emit a newline before the XML declaration, which XML forbids; forgive that.
  const lead = /^\s+(?=<\?xml[\s?])/.exec(text);
  if (lead !== null) text = text.slice(lead[0].length);
  if (text.trim() === '') throw malformed(what, 'empty document', { rule: 'xml-well-formed' });
  return text;
}

/** Builds the element tree of `text` from saxes events, fed in one piece or in slices. */
class TreeBuilder {
  private readonly parser = new SaxesParser({ xmlns: true, position: true });
  private root: XmlElement | undefined;

  constructor(
    private readonly text: string,
    private readonly what: string,
    limits: XmlLimits,
  ) {
    const parser = this.parser;
    const source = { text };
    let current: XmlElement | undefined;
    // saxes reports the position after '>' of a start tag, and we need the line where the tag began.
    let tagLine = 1;
    let tagColumn = 0;
    const budget = new XmlBudget(what, { maxDepth: limits.maxDepth, maxNodes: limits.maxNodes ?? XML_MAX_NODES });
    const where = () => `line ${tagLine}, column ${tagColumn}`;

    parser.on('opentagstart', () => {
      tagLine = parser.line;
      tagColumn = parser.column;
      budget.open(where);
    });
    // Counted as read (namespace declarations too), so one element with a million attributes stops early.
    parser.on('attribute', () => budget.count(1, where));
    parser.on('opentag', (tag: SaxesTagNS) => {
      const attrs: XmlAttribute[] = [];
      const decls: Record<string, string> = {};
      for (const a of Object.values(tag.attributes)) {
        if (a.prefix === 'xmlns') decls[a.local] = a.value;
        else if (a.prefix === '' && a.local === 'xmlns') decls[''] = a.value;
        else attrs.push({ uri: a.uri, local: a.local, prefix: a.prefix, value: a.value });
      }
      const el = new XmlElement(tag.uri, tag.local, tag.prefix, attrs, decls, current, tagLine, tagColumn, source);
      el.innerStart = parser.position;
      el.innerEnd = parser.position;
      if (current === undefined) this.root = el;
      else current.children.push(el);
      current = el;
    });
    parser.on('closetag', (tag: SaxesTagNS) => {
      budget.close();
      if (current === undefined) return;
      if (!tag.isSelfClosing) {
        // The end tag holds no '<', so the last '<' before the parser position starts it
        // (positions count from the start of the whole text, whatever the slices).
        const endTagStart = text.lastIndexOf('<', parser.position - 1);
        current.innerEnd = Math.max(current.innerStart, endTagStart);
      }
      current = current.parent;
    });
    parser.on('text', (t: string) => {
      if (current !== undefined) current.text += t;
    });
    parser.on('cdata', (t: string) => {
      if (current !== undefined) current.text += t;
    });
  }

  /** Parse text[from, to). */
  write(from: number, to: number): void {
    this.guard(() => this.parser.write(this.text.slice(from, to)));
  }

  /** End of input: the root, or the error that the document is incomplete. */
  finish(): XmlElement {
    this.guard(() => this.parser.close());
    if (this.root === undefined) throw malformed(this.what, 'no root element', { rule: 'xml-well-formed' });
    return this.root;
  }

  private guard(step: () => void): void {
    try {
      step();
    } catch (err) {
      if (isConstellationError(err)) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      const m = /^(?:[^:]*:)?(\d+):(\d+): (.*)$/s.exec(msg);
      const path = m ? `line ${m[1]}, column ${m[2]}` : '/';
      throw malformed(this.what, `not well-formed XML: ${m ? `${m[3]} at ${path}` : msg}`, { cause: err, path, rule: 'xml-well-formed' });
    }
  }
}
