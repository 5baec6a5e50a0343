import { OpError } from '../errors.ts';

// A search confined by the binding guard to the tracker projects the caller may read: the
// trackers put the confinement in the query itself (so paging stays right) and refuse an answer
// that broke it anyway.

export function confinementBreached(tracker: string): OpError {
  return new OpError('forbidden', `permission denied: the ${tracker} search reached issues outside the tracker projects you may read; nothing is shown. Simplify the query`);
}

export function notWithinConfinement(project: string, confinedTo: readonly string[]): OpError {
  return new OpError('forbidden', `permission denied: project ${project} is not among the tracker projects your searches are confined to (${confinedTo.join(', ')}); searching it needs pm:read where it is bound, or globally`, { field: 'project' });
}
