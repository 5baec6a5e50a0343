import type { AnyOperation } from '../operation.ts';
import { CONNECTION_OPERATIONS } from './connections.ts';
import { ISSUE_TOOLS } from './issues.ts';
import { WORKFLOW_TOOLS } from './workflow.ts';
import { COMMENT_TOOLS } from './comments.ts';
import { METADATA_TOOLS } from './metadata.ts';
import { LINK_TOOLS } from './links.ts';
import { AGILE_TOOLS } from './agile.ts';
import { WORKLOG_TOOLS } from './worklogs.ts';

/** The PM operations, in the order they are listed; each names its toolset itself (`op.toolset`). */
export const PM_OPERATIONS: AnyOperation[] = [
  ...CONNECTION_OPERATIONS, ...ISSUE_TOOLS, ...WORKFLOW_TOOLS, ...COMMENT_TOOLS, ...METADATA_TOOLS, ...LINK_TOOLS, ...AGILE_TOOLS, ...WORKLOG_TOOLS,
] as AnyOperation[];
