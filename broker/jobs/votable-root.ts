/**
 * Whether a site's answer is a VOTable, told from its first bytes: the root element, after the
 * XML declaration, comments, processing instructions and doctype, must be VOTABLE.
 */
import { ConstellationError } from '../../registry/model/errors.js';

/** Longest prologue (XML declaration, comments, doctype) read while looking for the root element. */
export const MAX_PROLOGUE = 64 * 1024;

/**
 * What the text read so far (`ended`: all there is) says: 'votable', 'more' (read on), or the
 * UPSTREAM_MALFORMED error to fail with (`site` names the sender in its message).
 */
export function rootVerdict(text: string, site: string, ended: boolean): 'votable' | 'more' | ConstellationError {
  const root = rootElement(text);
  if (root === undefined && ended) {
    return new ConstellationError('UPSTREAM_MALFORMED', `${site} sent a result that is not a VOTable${text.trim() === '' ? ' (it is empty)' : ''}`);
  }
  if (root === undefined && text.length < MAX_PROLOGUE) return 'more';
  if (root === undefined || !/^([A-Za-z_][\w.-]*:)?VOTABLE$/.test(root)) {
    return new ConstellationError('UPSTREAM_MALFORMED', `${site} sent a result whose root element is ${root === undefined ? 'not found' : `<${root.slice(0, 40).replace(/[^\w:.-]/g, '?')}>`}, not a VOTable`);
  }
  return 'votable';
}

/** The name of the first element of an XML text, skipping the declaration, comments, PIs and doctype; undefined until it is seen. */
function rootElement(text: string): string | undefined {
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0) return undefined;
    if (text.startsWith('<?', lt)) i = text.indexOf('?>', lt);
    else if (text.startsWith('<!--', lt)) i = text.indexOf('-->', lt);
    else if (text.startsWith('<!', lt)) i = text.indexOf('>', lt);
    else {
      const m = /^<([^\s/>]+)[\s/>]/.exec(text.slice(lt, lt + 200));
      return m ? m[1] : text.length - lt > 200 ? text.slice(lt + 1, lt + 41) : undefined;
    }
    if (i < 0) return undefined;
  }
}
