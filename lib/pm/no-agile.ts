import { unsupported } from './errors.ts';
import type { Tracker } from './provider.ts';

export type AgileTools = Pick<Tracker, 'listBoards' | 'listSprints' | 'sprintIssues' | 'moveToSprint' | 'moveToBacklog'>;

/**
 * The agile tools of a tracker without Jira-style boards and sprints: each a clear refusal. Mixed
 * into the tracker's class (`Object.assign(X.prototype, noAgile(...))` with a merged interface).
 */
export function noAgile(label: string, boardsInstead?: string): AgileTools {
  return {
    listBoards: async () => {
      throw unsupported(label, 'Boards', boardsInstead);
    },
    listSprints: async () => {
      throw unsupported(label, 'Sprints');
    },
    sprintIssues: async () => {
      throw unsupported(label, 'Sprints');
    },
    moveToSprint: async () => {
      throw unsupported(label, 'Sprints');
    },
    moveToBacklog: async () => {
      throw unsupported(label, 'The backlog');
    },
  };
}
