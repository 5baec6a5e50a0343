import { McpInstallation, RoleAssignment, User, type McpCatalogEntry } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import type { RunningSession } from '../../gateway/pool.ts';

/**
 * The running gateway sessions that must stop: their installation removed or changed (new
 * secrets, a new command), their user deleted or deactivated, or no longer in its audience. Any
 * process may have made the change; calls are refused at once by their own checks, this stops the
 * processes. Three queries, whatever the number of sessions.
 */
export async function staleSessions(em: Em, sessions: readonly RunningSession[]): Promise<RunningSession[]> {
  const installationIds = [...new Set(sessions.map((s) => s.installationId))];
  const userIds = [...new Set(sessions.map((s) => s.userId))];
  const installations = new Map(
    (await em.find(McpInstallation, { id: { $in: installationIds } }, { populate: ['catalog'] })).map((i) => [i.id, i]),
  );
  const activeUsers = new Set((await em.find(User, { id: { $in: userIds }, active: true }, { fields: ['id'] })).map((u) => u.id));
  const projectIds = [...new Set([...installations.values()].map((i) => i.project?.id).filter((id): id is string => Boolean(id)))];
  const members = new Set(
    projectIds.length
      ? (await em.find(RoleAssignment, { project: { $in: projectIds }, user: { $in: userIds } }, { fields: ['project', 'user'] })).map((a) => `${a.project!.id}:${a.user.id}`)
      : [],
  );
  return sessions.filter((session) => {
    const installation = installations.get(session.installationId);
    if (!installation || !activeUsers.has(session.userId)) return true;
    const entry = installation.catalog as McpCatalogEntry;
    if (`${installation.updatedAt.getTime()}:${entry.updatedAt.getTime()}` !== session.version) return true;
    if (installation.scope === 'personal') return installation.user?.id !== session.userId;
    if (installation.project) return !members.has(`${installation.project.id}:${session.userId}`);
    return false;
  });
}
