/** The local schemas the facade answers itself; a new one (RegTAP's `rr`) is one file and one line here. */
import type { LocalSchema } from './local-schema.js';
import { tapSchema } from './tap-schema.js';

/** Every local schema, TAP_SCHEMA first. */
export const LOCAL_SCHEMAS: readonly LocalSchema[] = [tapSchema(() => LOCAL_SCHEMAS)];
