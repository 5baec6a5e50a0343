import type { PhrasingContent, RootContent, Root, ListItem } from 'mdast';
import { parseMarkdown } from './markdown.ts';

// Markdown <-> Atlassian Document Format (Jira Cloud rich text). Covers what issue text uses:
// headings, paragraphs, emphasis, strong, strike, inline code, links, lists (incl. tasks), code
// blocks, quotes, rules, tables and hard breaks. Unknown ADF nodes keep their text.

export interface AdfNode {
  type: string;
  attrs?: Record<string, unknown>;
  content?: AdfNode[];
  text?: string;
  marks?: { type: string; attrs?: Record<string, unknown> }[];
}

type Mark = NonNullable<AdfNode['marks']>[number];

function inline(nodes: PhrasingContent[], marks: Mark[] = []): AdfNode[] {
  const out: AdfNode[] = [];
  for (const node of nodes) {
    switch (node.type) {
      case 'text':
        if (node.value) out.push({ type: 'text', text: node.value, ...(marks.length ? { marks } : {}) });
        break;
      case 'emphasis':
        out.push(...inline(node.children, [...marks, { type: 'em' }]));
        break;
      case 'strong':
        out.push(...inline(node.children, [...marks, { type: 'strong' }]));
        break;
      case 'delete':
        out.push(...inline(node.children, [...marks, { type: 'strike' }]));
        break;
      case 'inlineCode':
        out.push({ type: 'text', text: node.value, marks: [...marks, { type: 'code' }] });
        break;
      case 'link':
        out.push(...inline(node.children, [...marks, { type: 'link', attrs: { href: node.url } }]));
        break;
      case 'break':
        out.push({ type: 'hardBreak' });
        break;
      case 'image':
        out.push({ type: 'text', text: node.alt || node.url, marks: [...marks, { type: 'link', attrs: { href: node.url } }] });
        break;
      case 'html':
        out.push({ type: 'text', text: node.value, ...(marks.length ? { marks } : {}) });
        break;
      default:
        break;
    }
  }
  return out;
}

function paragraph(children: PhrasingContent[]): AdfNode {
  const content = inline(children);
  return content.length ? { type: 'paragraph', content } : { type: 'paragraph' };
}

function listItem(item: ListItem): AdfNode {
  const content = item.children.flatMap(block);
  return { type: 'listItem', content: content.length ? content : [{ type: 'paragraph' }] };
}

function block(node: RootContent): AdfNode[] {
  switch (node.type) {
    case 'paragraph':
      return [paragraph(node.children)];
    case 'heading':
      return [{ type: 'heading', attrs: { level: node.depth }, content: inline(node.children) }];
    case 'code':
      return [{ type: 'codeBlock', ...(node.lang ? { attrs: { language: node.lang } } : {}), content: node.value ? [{ type: 'text', text: node.value }] : [] }];
    case 'blockquote':
      return [{ type: 'blockquote', content: node.children.flatMap(block) }];
    case 'thematicBreak':
      return [{ type: 'rule' }];
    case 'list':
      if (node.children.some((item) => typeof item.checked === 'boolean')) {
        return [{
          type: 'taskList',
          attrs: { localId: '' },
          content: node.children.map((item) => ({
            type: 'taskItem',
            attrs: { localId: '', state: item.checked ? 'DONE' : 'TODO' },
            content: item.children.flatMap((child) => (child.type === 'paragraph' ? inline(child.children) : [])),
          })),
        }];
      }
      return [{
        type: node.ordered ? 'orderedList' : 'bulletList',
        ...(node.ordered && node.start && node.start !== 1 ? { attrs: { order: node.start } } : {}),
        content: node.children.map(listItem),
      }];
    case 'table':
      return [{
        type: 'table',
        content: node.children.map((row, index) => ({
          type: 'tableRow',
          content: row.children.map((cell) => ({ type: index === 0 ? 'tableHeader' : 'tableCell', content: [paragraph(cell.children)] })),
        })),
      }];
    case 'html':
      return [{ type: 'paragraph', content: [{ type: 'text', text: node.value }] }];
    default:
      return [];
  }
}

/** The ADF document (version 1) Jira Cloud takes for a Markdown text. */
export function markdownToAdf(markdown: string): { type: 'doc'; version: 1; content: AdfNode[] } {
  const root: Root = parseMarkdown(markdown);
  return { type: 'doc', version: 1, content: root.children.flatMap(block) };
}

function escapeInline(text: string): string {
  return text.replace(/([\\`*_[\]])/g, '\\$1');
}

function wrap(text: string, mark: Mark): string {
  switch (mark.type) {
    case 'strong':
      return `**${text}**`;
    case 'em':
      return `*${text}*`;
    case 'strike':
      return `~~${text}~~`;
    case 'code':
      return text;
    case 'link':
      return `[${text}](${String(mark.attrs?.href ?? '')})`;
    default:
      return text;
  }
}

function inlineToMarkdown(nodes: AdfNode[] = []): string {
  return nodes
    .map((node) => {
      if (node.type === 'text') {
        const marks = node.marks ?? [];
        const isCode = marks.some((m) => m.type === 'code');
        let text = isCode ? `\`${node.text ?? ''}\`` : escapeInline(node.text ?? '');
        for (const mark of marks) text = wrap(text, mark);
        return text;
      }
      if (node.type === 'hardBreak') return '\\\n';
      if (node.type === 'mention') return `@${String(node.attrs?.text ?? node.attrs?.id ?? '').replace(/^@/, '')}`;
      if (node.type === 'emoji') return String(node.attrs?.text ?? node.attrs?.shortName ?? '');
      if (node.type === 'inlineCard') return String(node.attrs?.url ?? '');
      if (node.type === 'date') return new Date(Number(node.attrs?.timestamp ?? 0)).toISOString().slice(0, 10);
      if (node.type === 'status') return `[${String(node.attrs?.text ?? '')}]`;
      return inlineToMarkdown(node.content);
    })
    .join('');
}

function indent(text: string, prefix: string): string {
  return text.split('\n').map((line, i) => (i === 0 || line === '' ? line : prefix + line)).join('\n');
}

function blockToMarkdown(node: AdfNode): string {
  switch (node.type) {
    case 'paragraph':
      return inlineToMarkdown(node.content);
    case 'heading':
      return `${'#'.repeat(Number(node.attrs?.level ?? 1))} ${inlineToMarkdown(node.content)}`;
    case 'codeBlock': {
      const fence = '```';
      return `${fence}${String(node.attrs?.language ?? '')}\n${(node.content ?? []).map((t) => t.text ?? '').join('')}\n${fence}`;
    }
    case 'blockquote':
      return blocksToMarkdown(node.content).split('\n').map((line) => (line ? `> ${line}` : '>')).join('\n');
    case 'rule':
      return '---';
    case 'bulletList':
    case 'orderedList': {
      const start = Number(node.attrs?.order ?? 1);
      return (node.content ?? [])
        .map((item, i) => {
          const marker = node.type === 'orderedList' ? `${start + i}. ` : '- ';
          return marker + indent(blocksToMarkdown(item.content, '\n'), ' '.repeat(marker.length));
        })
        .join('\n');
    }
    case 'taskList':
      return (node.content ?? []).map((item) => `- [${item.attrs?.state === 'DONE' ? 'x' : ' '}] ${inlineToMarkdown(item.content)}`).join('\n');
    case 'table': {
      const rows = (node.content ?? []).map((row) => (row.content ?? []).map((cell) => blocksToMarkdown(cell.content, ' ').replace(/\|/g, '\\|')));
      if (!rows.length) return '';
      const header = rows[0]!;
      const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`)];
      return lines.join('\n');
    }
    case 'panel':
    case 'expand':
    case 'nestedExpand':
    case 'layoutSection':
    case 'layoutColumn':
      return blocksToMarkdown(node.content);
    case 'mediaSingle':
    case 'mediaGroup':
      return '[attachment]';
    default:
      return node.content ? blocksToMarkdown(node.content) : inlineToMarkdown([node]);
  }
}

function blocksToMarkdown(nodes: AdfNode[] = [], separator = '\n\n'): string {
  return nodes.map(blockToMarkdown).filter((text) => text !== '').join(separator);
}

/** Markdown for an ADF document (or a plain string, as some fields hold). */
export function adfToMarkdown(doc: unknown): string {
  if (doc === null || doc === undefined) return '';
  if (typeof doc === 'string') return doc;
  return blocksToMarkdown((doc as AdfNode).content);
}

// What adfToMarkdown flattens or drops: rewriting a description that holds these from Markdown
// would destroy them, so an edit refuses unless told to replace the rich text.
const LOSSY_NODES: Record<string, string> = {
  panel: 'panels', expand: 'expands', nestedExpand: 'expands', layoutSection: 'layouts', layoutColumn: 'layouts',
  mediaSingle: 'attachments shown inline', mediaGroup: 'attachments shown inline', mediaInline: 'attachments shown inline',
  mention: 'mentions', status: 'status lozenges', date: 'dates', emoji: 'emoji', inlineCard: 'smart links', blockCard: 'smart links', embedCard: 'smart links',
  extension: 'macros', bodiedExtension: 'macros', inlineExtension: 'macros', decisionList: 'decisions',
};
const LOSSY_MARKS: Record<string, string> = {
  underline: 'underline', textColor: 'text colour', backgroundColor: 'highlight', subsup: 'sub- and superscript', alignment: 'alignment', indentation: 'indentation',
};

/** What of an ADF document Markdown cannot carry (empty: a Markdown rewrite keeps everything). */
export function adfLosses(doc: unknown): string[] {
  const found = new Set<string>();
  const visit = (node: AdfNode, depth: number) => {
    if (!node || typeof node !== 'object' || depth > 100) return;
    const lost = LOSSY_NODES[node.type];
    if (lost) found.add(lost);
    if ((node.type === 'tableCell' || node.type === 'tableHeader') && (Number(node.attrs?.colspan ?? 1) > 1 || Number(node.attrs?.rowspan ?? 1) > 1)) found.add('merged table cells');
    for (const mark of node.marks ?? []) if (LOSSY_MARKS[mark.type]) found.add(LOSSY_MARKS[mark.type]!);
    for (const child of Array.isArray(node.content) ? node.content : []) visit(child, depth + 1);
  };
  if (doc && typeof doc === 'object') visit(doc as AdfNode, 0);
  return [...found].sort();
}
