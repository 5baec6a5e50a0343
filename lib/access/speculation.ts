import type { EmSource } from '../db/orm.ts';
import type { AccessChanges, ValueUse } from './changes.ts';

/** Thrown where a speculative request would leave a trace and the caches it used turned out stale. */
export class SpeculationFailed extends Error {
  constructor() {
    super("the caller's access changed while this request was served from caches");
    this.name = 'SpeculationFailed';
  }
}

/**
 * A request served from the access caches as they stand, while the access-change read that must
 * vouch for them (one sent after the request arrived, see AccessChanges.sync) is out. The read and
 * the work overlap instead of adding up. Nothing of the request may leave the process — answer,
 * audit event, log line, upstream call or write — before `settle()` returns; if the read dropped a
 * subject the request used, the request is redone from scratch as if it had waited for the read,
 * which it then has.
 *
 * Every cached value the request uses is reported to it (`used`, with what the value was computed
 * from), and the caller's user is named once authenticated (`touch`). Sound because the read sent
 * after the request arrived reports every change committed before: if none of the values used is
 * stale by it, and the caller itself did not change, nothing the request used was stale.
 *
 * The verdict is given once: a change committed after the read that vouched for the request must
 * not undo what the request already did (a write run after settling would run twice).
 */
export class Speculation implements ValueUse {
  /** A notBefore (see AccessChanges.sync) the last completed read satisfies: checks do not wait. */
  readonly notBefore: number;
  private readonly stamp: number;
  private readonly changes: AccessChanges;
  private readonly subjects = new Set<string>();
  private readonly values: { subjects: readonly string[]; stamp: number }[] = [];
  private readonly read: Promise<boolean>;
  private verdict: Promise<boolean> | undefined;

  private constructor(changes: AccessChanges, em: EmSource, arrived: number) {
    this.changes = changes;
    this.notBefore = changes.lastReadStarted;
    this.stamp = changes.stamp;
    changes.stats.speculations++;
    // A failed read vouches for nothing: the redo reads again, and reports that failure.
    this.read = changes.sync(em, arrived).then(
      () => true,
      () => false,
    );
  }

  /** Undefined until the feed has been read once: there is nothing to speculate from. */
  static begin(changes: AccessChanges, em: EmSource, arrived: number): Speculation | undefined {
    return Number.isFinite(changes.lastReadStarted) ? new Speculation(changes, em, arrived) : undefined;
  }

  /** Records the user this request acts for. */
  touch(subject: string): void {
    this.subjects.add(subject);
  }

  /** Records a cached value this request used. */
  used(subjects: readonly string[], stamp: number): void {
    this.values.push({ subjects, stamp });
  }

  /** True when the read sent after the request arrived found none of the values it used stale; given once. */
  confirmed(): Promise<boolean> {
    this.verdict ??= this.judge();
    return this.verdict;
  }

  private async judge(): Promise<boolean> {
    if (!(await this.read)) return this.refused();
    for (const subject of this.subjects) if (this.changes.changedSince(subject) > this.stamp) return this.refused();
    for (const value of this.values) if (!this.changes.isCurrent(value.subjects, value.stamp)) return this.refused();
    return true;
  }

  /** Returns once the caches are vouched for; throws SpeculationFailed if they were stale. */
  async settle(): Promise<void> {
    if (!(await this.confirmed())) throw new SpeculationFailed();
  }

  private refused(): false {
    this.changes.stats.speculationsFailed++;
    return false;
  }
}
