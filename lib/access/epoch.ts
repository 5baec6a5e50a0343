import { emOf, type EmSource } from '../db/orm.ts';
import { EPOCH_QUERY, type EpochReader } from '../db/epoch-reader.ts';

/**
 * Caches of access data are valid while the access epoch (one row, bumped by database triggers on
 * every change to roles, assignments, delegations, user status and tokens) has not moved. Reading
 * it is one primary-key query, so a change made by any process is seen on the very next check.
 */
export class AccessEpoch {
  private seen: number | undefined;
  private readonly caches = new Set<{ clear(): void }>();
  /** When the newest completed read was sent (performance.now()); -Infinity before the first. */
  private lastStarted = Number.NEGATIVE_INFINITY;
  private inflight: { started: number; done: Promise<number> } | undefined;
  /** The read to send once `inflight` is back, for callers who arrived after it was sent. */
  private queued: Promise<number> | undefined;

  /** Bumped each time a moved epoch clears the caches; a result computed before that is dropped. */
  generation = 0;

  /** Counters for tests and diagnostics: reads sent, requests served speculatively, and redone. */
  readonly stats = { reads: 0, speculations: 0, speculationsFailed: 0 };

  /** `reader`: a faster way to the same row (PostgreSQL's dedicated connection); the ORM otherwise. */
  private readonly reader: Pick<EpochReader, 'read'> | undefined;

  constructor(reader?: Pick<EpochReader, 'read'>) {
    this.reader = reader;
  }

  get lastReadStarted(): number {
    return this.lastStarted;
  }

  register(cache: { clear(): void }): void {
    this.caches.add(cache);
  }

  /**
   * Makes sure every change committed before `notBefore` (a performance.now() time, by default
   * now) is seen. A read sent at or after that time answers for it, so the several checks of one
   * request or tool call, and concurrent requests, share one read without ever missing a change
   * committed before they began.
   */
  async sync(em: EmSource, notBefore: number = performance.now()): Promise<number> {
    if (this.lastStarted >= notBefore) return this.generation;
    const inflight = this.inflight;
    if (inflight && inflight.started >= notBefore) return inflight.done;
    // Not sent yet, so it will be sent after this caller arrived.
    if (this.queued) return this.queued;
    if (!inflight) return this.startRead(em);
    // The read that is out was sent too early for this caller. The connection answers in order
    // anyway: one read sent when that one is back serves everyone who arrives meanwhile, instead
    // of one each (under load, that was one read per request).
    const queued = inflight.done.then(ignore, ignore).then(() => {
      this.queued = undefined;
      return this.startRead(em);
    });
    this.queued = queued;
    return queued;
  }

  private startRead(em: EmSource): Promise<number> {
    this.stats.reads++;
    const started = performance.now();
    const done = this.read(em, started);
    this.inflight = { started, done };
    void done.finally(() => {
      if (this.inflight?.done === done) this.inflight = undefined;
    }).catch(() => undefined);
    return done;
  }

  private async read(em: EmSource, started: number): Promise<number> {
    const version = await this.fetch(em);
    // A read that finishes after a newer one changes nothing. Any difference otherwise counts (not
    // only a larger version): a read inside a transaction that rolled back saw a version that never was.
    if (started < this.lastStarted) return this.generation;
    this.lastStarted = started;
    if (version !== this.seen) {
      this.seen = version;
      this.generation++;
      for (const cache of this.caches) cache.clear();
    }
    return this.generation;
  }

  private async fetch(em: EmSource): Promise<number> {
    if (this.reader) {
      try {
        return await this.reader.read();
      } catch {
        // The dedicated connection is down (it reconnects on the next read): the pool answers.
      }
    }
    const row = await emOf(em).execute<{ version: string | number }>(EPOCH_QUERY, [], 'get');
    return Number(row?.version ?? 0);
  }
}

const ignore = () => undefined;

/** A bounded map whose entries also lapse at their own time (an expiring token or delegation). */
export class EpochCache<V> {
  private readonly entries = new Map<string, { value: V; validUntil: number; generation: number }>();
  private readonly epoch: AccessEpoch;
  private readonly maxEntries: number;

  constructor(epoch: AccessEpoch, maxEntries = 10_000) {
    this.epoch = epoch;
    this.maxEntries = maxEntries;
    epoch.register(this);
  }

  /**
   * The value for `key`, loaded when missing. Syncs the epoch first (see AccessEpoch.sync), so a
   * cached value is never older than the last change committed before `notBefore`. `load` returns
   * null for "nothing to cache", and when the value lapses on its own (an expiry).
   */
  async getOrLoad(
    em: EmSource,
    key: string,
    now: Date,
    load: () => Promise<{ value: V; validUntil: Date | null } | null>,
    notBefore?: number,
  ): Promise<V | null> {
    const generation = await this.epoch.sync(em, notBefore);
    const cached = this.get(key, now);
    if (cached !== undefined) return cached;
    const loaded = await load();
    if (!loaded) return null;
    this.set(key, loaded.value, generation, loaded.validUntil);
    return loaded.value;
  }

  get(key: string, now: Date): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.generation !== this.epoch.generation || entry.validUntil <= now.getTime()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores a value computed after the sync that returned `generation`, unless the epoch moved since. */
  set(key: string, value: V, generation: number, validUntil: Date | null): void {
    if (generation !== this.epoch.generation) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { value, validUntil: validUntil?.getTime() ?? Number.POSITIVE_INFINITY, generation });
  }

  clear(): void {
    this.entries.clear();
  }
}
