// The PM operations: tracker connections and the tracker tools, each naming its toolset itself.
export * from './connections.ts';
export * from './oauth.ts';
export * from './issues.ts';
export * from './workflow.ts';
export * from './comments.ts';
export * from './metadata.ts';
export * from './links.ts';
export * from './agile.ts';
export * from './worklogs.ts';
export * from './attachments.ts';
