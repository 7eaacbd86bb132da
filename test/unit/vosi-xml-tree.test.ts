import { describe, expect, it } from 'vitest';
import { NS, isIvoaOrNone } from '../../adapters/ivoa/xml/namespaces.js';
import { parseXml } from '../../adapters/ivoa/xml/tree.js';
import { parseXsdBoolean, parseXsdInteger, textOf } from '../../adapters/ivoa/xml/values.js';
import { ConstellationError } from '../../registry/model/errors.js';

describe('parseXml', () => {
  const doc = `<?xml version="1.0"?>
<!-- a comment before the root -->
<r:root xmlns:r="urn:root" xmlns="urn:default" xmlns:xsi="${NS.xsi}">
  <child xsi:type="Plain" a="1"/>
  <r:other xmlns:t="urn:t" xsi:type="t:Typed"><grand xsi:type="t:Deep"/></r:other>
  <nil xsi:nil="true"/>
  <mixed>one<![CDATA[ <two> ]]>three<x/>four</mixed>
  <raw>
    <any xmlns="urn:any"><b c="&amp;"/></any>
  </raw>
  <bad xsi:type="zz:Unbound"/>
</r:root>`;
  const root = parseXml(doc, 'test document');

  it('builds the tree with namespace URIs and locations', () => {
    expect(root).toMatchObject({ uri: 'urn:root', local: 'root', prefix: 'r', name: 'r:root', line: 3 });
    expect(root.children.map((c) => `${c.uri}|${c.local}`)).toEqual([
      'urn:default|child',
      'urn:root|other',
      'urn:default|nil',
      'urn:default|mixed',
      'urn:default|raw',
      'urn:default|bad',
    ]);
    expect(root.child('other', 'urn:root')?.local).toBe('other');
    expect(root.child('other', 'urn:default')).toBeUndefined();
    expect(root.childrenNamed('child', ['urn:x', 'urn:default'])).toHaveLength(1);
    expect(root.children[0].attr('a')).toBe('1');
  });

  it('resolves QName attribute values against in-scope bindings, including the default namespace', () => {
    expect(root.children[0].xsiType).toEqual({ uri: 'urn:default', local: 'Plain', prefix: '' });
    expect(root.children[1].xsiType).toEqual({ uri: 'urn:t', local: 'Typed', prefix: 't' });
    expect(root.children[1].children[0].xsiType).toEqual({ uri: 'urn:t', local: 'Deep', prefix: 't' });
    expect(root.children[5].xsiType).toEqual({ uri: undefined, local: 'Unbound', prefix: 'zz' });
  });

  it('reads nil, mixed text with CDATA, and raw inner XML', () => {
    expect(root.children[2].isNil).toBe(true);
    expect(textOf(root.children[2])).toBeUndefined();
    expect(root.children[3].text).toBe('one <two> threefour');
    expect(root.children[4].innerXml().trim()).toBe('<any xmlns="urn:any"><b c="&amp;"/></any>');
    expect(root.children[0].innerXml()).toBe('');
  });

  it('decodes UTF-16 with a byte order mark', () => {
    const text = '<a xmlns="urn:a">héllo</a>';
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    expect(parseXml(le, 'x').text).toBe('héllo');
  });

  it('turns saxes errors into UPSTREAM_MALFORMED with a line/column locator', () => {
    try {
      parseXml('<a>\n  <b>\n</a>', 'test document');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConstellationError);
      const e = err as ConstellationError;
      expect(e.kind).toBe('UPSTREAM_MALFORMED');
      expect(e.statusCode).toBe(502);
      expect(e.message).toMatch(/^test document: not well-formed XML: unexpected close tag\. at line 3, column \d+$/);
      expect(e.violations[0]).toMatchObject({ rule: 'xml-well-formed', path: expect.stringMatching(/^line 3, column \d+$/) });
      expect(e.cause).toBeInstanceOf(Error);
    }
  });

  it('rejects unbound element prefixes, undefined entities, unknown encodings and empty input', () => {
    expect(() => parseXml('<x:a/>', 'd')).toThrow(/unbound namespace prefix/);
    expect(() => parseXml('<a>&nbsp;</a>', 'd')).toThrow(/undefined entity/);
    expect(() => parseXml(Buffer.from('<?xml version="1.0" encoding="x-klingon"?><a/>'), 'd')).toThrow(/unsupported character encoding "x-klingon"/);
    expect(() => parseXml('  \n ', 'd')).toThrow(/d: empty document/);
  });
});

describe('simple values', () => {
  it('reads xs:boolean and xs:integer leniently', () => {
    expect([' true ', '1', 'FALSE', '0', 'yes', undefined].map(parseXsdBoolean)).toEqual([true, true, false, false, undefined, undefined]);
    expect(['42', ' +7 ', '-3', '1.5', '${limit}', '99999999999999999999', undefined].map(parseXsdInteger)).toEqual([
      42, 7, -3, undefined, undefined, undefined, undefined,
    ]);
  });

  it('treats IVOA namespaces and no namespace as VOResource content', () => {
    expect(isIvoaOrNone('')).toBe(true);
    expect(isIvoaOrNone('http://www.ivoa.net/xml/VOSICapabilities/v1.0')).toBe(true);
    expect(isIvoaOrNone('urn:other')).toBe(false);
  });
});
