import type { AnyOperation } from '../operation.ts';
import { CONNECTION_OPERATIONS } from './connections.ts';
import { ISSUE_TOOLS } from './issues.ts';
import { WORKFLOW_TOOLS } from './workflow.ts';
import { COMMENT_TOOLS } from './comments.ts';
import { METADATA_TOOLS } from './metadata.ts';
import { LINK_TOOLS } from './links.ts';
import { AGILE_TOOLS } from './agile.ts';
import { WORKLOG_TOOLS } from './worklogs.ts';
import { completePmOauth, connectPmOauth } from './oauth.ts';

/** The PM operations, in the order they are listed; each names its toolset itself (`op.toolset`). */
export const PM_OPERATIONS: AnyOperation[] = [
  ...CONNECTION_OPERATIONS, connectPmOauth, ...ISSUE_TOOLS, ...WORKFLOW_TOOLS, ...COMMENT_TOOLS, ...METADATA_TOOLS, ...LINK_TOOLS, ...AGILE_TOOLS, ...WORKLOG_TOOLS,
] as AnyOperation[];

/**
 * Steps of a browser flow with no use as a tool (where Atlassian sends the browser back): REST
 * routes only, through the same runner, guard and audit.
 */
export const PM_BROWSER_OPERATIONS: AnyOperation[] = [completePmOauth] as AnyOperation[];
