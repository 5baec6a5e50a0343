import { emOf, type EmSource } from '../db/orm.ts';
import { CHANGES_QUERY, LOCAL_CHANGES_QUERY, PRUNE_CHANGES_SQL, type ChangeReader, type ChangesRead, type LocalFeed } from '../db/change-reader.ts';

/** The subject of a change that may affect anything (a feed row without a subject). */
export const EVERYONE = '*';

const PRUNE_EVERY_MS = 10 * 60_000;
// The longest the embedded feed's silence is trusted without a read: a read checks again that the
// session still notifies, so if it stopped (something reset it), a change is seen this late at worst.
const TRUST_LOCAL_FEED_MS = 1000;
// Subjects remembered individually; past this, one "everything changed" stands for them all.
const MAX_TRACKED_SUBJECTS = 50_000;

/** Told of every cached value a request used (a speculation judges them once its read is in). */
export interface ValueUse {
  used(subjects: readonly string[], stamp: number): void;
}

/**
 * Cached access data (permissions, verified credentials, sessions) is valid until something it
 * was computed from changes. Each value belongs to a user and records its *subjects*: that user
 * and whatever else it read — the delegators of delegations to it, the roles it and they hold (see
 * the resolver). Database triggers append every change to the `access_change` feed under the id
 * of what changed: a user (its row, assignments, delegations to it, tokens, sessions) or a role.
 * Before a check, one query reads what was appended since the previous read, by snapshot (see
 * change-reader.ts), and drops the values that named it: one user's change leaves everyone else's
 * caches in place, on every instance, and no row is locked by every change.
 *
 * Recording at read time what a value depends on is what keeps this right under concurrency: a
 * change committed after a value was read reports the very row that value read.
 *
 * Each drop moves a local `stamp`; a cached value carries the stamp it was loaded under, and stays
 * good while none of its subjects has been dropped since.
 */
export class AccessChanges {
  private snapshot: string | null = null;
  private counter = 0;
  private everyoneChangedAt = 0;
  private readonly changedAt = new Map<string, number>();
  /** When the newest completed read was sent (performance.now()); -Infinity before the first. */
  private lastStarted = Number.NEGATIVE_INFINITY;
  private lastPruned: number;
  private inflight: { started: number; done: Promise<number> } | undefined;
  /** The read to send once `inflight` is back, for callers who arrived after it was sent. */
  private queued: Promise<number> | undefined;

  /** Counters for tests and diagnostics: reads sent, subjects dropped, requests served speculatively and redone. */
  readonly stats = { reads: 0, invalidations: 0, speculations: 0, speculationsFailed: 0 };

  /** `reader`: a faster way to the same rows (PostgreSQL's dedicated connection); the ORM otherwise. */
  private readonly reader: Pick<ChangeReader, 'read'> | undefined;
  /** The embedded database's feed, heard of at each commit that appended to it. */
  private readonly localFeed: LocalFeed | undefined;
  /** What `localFeed` had heard when the newest completed read was sent. */
  private heardAtLastRead = -1;
  /** When the newest read that found the session still notifying was sent; -Infinity if the last one did not. */
  private notifyingConfirmedAt = Number.NEGATIVE_INFINITY;
  /** How long the local feed's silence stands in for a read (tests shorten it). */
  trustLocalFeedMs = TRUST_LOCAL_FEED_MS;

  constructor(reader?: Pick<ChangeReader, 'read'>, localFeed?: LocalFeed) {
    this.reader = reader;
    this.localFeed = localFeed;
    // The first prune waits as long as any other: a process that starts and stops does not prune.
    this.lastPruned = performance.now();
  }

  get lastReadStarted(): number {
    return this.lastStarted;
  }

  /** Moves each time a subject is dropped. */
  get stamp(): number {
    return this.counter;
  }

  /** The stamp of the last drop that covered `subject`: values loaded under an older stamp are stale. */
  changedSince(subject: string): number {
    return Math.max(this.everyoneChangedAt, this.changedAt.get(subject) ?? 0);
  }

  /** Whether a value computed from `subjects` and loaded under `stamp` is still good. */
  isCurrent(subjects: readonly string[], stamp: number): boolean {
    return this.staleSince(subjects) <= stamp;
  }

  /** The stamp at which a value computed from `subjects` went stale (if it was loaded before it). */
  staleSince(subjects: readonly string[]): number {
    let latest = this.everyoneChangedAt;
    for (const subject of subjects) latest = Math.max(latest, this.changedAt.get(subject) ?? 0);
    return latest;
  }

  /**
   * Makes sure every change committed before `notBefore` (a performance.now() time, by default
   * now) is seen. A read sent at or after that time answers for it, so the several checks of one
   * request or tool call, and concurrent requests, share one read without ever missing a change
   * committed before they began. Resolves to the stamp the caller's loads belong to.
   */
  async sync(em: EmSource, notBefore: number = performance.now()): Promise<number> {
    if (this.lastStarted >= notBefore) return this.counter;
    // Nothing appended since the last read was sent: a read now would find nothing.
    if (this.localFeed?.heard === this.heardAtLastRead) {
      const now = performance.now();
      if (now - this.notifyingConfirmedAt < this.trustLocalFeedMs) {
        this.lastStarted = now;
        return this.counter;
      }
    }
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
    const heard = this.localFeed?.heard ?? -1;
    const { snapshot, changed, missed, notifying } = await this.fetch(em, this.snapshot);
    this.snapshot = snapshot;
    this.lastStarted = started;
    this.heardAtLastRead = heard;
    this.notifyingConfirmedAt = notifying ? started : Number.NEGATIVE_INFINITY;
    if (missed) this.invalidate(EVERYONE);
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
    const query = this.localFeed ? LOCAL_CHANGES_QUERY : CHANGES_QUERY;
    const row = await emOf(em).execute<{ snapshot: string; changed: string[]; missed: boolean; notifying?: boolean }>(query, [since], 'get');
    return { snapshot: row!.snapshot, changed: row!.changed, missed: row!.missed, notifying: row!.notifying === true };
  }
}


/** What a loader returns: the value, the user it belongs to, what else it was computed from, when it lapses. */
export interface Loaded<V> {
  value: V;
  subject: string;
  dependsOn?: readonly string[];
  validUntil: Date | null;
  /** The stamp before the database read the value came from, when that read began before this caller's sync (a shared verify). */
  stamp?: number;
}

interface Entry<V> {
  value: V;
  validUntil: number;
  stamp: number;
  subjects: readonly string[];
}

/** A bounded map of values, each of one user and computed from some subjects, which also lapse at their own time (an expiring token). */
export class AccessCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly changes: AccessChanges;
  private readonly maxEntries: number;

  constructor(changes: AccessChanges, maxEntries = 10_000) {
    this.changes = changes;
    this.maxEntries = maxEntries;
  }

  /**
   * The value for `key`, loaded when missing. Syncs first (see AccessChanges.sync), so a cached
   * value is never older than the last change to what it was computed from committed before
   * `notBefore`. `load` returns null for "nothing to cache". `use` hears of a cached value used.
   */
  async getOrLoad(em: EmSource, key: string, now: Date, load: () => Promise<Loaded<V> | null>, notBefore?: number, use?: ValueUse): Promise<V | null> {
    const stamp = await this.changes.sync(em, notBefore);
    const cached = this.get(key, now, use);
    if (cached !== undefined) return cached;
    const loaded = await load();
    if (!loaded) return null;
    this.set(key, loaded, Math.min(stamp, loaded.stamp ?? stamp));
    return loaded.value;
  }

  get(key: string, now: Date, use?: ValueUse): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (!this.changes.isCurrent(entry.subjects, entry.stamp) || entry.validUntil <= now.getTime()) {
      this.entries.delete(key);
      return undefined;
    }
    use?.used(entry.subjects, entry.stamp);
    return entry.value;
  }

  /** Stores a value loaded after the sync that returned `stamp`, unless something it was computed from changed since. */
  set(key: string, loaded: Loaded<V>, stamp: number): void {
    const subjects = [loaded.subject, ...(loaded.dependsOn ?? [])];
    if (!this.changes.isCurrent(subjects, stamp)) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { value: loaded.value, validUntil: loaded.validUntil?.getTime() ?? Number.POSITIVE_INFINITY, stamp, subjects });
  }
}
