/** The local schemas the facade answers itself; a new one (RegTAP's `rr`) is one file and one line here. */
import type { LocalSchema } from './local-schema.js';
import { regtapSchema } from './regtap-schema.js';
import { tapSchema } from './tap-schema.js';

/** Every local schema, TAP_SCHEMA first, then RegTAP's rr. */
export const LOCAL_SCHEMAS: readonly LocalSchema[] = [tapSchema(() => LOCAL_SCHEMAS), regtapSchema()];
