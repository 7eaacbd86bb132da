/** From a Plan to the ordered sites a job may go to, and the record of that plan kept with the job. */
import { ConstellationError, type Violation } from '../../registry/model/errors.js';
import type { PlanRecord } from '../../registry/model/job-plan.js';
import { HARD_REASONS, type Candidate, type Plan, type SitesWithoutData } from '../planner/index.js';

export type { PlanRecord };

/** The plan as a job stores it: the verdict on each candidate, and how many sites held none of the data. */
export function planRecord(plan: Plan, chosen: string | null): PlanRecord {
  return {
    registryVersion: plan.registryVersion,
    chosen,
    sitesWithoutData: plan.withoutData.count,
    candidates: plan.candidates.map((c) => ({
      site: c.site,
      eligible: c.eligible,
      score: c.score,
      estimatedRows: c.estimatedRows,
      estimatedBytesMoved: c.estimatedBytesMoved,
      reasons: c.reasons,
    })),
  };
}

/**
 * The eligible candidates in the order to try them: best score first, or only `site` when the
 * caller named one. No eligible site is NO_ELIGIBLE_SITE, with each site's reasons as violations.
 */
export function eligibleCandidates(plan: Plan, what: string, site?: string | null): Candidate[] {
  if (site) {
    const named = plan.candidates.find((c) => c.site === site) ?? plan.withoutData.verdict(site);
    if (!named) throw new ConstellationError('UNKNOWN_SITE', `site "${site}" is not in the federation`);
    if (!named.eligible) throw refusal(`site ${site} cannot run this ${what}`, [named]);
    return [named];
  }
  const eligible = plan.candidates.filter((c) => c.eligible);
  if (eligible.length === 0) throw refusal(`no site can run this ${what}`, plan.candidates, plan.withoutData);
  return eligible;
}

/**
 * NO_ELIGIBLE_SITE with each candidate's hard reasons as violations (`candidates/<site>[/<dataset>]`),
 * and the sites holding none of the data as one violation per dataset (`candidates/*\/<dataset>`).
 */
function refusal(lead: string, candidates: readonly Candidate[], without?: SitesWithoutData): ConstellationError {
  const violations: Violation[] = candidates.flatMap((c) =>
    c.reasons.filter((r) => HARD_REASONS.has(r.code)).map((r) => ({ path: `candidates/${c.site}${r.dataset ? `/${r.dataset}` : ''}`, rule: r.code, message: r.message })),
  );
  if (without !== undefined && without.count > 0) {
    const n = without.count;
    const sites = `${n} ${candidates.length > 0 ? 'other ' : ''}site${n === 1 ? '' : 's'}`;
    for (const r of without.reasons) violations.push({ path: `candidates/*/${r.dataset}`, rule: r.code, message: `no replica of ${r.dataset} is held at ${sites}` });
  }
  const shown = violations.slice(0, 5).map((v) => `${v.path.slice('candidates/'.length)}: ${v.message}`);
  const more = violations.length > shown.length ? `; and ${violations.length - shown.length} more (see extensions.violations)` : '';
  return new ConstellationError('NO_ELIGIBLE_SITE', `${lead}: ${shown.join('; ') || 'the federation has no sites'}${more}`, { violations });
}
