import { invalid } from '../errors.ts';

/** The number of an issue in a tracker that numbers them (Redmine, OpenProject): "42" or "#42". */
export function numberedKey(key: string, field: string, what: string): string {
  const match = /^#?(\d+)$/.exec(key.trim());
  if (!match) throw invalid(field, `${what} are numbers such as 42 or #42, not "${key}"`);
  return match[1]!;
}
