/** The Jira project of an issue key (PROJ-123 → PROJ); null for a numeric issue id, which names none. */
export function jiraProjectOf(issueKey: string): string | null {
  const match = /^([A-Za-z][A-Za-z0-9_]*)-\d+$/.exec(issueKey);
  return match ? match[1]!.toUpperCase() : null;
}
