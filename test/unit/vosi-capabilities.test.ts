import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  STANDARD_IDS,
  chooseInterface,
  findCapabilities,
  findTapCapability,
  interfaceSecurityKinds,
  maxRec,
  parseCapabilities,
  resolveCapabilityUrl,
  securityKindOf,
  supportsUpload,
  tapEndpoints,
  uploadLimitBytes,
  type Capability,
} from '../../adapters/ivoa/vosi/capabilities.js';
import { isConstellationError } from '../../registry/model/errors.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/capabilities/${name}`, import.meta.url));

function tapOf(caps: Capability[]): Capability {
  const tap = findTapCapability(caps);
  if (tap === undefined) throw new Error('no TAP capability');
  return tap;
}

describe('parseCapabilities: TAPRegExt sample (DaCHS, no XML declaration, DALIInterface)', () => {
  const caps = parseCapabilities(fixture('dachs-tap-capabilities-tapregext-sample.xml'));
  const tap = tapOf(caps);
  const ta = tap.tableAccess!;

  it('reads the capability list and the xsi:type by local name', () => {
    expect(caps.map((c) => c.standardID)).toEqual([STANDARD_IDS.tap, STANDARD_IDS.vosiCapabilities]);
    expect(tap.type).toBe('TableAccess');
    expect(tap.typeNs).toBe('http://www.ivoa.net/xml/TAPRegExt/v1.0');
  });

  it('reads both interfaces, the DALIInterface with its endpoints', () => {
    expect(tap.interfaces.map((i) => i.type)).toEqual(['ParamHTTP', 'DALIInterface']);
    expect(tap.interfaces[1].typeNs).toBe('http://docs.g-vo.org/schemata/DaCHS.xsd');
    expect(tap.interfaces[1].endpoints).toEqual(['sync', 'async', 'tables', 'examples']);
    expect(tap.interfaces[0].accessUrls).toEqual([{ url: 'http://victor:8080/tap', use: 'full' }]);
    expect(tap.interfaces[0].version).toBe('1.1');
    expect(interfaceSecurityKinds(tap.interfaces[0])).toEqual(['anonymous']);
  });

  it('reads ADQL 2.0 and 2.1 with their ivo-ids and the feature groups', () => {
    expect(ta.languages).toHaveLength(1);
    const adql = ta.languages[0];
    expect(adql.name).toBe('ADQL');
    expect(adql.versions).toEqual([
      { version: '2.0', ivoId: 'ivo://ivoa.net/std/ADQL#v2.0' },
      { version: '2.1', ivoId: 'ivo://ivoa.net/std/ADQL#v2.1' },
    ]);
    const total = adql.features.reduce((n, g) => n + g.features.length, 0);
    expect(total).toBe(53);
    const geo = adql.features.find((g) => g.type === 'ivo://ivoa.net/std/TAPRegExt#features-adqlgeo')!;
    expect(geo.features.map((f) => f.form)).toContain('INTERSECTS');
    const common = adql.features.find((g) => g.type === 'ivo://ivoa.net/std/TAPRegExt#features-adql-common-table');
    expect(common?.features).toHaveLength(1);
    const udf = adql.features.find((g) => g.type === 'ivo://ivoa.net/std/TAPRegExt#features-udf')!;
    expect(udf.features[0].form).toBe(
      'gavo_apply_pm(ra DOUBLE PRECISION, dec DOUBLE PRECISION, pmra DOUBLE PRECISION, pmde DOUBLE PRECISION, epdist DOUBLE PRECISION) -> POINT',
    );
    expect(udf.features[0].description).toMatch(/^Returns a POINT/);
  });

  it('reads upload methods, output formats, data models', () => {
    expect(ta.uploadMethods.map((u) => u.ivoId)).toEqual([
      'ivo://ivoa.net/std/TAPRegExt#upload-inline',
      'ivo://ivoa.net/std/TAPRegExt#upload-http',
      'ivo://ivoa.net/std/TAPRegExt#upload-https',
      'ivo://ivoa.net/std/TAPRegExt#upload-ftp',
    ]);
    expect(ta.dataModels.map((d) => d.ivoId)).toContain('ivo://ivoa.net/std/obscore#core-1.1');
    const fits = ta.outputFormats.find((f) => f.mime === 'application/fits');
    expect(fits?.aliases).toEqual(['fits']);
    const td11 = ta.outputFormats.find((f) => f.mime === 'application/x-votable+xml;serialization=TABLEDATA;version=1.1');
    expect(td11?.aliases).toEqual(['text/xml', 'votabletd1.1']);
  });

  it('reads limits, including TAPRegExt 1.1 forMode declarations', () => {
    expect(ta.retentionPeriod).toEqual({ default: 172800 });
    expect(ta.executionDuration).toEqual({ default: 50 });
    expect(ta.limits.executionDuration).toEqual([{ default: 50 }, { default: 7200, forMode: 'async' }]);
    expect(ta.outputLimit).toEqual({ default: { value: 20000, unit: 'row' }, hard: { value: 20000000, unit: 'row' } });
    expect(ta.uploadLimit).toEqual({ hard: { value: 10000000, unit: 'byte' } });
    expect(maxRec(caps)).toBe(20000000);
    expect(uploadLimitBytes(caps)).toBe(10000000);
    expect(uploadLimitBytes(caps, 'async')).toBe(80000000);
    expect(uploadLimitBytes(caps, 'sync')).toBe(10000000);
    expect(supportsUpload(caps)).toBe(true);
  });

  it('resolves endpoints from the interface base URL', () => {
    expect(tapEndpoints(caps)).toMatchObject({
      base: 'http://victor:8080/tap',
      sync: 'http://victor:8080/tap/sync',
      async: 'http://victor:8080/tap/async',
      tables: 'http://victor:8080/tap/tables',
      capabilities: 'http://victor:8080/__system__/tap/run/capabilities',
      examples: 'http://victor:8080/tap/examples',
      security: 'anonymous',
      credentialMatched: true,
    });
  });
});

describe('parseCapabilities: GAVO DC (DaCHS) variants', () => {
  it('resolves VOSI endpoints at DaCHS URLs, not under /tap', () => {
    const caps = parseCapabilities(fixture('gavo-dc-tap-capabilities.xml'));
    const ep = tapEndpoints(caps, 'anonymous')!;
    expect(ep.base).toBe('http://dc.zah.uni-heidelberg.de/tap');
    expect(ep.tables).toBe('http://dc.zah.uni-heidelberg.de/__system__/tap/run/tableMetadata');
    expect(ep.tablesVersion).toBe('1.0');
    expect(ep.availability).toBe('http://dc.zah.uni-heidelberg.de/__system__/tap/run/availability');
    expect(ep.capabilities).toBe('http://dc.zah.uni-heidelberg.de/__system__/tap/run/capabilities');
    expect(maxRec(caps)).toBe(10000000);
    expect(uploadLimitBytes(caps)).toBe(100000000);
  });

  it('classifies the W3C BasicAA standardID on the tables interface', () => {
    const caps = parseCapabilities(fixture('gavo-dc-tap-capabilities.xml'));
    const tables = findCapabilities(caps, STANDARD_IDS.vosiTables)[0];
    expect(tables.interfaces[0].securityMethods).toEqual([
      { standardID: 'http://www.w3.org/Protocols/HTTP/1.0/spec.html#BasicAA', kind: 'BasicAA' },
    ]);
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.vosiTables, 'basic')?.credentialMatched).toBe(true);
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.vosiTables, 'anonymous')?.credentialMatched).toBe(false);
  });

  it('reads a document whose root and first elements have no whitespace, and mirrorURLs', () => {
    const caps = parseCapabilities(fixture('gavo-dc-tap-capabilities-2.xml'));
    expect(caps.map((c) => c.standardID)).toEqual([
      STANDARD_IDS.tap,
      STANDARD_IDS.vosiAvailability,
      STANDARD_IDS.vosiCapabilities,
      STANDARD_IDS.vosiTables,
      STANDARD_IDS.daliExamples,
    ]);
    const ep = tapEndpoints(caps)!;
    expect(ep.mirrors).toEqual(['https://dc.zah.uni-heidelberg.de/tap']);
    expect(ep.examples).toBe('http://dc.zah.uni-heidelberg.de/__system__/tap/run/examples');
    expect(maxRec(caps)).toBe(16000000);
    const adql = tapOf(caps).tableAccess!.languages[0];
    expect(adql.versions.map((v) => v.version)).toEqual(['2.0', '2.1']);
  });
});

describe('parseCapabilities: CADC argus', () => {
  const caps = parseCapabilities(fixture('cadc-argus-tap-capabilities.xml'));

  it('reads the empty securityMethod as anonymous next to cookie and certificate', () => {
    const iface = tapOf(caps).interfaces[0];
    expect(iface.securityMethods).toEqual([
      { kind: 'anonymous' },
      { standardID: 'ivo://ivoa.net/sso#cookie', kind: 'cookie' },
      { standardID: 'ivo://ivoa.net/sso#tls-with-certificate', kind: 'tls-with-certificate' },
    ]);
  });

  it('chooses the security method for each credential kind', () => {
    expect(tapEndpoints(caps, 'anonymous')).toMatchObject({ security: 'anonymous', credentialMatched: true });
    expect(tapEndpoints(caps, 'cookie')).toMatchObject({ security: 'cookie', credentialMatched: true });
    expect(tapEndpoints(caps, 'x509')).toMatchObject({ security: 'tls-with-certificate', credentialMatched: true });
    expect(tapEndpoints(caps, 'tls-with-certificate')).toMatchObject({ security: 'tls-with-certificate', credentialMatched: true });
    // A token the service cannot take: fall back to anonymous access, and say so.
    expect(tapEndpoints(caps, 'bearer')).toMatchObject({ security: 'anonymous', credentialMatched: false });
  });

  it('reads tables-1.1, PQL without version ivo-id, byte output limits and row upload limits', () => {
    const ep = tapEndpoints(caps)!;
    expect(ep.tables).toBe('https://www.cadc-ccda.hia-iha.nrc-cnrc.gc.ca/argus/tables');
    expect(ep.tablesVersion).toBe('1.1');
    const ta = tapOf(caps).tableAccess!;
    expect(ta.languages.map((l) => l.name)).toEqual(['ADQL', 'PQL']);
    expect(ta.languages[1].versions).toEqual([{ version: '0.1' }]);
    expect(ta.languages[0].features[0].features.map((f) => f.form)).toHaveLength(12);
    expect(ta.outputLimit?.hard).toEqual({ value: 134217728, unit: 'byte' });
    expect(ta.uploadLimit?.hard).toEqual({ value: 100000, unit: 'row' });
    expect(ta.retentionPeriod).toEqual({ default: 604800, hard: 604800 });
    // Limits in bytes cannot become a row count, and row limits are not byte limits.
    expect(maxRec(caps)).toBeUndefined();
    expect(uploadLimitBytes(caps)).toBeUndefined();
    expect(ta.outputFormats.map((f) => f.aliases[0])).toEqual(['votable', undefined, 'csv', 'tsv']);
  });

  it('keeps the non-IVOA logControl capability', () => {
    const log = caps.find((c) => c.standardID === 'vos://cadc.nrc.ca~vospace/CADC/std/Logging#control-1.0');
    expect(log?.interfaces[0].securityMethods[0].kind).toBe('BasicAA');
  });
});

describe('parseCapabilities: Rubin SIA2 (root in no namespace)', () => {
  const caps = parseCapabilities(fixture('rsp-sia2-capabilities.xml'));

  it('reads capabilities under a namespace-less root', () => {
    expect(caps.map((c) => c.standardID)).toEqual([STANDARD_IDS.vosiCapabilities, STANDARD_IDS.vosiAvailability, STANDARD_IDS.sia2]);
    expect(findTapCapability(caps)).toBeUndefined();
    expect(tapEndpoints(caps)).toBeUndefined();
    expect(supportsUpload(caps)).toBe(false);
  });

  it('reads an accessURL without use and five security methods', () => {
    const iface = findCapabilities(caps, STANDARD_IDS.sia2)[0].interfaces[0];
    expect(iface.accessUrls).toEqual([{ url: 'https://example.com/api/sia/dp02/query' }]);
    expect(iface.typeNs).toBe('http://www.ivoa.net/xml/VODataService/v1.1');
    expect(interfaceSecurityKinds(iface)).toEqual(['BasicAA', 'cookie', 'OAuth', 'saml2.0', 'OpenID']);
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.sia2, 'bearer')).toMatchObject({ security: 'OAuth', credentialMatched: true });
  });
});

describe('parseCapabilities: SIA2 with one interface per security method', () => {
  const caps = parseCapabilities(fixture('sia2-capabilities-multi-interface-auth.xml'));
  const sia = findCapabilities(caps, STANDARD_IDS.sia2)[0];

  it('picks the interface by credential kind', () => {
    expect(sia.interfaces).toHaveLength(4);
    expect(chooseInterface(sia, 'anonymous')).toMatchObject({ url: 'https://example.com/sia/v2query', security: 'anonymous' });
    expect(chooseInterface(sia, 'basic')).toMatchObject({ url: 'https://example.com/sia/auth-v2query', security: 'BasicAA' });
    expect(chooseInterface(sia, 'cookie')?.interface).toBe(sia.interfaces[2]);
    expect(chooseInterface(sia, 'x509')?.interface).toBe(sia.interfaces[3]);
    expect(chooseInterface(sia, 'bearer')).toMatchObject({ security: 'anonymous', credentialMatched: false, interface: sia.interfaces[0] });
  });
});

describe('parseCapabilities: VOSI 1.0-era SIA1 spec sample', () => {
  const caps = parseCapabilities(fixture('vosi-spec-sample-sia1-capabilities.xml'));

  it('reads a capability without standardID and the sia:SimpleImageAccess type', () => {
    expect(caps).toHaveLength(2);
    expect(caps[0].standardID).toBeUndefined();
    expect(caps[0].interfaces[0]).toMatchObject({ type: 'WebBrowser', typeNs: 'http://www.ivoa.net/xml/VOResource/v1.0' });
    expect(caps[1]).toMatchObject({ standardID: 'ivo://ivoa.net/std/SIA', type: 'SimpleImageAccess', typeNs: 'http://www.ivoa.net/xml/SIA/v1.0' });
    expect(caps[1].tableAccess).toBeUndefined();
  });

  it('trims the multi-line accessURL and decodes &amp;', () => {
    expect(caps[1].interfaces[0].accessUrls).toEqual([{ url: 'http://adil.ncsa.uiuc.edu/cgi-bin/voimquery?survey=f&' }]);
    expect(caps[1].interfaces[0].role).toBe('std');
  });

  it('never chooses a browser interface for the broker', () => {
    expect(chooseInterface(caps[0])).toBeUndefined();
  });
});

describe('parseCapabilities: documents written for Constellation', () => {
  it('trims whitespace-padded accessURLs (OpenCADC style) and a trailing slash on the base', () => {
    const caps = parseCapabilities(fixture('constellation-tap-capabilities-padded-urls.xml'));
    expect(findCapabilities(caps, STANDARD_IDS.vosiCapabilities)[0].interfaces[0].accessUrls[0].url).toBe(
      'https://tap.example.org/argo/capabilities',
    );
    expect(tapOf(caps).interfaces[0].accessUrls[0]).toEqual({ url: 'https://tap.example.org/argo/', use: 'base' });
    expect(tapEndpoints(caps, 'bearer')).toMatchObject({
      base: 'https://tap.example.org/argo',
      sync: 'https://tap.example.org/argo/sync',
      async: 'https://tap.example.org/argo/async',
      tables: 'https://tap.example.org/argo/tables',
      tablesVersion: '1.1',
      availability: 'https://tap.example.org/argo/availability',
      security: 'token',
      credentialMatched: true,
    });
    expect(tapEndpoints(caps, 'header')?.security).toBe('token');
    expect(uploadLimitBytes(caps)).toBe(33554432);
    expect(maxRec(caps)).toBeUndefined();
  });

  it('keeps non-IVOA platform standardIDs with one interface per scheme', () => {
    const caps = parseCapabilities(fixture('constellation-platform-session-capabilities.xml'));
    expect(findTapCapability(caps)).toBeUndefined();
    const session = resolveCapabilityUrl(caps, STANDARD_IDS.skahaSession, 'bearer');
    expect(session).toMatchObject({ url: 'https://platform.example.org/skaha/v1/session', security: 'token', credentialMatched: true });
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.skahaSession, 'x509')?.security).toBe('tls-with-certificate');
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.skahaImage, 'cookie')?.interface.securityMethods[0].kind).toBe('cookie');
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.skahaContext, 'cookie')?.credentialMatched).toBe(false);
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.skahaRepository)?.url).toBe('https://platform.example.org/skaha/v1/repository');
    expect(resolveCapabilityUrl(caps, STANDARD_IDS.skahaSessionsV0, 'bearer')?.url).toBe('https://platform.example.org/skaha/v0');
    // Identifiers compare case-insensitively.
    expect(findCapabilities(caps, 'HTTP://WWW.OPENCADC.ORG/STD/PLATFORM#SESSION-1')).toHaveLength(1);
    expect(resolveCapabilityUrl(caps, 'ivo://example.org/std/none')).toBeUndefined();
  });

  it('reads a TAP service with no anonymous access and unfilled outputLimit placeholders', () => {
    const caps = parseCapabilities(fixture('constellation-tap-five-security-methods.xml'));
    const ta = tapOf(caps).tableAccess!;
    expect(tapOf(caps).type).toBe('TableAccess');
    expect(ta.outputLimit).toEqual({});
    expect(maxRec(caps)).toBeUndefined();
    expect(ta.executionDuration).toEqual({ default: 600, hard: 28800 });
    expect(uploadLimitBytes(caps)).toBe(33554432);
    expect(tapEndpoints(caps, 'bearer')).toMatchObject({ security: 'OAuth', credentialMatched: true });
    expect(tapEndpoints(caps, 'basic')).toMatchObject({ security: 'BasicAA', credentialMatched: true });
    // Nothing fits an anonymous caller: an interface is still named, flagged as not matching.
    expect(tapEndpoints(caps, 'anonymous')).toMatchObject({ credentialMatched: false, base: 'https://platform.example.org/api/tap' });
  });
});

describe('parseCapabilities: namespaces, not prefixes', () => {
  const doc = (capPrefixDecl: string, typeValue: string, childNs = ''): string =>
    `<?xml version="1.0"?>
<c:capabilities xmlns:c="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" ${childNs}>
  <capability standardID="ivo://ivoa.net/std/TAP" ${capPrefixDecl} i:type="${typeValue}">
    <interface xmlns:q="http://www.ivoa.net/xml/VODataService/v1.1" i:type="q:ParamHTTP" role="std">
      <accessURL use="base">https://x.example.org/tap</accessURL>
    </interface>
    <language><name>ADQL</name><version>2.0</version></language>
    <outputFormat><mime>text/csv</mime></outputFormat>
    <outputLimit><hard unit="rows">5000</hard></outputLimit>
  </capability>
</c:capabilities>`;

  it('resolves the xsi:type prefix whatever it is called', () => {
    const caps = parseCapabilities(doc('xmlns:zz="http://www.ivoa.net/xml/TAPRegExt/v1.0"', 'zz:TableAccess'));
    expect(caps[0]).toMatchObject({ type: 'TableAccess', typeNs: 'http://www.ivoa.net/xml/TAPRegExt/v1.0' });
    expect(caps[0].interfaces[0]).toMatchObject({ type: 'ParamHTTP', typeNs: 'http://www.ivoa.net/xml/VODataService/v1.1' });
    expect(maxRec(caps)).toBe(5000);
  });

  it('does not take a tr: prefix bound elsewhere for TAPRegExt', () => {
    const caps = parseCapabilities(doc('xmlns:tr="urn:something-else"', 'tr:TableAccess'));
    expect(caps[0].typeNs).toBe('urn:something-else');
    // Still a TAP capability by standardID, so its TAPRegExt children are read.
    expect(caps[0].tableAccess?.languages[0].name).toBe('ADQL');
  });

  it('accepts content elements that a writer put in the VOSI namespace', () => {
    const qualified = `<capabilities xmlns="http://www.ivoa.net/xml/VOSICapabilities/v1.0">
      <capability standardID="ivo://ivoa.net/std/VOSI#availability"><interface><accessURL>https://a.example.org/av</accessURL></interface></capability>
    </capabilities>`;
    expect(resolveCapabilityUrl(parseCapabilities(qualified), STANDARD_IDS.vosiAvailability)?.url).toBe('https://a.example.org/av');
  });
});

describe('parseCapabilities: errors', () => {
  it('rejects malformed XML with UPSTREAM_MALFORMED and the saxes error as cause', () => {
    try {
      parseCapabilities('<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"><capability></vosi:capabilities>');
      expect.unreachable();
    } catch (err) {
      expect(isConstellationError(err)).toBe(true);
      const e = err as import('../../registry/model/errors.js').ConstellationError;
      expect(e.kind).toBe('UPSTREAM_MALFORMED');
      expect(e.code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
      expect(e.message).toMatch(/VOSI capabilities document: not well-formed XML/);
      expect(e.cause).toBeInstanceOf(Error);
      expect(e.violations[0].path).toMatch(/^line 1, column \d+$/);
    }
  });

  it('rejects a document with another root, naming it', () => {
    const avail = '<availability xmlns="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><available>true</available></availability>';
    expect(() => parseCapabilities(avail)).toThrow(/found <availability> \(namespace http:\/\/www\.ivoa\.net\/xml\/VOSIAvailability\/v1\.0\)/);
    expect(() => parseCapabilities('<html><body>Service down</body></html>')).toThrow(/expected <capabilities>.*found <html> \(no namespace\)/);
  });

  it('rejects empty input and non-XML text', () => {
    expect(() => parseCapabilities('')).toThrow(/empty document/);
    expect(() => parseCapabilities(Buffer.from('Internal Server Error'))).toThrow(/not well-formed XML/);
  });
});

describe('securityKindOf', () => {
  it('maps IVOA SSO identifiers case-insensitively', () => {
    expect(securityKindOf(undefined)).toBe('anonymous');
    expect(securityKindOf('  ')).toBe('anonymous');
    expect(securityKindOf('ivo://ivoa.net/sso#BasicAA')).toBe('BasicAA');
    expect(securityKindOf('IVO://IVOA.NET/SSO#COOKIE')).toBe('cookie');
    expect(securityKindOf('ivo://ivoa.net/sso#token')).toBe('token');
    expect(securityKindOf('ivo://ivoa.net/sso#tls-with-certificate')).toBe('tls-with-certificate');
    expect(securityKindOf('ivo://example.org/sso#custom')).toBe('other');
  });
});

describe('parseCapabilities: property', () => {
  it('reads accessURL text whatever whitespace or CDATA wraps it', () => {
    const ws = fc.string({ unit: fc.constantFrom(' ', '\n', '\t', '\r\n'), maxLength: 6 });
    fc.assert(
      fc.property(ws, ws, fc.boolean(), fc.webUrl({ withQueryParameters: true }), (before, after, cdata, url) => {
        const escaped = url.replace(/&/g, '&amp;').replace(/</g, '&lt;');
        const body = cdata ? `${before}<![CDATA[${url}]]>${after}` : `${before}${escaped}${after}`;
        const xml = `<capabilities><capability standardID="ivo://ivoa.net/std/TAP"><interface><accessURL>${body}</accessURL></interface></capability></capabilities>`;
        const caps = parseCapabilities(xml);
        expect(caps[0].interfaces[0].accessUrls[0].url).toBe(url.trim());
      }),
      { numRuns: 200 },
    );
  });
});
