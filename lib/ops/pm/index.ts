import type { AnyOperation } from '../operation.ts';
import type { PmToolset } from '../../pm/settings.ts';
import { CONNECTION_OPERATIONS } from './connections.ts';
import { ISSUE_TOOLS } from './issues.ts';
import { WORKFLOW_TOOLS } from './workflow.ts';
import { COMMENT_TOOLS } from './comments.ts';
import { METADATA_TOOLS } from './metadata.ts';
import { LINK_TOOLS } from './links.ts';
import { AGILE_TOOLS } from './agile.ts';
import { WORKLOG_TOOLS } from './worklogs.ts';

/** The PM operations by toolset, in the order they are listed. */
export const PM_TOOLSET_OPERATIONS: Record<PmToolset, AnyOperation[]> = {
  connections: CONNECTION_OPERATIONS as AnyOperation[],
  issues: ISSUE_TOOLS as AnyOperation[],
  workflow: WORKFLOW_TOOLS as AnyOperation[],
  comments: COMMENT_TOOLS as AnyOperation[],
  metadata: METADATA_TOOLS as AnyOperation[],
  links: LINK_TOOLS as AnyOperation[],
  agile: AGILE_TOOLS as AnyOperation[],
  worklogs: WORKLOG_TOOLS as AnyOperation[],
};

export const PM_OPERATIONS: AnyOperation[] = Object.values(PM_TOOLSET_OPERATIONS).flat();
