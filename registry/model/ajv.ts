/** The project's one ajv setup: JSON Schema 2020-12, strict, every error reported, standard formats. */
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its callable arrives as the default property.
const addFormats = (formats as unknown as { default: (ajv: Ajv2020) => Ajv2020 }).default;

/** A new ajv instance configured the way every schema in the project is checked. */
export function createAjv(): Ajv2020 {
  return addFormats(new Ajv2020({ strict: true, allErrors: true }));
}
