/**
 * How much XML structure the broker accepts from a site. A site's answer is untrusted input:
 * these bounds keep parsing linear in the size of the answer and the tree it builds small.
 */
import { ConstellationError } from '../../../registry/model/errors.js';

/**
 * Deepest element nesting accepted in any IVOA document, root = level 1. VOSI capabilities
 * and tables need under 10 levels, UWS under 10 (plus a site's own jobInfo), a VOTable a few
 * dozen at most (nested RESOURCEs and GROUPs, MIVOT annotations). saxes resolves each
 * element's namespace by walking the open elements, so unbounded nesting costs time
 * quadratic in the depth (40,000 levels took 24 s); 64 levels keep that walk short.
 */
export const XML_MAX_DEPTH = 64;

/**
 * Most elements plus attributes one whole-tree parse may build. A large TAP tableset (a few
 * thousand tables, tens of thousands of columns at ~8 nodes each) stays far below it; a tree
 * of this size costs a few hundred MB, which is where a broker must stop.
 */
export const XML_MAX_NODES = 1_000_000;

/**
 * Node budget of the small documents (capabilities, availability, one UWS job): hundreds of
 * nodes in practice, a few thousand for a service listing many UDFs or job parameters.
 */
export const XML_MAX_NODES_SMALL = 100_000;

/** Limits for one parse; unset fields take the defaults above. */
export interface XmlLimits {
  maxDepth?: number;
  maxNodes?: number;
}

/** The UPSTREAM_MALFORMED error for a document nested deeper than `max` levels. */
export function tooDeep(what: string, max: number, where: string): ConstellationError {
  return new ConstellationError('UPSTREAM_MALFORMED', `${what}: elements nested deeper than ${max} levels at ${where}; refused (no such document needs more)`, {
    violations: [{ path: where, rule: 'xml-depth', message: `nesting deeper than ${max} levels` }],
  });
}

/** The UPSTREAM_MALFORMED error for a document with more than `max` elements and attributes. */
export function tooManyNodes(what: string, max: number, where: string): ConstellationError {
  return new ConstellationError('UPSTREAM_MALFORMED', `${what}: more than ${max} elements and attributes (reached at ${where}); refused`, {
    violations: [{ path: where, rule: 'xml-size', message: `more than ${max} elements and attributes` }],
  });
}

/**
 * Counts nesting while a saxes parser runs: call `open` from `opentagstart` (before saxes
 * resolves the tag's namespaces, so a too-deep element costs nothing) and `close` from
 * `closetag`. Throws the errors above as soon as a bound is crossed.
 */
export class XmlBudget {
  private depth = 0;
  private nodes = 0;
  readonly maxDepth: number;
  readonly maxNodes: number;

  constructor(
    private readonly what: string,
    limits: XmlLimits = {},
  ) {
    this.maxDepth = limits.maxDepth ?? XML_MAX_DEPTH;
    this.maxNodes = limits.maxNodes ?? Number.POSITIVE_INFINITY;
  }

  /** An element starts; `where` is called only to build an error. */
  open(where: () => string): void {
    this.depth++;
    if (this.depth > this.maxDepth) throw tooDeep(this.what, this.maxDepth, where());
    this.count(1, where);
  }

  /** `n` more nodes (attributes) were built. */
  count(n: number, where: () => string): void {
    this.nodes += n;
    if (this.nodes > this.maxNodes) throw tooManyNodes(this.what, this.maxNodes, where());
  }

  /** An element ended (self-closing ones too: saxes reports their close). */
  close(): void {
    if (this.depth > 0) this.depth--;
  }
}
