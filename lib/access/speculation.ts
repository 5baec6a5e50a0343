import type { EmSource } from '../db/orm.ts';
import type { AccessChanges } from './changes.ts';

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
 * The request names the user whose cached values it uses (`touch`): its caller, once
 * authenticated. Every cached value belongs to one user, and a request reads only its caller's
 * (another user's session is refused, after settling). Sound because the read sent after the
 * request arrived reports every change committed before: if none of the caller's values was
 * found stale by it (held now, or dropped since the request began), nothing the request used was.
 */
export class Speculation {
  /** A notBefore (see AccessChanges.sync) the last completed read satisfies: checks do not wait. */
  readonly notBefore: number;
  private readonly stamp: number;
  private readonly changes: AccessChanges;
  private readonly subjects = new Set<string>();
  private readonly read: Promise<boolean>;

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

  /** Records a user whose cached values this request uses. */
  touch(subject: string): void {
    this.subjects.add(subject);
  }

  /** True when the read sent after the request arrived found none of the values it used stale. */
  async confirmed(): Promise<boolean> {
    if (!(await this.read)) return this.refused();
    for (const subject of this.subjects) if (this.changes.usedStale(subject, this.stamp)) return this.refused();
    return true;
  }

  /** Returns once the caches are vouched for; throws SpeculationFailed if they were stale. */
  async settle(): Promise<void> {
    if (!(await this.confirmed())) throw new SpeculationFailed();
  }

  private counted = false;
  private refused(): false {
    if (!this.counted) this.changes.stats.speculationsFailed++;
    this.counted = true;
    return false;
  }
}
