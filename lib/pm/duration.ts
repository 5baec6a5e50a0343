import { invalid } from '../errors.ts';

// Time spent as the tools take it (Jira's notation), for trackers that want hours.

/** "2h 30m", "1.5h", "90m", "1d" (8 h) as hours. */
export function hoursOf(timeSpent: string): number {
  const text = timeSpent.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  let hours = 0;
  const units: Record<string, number> = { w: 40, d: 8, h: 1, m: 1 / 60 };
  const parts = text.match(/\d+(\.\d+)?\s*[wdhm]/g);
  if (!parts || parts.join('').replace(/\s/g, '') !== text.replace(/\s/g, '')) throw invalid('time_spent', 'must look like "2h 30m", "1.5h", "90m" or "1d"');
  for (const part of parts) hours += Number(part.slice(0, -1).trim()) * units[part.slice(-1)]!;
  return Math.round(hours * 100) / 100;
}
