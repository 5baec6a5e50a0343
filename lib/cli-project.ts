import { createMandateProject, listMandateProjects } from './ops/index.ts';
import { help, runAsSystem, str, UsageError, withRuntime, type Command } from './cli-support.ts';

// `mandate project ...`: the operator's way to make the projects roles and delegations are scoped to.
export const projectCommands: Record<string, Command> = {
  'project create': {
    usage: 'mandate project create --key KEY --name NAME',
    summary: 'Create a project (the scope of project roles and delegations); prints it as JSON.',
    options: { ...help, key: { type: 'string' }, name: { type: 'string' } },
    async run(args, io) {
      if (!str(args, 'key')) throw new UsageError('--key is required (a letter then letters, digits or "_", at most 32)');
      if (!str(args, 'name')) throw new UsageError('--name is required');
      return withRuntime(io, 'project create', async (runtime) => {
        io.out(JSON.stringify(await runAsSystem(runtime, createMandateProject, { key: str(args, 'key'), name: str(args, 'name') }), null, 2));
        return 0;
      });
    },
  },
  'project list': {
    usage: 'mandate project list [--search TEXT]',
    summary: 'List the projects as JSON, by key, with their tracker bindings and what uses them.',
    options: { ...help, search: { type: 'string' } },
    async run(args, io) {
      return withRuntime(io, 'project list', async (runtime) => {
        const items: unknown[] = [];
        for (let offset: number | null = 0; offset !== null; ) {
          const page: { items: unknown[]; next_offset: number | null } = await runAsSystem(runtime, listMandateProjects, { search: str(args, 'search'), limit: 100, offset });
          items.push(...page.items);
          offset = page.next_offset;
        }
        io.out(JSON.stringify(items, null, 2));
        return 0;
      });
    },
  },
};
