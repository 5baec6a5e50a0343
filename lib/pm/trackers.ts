// The tracker clients, loaded by PmService on first use: a process that never reaches a tracker
// (most stdio sessions' first calls, the admin server) does not load them or the Markdown stack.
export { JiraApi } from './jira/api.ts';
export { JiraTracker } from './jira/tracker.ts';
export { RedmineTracker } from './redmine/tracker.ts';
export { OpenProjectTracker } from './openproject/tracker.ts';
