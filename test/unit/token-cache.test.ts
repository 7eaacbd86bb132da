/** The cache of issued site tokens: kept until a minute before expiry, bounded (least recently used go), one issue call per key at a time. */
import { describe, expect, it } from 'vitest';
import { Secret } from '../../broker/auth/identity.js';
import { TokenCache, type IssuedToken } from '../../broker/auth/token-exchange.js';

describe('TokenCache', () => {
  let now = 1_000_000;
  const issued = (name: string, lifetimeMs: number): IssuedToken => ({ token: new Secret(name), expiresAt: now + lifetimeMs });

  it('serves a token until a minute before it expires, then issues a new one', async () => {
    const cache = new TokenCache({ now: () => now });
    let calls = 0;
    const issue = async () => issued(`t${++calls}`, 300_000);
    expect((await cache.get('alice|site', issue)).token.reveal()).toBe('t1');
    now += 239_000;
    expect((await cache.get('alice|site', issue)).token.reveal()).toBe('t1');
    now += 2_000;
    expect((await cache.get('alice|site', issue)).token.reveal()).toBe('t2');
    expect(calls).toBe(2);
  });

  it('issues once for concurrent requests of one key, and again after a failure', async () => {
    const cache = new TokenCache({ now: () => now });
    let calls = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = async () => {
      calls++;
      await gate;
      return issued('shared', 300_000);
    };
    const all = Promise.all([cache.get('k', slow), cache.get('k', slow), cache.get('k', slow)]);
    release();
    expect((await all).map((t) => t.token.reveal())).toEqual(['shared', 'shared', 'shared']);
    expect(calls).toBe(1);
    const failing = new TokenCache({ now: () => now });
    await expect(failing.get('k', async () => { throw new Error('provider down'); })).rejects.toThrow('provider down');
    expect((await failing.get('k', async () => issued('after', 300_000))).token.reveal()).toBe('after');
  });

  it('keeps at most maxEntries tokens, dropping the least recently used, and never caches one that is already stale', async () => {
    const cache = new TokenCache({ maxEntries: 2, now: () => now });
    await cache.get('a', async () => issued('a', 300_000));
    await cache.get('b', async () => issued('b', 300_000));
    await cache.get('a', async () => issued('a2', 300_000));
    await cache.get('c', async () => issued('c', 300_000));
    expect(cache.size).toBe(2);
    expect((await cache.get('a', async () => issued('a3', 300_000))).token.reveal()).toBe('a');
    expect((await cache.get('b', async () => issued('b2', 300_000))).token.reveal()).toBe('b2');
    const short = new TokenCache({ now: () => now });
    await short.get('s', async () => issued('s1', 30_000));
    expect(short.size).toBe(0);
    expect(String(issued('x', 1).token)).toBe('[redacted]');
  });
});
