/** Capability documents for tests, built from parameters rather than hard-coded results. */
import type { CapabilityDocument, DatasetDoc } from '../../registry/model/capability.js';

/** A valid minimal document for `siteId` with the given datasets (served by one TAP service). */
export function documentFor(siteId: string, datasets: Partial<DatasetDoc>[] = [], extra: Partial<CapabilityDocument> = {}): CapabilityDocument {
  return {
    schemaVersion: 1,
    site: { id: siteId, name: `Site ${siteId}`, platform: 'tap', url: `https://${siteId}.example.org` },
    services: [{ id: 'tap', type: 'tap', url: `https://${siteId}.example.org/tap`, upload: true, async: true, maxRec: 100000, auth: ['anonymous'] }],
    datasets: datasets.map((d, i) => ({
      id: `survey.table${i}`,
      service: 'tap',
      table: `local.table${i}`,
      rows: 1000,
      rowBytes: 100,
      position: { ra: 'ra', dec: 'dec' },
      columns: [
        { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
        { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      ],
      access: { public: true },
      ...d,
    })),
    compute: [],
    images: [],
    asOf: '2026-11-23T12:00:00Z',
    ...extra,
  };
}
