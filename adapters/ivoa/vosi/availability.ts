/** VOSI availability (VOSIAvailability v1.0 namespace, used by VOSI 1.0 and 1.1). */
import { NS, isIvoaOrNone } from '../xml/namespaces.js';
import { parseInstant, type Instant } from '../xml/datetime.js';
import { malformed, parseXml, wrongRoot, locate, type XmlElement } from '../xml/tree.js';
import { XML_MAX_NODES_SMALL } from '../xml/limits.js';
import { parseXsdBoolean, textOf } from '../xml/values.js';

/** What a service says about its own availability. */
export interface VosiAvailability {
  available: boolean;
  upSince?: Instant;
  downAt?: Instant;
  backAt?: Instant;
  /** Non-empty notes, trimmed. */
  notes: string[];
}

const WHAT = 'VOSI availability document';

// Children are qualified in the availability namespace, but some writers leave them unqualified.
function kid(el: XmlElement, local: string): XmlElement | undefined {
  return el.child(local, isIvoaOrNone);
}

function instant(el: XmlElement | undefined): Instant | undefined {
  const t = textOf(el);
  return t === undefined ? undefined : parseInstant(t);
}

/**
 * Parses a VOSI availability document. Dates that are not valid (services have been seen to
 * send "2000-00-00T00:00:00Z") keep their raw text with a null date instead of failing.
 */
export function parseAvailability(input: string | Uint8Array): VosiAvailability {
  const root = parseXml(input, WHAT, { maxNodes: XML_MAX_NODES_SMALL });
  if (root.local !== 'availability' || (root.uri !== NS.vosiAvailability && root.uri !== '')) {
    throw wrongRoot(WHAT, `<availability> in namespace ${NS.vosiAvailability}`, root);
  }
  const availableEl = kid(root, 'available');
  const available = parseXsdBoolean(textOf(availableEl));
  if (available === undefined) {
    throw malformed(
      WHAT,
      availableEl === undefined ? 'missing <available>' : `<available> is not a boolean: "${availableEl.trimmedText}"`,
      { path: locate(availableEl ?? root), rule: 'available' },
    );
  }
  const out: VosiAvailability = {
    available,
    notes: root
      .childrenNamed('note', isIvoaOrNone)
      .map(textOf)
      .filter((n): n is string => n !== undefined),
  };
  const upSince = instant(kid(root, 'upSince'));
  const downAt = instant(kid(root, 'downAt'));
  const backAt = instant(kid(root, 'backAt'));
  if (upSince !== undefined) out.upSince = upSince;
  if (downAt !== undefined) out.downAt = downAt;
  if (backAt !== undefined) out.backAt = backAt;
  return out;
}
