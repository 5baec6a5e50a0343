import type { PmProvider } from '../db/entities/index.ts';
import type { Tracker } from './provider.ts';

/**
 * A Tracker whose client is built on its first call (every method of a tracker is async, so a
 * call simply waits for the client's modules to load first). `provider` is known at once.
 */
export function lazyTracker(provider: PmProvider, open: () => Promise<Tracker>): Tracker {
  let opened: Promise<Tracker> | undefined;
  return new Proxy({ provider } as Tracker, {
    get(target, key) {
      if (key === 'provider') return provider;
      // Not a thenable: awaiting the tracker itself must not call through.
      if (typeof key !== 'string' || key === 'then') return undefined;
      return async (...args: unknown[]) => {
        const tracker = await (opened ??= open());
        const method = (tracker as unknown as Record<string, unknown>)[key];
        if (typeof method !== 'function') throw new TypeError(`a tracker has no method ${key}`);
        return method.apply(tracker, args);
      };
    },
  });
}
