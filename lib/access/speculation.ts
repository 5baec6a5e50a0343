import type { EmSource } from '../db/orm.ts';
import type { AccessEpoch } from './epoch.ts';

/** Thrown where a speculative request would leave a trace and the epoch turned out to have moved. */
export class SpeculationFailed extends Error {
  constructor() {
    super('the access epoch moved while this request was served from caches');
    this.name = 'SpeculationFailed';
  }
}

/**
 * A request served from the access caches as they stand, while the access-epoch read that must
 * vouch for them (one sent after the request arrived, see AccessEpoch.sync) is out. The read and
 * the work overlap instead of adding up. Nothing of the request may leave the process — answer,
 * audit event, log line, upstream call or write — before `settle()` returns; if the epoch moved,
 * the request is redone from scratch as if it had waited for the read, which it then has.
 *
 * Sound because the epoch only moves forward and moves with every change to access: if the read
 * sent after the request arrived finds the generation the caches were filled under, no change
 * committed before the request arrived is missing from them.
 */
export class Speculation {
  /** A notBefore (see AccessEpoch.sync) the last completed read satisfies: checks do not wait. */
  readonly notBefore: number;
  private readonly generation: number;
  private readonly verdict: Promise<boolean>;

  private constructor(epoch: AccessEpoch, em: EmSource, arrived: number) {
    this.notBefore = epoch.lastReadStarted;
    this.generation = epoch.generation;
    // A failed read vouches for nothing: the redo reads again, and reports that failure.
    epoch.stats.speculations++;
    this.verdict = epoch.sync(em, arrived).then(
      (generation) => generation === this.generation,
      () => false,
    );
    void this.verdict.then((holds) => {
      if (!holds) epoch.stats.speculationsFailed++;
    });
  }

  /** Undefined until the epoch has been read once: there is nothing to speculate from. */
  static begin(epoch: AccessEpoch, em: EmSource, arrived: number): Speculation | undefined {
    return Number.isFinite(epoch.lastReadStarted) ? new Speculation(epoch, em, arrived) : undefined;
  }

  /** True when the read sent after the request arrived found the caches' epoch unchanged. */
  confirmed(): Promise<boolean> {
    return this.verdict;
  }

  /** Returns once the caches are vouched for; throws SpeculationFailed if the epoch moved. */
  async settle(): Promise<void> {
    if (!(await this.verdict)) throw new SpeculationFailed();
  }
}
