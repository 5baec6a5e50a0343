import { emOf, type EmSource } from '../db/orm.ts';
import { CHANGES_QUERY, PRUNE_CHANGES_SQL, type ChangeReader, type ChangesRead } from '../db/change-reader.ts';

/** The subject of a change that may affect anyone (a role held by very many users). */
export const EVERYONE = '*';

// A read finds the changes committed since the previous one, as long as the feed still holds them:
// rows are pruned after an hour (PRUNE_CHANGES_SQL), so a process that has not read for longer
// than this (a database outage) cannot know what it missed and drops every cached value.
const MAX_GAP_MS = 20 * 60_000;
const PRUNE_EVERY_MS = 10 * 60_000;
// Subjects remembered individually; past this, one "everyone changed" stands for them all.
const MAX_TRACKED_SUBJECTS = 50_000;

/**
 * Cached access data (permissions, verified credentials, sessions) is valid until a change that can
 * affect its subject — the user it belongs to — is committed. Database triggers append the users
 * each change can affect to the `access_change` feed (a user's own assignments, delegations to it,
 * tokens, sessions and status; a role's holders; a delegator's delegates and a spawner's agents,
 * for the cascade). Before a check, one query reads what was appended since the previous read,
 * by snapshot (see change-reader.ts), and only those users' cached values are dropped: one user's
 * change leaves everyone else's caches in place, on every instance, and no row is locked by all.
 *
 * Each drop moves a local `stamp`; a cached value carries the stamp it was loaded under and its
 * subject, and stays good while its subject has not been dropped since.
 */
export class AccessChanges {
  private snapshot: string | null = null;
  private counter = 0;
  private everyoneChangedAt = 0;
  private readonly changedAt = new Map<string, number>();
  /** When the newest completed read was sent (performance.now()); -Infinity before the first. */
  private lastStarted = Number.NEGATIVE_INFINITY;
  private lastPruned = Number.NEGATIVE_INFINITY;
  private inflight: { started: number; done: Promise<number> } | undefined;
  /** The read to send once `inflight` is back, for callers who arrived after it was sent. */
  private queued: Promise<number> | undefined;

  /** Counters for tests and diagnostics: reads sent, subjects dropped, requests served speculatively and redone. */
  readonly stats = { reads: 0, invalidations: 0, speculations: 0, speculationsFailed: 0 };

  /** `reader`: a faster way to the same rows (PostgreSQL's dedicated connection); the ORM otherwise. */
  private readonly reader: Pick<ChangeReader, 'read'> | undefined;

  constructor(reader?: Pick<ChangeReader, 'read'>) {
    this.reader = reader;
    // The first prune waits as long as any other: a process that starts and stops does not prune.
    this.lastPruned = performance.now();
  }

  get lastReadStarted(): number {
    return this.lastStarted;
  }

  /** Moves each time a subject's cached values are dropped. */
  get stamp(): number {
    return this.counter;
  }

  /** The stamp of the last drop that covered `subject`: values loaded under an older stamp are stale. */
  changedSince(subject: string): number {
    return Math.max(this.everyoneChangedAt, this.changedAt.get(subject) ?? 0);
  }

  /** Whether a value of `subject` loaded under `stamp` is still good. */
  isCurrent(subject: string, stamp: number): boolean {
    return stamp >= this.changedSince(subject);
  }

  /**
   * Makes sure every change committed before `notBefore` (a performance.now() time, by default
   * now) is seen. A read sent at or after that time answers for it, so the several checks of one
   * request or tool call, and concurrent requests, share one read without ever missing a change
   * committed before they began. Resolves to the stamp the caller's loads belong to.
   */
  async sync(em: EmSource, notBefore: number = performance.now()): Promise<number> {
    if (this.lastStarted >= notBefore) return this.counter;
    const inflight = this.inflight;
    if (inflight && inflight.started >= notBefore) return inflight.done;
    // Not sent yet, so it will be sent after this caller arrived.
    if (this.queued) return this.queued;
    if (!inflight) return this.startRead(em);
    // The read that is out was sent too early for this caller. One read sent when that one is back
    // serves everyone who arrives meanwhile, instead of one each (under load, one per request).
    // If it fails, so do they (the database is away): a second read would only double their wait.
    const queued = inflight.done.then(
      () => {
        this.queued = undefined;
        return this.startRead(em);
      },
      (error: unknown) => {
        this.queued = undefined;
        throw error;
      },
    );
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

  // Reads go out one at a time (sync), each from the snapshot the one before returned.
  private async read(em: EmSource, started: number): Promise<number> {
    const { snapshot, changed } = await this.fetch(em, this.snapshot);
    const missedTooMuch = this.snapshot !== null && started - this.lastStarted > MAX_GAP_MS;
    this.snapshot = snapshot;
    this.lastStarted = started;
    if (missedTooMuch) this.invalidate(EVERYONE);
    else for (const subject of changed) this.invalidate(subject);
    if (started - this.lastPruned > PRUNE_EVERY_MS) this.prune(em, started);
    return this.counter;
  }

  private invalidate(subject: string): void {
    this.stats.invalidations++;
    this.counter++;
    if (subject === EVERYONE || this.changedAt.size >= MAX_TRACKED_SUBJECTS) {
      this.everyoneChangedAt = this.counter;
      this.changedAt.clear();
    } else {
      this.changedAt.set(subject, this.counter);
    }
  }

  private prune(em: EmSource, started: number): void {
    this.lastPruned = started;
    try {
      void emOf(em).execute(PRUNE_CHANGES_SQL).catch(() => undefined);
    } catch {
      // Pruning is housekeeping: the next one tries again.
    }
  }

  private async fetch(em: EmSource, since: string | null): Promise<ChangesRead> {
    if (this.reader) {
      try {
        return await this.reader.read(since);
      } catch {
        // The dedicated connection is down (it reconnects on the next read): the pool answers.
      }
    }
    const row = await emOf(em).execute<{ snapshot: string; changed: string[] }>(CHANGES_QUERY, [since, since, since], 'get');
    return { snapshot: row!.snapshot, changed: row!.changed };
  }
}


/** A bounded map of values of one subject each, which also lapse at their own time (an expiring token). */
export class AccessCache<V> {
  private readonly entries = new Map<string, { value: V; validUntil: number; stamp: number; subject: string }>();
  private readonly changes: AccessChanges;
  private readonly maxEntries: number;

  constructor(changes: AccessChanges, maxEntries = 10_000) {
    this.changes = changes;
    this.maxEntries = maxEntries;
  }

  /**
   * The value for `key`, loaded when missing. Syncs first (see AccessChanges.sync), so a cached
   * value is never older than the last change to its subject committed before `notBefore`. `load`
   * returns null for "nothing to cache"; `validUntil` is when the value lapses on its own.
   */
  async getOrLoad(
    em: EmSource,
    key: string,
    now: Date,
    load: () => Promise<{ value: V; subject: string; validUntil: Date | null } | null>,
    notBefore?: number,
  ): Promise<V | null> {
    const stamp = await this.changes.sync(em, notBefore);
    const cached = this.get(key, now);
    if (cached !== undefined) return cached;
    const loaded = await load();
    if (!loaded) return null;
    this.set(key, loaded.value, loaded.subject, stamp, loaded.validUntil);
    return loaded.value;
  }

  get(key: string, now: Date): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (!this.changes.isCurrent(entry.subject, entry.stamp) || entry.validUntil <= now.getTime()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores a value of `subject` loaded after the sync that returned `stamp`, unless the subject changed since. */
  set(key: string, value: V, subject: string, stamp: number, validUntil: Date | null): void {
    if (!this.changes.isCurrent(subject, stamp)) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { value, validUntil: validUntil?.getTime() ?? Number.POSITIVE_INFINITY, stamp, subject });
  }
}
