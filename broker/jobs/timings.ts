/** The job service's time bounds, shared with the config loader that derives and checks them. */

/** What a lease adds to the longest call it covers: the database writes that record the answer. */
export const LEASE_MARGIN_MS = 2_000;
/** A poll's default deadline: the default lease (30 s) less the margin. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 28_000;
/** A submit's default deadline: the HTTP client's connect (10 s) and headers (30 s) timeouts. */
export const DEFAULT_SUBMIT_TIMEOUT_MS = 40_000;
