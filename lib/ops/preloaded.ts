import type { AnyOperation } from './operation.ts';

// Operations added by a module preloaded with `node --import`, before the registry is built: the
// test suite's protocol fixtures (the conformance suite calls tools of its own names). Nothing in
// Mandate adds any; a preload runs code in the process anyway, so this opens nothing new.
const added: AnyOperation[] = [];
let sealed = false;

export function addPreloadedOperations(...operations: AnyOperation[]): void {
  if (sealed) throw new Error('operations can only be added before the registry is built (preload the module with node --import)');
  added.push(...operations);
}

/** The added operations; none can be added after this. */
export function sealPreloadedOperations(): readonly AnyOperation[] {
  sealed = true;
  return added;
}
