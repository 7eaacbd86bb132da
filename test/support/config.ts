/** Building broker configs for tests from YAML text or the shipped federation. */
import { parseConfig } from '../../broker/config/load.js';
import type { Config } from '../../broker/config/config.js';
import { packagePath } from '../../registry/paths.js';
import { readFileSync } from 'node:fs';

/** A config from federation YAML text (relative seed paths resolve against the project root). */
export function configFromYaml(yaml: string, env: Record<string, string> = {}): Config {
  return parseConfig(yaml, { PORT: '0', LOG_LEVEL: 'warn', ...env }, packagePath('test-federation.yaml'));
}

/** The shipped default federation (federation.yaml) as a config. */
export function shippedConfig(env: Record<string, string> = {}): Config {
  return parseConfig(readFileSync(packagePath('federation.yaml'), 'utf8'), { PORT: '0', LOG_LEVEL: 'warn', ...env }, packagePath('federation.yaml'));
}

/** A minimal open-registration federation with no configured sites. */
export const OPEN_FEDERATION = `
federation: { name: test }
registration: { open: true }
sites: []
`;
