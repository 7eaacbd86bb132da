/**
 * deadlineSignal: a call's deadline joined with long-lived stop signals, without leaving
 * anything behind on those (AbortSignal.any on Node 20 leaves a WeakRef per call in each source).
 */
import { getEventListeners, once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { deadlineSignal } from '../../broker/deadline.js';
import { within } from '../support/wait.js';

describe('deadlineSignal', () => {
  it('aborts at its deadline with a TimeoutError, as AbortSignal.timeout does', async () => {
    const signal = deadlineSignal(10, new AbortController().signal);
    await within(once(signal, 'abort'), 'the deadline');
    expect(signal.reason).toBeInstanceOf(DOMException);
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it('aborts with the reason of the stop signal that aborts first, and at once when one already has', () => {
    const stop = new AbortController();
    const other = new AbortController();
    const signal = deadlineSignal(600_000, stop.signal, undefined, other.signal);
    expect(signal.aborted).toBe(false);
    const reason = new Error('stopping');
    other.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(deadlineSignal(600_000, other.signal).reason).toBe(reason);
  });

  it('leaves no listener on a long-lived stop signal once each call\'s signal has aborted', async () => {
    const stop = new AbortController();
    const signals = Array.from({ length: 1000 }, (_, k) => deadlineSignal(k % 2 === 0 ? 5 : 600_000, stop.signal));
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1000);
    await within(Promise.all(signals.filter((_, k) => k % 2 === 0).map((s) => (s.aborted ? undefined : once(s, 'abort')))), 'the short deadlines');
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(500);
    stop.abort();
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });
});
